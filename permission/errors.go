package permission

import "errors"

// Refusals returned by [Decide]. Match them with errors.Is. The channel
// package re-exports the same values, so either name matches.
var (
	// ErrUnauthorized: the actor lacks the role or mode the operation
	// needs, or the target is the owner and the actor is not.
	ErrUnauthorized = errors.New("callcore: unauthorized")
	// ErrNotMember: the actor (or the target) is not a member, or not an
	// active user where one is needed, or was removed and not added again.
	ErrNotMember = errors.New("callcore: not a member")
)
