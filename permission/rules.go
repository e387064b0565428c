package permission

import "fmt"

// Role is a user's standing in a channel, independent of its mode.
type Role uint8

// Roles. Admins are members (or the owner) whose mode has [Admin]; the
// owner always acts as an admin whatever its stored mode.
const (
	// Outsider: never a member of the channel.
	Outsider Role = iota
	// Removed: removed with delUsers and not added again.
	Removed
	// Member: the users named at creation, added with addUsers, or who
	// joined.
	Member
	// Owner: the user who created the channel. Ownership never moves.
	Owner
)

func (r Role) String() string {
	switch r {
	case Outsider:
		return "outsider"
	case Removed:
		return "removed"
	case Member:
		return "member"
	case Owner:
		return "owner"
	}
	return fmt.Sprintf("Role(%d)", uint8(r))
}

// Op is an operation of the call API.
type Op uint8

// Operations, named as in the call API.
const (
	OpCreate Op = iota + 1
	OpJoin
	OpLeave
	OpDelete
	OpAddUsers
	OpDelUsers
	OpModUsers
	OpGetUsers
	OpConfigure
	OpAddTracks
	OpRemoveTracks
	OpMuteTracks
	OpMuteUser
)

var opNames = [...]string{"", "create", "join", "leave", "delete", "addUsers", "delUsers", "modUsers", "getUsers", "configure", "addTracks", "removeTracks", "muteTracks", "muteUser"}

func (o Op) String() string {
	if int(o) < len(opNames) && o != 0 {
		return opNames[o]
	}
	return fmt.Sprintf("Op(%d)", uint8(o))
}

// Actor describes the acting user.
type Actor struct {
	Role Role
	// Mode is the actor's stored mode (ignored for outsiders and removed
	// users).
	Mode Mode
	// Active is true while the actor is in the call.
	Active bool
}

// IsAdmin reports whether the actor may moderate: the owner, or a member
// whose mode has [Admin].
func (a Actor) IsAdmin() bool {
	return a.Role == Owner || (a.Role == Member && a.Mode.Has(Admin))
}

// Facts is everything [Decide] needs to know.
type Facts struct {
	Actor Actor
	// Target is the role of the user that delUsers, modUsers or muteUser
	// acts on (one target per call; batch operations ask once per target).
	Target Role
	// CanCreate is the embedding server's answer for create.
	CanCreate bool
	// JoinRequest is the channel's joinRequest setting, for join.
	JoinRequest bool
}

// Decision is what an allowed operation amounts to.
type Decision uint8

const (
	// Allowed: the operation may proceed.
	Allowed Decision = iota + 1
	// Request: a join by a non-member of a joinRequest channel becomes a
	// request that an admin approves (addUsers) or refuses (delUsers).
	Request
)

// Decide answers "may this actor perform op on the channel now": Allowed,
// Request, or an error wrapping [ErrUnauthorized] or [ErrNotMember]. It is a
// pure function of its arguments. It does not check arguments or the
// channel's state beyond the facts given (a join of an already active user,
// a full channel, a missing track are the caller's to refuse).
//
// The rules:
//   - create: whoever the server's policy allows (Facts.CanCreate).
//   - join: the owner and members; outsiders too unless joinRequest is on,
//     in which case their join is a Request; removed users never.
//   - leave: anyone (leaving when not active is a no-op).
//   - delete: the owner only.
//   - addUsers, configure: admins.
//   - delUsers, modUsers, muteUser: admins; the owner as target only by
//     itself, and never for delUsers; modUsers and muteUser need a member
//     (or the owner) as target.
//   - getUsers, addTracks, removeTracks, muteTracks: active users (tracks
//     are always the actor's own).
func Decide(op Op, f Facts) (Decision, error) {
	a := f.Actor
	switch op {
	case OpCreate:
		if !f.CanCreate {
			return 0, fmt.Errorf("%w: the server does not let this user create calls", ErrUnauthorized)
		}
	case OpJoin:
		switch a.Role {
		case Removed:
			return 0, fmt.Errorf("%w: removed from the call", ErrNotMember)
		case Outsider:
			if f.JoinRequest {
				return Request, nil
			}
		}
	case OpLeave:
	case OpDelete:
		if a.Role != Owner {
			return 0, fmt.Errorf("%w: only the owner may delete the call", ErrUnauthorized)
		}
	case OpAddUsers, OpConfigure:
		if !a.IsAdmin() {
			return 0, fmt.Errorf("%w: %v needs an admin", ErrUnauthorized, op)
		}
	case OpDelUsers, OpModUsers, OpMuteUser:
		return decideModeration(op, f)
	case OpGetUsers, OpAddTracks, OpRemoveTracks, OpMuteTracks:
		if !a.Active {
			return 0, fmt.Errorf("%w: %v needs an active user", ErrNotMember, op)
		}
	default:
		return 0, fmt.Errorf("%w: unknown operation %v", ErrUnauthorized, op)
	}
	return Allowed, nil
}

func decideModeration(op Op, f Facts) (Decision, error) {
	if !f.Actor.IsAdmin() {
		return 0, fmt.Errorf("%w: %v needs an admin", ErrUnauthorized, op)
	}
	if f.Target == Owner {
		if op == OpDelUsers {
			return 0, fmt.Errorf("%w: the owner cannot be removed", ErrUnauthorized)
		}
		if f.Actor.Role != Owner {
			return 0, fmt.Errorf("%w: only the owner may %v the owner", ErrUnauthorized, op)
		}
	}
	if op != OpDelUsers && f.Target != Member && f.Target != Owner {
		return 0, fmt.Errorf("%w: %v target is not a member", ErrNotMember, op)
	}
	return Allowed, nil
}
