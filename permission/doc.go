// Package permission holds callcore's permission model: the mode bit mask
// of a user in a channel (admin 1, send 2, recv 4; default 6), the pure rules
// that say whether a user may perform an operation on a channel now
// ([Decide]), and the [Gate] that the packet path reads with a single atomic
// load.
//
// The rules know nothing about channels' storage: the caller describes the
// actor (its [Role], mode and whether it is active) and, for moderation, the
// target, and gets back a [Decision] or a refusal ([ErrUnauthorized],
// [ErrNotMember]). The channel package applies them under its lock.
package permission
