package channel

import (
	"errors"

	"github.com/callcore/callcore/permission"
)

// Errors returned by channel operations, named after the call API's
// (UnAuthorized, Exists, NotFound, NotMember, Full, KindNotAllowed, Invalid,
// Closed). Every operation that returns one of them has changed nothing.
// They are wrapped with detail: match them with errors.Is.
var (
	// ErrUnauthorized: the actor may not do this (see permission.Decide),
	// or a muted publisher tried to lift an admin mute. It is the same value
	// as permission.ErrUnauthorized.
	ErrUnauthorized = permission.ErrUnauthorized
	// ErrNotMember: the actor is not an active user where one is needed, a
	// target is not a member, or a removed user tried to join; a refused
	// or expired join request ends with it too. It is the same value as
	// permission.ErrNotMember.
	ErrNotMember = permission.ErrNotMember
	// ErrExists: a channel with that id exists, a track with that name is
	// published, the user is already in the call or already asked to join.
	ErrExists = errors.New("callcore: exists")
	// ErrNotFound: no such channel or track.
	ErrNotFound = errors.New("callcore: not found")
	// ErrFull: the channel has maxUsers active users.
	ErrFull = errors.New("callcore: channel full")
	// ErrKindNotAllowed: the channel's kind does not allow the track's.
	ErrKindNotAllowed = errors.New("callcore: kind not allowed")
	// ErrInvalid: a bad argument (empty or oversized id, name or reason,
	// unknown kind, duplicate names, a mode outside the mask, an empty or
	// oversized batch) or configuration.
	ErrInvalid = errors.New("callcore: invalid argument")
	// ErrClosed: the channel was deleted or closed idle, or the registry
	// was closed.
	ErrClosed = errors.New("callcore: channel closed")

	// ErrSlowConsumer ends a Subscription whose bounded buffer filled up:
	// the user was disconnected as if it had left.
	ErrSlowConsumer = errors.New("callcore: event consumer too slow")
	// ErrLeft ends the Subscription of a user who left.
	ErrLeft = errors.New("callcore: left the call")
)
