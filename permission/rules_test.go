package permission

import (
	"errors"
	"testing"
)

// The actors of the operations table of docs/api.md.
var actors = map[string]Actor{
	"owner":           {Role: Owner, Mode: All, Active: true},
	"owner-inactive":  {Role: Owner, Mode: All},
	"admin":           {Role: Member, Mode: Admin | Default, Active: true},
	"admin-inactive":  {Role: Member, Mode: Admin | Default},
	"member":          {Role: Member, Mode: Default, Active: true},
	"member-inactive": {Role: Member, Mode: Default},
	"member-nosend":   {Role: Member, Mode: Recv, Active: true},
	"outsider":        {Role: Outsider},
	"removed":         {Role: Removed},
}

const (
	ok  = "ok"
	req = "request"
	una = "unauthorized"
	nm  = "notmember"
)

func outcome(d Decision, err error) string {
	switch {
	case errors.Is(err, ErrUnauthorized):
		return una
	case errors.Is(err, ErrNotMember):
		return nm
	case err != nil:
		return err.Error()
	case d == Request:
		return req
	case d == Allowed:
		return ok
	}
	return "?"
}

// TestDecideTable enumerates the operations table of docs/api.md role by role.
func TestDecideTable(t *testing.T) {
	admins := map[string]string{"owner": ok, "owner-inactive": ok, "admin": ok, "admin-inactive": ok,
		"member": una, "member-inactive": una, "member-nosend": una, "outsider": una, "removed": una}
	active := map[string]string{"owner": ok, "owner-inactive": nm, "admin": ok, "admin-inactive": nm,
		"member": ok, "member-inactive": nm, "member-nosend": ok, "outsider": nm, "removed": nm}
	all := func(s string) map[string]string {
		m := map[string]string{}
		for k := range actors {
			m[k] = s
		}
		return m
	}
	cases := []struct {
		op     Op
		facts  Facts
		expect map[string]string
	}{
		{OpCreate, Facts{CanCreate: true}, all(ok)},
		{OpCreate, Facts{}, all(una)},
		{OpJoin, Facts{}, map[string]string{"owner": ok, "owner-inactive": ok, "admin": ok, "admin-inactive": ok,
			"member": ok, "member-inactive": ok, "member-nosend": ok, "outsider": ok, "removed": nm}},
		{OpJoin, Facts{JoinRequest: true}, map[string]string{"owner": ok, "owner-inactive": ok, "admin": ok, "admin-inactive": ok,
			"member": ok, "member-inactive": ok, "member-nosend": ok, "outsider": req, "removed": nm}},
		{OpLeave, Facts{}, all(ok)},
		{OpDelete, Facts{}, map[string]string{"owner": ok, "owner-inactive": ok, "admin": una, "admin-inactive": una,
			"member": una, "member-inactive": una, "member-nosend": una, "outsider": una, "removed": una}},
		{OpAddUsers, Facts{}, admins},
		{OpConfigure, Facts{}, admins},
		{OpDelUsers, Facts{Target: Member}, admins},
		{OpDelUsers, Facts{Target: Outsider}, admins},
		{OpModUsers, Facts{Target: Member}, admins},
		{OpMuteUser, Facts{Target: Member}, admins},
		{OpGetUsers, Facts{}, active},
		{OpAddTracks, Facts{}, active},
		{OpRemoveTracks, Facts{}, active},
		{OpMuteTracks, Facts{}, active},
		// The owner's immunity: only the owner moderates or mutes the owner,
		// and nobody removes it.
		{OpDelUsers, Facts{Target: Owner}, all(una)},
		{OpModUsers, Facts{Target: Owner}, map[string]string{"owner": ok, "owner-inactive": ok, "admin": una, "admin-inactive": una,
			"member": una, "member-inactive": una, "member-nosend": una, "outsider": una, "removed": una}},
		{OpMuteUser, Facts{Target: Owner}, map[string]string{"owner": ok, "owner-inactive": ok, "admin": una, "admin-inactive": una,
			"member": una, "member-inactive": una, "member-nosend": una, "outsider": una, "removed": una}},
		// modUsers and muteUser act on members only.
		{OpModUsers, Facts{Target: Outsider}, map[string]string{"owner": nm, "owner-inactive": nm, "admin": nm, "admin-inactive": nm,
			"member": una, "member-inactive": una, "member-nosend": una, "outsider": una, "removed": una}},
		{OpMuteUser, Facts{Target: Removed}, map[string]string{"owner": nm, "owner-inactive": nm, "admin": nm, "admin-inactive": nm,
			"member": una, "member-inactive": una, "member-nosend": una, "outsider": una, "removed": una}},
	}
	for _, c := range cases {
		for name, a := range actors {
			f := c.facts
			f.Actor = a
			got := outcome(Decide(c.op, f))
			if want := c.expect[name]; got != want {
				t.Errorf("%v by %s (facts %+v): got %s, want %s", c.op, name, c.facts, got, want)
			}
		}
	}
}

func TestDecideUnknownOp(t *testing.T) {
	if _, err := Decide(Op(99), Facts{Actor: actors["owner"]}); !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("unknown op: %v", err)
	}
}

func TestMode(t *testing.T) {
	if Default != 6 || Admin != 1 || Send != 2 || Recv != 4 {
		t.Fatal("mode bits differ from docs/api.md")
	}
	for m := Mode(0); m < 8; m++ {
		if !m.Valid() {
			t.Errorf("%d invalid", m)
		}
	}
	if Mode(8).Valid() || Mode(255).Valid() {
		t.Error("mode outside the mask accepted")
	}
	if s := (Admin | Recv).String(); s != "admin+recv" {
		t.Errorf("String: %q", s)
	}
	if s := Mode(0).String(); s != "none" {
		t.Errorf("String: %q", s)
	}
}

func TestGate(t *testing.T) {
	var g Gate
	if g.CanSend() || g.CanRecv() || g.Load() != 0 {
		t.Fatal("zero gate not closed")
	}
	g.Store(Recv)
	if g.CanSend() || !g.CanRecv() {
		t.Fatal("recv-only gate")
	}
	g.Store(Default)
	if !g.CanSend() || !g.CanRecv() || g.Load() != Default {
		t.Fatal("default gate")
	}
	if n := testing.AllocsPerRun(100, func() { _ = g.CanSend() && g.CanRecv() }); n != 0 {
		t.Fatalf("gate reads allocate: %v", n)
	}
}
