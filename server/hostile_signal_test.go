package server

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/golang-jwt/jwt/v5"
	"go.uber.org/goleak"
)

// TestReconnectingFlooderHeldToUserBudget: a user that floods requests
// and reconnects whenever it is closed gets no fresh burst from a new
// connection: over all its connections it is granted at most its budget
// (burst + rate x time), and each of its connections is closed after
// MaxRefusals refusals. Refusals and closes are logged at most once a
// second.
func TestReconnectingFlooderHeldToUserBudget(t *testing.T) {
	leaks := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, leaks) })
	logs := &lockedBuffer{}
	ts := newTestServer(t, func(c *Config) {
		c.RequestRate, c.RequestBurst = 10, 10
		c.AddrRequestRate, c.AddrRequestBurst = 1e6, 1e6 // the user's budget is under test here, not the address's connections
		c.MaxRefusals = 20
		c.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
	})
	start := time.Now()
	granted, limited, conns := 0, 0, 0
	for time.Since(start) < 2*time.Second {
		c := login(t, ts, "mallory", false) // the auth spends no user token
		conns++
		var waits []chan reply
		for range 60 {
			waits = append(waits, c.send("getUsers", nil))
		}
		for _, w := range waits {
			select {
			case r := <-w:
				switch {
				case r.Type == "result" || (r.Error != nil && r.Error.Code == "NotMember"):
					granted++ // served: mallory is in no channel
				case r.Error != nil && r.Error.Code == CodeRateLimited:
					limited++
				default:
					t.Fatalf("answered %+v", r)
				}
			case <-c.done:
			}
		}
		if got := c.waitClosed(); got != websocket.StatusPolicyViolation {
			t.Fatalf("flooding connection closed with %d, want 1008", got)
		}
	}
	elapsed := time.Since(start)
	budget := 10 + 10*elapsed.Seconds()
	t.Logf("%d connections in %v: %d requests granted (budget %.0f), %d refused; %d warn lines",
		conns, elapsed.Round(time.Millisecond), granted, budget, limited, logs.count("level=WARN"))
	if float64(granted) > budget+2 {
		t.Errorf("granted %d requests over %d connections in %v: more than the user's budget of %.0f", granted, conns, elapsed, budget)
	}
	if conns < 3 {
		t.Errorf("only %d connections: the flooder was not closed each time", conns)
	}
	if n := logs.count("rate limit exceeded"); n > int(elapsed/logPeriod)+2 {
		t.Errorf("%d rate-limit lines logged in %v: not rate-limited", n, elapsed)
	}
	// Another user is not held to mallory's budget.
	login(t, ts, "bob", false).want("NotMember", "getUsers", nil)
}

// TestAddressBudget: one address's connections and auths share a budget:
// a flood of new connections from it is refused (429) once the budget is
// spent, counted and logged at most once a second.
func TestAddressBudget(t *testing.T) {
	leaks := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, leaks) })
	logs := &lockedBuffer{}
	ts := newTestServer(t, func(c *Config) {
		c.AddrRequestRate, c.AddrRequestBurst = 1, 10
		c.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
	})
	accepted, refused := 0, 0
	for range 30 {
		ctx, cancel := context.WithTimeout(context.Background(), deadline)
		conn, resp, err := websocket.Dial(ctx, ts.wsURL(), nil)
		cancel()
		if err == nil {
			accepted++
			conn.CloseNow()
			continue
		}
		if resp == nil || resp.StatusCode != 429 {
			t.Fatalf("refused otherwise: %v", err)
		}
		refused++
	}
	if accepted > 12 || refused < 18 {
		t.Errorf("%d connections accepted, %d refused: want about 10 (the burst) accepted", accepted, refused)
	}
	if ts.Stats().RefusedConns != uint64(refused) {
		t.Errorf("refused connections counted %d, want %d", ts.Stats().RefusedConns, refused)
	}
	if n := logs.count("connection refused"); n < 1 || n > 3 {
		t.Errorf("%d refusal lines logged for %d refusals", n, refused)
	}
}

// TestAuthTimeoutCloses4001: a connection that never authenticates is
// closed after AuthTimeout with 4001, as documented (not 1006/1008).
func TestAuthTimeoutCloses4001(t *testing.T) {
	leaks := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, leaks) })
	ts := newTestServer(t, func(c *Config) { c.AuthTimeout = 200 * time.Millisecond })
	c := dial(t, ts)
	if got := c.waitClosed(); got != 4001 {
		t.Errorf("closed with %d, want 4001", got)
	}
	if ts.Stats().AuthFailures != 1 {
		t.Errorf("auth failures counted %d", ts.Stats().AuthFailures)
	}
}

// expiringToken signs a token for user that expired ago before now: the
// server accepts it within its leeway and ends its session
// tokenLeeway-ago later.
func expiringToken(t *testing.T, user string, ago time.Duration) string {
	t.Helper()
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, Claims{Create: true, RegisteredClaims: jwt.RegisteredClaims{
		Subject: user, ExpiresAt: jwt.NewNumericDate(time.Now().Add(-ago)),
	}}).SignedString(testSecret)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestTokenExpiryEndsSession: a session ends when its token expires: the
// user leaves its channel, gets bye "token expired" and the connection is
// closed with 4001. A session that renews its token with another auth
// (same user) goes on; an auth for another user is refused.
func TestTokenExpiryEndsSession(t *testing.T) {
	leaks := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, leaks) })
	ts := newTestServer(t, nil)
	owner := login(t, ts, "owner", true)
	owner.must("create", createData{ChannelID: "c"})

	// Both tokens expired tokenLeeway-1.6s ago (JWT times are whole
	// seconds): the sessions have 0.6 to 1.6 s.
	late := dial(t, ts)
	late.must("auth", authData{Token: expiringToken(t, "late", tokenLeeway-1600*time.Millisecond)})
	late.must("join", joinData{ChannelID: "c"})
	renewed := dial(t, ts)
	renewed.must("auth", authData{Token: expiringToken(t, "renewed", tokenLeeway-1600*time.Millisecond)})
	renewed.want("Invalid", "auth", authData{Token: token(t, "someone", false)})
	renewed.must("auth", authData{Token: token(t, "renewed", false)})
	renewed.must("join", joinData{ChannelID: "c"})

	if !strings.Contains(string(late.pushOf("bye")), "token expired") {
		t.Error("the expired session's bye does not say why")
	}
	if got := late.waitClosed(); got != 4001 {
		t.Errorf("expired session closed with %d, want 4001", got)
	}
	owner.event("user:left", func(e eventData) bool { return e.UserID == "late" })
	renewed.must("getUsers", nil) // still served, in the channel
}

// TestUserIDsThatDeceive: user ids that are invalid UTF-8 or carry
// control, format (zero-width, bidirectional override) or private-use
// characters are refused when a token is issued and when one is
// presented.
func TestUserIDsThatDeceive(t *testing.T) {
	bad := []string{"owner\u200b", "\u202eowner", "own\u200der", "a\x00b", "bad\xffutf8", "pua\ue000", "tab\tid", strings.Repeat("x", 129)}
	ts := newTestServer(t, nil)
	for _, id := range bad {
		if _, err := IssueToken(testSecret, id, false, time.Hour); err == nil {
			t.Errorf("IssueToken accepted %q", id)
		}
		tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, Claims{RegisteredClaims: jwt.RegisteredClaims{
			Subject: id, ExpiresAt: jwt.NewNumericDate(time.Now().Add(time.Hour)),
		}}).SignedString(testSecret)
		if err != nil {
			t.Fatal(err)
		}
		c := dial(t, ts)
		c.want("UnAuthorized", "auth", authData{Token: tok})
	}
	for _, id := range []string{"alice", "Zoë", "李雷", "user-1_2.3@example.com"} {
		if _, err := IssueToken(testSecret, id, false, time.Hour); err != nil {
			t.Errorf("IssueToken refused %q: %v", id, err)
		}
	}
}
