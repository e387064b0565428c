package channel

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/callcore/callcore/permission"
)

var sentinels = []struct {
	err  error
	name string
}{
	{ErrUnauthorized, "UnAuthorized"}, {ErrExists, "Exists"}, {ErrNotFound, "NotFound"}, {ErrNotMember, "NotMember"},
	{ErrFull, "Full"}, {ErrKindNotAllowed, "KindNotAllowed"}, {ErrInvalid, "Invalid"}, {ErrClosed, "Closed"},
	{ErrLeft, "Left"}, {ErrSlowConsumer, "SlowConsumer"},
}

// class names the sentinel err wraps ("ok" for nil).
func class(err error) string {
	if err == nil {
		return "ok"
	}
	for _, s := range sentinels {
		if errors.Is(err, s.err) {
			return s.name
		}
	}
	return "other: " + err.Error()
}

var cam = TrackInfo{Name: "cam", Kind: Video}
var mic = TrackInfo{Name: "mic", Kind: Audio}

// rolesHarness: own (owner), adm (admin), mem and tgt (members), each active
// with a "cam"; ina (a member who left), out (an outsider), rem (removed).
func rolesHarness(t testing.TB) *harness {
	h := newHarness(t, Config{}, CreateOptions{Tracks: []TrackInfo{cam}})
	for _, u := range []string{"adm", "mem", "tgt", "ina", "rem"} {
		h.join(u, cam)
	}
	h.must(h.c.ModUsers("own", []UserMode{{"adm", permission.All}}))
	h.must(h.c.Leave("ina"))
	h.must(h.c.DelUsers("own", []string{"rem"}))
	return h
}

var roleNames = []string{"own", "adm", "mem", "ina", "out", "rem"}

// TestOperationsByRole runs every operation of the table in docs/api.md as each
// role, on a fresh channel, and checks the refusal and that a refusal
// changed nothing (no event, no Media call).
func TestOperationsByRole(t *testing.T) {
	ctx := context.Background()
	admins := "ok ok UnAuthorized UnAuthorized UnAuthorized UnAuthorized"
	active := "ok ok ok NotMember NotMember NotMember"
	ops := []struct {
		name string
		do   func(c *Channel, a string) error
		want string // by role, in roleNames order
	}{
		{"join", func(c *Channel, a string) error { _, err := c.Join(ctx, a, nil); return err },
			"Exists Exists Exists ok ok NotMember"},
		{"leave", func(c *Channel, a string) error { return c.Leave(a) }, "ok ok ok ok ok ok"},
		{"delete", func(c *Channel, a string) error { return c.Delete(a, "bye") },
			"ok UnAuthorized UnAuthorized UnAuthorized UnAuthorized UnAuthorized"},
		{"addUsers", func(c *Channel, a string) error { return c.AddUsers(a, []string{"new"}) }, admins},
		{"delUsers", func(c *Channel, a string) error { return c.DelUsers(a, []string{"tgt"}) }, admins},
		{"delUsers(owner)", func(c *Channel, a string) error { return c.DelUsers(a, []string{"own"}) },
			"UnAuthorized UnAuthorized UnAuthorized UnAuthorized UnAuthorized UnAuthorized"},
		{"modUsers", func(c *Channel, a string) error { return c.ModUsers(a, []UserMode{{"tgt", permission.Recv}}) }, admins},
		{"modUsers(owner)", func(c *Channel, a string) error {
			return c.ModUsers(a, []UserMode{{"own", permission.Admin | permission.Recv}})
		}, "ok UnAuthorized UnAuthorized UnAuthorized UnAuthorized UnAuthorized"},
		{"modUsers(outsider)", func(c *Channel, a string) error { return c.ModUsers(a, []UserMode{{"out", permission.Recv}}) },
			"NotMember NotMember UnAuthorized UnAuthorized UnAuthorized UnAuthorized"},
		{"getUsers", func(c *Channel, a string) error { _, err := c.GetUsers(a); return err }, active},
		{"configure", func(c *Channel, a string) error { return c.Configure(a, CallConfig{Kind: Audio}) }, admins},
		{"addTracks", func(c *Channel, a string) error { return c.AddTracks(a, []TrackInfo{mic}) }, active},
		{"removeTracks", func(c *Channel, a string) error { return c.RemoveTracks(a, []string{"cam"}) }, active},
		{"muteTracks", func(c *Channel, a string) error { return c.MuteTracks(a, []string{"cam"}, Mute) }, active},
		{"muteUser", func(c *Channel, a string) error { return c.MuteUser(a, "tgt", Video, Mute, "noise") }, admins},
		{"muteUser(owner)", func(c *Channel, a string) error { return c.MuteUser(a, "own", Video, Mute, "") },
			"ok UnAuthorized UnAuthorized UnAuthorized UnAuthorized UnAuthorized"},
		{"muteUser(removed)", func(c *Channel, a string) error { return c.MuteUser(a, "rem", Video, Mute, "") },
			"NotMember NotMember UnAuthorized UnAuthorized UnAuthorized UnAuthorized"},
	}
	for _, op := range ops {
		want := strings.Fields(op.want)
		for i, role := range roleNames {
			h := rolesHarness(t)
			before, _ := h.c.GetUsers("own")
			h.rec.take()
			got := class(op.do(h.c, role))
			if got != want[i] {
				t.Errorf("%s by %s: got %s, want %s", op.name, role, got, want[i])
			}
			if got == "ok" {
				continue
			}
			after, _ := h.c.GetUsers("own")
			if after.Seq != before.Seq {
				t.Errorf("%s by %s refused but emitted events (seq %d -> %d)", op.name, role, before.Seq, after.Seq)
			}
			if calls := h.rec.take(); len(calls) > 0 {
				t.Errorf("%s by %s refused but called Media: %v", op.name, role, calls)
			}
		}
	}
}

// TestBadInput: bad arguments are refused with ErrInvalid before anything
// else, and change nothing.
func TestBadInput(t *testing.T) {
	ctx := context.Background()
	long := strings.Repeat("x", MaxIDLen+1)
	max := strings.Repeat("x", MaxIDLen)
	h := rolesHarness(t)
	cases := []struct {
		name string
		err  error
	}{
		{"empty actor", h.c.Leave("")},
		{"long actor", h.c.AddUsers(long, []string{"a"})},
		{"empty ids", h.c.AddUsers("own", nil)},
		{"long id", h.c.AddUsers("own", []string{long})},
		{"dup ids", h.c.DelUsers("own", []string{"a", "a"})},
		{"mode outside mask", h.c.ModUsers("own", []UserMode{{"mem", 8}})},
		{"dup mod", h.c.ModUsers("own", []UserMode{{"mem", 2}, {"mem", 4}})},
		{"unknown kind", h.c.AddTracks("mem", []TrackInfo{{"x", Kind(7)}})},
		{"kind set as track", h.c.AddTracks("mem", []TrackInfo{{"x", AudioVideo}})},
		{"empty track name", h.c.AddTracks("mem", []TrackInfo{{"", Audio}})},
		{"long track name", h.c.AddTracks("mem", []TrackInfo{{long, Audio}})},
		{"dup track names", h.c.AddTracks("mem", []TrackInfo{mic, mic})},
		{"no tracks", h.c.AddTracks("mem", nil)},
		{"dup names", h.c.MuteTracks("mem", []string{"cam", "cam"}, Mute)},
		{"muteUser kind", h.c.MuteUser("own", "mem", AudioVideo, Mute, "")},
		{"long reason", h.c.MuteUser("own", "mem", Audio, Mute, strings.Repeat("r", MaxReasonLen+1))},
		{"config kind", h.c.Configure("own", CallConfig{Kind: 4})},
		{"config mode", h.c.Configure("own", CallConfig{DefaultPermission: 9})},
		{"config maxUsers", h.c.Configure("own", CallConfig{MaxUsers: -1})},
		{"delete reason", h.c.Delete("own", strings.Repeat("r", MaxReasonLen+1))},
	}
	_, err := h.c.Join(ctx, long, nil)
	cases = append(cases, struct {
		name string
		err  error
	}{"join long", err})
	_, _, err = h.r.Create("own", "", CreateOptions{})
	cases = append(cases, struct {
		name string
		err  error
	}{"create empty id", err})
	for _, c := range cases {
		if !errors.Is(c.err, ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", c.name, c.err)
		}
	}
	if s, _ := h.c.GetUsers("own"); s.Seq != 15 {
		t.Errorf("bad input emitted events: seq %d", s.Seq)
	}
	if _, err := h.c.Join(ctx, max, nil); err != nil {
		t.Errorf("join with a %d-byte id: %v", MaxIDLen, err)
	}
	if err := h.c.AddTracks(max, []TrackInfo{{max, Audio}}); err != nil {
		t.Errorf("track with a %d-byte name: %v", MaxIDLen, err)
	}
}

// TestActingForSomeoneElse: an operation acts as its actor only; reaching
// another user's tracks or membership needs the admin rights for it.
func TestActingForSomeoneElse(t *testing.T) {
	h := newHarness(t, Config{}, CreateOptions{})
	h.join("ann", TrackInfo{"screen", Video})
	h.join("bob")
	seq := h.seq()
	h.rec.take()
	for name, err := range map[string]error{
		"removeTracks of ann's track": h.c.RemoveTracks("bob", []string{"screen"}),
		"muteTracks of ann's track":   h.c.MuteTracks("bob", []string{"screen"}, Mute),
		"muteUser":                    h.c.MuteUser("bob", "ann", Video, Mute, ""),
		"modUsers":                    h.c.ModUsers("bob", []UserMode{{"ann", 0}}),
		"delUsers":                    h.c.DelUsers("bob", []string{"ann"}),
		"delete":                      h.c.Delete("bob", ""),
	} {
		want := ErrUnauthorized
		if strings.HasSuffix(name, "track") {
			want = ErrNotFound
		}
		if !errors.Is(err, want) {
			t.Errorf("%s: %v, want %v", name, err, want)
		}
	}
	if h.seq() != seq || len(h.rec.take()) != 0 {
		t.Error("refusals changed something")
	}
}
