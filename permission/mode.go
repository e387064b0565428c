package permission

import (
	"strings"
	"sync/atomic"
)

// Mode is a user's permission bit mask in a channel.
type Mode uint8

// Mode bits.
const (
	// Admin lets the user moderate: addUsers, delUsers, modUsers, muteUser,
	// configure.
	Admin Mode = 1
	// Send lets the user publish media that is forwarded to others.
	Send Mode = 2
	// Recv lets the user receive media from others.
	Recv Mode = 4

	// All is every defined bit; a mode outside it is invalid.
	All = Admin | Send | Recv
	// Default is the mode of users who join without one: send and recv.
	Default = Send | Recv
)

// Valid reports whether m has no bit outside [All].
func (m Mode) Valid() bool { return m&^All == 0 }

// Has reports whether every bit of b is set in m.
func (m Mode) Has(b Mode) bool { return m&b == b }

func (m Mode) String() string {
	if m == 0 {
		return "none"
	}
	var parts []string
	for _, b := range []struct {
		bit  Mode
		name string
	}{{Admin, "admin"}, {Send, "send"}, {Recv, "recv"}} {
		if m.Has(b.bit) {
			parts = append(parts, b.name)
		}
	}
	if !m.Valid() {
		parts = append(parts, "invalid")
	}
	return strings.Join(parts, "+")
}

// Gate is one user's mode in one channel as the packet path sees it: the
// channel stores the mode when the user joins or is moderated and stores 0
// when it leaves or is removed. Every read is a single atomic load, so a
// forwarding goroutine may hold a *Gate and consult it per packet.
// The zero Gate is closed (mode 0).
type Gate struct{ mode atomic.Uint32 }

// Load returns the current mode (0 when the user is not active).
func (g *Gate) Load() Mode { return Mode(g.mode.Load()) }

// Store sets the mode. Only the owner of the gate (a channel) calls it.
func (g *Gate) Store(m Mode) { g.mode.Store(uint32(m)) }

// CanSend reports whether the user's media may be forwarded to others.
func (g *Gate) CanSend() bool { return g.mode.Load()&uint32(Send) != 0 }

// CanRecv reports whether media may be forwarded to the user.
func (g *Gate) CanRecv() bool { return g.mode.Load()&uint32(Recv) != 0 }
