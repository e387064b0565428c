// Package channel implements callcore's call channels: the whole call API
// (create, join, leave, delete, addUsers, delUsers, modUsers, getUsers,
// configure, addTracks, removeTracks, muteTracks, muteUser) as the Go API
// that servers embed, with the acting user explicit in every call.
//
// A [Registry] owns channels by id. [Registry.Create] makes a [Channel]
// whose creator is its owner; every other operation is a method of the
// Channel. Who may do what is decided by permission.Decide; a refusal
// returns one of the sentinel errors of errors.go, wrapped with detail, and
// changes nothing. An operation whose target state already holds is a
// no-op that emits nothing.
//
// # Checks, in order
//
// Every operation checks, and refuses with the first that fails: its
// arguments (ErrInvalid); the channel is open (ErrClosed); the actor's
// right to act, then each target's in argument order (ErrUnauthorized,
// ErrNotMember); the state the operation needs (ErrExists, ErrNotFound,
// the admin mute that muteTracks cannot lift); the channel's kind
// (ErrKindNotAllowed); its capacity (ErrFull, or too many tracks).
//
// # Events
//
// Each channel numbers its events (Event.Seq, from 1) under its lock and
// queues each, without blocking, on the bounded [Subscription] of every
// active user, so that all see one order. A subscription starts with the
// event that made its user active (cnl:create for the owner, user:join for
// others) and ends with the one that ended it (user:left, user:del,
// cnl:delete); cnl:req goes to admins only. A subscriber whose buffer is
// full is disconnected (as if it left, ErrSlowConsumer) instead of holding
// the channel back.
//
// # Media
//
// Effects on the forwarding plane go through the consumer-side [Media]
// interface (and newcall notifications through [Notifier]): they are queued
// under the lock in event order and made after it is released, by one
// goroutine per channel at a time (see [Media] for when). The
// packet path reads each user's permission.Gate ([Channel.Gate]) with one
// atomic load.
//
// See docs/channels.md for roles, permissions and the layers of muting.
package channel
