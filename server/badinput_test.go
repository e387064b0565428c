package server

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/golang-jwt/jwt/v5"
	"go.uber.org/goleak"
)

// TestBadTokens: every bad token is refused with UnAuthorized and the
// connection closed (4001), counted, and nothing else happens.
func TestBadTokens(t *testing.T) {
	leaks := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, leaks) })
	ts := newTestServer(t, nil)
	sign := func(c jwt.Claims, method jwt.SigningMethod, key any) string {
		s, err := jwt.NewWithClaims(method, c).SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	hour := jwt.NewNumericDate(time.Now().Add(time.Hour))
	good := token(t, "alice", true)
	cases := map[string]string{
		"empty":          "",
		"garbage":        "not.a.token",
		"expired":        sign(Claims{RegisteredClaims: jwt.RegisteredClaims{Subject: "alice", ExpiresAt: jwt.NewNumericDate(time.Now().Add(-time.Hour))}}, jwt.SigningMethodHS256, testSecret),
		"no expiry":      sign(Claims{RegisteredClaims: jwt.RegisteredClaims{Subject: "alice"}}, jwt.SigningMethodHS256, testSecret),
		"no subject":     sign(Claims{RegisteredClaims: jwt.RegisteredClaims{ExpiresAt: hour}}, jwt.SigningMethodHS256, testSecret),
		"other secret":   sign(Claims{RegisteredClaims: jwt.RegisteredClaims{Subject: "alice", ExpiresAt: hour}}, jwt.SigningMethodHS256, []byte("another secret of thirty-two bytes!!")),
		"alg none":       sign(Claims{RegisteredClaims: jwt.RegisteredClaims{Subject: "alice", ExpiresAt: hour}}, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType),
		"HS384":          sign(Claims{RegisteredClaims: jwt.RegisteredClaims{Subject: "alice", ExpiresAt: hour}}, jwt.SigningMethodHS384, testSecret),
		"tampered claim": good[:strings.Index(good, ".")+1] + "eyJzdWIiOiJtYWxsb3J5IiwiZXhwIjo5OTk5OTk5OTk5fQ" + good[strings.LastIndex(good, "."):],
	}
	for name, tok := range cases {
		c := dial(t, ts)
		c.want("UnAuthorized", "auth", authData{Token: tok})
		if got := c.waitClosed(); got != 4001 {
			t.Errorf("%s: closed with %d, want 4001", name, got)
		}
	}
	// A request before auth, and an auth that claims a user besides its token.
	c := dial(t, ts)
	c.want("UnAuthorized", "getUsers", nil)
	c.waitClosed()
	c = dial(t, ts)
	c.want("UnAuthorized", "auth", map[string]any{"token": good, "userId": "bob"})
	c.waitClosed()
	if got, want := ts.Stats().AuthFailures, uint64(len(cases)+2); got != want {
		t.Errorf("auth failures counted %d, want %d", got, want)
	}
	if ts.Registry().Len() != 0 {
		t.Error("a refused connection created a channel")
	}
}

// TestBadMessages: malformed, unknown and oversized messages are refused
// with Invalid (or the connection closed for what cannot be answered),
// counted, and change nothing for the channel or the other users.
func TestBadMessages(t *testing.T) {
	leaks := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, leaks) })
	ts := newTestServer(t, func(c *Config) { c.MaxMessageBytes = 8 << 10 })
	alice := login(t, ts, "alice", true)
	alice.must("create", createData{ChannelID: "c", Tracks: []trackData{track("cam", "video")}})
	before := alice.must("getUsers", nil)

	bob := login(t, ts, "bob", false)
	bob.must("join", joinData{ChannelID: "c"})
	// A token for bob cannot act as alice: there is no field to claim it.
	bob.want("Invalid", "muteTracks", map[string]any{"names": []string{"cam"}, "state": true, "userId": "alice"})
	bob.want("NotFound", "muteTracks", muteTracksData{Names: []string{"cam"}, State: new(true)}) // bob has no cam
	bob.want("Invalid", "join", map[string]any{"channelId": "c", "user": "alice"})
	bob.want("Invalid", "nonsense", nil)
	bob.want("Invalid", "auth", authData{Token: token(t, "alice", true)}) // no second identity
	bob.want("Invalid", "muteTracks", map[string]any{"names": []string{"cam"}})
	bob.want("Invalid", "modUsers", map[string]any{"users": "everyone"})
	bob.want("Invalid", "offer", sdpData{SDP: "v=0 this is not SDP"})
	bob.want("Invalid", "answer", sdpData{SDP: "garbage"})
	bob.raw([]byte(`{"id": 99, "type": "getUsers", "extra": 1}`))
	bob.raw([]byte(`{"type": "getUsers"}`))
	bob.raw([]byte(`{"id": 100, "type": "getUsers"} trailing`))
	bob.raw([]byte(`not json at all`))
	// What a lenient decoder lets through: trailing brackets, a name
	// twice (the last would win), a name in another case, invalid UTF-8.
	bob.raw([]byte(`{"id": 101, "type": "getUsers"}}`))
	bob.raw([]byte(`{"id": 102, "type": "getUsers"}]`))
	bob.raw([]byte(`{"id": 103, "type": "getUsers", "type": "delete"}`))
	bob.raw([]byte(`{"id": 104, "Type": "getUsers"}`))
	bob.raw([]byte(`{"id": 105, "type": "muteTracks", "data": {"names": ["cam"], "State": true}}`))
	bob.raw([]byte("{\"id\": 106, \"type\": \"getUsers\", \"data\": {\"x\xff\": 1}}"))
	for n := 0; n < 10; { // answers to raw messages arrive as pushes
		r := <-bob.pushes
		if r.Type == "event" {
			continue
		}
		n++
		if !strings.Contains(string(r.Data), `"code":"Invalid"`) {
			t.Errorf("bad message answered %s", r.Data)
		}
	}
	if got := string(alice.must("getUsers", nil)); got != string(before) {
		// bob joined meanwhile: compare against the users alice sees now minus bob
		var a, b usersResult
		_ = json.Unmarshal([]byte(got), &a)
		_ = json.Unmarshal(before, &b)
		if len(a.Users) != 2 || a.Users[0].ID != "alice" || len(a.Users[0].Tracks) != 1 || a.Users[0].Tracks[0].Muted {
			t.Errorf("bad messages changed the channel: %s", got)
		}
	}

	// A huge message closes the connection (1009); bob leaves the call.
	huge := `{"id":5,"type":"getUsers","data":{"x":"` + strings.Repeat("a", 9<<10) + `"}}`
	bob.raw([]byte(huge))
	if got := bob.waitClosed(); got != websocket.StatusMessageTooBig {
		t.Errorf("huge message: closed with %d, want %d", got, websocket.StatusMessageTooBig)
	}
	alice.event("user:left", func(e eventData) bool { return e.UserID == "bob" })

	// A binary message closes the connection too.
	carol := login(t, ts, "carol", false)
	if err := carol.conn.Write(t.Context(), websocket.MessageBinary, []byte{1, 2, 3}); err != nil {
		t.Fatal(err)
	}
	if got := carol.waitClosed(); got != websocket.StatusUnsupportedData {
		t.Errorf("binary message: closed with %d", got)
	}
	if st := ts.Stats(); st.Invalid < 10 {
		t.Errorf("invalid messages counted: %d", st.Invalid)
	}
	alice.must("getUsers", nil) // alice is unaffected
}

// TestFlood: requests past the rate limit are refused with RateLimited and
// have no effect; a connection that keeps flooding is closed (1008).
func TestFlood(t *testing.T) {
	leaks := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, leaks) })
	ts := newTestServer(t, func(c *Config) { c.RequestRate = 0.001; c.RequestBurst = 5; c.MaxRefusals = 20 })
	alice := login(t, ts, "alice", true)
	alice.must("create", createData{ChannelID: "c"})
	mallory := login(t, ts, "mallory", false)
	mallory.must("join", joinData{ChannelID: "c"}) // 1 of 5
	var waits []chan reply
	for i := range 40 {
		waits = append(waits, mallory.send("addTracks", tracksData{Tracks: []trackData{{Name: "t" + string(rune('a'+i)), Kind: "audio", TrackID: string(rune('a' + i))}}}))
	}
	granted, limited := 0, 0
	for _, w := range waits {
		var r reply
		select {
		case r = <-w:
		case <-mallory.done:
			select {
			case r = <-w:
			default:
			}
		}
		if r.Type != "" {
			switch {
			case r.Type == "result":
				granted++
			case r.Error.Code == CodeRateLimited:
				limited++
			default:
				t.Errorf("flood answered %+v", r.Error)
			}
		}
	}
	if granted != 4 || limited != 20 {
		t.Errorf("granted %d, rate limited %d; want 4 and 20 (MaxRefusals) before the close", granted, limited)
	}
	if got := mallory.waitClosed(); got != websocket.StatusPolicyViolation {
		t.Errorf("flood: closed with %d", got)
	}
	alice.event("user:left", func(e eventData) bool { return e.UserID == "mallory" })
	var snap usersResult
	if err := json.Unmarshal(alice.must("getUsers", nil), &snap); err != nil || len(snap.Users) != 1 {
		t.Errorf("after the flood: %+v %v", snap, err)
	}
	if ts.Stats().RateLimited != 21 {
		t.Errorf("rate limited counted %d", ts.Stats().RateLimited)
	}
}

// TestFloodOfGarbage: malformed messages spend the rate limit too, and a
// connection that sends nothing but them is closed: its 5 (the burst)
// malformed messages and 15 refused by the rate limit are its 20
// refusals; the next one closes it.
func TestFloodOfGarbage(t *testing.T) {
	leaks := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, leaks) })
	ts := newTestServer(t, func(c *Config) { c.RequestRate = 0.001; c.RequestBurst = 5; c.MaxRefusals = 20 })
	mallory := login(t, ts, "mallory", false)
	for range 40 {
		mallory.raw([]byte(`{"id":1,"type":"x","bogus":1}`))
	}
	if got := mallory.waitClosed(); got != websocket.StatusPolicyViolation {
		t.Errorf("closed with %d", got)
	}
	if st := ts.Stats(); st.Invalid != 5 || st.RateLimited != 16 {
		t.Errorf("invalid %d, rate limited %d; want 5 and 16", st.Invalid, st.RateLimited)
	}
}
