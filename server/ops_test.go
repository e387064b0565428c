package server

import (
	"encoding/json"
	"slices"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func track(name, kind string) trackData {
	return trackData{Name: name, Kind: kind, TrackID: name + "-id"}
}

// users decodes a users list of an event or result.
func users[T any](t *testing.T, raw any) []T {
	t.Helper()
	b, _ := raw.(json.RawMessage)
	var out []T
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("users %s: %v", b, err)
	}
	return out
}

// TestOperations runs every operation of the call API over the protocol,
// with the refusals of docs/api.md and the events each one emits.
func TestOperations(t *testing.T) {
	leaks := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, leaks) })
	ts := newTestServer(t, nil)
	alice := login(t, ts, "alice", true)
	bob := login(t, ts, "bob", false)

	bob.want("UnAuthorized", "create", createData{ChannelID: "c"})
	bob.want("NotMember", "getUsers", nil) // in no channel
	bob.want("NotFound", "join", joinData{ChannelID: "c"})
	var res stayResult
	if err := json.Unmarshal(alice.must("create", createData{
		ChannelID: "c", Tracks: []trackData{track("mic", "audio")},
		Config: &configData{Kind: "audioVideo", MaxUsers: 3},
	}), &res); err != nil {
		t.Fatal(err)
	}
	if !res.Status || res.ChannelID != "c" || res.Owner != "alice" || len(res.Users) != 1 || res.Users[0].ID != "alice" || res.Config.MaxUsers != 3 {
		t.Fatalf("create's result: %+v", res)
	}
	alice.event("cnl:create", func(e eventData) bool { return e.SenderID == "alice" && e.Config != nil && e.Config.MaxUsers == 3 })
	alice.want("Exists", "create", createData{ChannelID: "d"}) // one channel at a time
	alice.want("Exists", "join", joinData{ChannelID: "c"})

	bob.must("join", joinData{ChannelID: "c", Tracks: []trackData{track("cam", "video")}})
	alice.event("user:join", func(e eventData) bool { return e.UserID == "bob" })
	add := alice.event("track:add", func(e eventData) bool { return e.UserID == "bob" && e.TrackName == "cam" })
	if add.Track == nil || add.Track.Kind != "video" || add.Track.Muted || len(add.Tracks) != 1 {
		t.Errorf("track:add: %+v", add)
	}
	var snap usersResult
	if err := json.Unmarshal(bob.must("getUsers", nil), &snap); err != nil {
		t.Fatal(err)
	}
	if len(snap.Users) != 2 || snap.Seq == 0 {
		t.Fatalf("getUsers: %+v", snap)
	}

	// Tracks: add, remove, self mute.
	bob.want("Invalid", "addTracks", tracksData{Tracks: []trackData{{Name: "x", Kind: "smell", TrackID: "x"}}})
	bob.want("Invalid", "addTracks", tracksData{Tracks: []trackData{{Name: "x", Kind: "audio"}}}) // no trackId
	bob.want("Invalid", "addTracks", tracksData{Tracks: []trackData{{Name: "my cam", Kind: "video", TrackID: "x"}}})
	bob.want("Exists", "addTracks", tracksData{Tracks: []trackData{track("cam", "video")}})
	bob.must("addTracks", tracksData{Tracks: []trackData{track("mic", "audio")}})
	alice.event("track:add", func(e eventData) bool { return e.UserID == "bob" && e.TrackName == "mic" })
	bob.must("removeTracks", namesData{Names: []string{"mic"}})
	alice.event("track:del", func(e eventData) bool { return e.UserID == "bob" && e.TrackName == "mic" })
	bob.want("NotFound", "removeTracks", namesData{Names: []string{"mic"}})
	on, off := true, false
	bob.must("muteTracks", muteTracksData{Names: []string{"cam"}, State: &on})
	m := alice.event("track:mute", func(e eventData) bool { return e.UserID == "bob" })
	if m.Value == nil || !*m.Value || m.MutedBy != "" {
		t.Errorf("self mute's track:mute: %+v", m)
	}
	bob.must("muteTracks", muteTracksData{Names: []string{"cam"}, State: &off})
	alice.event("track:mute", func(e eventData) bool { return e.UserID == "bob" && !*e.Value })

	// Moderation.
	bob.want("UnAuthorized", "muteUser", muteUserData{UserID: "alice", Kind: "audio", State: &on})
	alice.must("muteUser", muteUserData{UserID: "bob", Kind: "video", State: &on, Reason: "noise"})
	m = bob.event("track:mute", func(e eventData) bool { return e.UserID == "bob" && e.MutedBy != "" })
	if !*m.Value || m.MutedBy != "alice" || m.MuteReason != "noise" {
		t.Errorf("admin mute's track:mute: %+v", m)
	}
	bob.want("UnAuthorized", "muteTracks", muteTracksData{Names: []string{"cam"}, State: &off})
	alice.must("muteUser", muteUserData{UserID: "bob", Kind: "video", State: &off})
	bob.want("UnAuthorized", "modUsers", modUsersData{Users: []userModeData{{ID: "bob", Mode: 7}}})
	alice.want("Invalid", "modUsers", modUsersData{Users: []userModeData{{ID: "bob", Mode: 300}}})
	alice.must("modUsers", modUsersData{Users: []userModeData{{ID: "bob", Mode: 4}}})
	mod := bob.event("user:mod", nil)
	if us := users[userModeData](t, mod.Users); len(us) != 1 || us[0] != (userModeData{ID: "bob", Mode: 4}) || mod.SenderID != "alice" {
		t.Errorf("user:mod: %+v", mod)
	}
	cfg := func(c map[string]any) map[string]any { return map[string]any{"config": c} }
	bob.want("UnAuthorized", "configure", cfg(map[string]any{"kind": "audio"}))
	alice.want("Invalid", "configure", cfg(map[string]any{"kind": "smell"}))
	alice.want("Invalid", "configure", cfg(map[string]any{"maxUsers": -1}))
	alice.want("Invalid", "configure", cfg(map[string]any{"colour": "red"}))
	alice.must("configure", cfg(map[string]any{"kind": "audio"})) // an update: maxUsers stays 3
	bob.event("cnl:config", func(e eventData) bool { return e.Config != nil && e.Config.Kind == "audio" && e.Config.MaxUsers == 3 })
	bob.want("KindNotAllowed", "addTracks", tracksData{Tracks: []trackData{track("cam2", "video")}})

	// delUsers disconnects bob, who cannot join again until added.
	alice.must("delUsers", usersData{Users: []string{"bob"}})
	del := bob.event("user:del", nil)
	if ids := users[string](t, del.Users); !slices.Equal(ids, []string{"bob"}) || del.SenderID != "alice" {
		t.Errorf("user:del: %+v", del)
	}
	bob.want("NotMember", "getUsers", nil)
	bob.want("NotMember", "join", joinData{ChannelID: "c"})
	alice.must("addUsers", usersData{Users: []string{"bob"}})
	var nc newcallPush
	if err := json.Unmarshal(bob.pushOf("newcall"), &nc); err != nil || nc != (newcallPush{ChannelID: "c", SenderID: "alice"}) {
		t.Errorf("newcall push: %+v (%v)", nc, err)
	}
	bob.must("join", joinData{ChannelID: "c"})

	// leave and join again; then delete.
	bob.must("leave", nil)
	alice.event("user:left", func(e eventData) bool { return e.UserID == "bob" })
	bob.want("NotMember", "leave", nil)
	bob.must("join", joinData{ChannelID: "c"})
	bob.want("UnAuthorized", "delete", reasonData{Reason: "mine now"})
	alice.must("delete", reasonData{Reason: "done"})
	d := bob.event("cnl:delete", nil)
	if d.SenderID != "alice" || d.Reason == nil || *d.Reason != "done" {
		t.Errorf("cnl:delete: %+v", d)
	}
	bob.want("NotMember", "getUsers", nil)
	bob.want("NotFound", "join", joinData{ChannelID: "c"})
	if st := ts.Stats(); st.Sessions != 2 || st.AuthFailures != 0 {
		t.Errorf("stats: %+v", st)
	}
}

// TestTakeover: a second connection of the same user joining the channel
// takes the call over; the first gets a bye and is closed.
func TestTakeover(t *testing.T) {
	leaks := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, leaks) })
	ts := newTestServer(t, nil)
	alice := login(t, ts, "alice", true)
	alice.must("create", createData{ChannelID: "c"})
	bob1 := login(t, ts, "bob", false)
	bob1.must("join", joinData{ChannelID: "c"})
	// A join that would be refused for another reason takes nothing over.
	alice.must("configure", map[string]any{"config": map[string]any{"kind": "audio"}})
	bob2 := login(t, ts, "bob", false)
	bob2.want("KindNotAllowed", "join", joinData{ChannelID: "c", Tracks: []trackData{track("cam", "video")}})
	bob1.must("getUsers", nil) // still in the call
	bob2.must("join", joinData{ChannelID: "c"})
	var bye reasonData
	if err := json.Unmarshal(bob1.pushOf("bye"), &bye); err != nil || bye.Reason != "replaced" {
		t.Errorf("bye: %+v %v", bye, err)
	}
	bob1.waitClosed()
	alice.event("user:left", func(e eventData) bool { return e.UserID == "bob" })
	alice.event("user:join", func(e eventData) bool { return e.UserID == "bob" })
	var snap usersResult
	if err := json.Unmarshal(bob2.must("getUsers", nil), &snap); err != nil || len(snap.Users) != 2 {
		t.Errorf("getUsers after the takeover: %+v %v", snap, err)
	}
	if ts.Stats().Takeovers != 1 {
		t.Errorf("takeovers: %d", ts.Stats().Takeovers)
	}
}

// TestJoinRequestWithdrawn: a leave while a join request waits withdraws
// it: the join fails with NotMember, the leave succeeds, the admins' view
// is unchanged.
func TestJoinRequestWithdrawn(t *testing.T) {
	leaks := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, leaks) })
	ts := newTestServer(t, nil)
	alice := login(t, ts, "alice", true)
	alice.must("create", createData{ChannelID: "c", Config: &configData{JoinRequest: true}})
	bob := login(t, ts, "bob", false)
	w := bob.send("join", joinData{ChannelID: "c"})
	alice.event("cnl:req", func(e eventData) bool { return e.UserID == "bob" })
	bob.want("Exists", "join", joinData{ChannelID: "c"}) // one at a time
	bob.must("leave", nil)
	select {
	case r := <-w:
		if r.Error == nil || r.Error.Code != "NotMember" {
			t.Errorf("withdrawn join answered %+v", r)
		}
	case <-time.After(deadline):
		t.Fatal("the withdrawn join was not answered")
	}
	var snap usersResult
	if err := json.Unmarshal(alice.must("getUsers", nil), &snap); err != nil || len(snap.Users) != 1 {
		t.Errorf("after the withdrawal: %+v %v", snap, err)
	}
	// Approving now does not bring bob in.
	alice.must("addUsers", usersData{Users: []string{"bob"}})
	bob.want("NotMember", "getUsers", nil)
}
