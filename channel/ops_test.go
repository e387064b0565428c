package channel

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"

	"github.com/callcore/callcore/permission"
)

func eq(t *testing.T, what string, got, want []string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Errorf("%s:\n got  %q\n want %q", what, got, want)
	}
}

func TestCreate(t *testing.T) {
	h := newHarness(t, Config{CanCreate: func(u string) bool { return u != "guest" }},
		CreateOptions{Tracks: []TrackInfo{mic}, Users: []string{"bob", "own"}, Config: CallConfig{MaxUsers: 3}})
	evs, _ := h.drain("own")
	eq(t, "owner events", types(evs), []string{"1:cnl:create", "2:track:add:own/mic"})
	if evs[0].Sender != "own" || evs[0].Config != (CallConfig{Kind: AudioVideo, MaxUsers: 3, DefaultPermission: 6}) {
		t.Errorf("cnl:create payload %+v", evs[0])
	}
	eq(t, "newcall", h.notes.take(), []string{"room own bob"})
	eq(t, "media", h.rec.take(), []string{"TrackAdded room own mic audio none"})
	if _, _, err := h.r.Create("guest", "other", CreateOptions{}); !errors.Is(err, ErrUnauthorized) {
		t.Errorf("policy: %v", err)
	}
	if _, _, err := h.r.Create("bob", "room", CreateOptions{}); !errors.Is(err, ErrExists) {
		t.Errorf("exists: %v", err)
	}
	if _, _, err := h.r.Create("bob", "x", CreateOptions{Tracks: []TrackInfo{cam}, Config: CallConfig{Kind: Audio}}); !errors.Is(err, ErrKindNotAllowed) {
		t.Errorf("kind: %v", err)
	}
	if h.r.Len() != 1 {
		t.Errorf("refused creates left channels: %d", h.r.Len())
	}
	if c, err := h.r.Get("room"); c != h.c || err != nil {
		t.Errorf("Get: %v", err)
	}
	if _, err := h.r.Get("nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get unknown: %v", err)
	}
	// bob was named at creation: a member even with joinRequest on.
	h.must(h.c.Configure("own", CallConfig{JoinRequest: true, MaxUsers: 2}))
	h.join("bob")
	if _, err := h.c.Join(context.Background(), "own", nil); !errors.Is(err, ErrExists) {
		t.Errorf("owner joins twice: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := h.c.Join(ctx, "carl", nil); !errors.Is(err, context.Canceled) {
		t.Errorf("outsider's join request: %v", err)
	}
}

func TestJoinAndLeave(t *testing.T) {
	h := newHarness(t, Config{}, CreateOptions{Config: CallConfig{MaxUsers: 2, DefaultPermission: permission.Recv}})
	h.drain("own")
	h.join("ann", mic, cam)
	evs, _ := h.drain("ann")
	want := []string{"2:user:join:ann", "3:track:add:ann/mic", "4:track:add:ann/cam"}
	eq(t, "joiner's events", types(evs), want)
	evs, _ = h.drain("own")
	eq(t, "owner's events", types(evs), want)
	if !evs[2].Track.Muted || evs[2].Track.State != MuteAdmin || evs[2].Track.Reason != ReasonSendRevoked || len(evs[2].Tracks) != 2 {
		t.Errorf("track:add of a user without send: %+v", evs[2])
	}
	eq(t, "media", h.rec.take(), []string{"TrackAdded room ann mic audio admin", "TrackAdded room ann cam video admin"})
	g := h.c.Gate("ann")
	if g.CanSend() || !g.CanRecv() {
		t.Errorf("gate %v", g.Load())
	}
	if _, err := h.c.Join(context.Background(), "bob", nil); !errors.Is(err, ErrFull) {
		t.Errorf("full: %v", err)
	}
	h.must(h.c.Leave("ann"))
	evs, end := h.drain("ann")
	eq(t, "leaver's last event", types(evs), []string{"5:user:left:ann"})
	if !errors.Is(end, ErrLeft) {
		t.Errorf("leaver's end: %v", end)
	}
	if g.Load() != 0 || h.c.Gate("ann") != g {
		t.Error("gate not closed, or replaced")
	}
	eq(t, "media", h.rec.take(), []string{"UserGone room ann"})
	h.must(h.c.Leave("ann")) // not active: no-op
	if s, _ := h.c.GetUsers("own"); s.Seq != 5 {
		t.Errorf("second leave emitted: seq %d", s.Seq)
	}
	// The owner may leave and rejoin; ownership does not move.
	h.must(h.c.Leave("own"))
	h.join("own")
	if err := h.c.Delete("own", ""); err != nil {
		t.Errorf("owner after rejoin: %v", err)
	}
}

func TestDelete(t *testing.T) {
	h := newHarness(t, Config{}, CreateOptions{Tracks: []TrackInfo{mic}})
	h.join("ann", cam)
	h.rec.take()
	h.drain("ann")
	h.must(h.c.Delete("own", "done"))
	evs, end := h.drain("ann")
	if len(evs) != 1 || evs[0].Type != EventDelete || evs[0].Sender != "own" || evs[0].Reason != "done" || !errors.Is(end, ErrClosed) {
		t.Errorf("ann saw %v, end %v", types(evs), end)
	}
	calls := h.rec.take()
	slices.Sort(calls)
	eq(t, "media", calls, []string{"UserGone room ann", "UserGone room own"})
	if h.r.Len() != 0 {
		t.Error("registry kept the deleted channel")
	}
	for _, err := range []error{h.c.Delete("own", ""), h.c.Leave("ann"), h.c.AddUsers("own", []string{"x"})} {
		if !errors.Is(err, ErrClosed) {
			t.Errorf("after delete: %v", err)
		}
	}
	if _, err := h.c.Join(context.Background(), "ann", nil); !errors.Is(err, ErrClosed) {
		t.Errorf("join after delete: %v", err)
	}
	if _, _, err := h.r.Create("own", "room", CreateOptions{}); err != nil {
		t.Errorf("recreate after delete: %v", err)
	}
}

func TestAddAndDelUsers(t *testing.T) {
	h := newHarness(t, Config{}, CreateOptions{})
	h.join("ann", mic)
	h.must(h.c.AddUsers("own", []string{"bob", "ann", "cid"}))
	evs, _ := h.drain("own")
	eq(t, "add", types(evs[len(evs)-1:]), []string{"4:user:add:bob=6:cid=6"})
	eq(t, "newcall to those not in the call", h.notes.take(), []string{"room own bob", "room own cid"})
	h.must(h.c.AddUsers("own", []string{"bob"})) // already a member
	h.rec.take()
	h.must(h.c.DelUsers("own", []string{"ann", "bob", "dan"}))
	evs, end := h.drain("ann")
	eq(t, "removed active user", types(evs), []string{"2:user:join:ann", "3:track:add:ann/mic", "4:user:add:bob=6:cid=6", "5:user:del:ann=0:bob=0:dan=0"})
	if !errors.Is(end, ErrNotMember) {
		t.Errorf("end %v", end)
	}
	eq(t, "media", h.rec.take(), []string{"UserGone room ann"})
	h.must(h.c.DelUsers("own", []string{"dan"})) // no-op
	for _, u := range []string{"ann", "bob", "dan"} {
		if _, err := h.c.Join(context.Background(), u, nil); !errors.Is(err, ErrNotMember) {
			t.Errorf("removed %s joins: %v", u, err)
		}
	}
	h.must(h.c.AddUsers("own", []string{"ann"}))
	h.join("ann")
	if s, _ := h.c.GetUsers("own"); s.Seq != 7 {
		t.Errorf("seq %d after no-ops", s.Seq)
	}
}

func TestModUsers(t *testing.T) {
	h := newHarness(t, Config{}, CreateOptions{})
	h.join("ann", mic, cam)
	h.join("bob")
	h.rec.take()
	h.drain("own")
	h.must(h.c.ModUsers("own", []UserMode{{"ann", permission.Recv}, {"bob", permission.Default}}))
	evs, _ := h.drain("own")
	eq(t, "clear send", types(evs), []string{"6:user:mod:ann=4",
		"7:track:mute:ann/mic=admin,own,send permission revoked", "8:track:mute:ann/cam=admin,own,send permission revoked"})
	eq(t, "media", h.rec.take(), []string{"MuteChanged room ann mic admin", "MuteChanged room ann cam admin"})
	if h.c.Gate("ann").CanSend() {
		t.Error("gate still sends")
	}
	h.must(h.c.ModUsers("own", []UserMode{{"ann", permission.Send}}))
	eq(t, "clear recv, set send", h.rec.take(), []string{"ReceiveChanged room ann false", "MuteChanged room ann mic none", "MuteChanged room ann cam none"})
	if g := h.c.Gate("ann"); !g.CanSend() || g.CanRecv() {
		t.Error("gate")
	}
	h.must(h.c.ModUsers("own", []UserMode{{"ann", permission.Default}}))
	eq(t, "resume", h.rec.take(), []string{"ReceiveChanged room ann true"})
	// The owner may re-moderate itself, but keeps the admin bit.
	h.must(h.c.ModUsers("own", []UserMode{{"own", permission.Recv}}))
	evs, _ = h.drain("own")
	if last := evs[len(evs)-1]; last.Users[0].Mode != permission.Admin|permission.Recv {
		t.Errorf("owner's mode %v", last.Users[0].Mode)
	}
	// Setting admin lets a member moderate.
	if err := h.c.AddUsers("bob", []string{"x"}); !errors.Is(err, ErrUnauthorized) {
		t.Error(err)
	}
	h.must(h.c.ModUsers("own", []UserMode{{"bob", permission.All}}))
	h.must(h.c.AddUsers("bob", []string{"x"}))
	seq := h.seq()
	h.must(h.c.ModUsers("bob", []UserMode{{"ann", permission.Default}})) // holds
	if h.seq() != seq {
		t.Error("no-op modUsers emitted")
	}
}

func (h *harness) seq() uint64 {
	s, err := h.c.GetUsers("own")
	h.must(err)
	return s.Seq
}

func TestGetUsers(t *testing.T) {
	h := newHarness(t, Config{}, CreateOptions{Tracks: []TrackInfo{mic}})
	h.join("bob", cam)
	h.join("ann")
	h.must(h.c.AddUsers("own", []string{"zed"}))
	h.must(h.c.MuteUser("own", "bob", Video, Mute, "flashing"))
	s, err := h.c.GetUsers("ann")
	h.must(err)
	want := []ActiveUser{
		{ID: "ann", Mode: 6, Tracks: []TrackState{}},
		{ID: "bob", Mode: 6, Tracks: []TrackState{{Name: "cam", Kind: Video, Muted: true, State: MuteAdmin, MutedBy: "own", Reason: "flashing"}}},
		{ID: "own", Mode: 7, Tracks: []TrackState{{Name: "mic", Kind: Audio}}},
	}
	if s.Seq != 7 || !slices.EqualFunc(s.Users, want, func(a, b ActiveUser) bool {
		return a.ID == b.ID && a.Mode == b.Mode && slices.Equal(a.Tracks, b.Tracks)
	}) {
		t.Errorf("getUsers = %+v", s)
	}
}

func TestConfigureKind(t *testing.T) {
	h := newHarness(t, Config{}, CreateOptions{Tracks: []TrackInfo{mic, cam}})
	h.join("adm", cam)
	h.must(h.c.ModUsers("own", []UserMode{{"adm", permission.All}}))
	h.must(h.c.MuteTracks("adm", []string{"cam"}, Mute))
	h.rec.take()
	h.drain("own")
	h.must(h.c.Configure("adm", CallConfig{Kind: Audio}))
	evs, _ := h.drain("own")
	eq(t, "narrow", types(evs), []string{"8:cnl:config", "9:track:mute:adm/cam=admin,adm,kind not allowed", "10:track:mute:own/cam=admin,adm,kind not allowed"})
	eq(t, "media", h.rec.take(), []string{"MuteChanged room adm cam admin", "MuteChanged room own cam admin"})
	if err := h.c.AddTracks("own", []TrackInfo{{"cam2", Video}}); !errors.Is(err, ErrKindNotAllowed) {
		t.Errorf("new video track: %v", err)
	}
	if err := h.c.MuteTracks("own", []string{"cam"}, Unmute); !errors.Is(err, ErrUnauthorized) {
		t.Errorf("unmute a kind-muted track: %v", err)
	}
	h.must(h.c.Configure("own", CallConfig{Kind: Audio})) // holds
	h.must(h.c.Configure("own", CallConfig{}))
	evs, _ = h.drain("own")
	eq(t, "widen", types(evs), []string{"11:cnl:config", "12:track:mute:adm/cam=self,,", "13:track:mute:own/cam=none,,"})
}

func TestTracks(t *testing.T) {
	h := newHarness(t, Config{}, CreateOptions{Tracks: []TrackInfo{mic}})
	if err := h.c.AddTracks("own", []TrackInfo{mic}); !errors.Is(err, ErrExists) {
		t.Errorf("duplicate name: %v", err)
	}
	if err := h.c.RemoveTracks("own", []string{"mic", "nope"}); !errors.Is(err, ErrNotFound) {
		t.Errorf("remove unknown: %v", err)
	}
	if err := h.c.MuteTracks("own", []string{"nope"}, Mute); !errors.Is(err, ErrNotFound) {
		t.Errorf("mute unknown: %v", err)
	}
	h.must(h.c.AddTracks("own", []TrackInfo{cam}))
	h.must(h.c.MuteTracks("own", []string{"mic", "cam"}, Mute))
	h.must(h.c.MuteTracks("own", []string{"mic"}, Mute)) // holds
	h.must(h.c.RemoveTracks("own", []string{"mic"}))
	evs, _ := h.drain("own")
	eq(t, "events", types(evs), []string{"1:cnl:create", "2:track:add:own/mic", "3:track:add:own/cam",
		"4:track:mute:own/mic=self,,", "5:track:mute:own/cam=self,,", "6:track:del:own/mic"})
	eq(t, "media", h.rec.take(), []string{"TrackAdded room own mic audio none", "TrackAdded room own cam video none",
		"MuteChanged room own mic self", "MuteChanged room own cam self", "TrackRemoved room own mic"})
	many := make([]TrackInfo, MaxTracksPerUser)
	for i := range many {
		many[i] = TrackInfo{Name: string(rune('a' + i)), Kind: Audio}
	}
	if err := h.c.AddTracks("own", many); !errors.Is(err, ErrInvalid) {
		t.Errorf("too many tracks: %v", err)
	}
}

// TestLayersOfMuting: self mute, muteUser, the send bit and the kind are
// independent sources; the effective state follows the precedence of docs/api.md.
func TestLayersOfMuting(t *testing.T) {
	h := newHarness(t, Config{}, CreateOptions{})
	h.join("adm")
	h.must(h.c.ModUsers("own", []UserMode{{"adm", permission.All}}))
	h.join("ann", cam, mic)
	state := func() MuteState { s, _ := h.rec.muteOf("room", "ann", "cam"); return s }
	steps := []struct {
		name string
		do   func() error
		want MuteState
	}{
		{"self mute", func() error { return h.c.MuteTracks("ann", []string{"cam"}, Mute) }, MuteSelf},
		{"admin mute", func() error { return h.c.MuteUser("adm", "ann", Video, Mute, "r") }, MuteAdmin},
		{"clear send", func() error { return h.c.ModUsers("own", []UserMode{{"ann", permission.Recv}}) }, MuteAdmin},
		{"narrow kind", func() error { return h.c.Configure("own", CallConfig{Kind: Audio}) }, MuteAdmin},
		{"another admin lifts muteUser", func() error { return h.c.MuteUser("own", "ann", Video, Unmute, "") }, MuteAdmin},
		{"set send", func() error { return h.c.ModUsers("adm", []UserMode{{"ann", permission.Default}}) }, MuteAdmin},
		{"widen kind", func() error { return h.c.Configure("adm", CallConfig{}) }, MuteSelf},
		{"self unmute", func() error { return h.c.MuteTracks("ann", []string{"cam"}, Unmute) }, MuteNone},
	}
	for _, s := range steps {
		if err := s.do(); err != nil || state() != s.want {
			t.Errorf("%s: err %v, state %v, want %v", s.name, err, state(), s.want)
		}
	}
	// The muted user cannot lift an admin mute by itself; a new track of
	// a muted kind starts muted.
	h.must(h.c.MuteUser("adm", "ann", Audio, Mute, "echo"))
	if err := h.c.MuteTracks("ann", []string{"mic"}, Unmute); !errors.Is(err, ErrUnauthorized) {
		t.Errorf("self unmute of an admin mute: %v", err)
	}
	if err := h.c.MuteUser("ann", "ann", Audio, Unmute, ""); !errors.Is(err, ErrUnauthorized) {
		t.Errorf("muteUser by the muted user: %v", err)
	}
	h.must(h.c.AddTracks("ann", []TrackInfo{{"mic2", Audio}}))
	if s, _ := h.rec.muteOf("room", "ann", "mic2"); s != MuteAdmin {
		t.Errorf("new track of a muted kind: %v", s)
	}
	// The kind mute lasts across leave and join.
	h.must(h.c.Leave("ann"))
	h.join("ann", TrackInfo{"mic", Audio})
	if s, _ := h.rec.muteOf("room", "ann", "mic"); s != MuteAdmin {
		t.Errorf("after rejoin: %v", s)
	}
}

// TestUpdateConfig: admins updating different fields at once all see
// their change hold; an invalid field is refused before anything changes.
func TestUpdateConfig(t *testing.T) {
	reg, err := NewRegistry(Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	ch, _, err := reg.Create("owner", "c", CreateOptions{Config: CallConfig{MaxUsers: 9}})
	if err != nil {
		t.Fatal(err)
	}
	if err := ch.AddUsers("owner", []string{"a", "b"}); err != nil {
		t.Fatal(err)
	}
	all := permission.Admin | permission.Send | permission.Recv
	if err := ch.ModUsers("owner", []UserMode{{ID: "a", Mode: all}, {ID: "b", Mode: all}}); err != nil {
		t.Fatal(err)
	}
	for range 50 {
		var wg sync.WaitGroup
		kind, join := Audio, true
		wg.Go(func() { _ = ch.UpdateConfig("a", ConfigPatch{Kind: &kind}) })
		wg.Go(func() { _ = ch.UpdateConfig("b", ConfigPatch{JoinRequest: &join}) })
		wg.Wait()
		if got := ch.Config(); got.Kind != Audio || !got.JoinRequest || got.MaxUsers != 9 {
			t.Fatalf("after both updates: %+v", got)
		}
		back, no := AudioVideo, false
		if err := ch.UpdateConfig("owner", ConfigPatch{Kind: &back, JoinRequest: &no}); err != nil {
			t.Fatal(err)
		}
	}
	bad := -1
	if err := ch.UpdateConfig("owner", ConfigPatch{MaxUsers: &bad}); !errors.Is(err, ErrInvalid) {
		t.Errorf("maxUsers -1: %v", err)
	}
	if err := ch.UpdateConfig("stranger", ConfigPatch{}); !errors.Is(err, ErrUnauthorized) && !errors.Is(err, ErrNotMember) {
		t.Errorf("a stranger: %v", err)
	}
	if got := ch.Config(); got.MaxUsers != 9 {
		t.Errorf("refused updates changed the config: %+v", got)
	}
}
