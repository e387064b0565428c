package permission_test

import (
	"errors"
	"fmt"

	"github.com/callcore/callcore/permission"
)

// Who may remove whom: an admin may remove a member but nobody removes the
// owner; a plain member may not moderate at all.
func ExampleDecide() {
	admin := permission.Actor{Role: permission.Member, Mode: permission.Admin | permission.Default, Active: true}
	member := permission.Actor{Role: permission.Member, Mode: permission.Default, Active: true}
	for _, c := range []struct {
		who    string
		actor  permission.Actor
		target permission.Role
	}{{"admin", admin, permission.Member}, {"admin", admin, permission.Owner}, {"member", member, permission.Member}} {
		_, err := permission.Decide(permission.OpDelUsers, permission.Facts{Actor: c.actor, Target: c.target})
		fmt.Printf("%s removes %v: allowed=%v unauthorized=%v\n", c.who, c.target, err == nil, errors.Is(err, permission.ErrUnauthorized))
	}
	// Output:
	// admin removes member: allowed=true unauthorized=false
	// admin removes owner: allowed=false unauthorized=true
	// member removes member: allowed=false unauthorized=true
}

// The packet path holds a *Gate and reads it with one atomic load per packet.
func ExampleGate() {
	var g permission.Gate
	g.Store(permission.Default)
	fmt.Println(g.CanSend(), g.CanRecv())
	g.Store(permission.Recv) // modUsers cleared send
	fmt.Println(g.CanSend(), g.CanRecv(), g.Load())
	// Output:
	// true true
	// false true recv
}
