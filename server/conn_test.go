package server

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"go.uber.org/goleak"
)

// TestOrigin: a page of another origin cannot open the WebSocket unless
// the server allows its host.
func TestOrigin(t *testing.T) {
	leaks := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, leaks) })
	ts := newTestServer(t, func(c *Config) { c.OriginPatterns = []string{"app.example"} })
	dialFrom := func(origin string) (int, error) {
		ctx, cancel := context.WithTimeout(context.Background(), deadline)
		defer cancel()
		conn, resp, err := websocket.Dial(ctx, ts.wsURL(), &websocket.DialOptions{HTTPHeader: http.Header{"Origin": {origin}}})
		if err == nil {
			_ = conn.Close(websocket.StatusNormalClosure, "")
			return http.StatusSwitchingProtocols, nil
		}
		if resp == nil {
			return 0, err
		}
		return resp.StatusCode, err
	}
	for origin, want := range map[string]int{
		"https://evil.example": http.StatusForbidden,
		"https://app.example":  http.StatusSwitchingProtocols,
		ts.http.URL:            http.StatusSwitchingProtocols, // the server's own host
	} {
		if got, err := dialFrom(origin); got != want {
			t.Errorf("origin %s: status %d (%v), want %d", origin, got, err, want)
		}
	}
	waitFor(t, "sessions to end", func() bool { return ts.Stats().Sessions == 0 })
}

// TestKeepalive: a client that stops answering pings is disconnected and
// leaves its channel; one that answers stays.
func TestKeepalive(t *testing.T) {
	leaks := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, leaks) })
	ts := newTestServer(t, func(c *Config) { c.PingInterval = 20 * time.Millisecond; c.PingTimeout = 50 * time.Millisecond })
	alice := login(t, ts, "alice", true)
	alice.must("create", createData{ChannelID: "c"})

	// bob authenticates and joins by hand, then stops reading: a client
	// answers pings only while it reads.
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	conn, _, err := websocket.Dial(ctx, ts.wsURL(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.CloseNow()
	for _, m := range []string{
		`{"id":1,"type":"auth","data":{"token":"` + token(t, "bob", false) + `"}}`,
		`{"id":2,"type":"join","data":{"channelId":"c"}}`,
	} {
		if err := conn.Write(ctx, websocket.MessageText, []byte(m)); err != nil {
			t.Fatal(err)
		}
	}
	alice.event("user:join", func(e eventData) bool { return e.UserID == "bob" })
	alice.event("user:left", func(e eventData) bool { return e.UserID == "bob" })
	waitFor(t, "bob's session to end", func() bool { return ts.Stats().Sessions == 1 })
	alice.must("getUsers", nil) // alice, reading all along, is still there
}

// TestDevTokens: /dev/token serves tokens only when enabled, and never
// for an invalid user id.
func TestDevTokens(t *testing.T) {
	on := newTestServer(t, nil)
	if code, body := on.get(t, "/dev/token?user=alice&create=1"); code != http.StatusOK || !strings.Contains(body, `"token"`) {
		t.Errorf("enabled: %d %s", code, body)
	}
	if code, _ := on.get(t, "/dev/token?user=a%20b"); code != http.StatusBadRequest {
		t.Errorf("a user id with a space: %d", code)
	}
	off := newTestServer(t, func(c *Config) { c.DevTokens = false })
	if code, _ := off.get(t, "/dev/token?user=alice"); code != http.StatusNotFound {
		t.Errorf("disabled: %d", code)
	}
	if code, body := off.get(t, "/healthz"); code != http.StatusOK || body != "ok\n" {
		t.Errorf("/healthz: %d %q", code, body)
	}
}

// TestLoopbackHostsOnly: with the guard on, a request naming another host
// (a DNS-rebinding page) is refused; loopback names are served.
func TestLoopbackHostsOnly(t *testing.T) {
	ts := newTestServer(t, func(c *Config) { c.LoopbackHostsOnly = true })
	for host, want := range map[string]int{
		"evil.example:80": http.StatusMisdirectedRequest,
		"192.0.2.2":       http.StatusMisdirectedRequest,
		"localhost:8080":  http.StatusOK,
		"127.0.0.1:8080":  http.StatusOK,
		"[::1]:8080":      http.StatusOK,
	} {
		req, _ := http.NewRequest("GET", ts.http.URL+"/dev/token?user=alice", nil)
		req.Host = host
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("Host %s: %d, want %d", host, resp.StatusCode, want)
		}
	}
}

// TestMaxConnsPerIP: connections past the per-address limit are refused
// (429) and counted; closing one makes room.
func TestMaxConnsPerIP(t *testing.T) {
	leaks := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, leaks) })
	ts := newTestServer(t, func(c *Config) { c.MaxConnsPerIP = 3 })
	var open []*client
	for range 3 {
		open = append(open, dial(t, ts))
	}
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	if conn, resp, err := websocket.Dial(ctx, ts.wsURL(), nil); err == nil {
		conn.CloseNow()
		t.Fatal("a fourth connection from one address was accepted")
	} else if resp == nil || resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("a fourth connection: %v", err)
	}
	if ts.Stats().RefusedConns != 1 {
		t.Errorf("refused connections counted: %d", ts.Stats().RefusedConns)
	}
	_ = open[0].conn.Close(websocket.StatusNormalClosure, "")
	waitFor(t, "room for one more", func() bool { return ts.Stats().Sessions == 2 })
	login(t, ts, "alice", false)
}

// TestMaxConnsPerUser: a user's connections past MaxConnsPerUser are
// refused at auth (RateLimited, closed with 1008) and counted; other users
// are not affected, and a closed connection makes room.
func TestMaxConnsPerUser(t *testing.T) {
	leaks := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, leaks) })
	ts := newTestServer(t, func(c *Config) { c.MaxConnsPerUser = 2 })
	first := login(t, ts, "alice", false)
	login(t, ts, "alice", false)
	extra := dial(t, ts)
	if _, code := extra.call("auth", authData{Token: token(t, "alice", false)}); code != "RateLimited" {
		t.Fatalf("a third connection of alice: %q, want RateLimited", code)
	}
	if st := extra.waitClosed(); st != websocket.StatusPolicyViolation {
		t.Errorf("closed with %v, want 1008", st)
	}
	if n := ts.Stats().RefusedConns; n != 1 {
		t.Errorf("refused connections counted: %d", n)
	}
	login(t, ts, "bob", false)
	_ = first.conn.Close(websocket.StatusNormalClosure, "")
	waitFor(t, "alice's first connection gone", func() bool { return ts.Stats().Sessions == 2 })
	login(t, ts, "alice", false)
}
