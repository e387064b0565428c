package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"go.uber.org/goleak"
)

// TestRunDrainAndSecondSignal: the first signal (ctx) makes the server
// drain: /readyz fails, /healthz answers, a new call is refused with
// Draining while the call in progress goes on; the second signal (now)
// stops at once, before the drain limit, ending the call with a bye whose
// reason is drain.
func TestRunDrainAndSecondSignal(t *testing.T) {
	leaks := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, leaks) })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	now := make(chan struct{})
	var once sync.Once
	stopNow := func() { once.Do(func() { close(now) }) }
	tctx, tcancel := context.WithTimeout(context.Background(), 20*time.Second) // the test's own requests
	defer tcancel()
	t.Cleanup(func() { stopNow(); cancel() }) // a failed test stops the server too
	addr, done, logs := start(t, ctx, now, "-addr", "127.0.0.1:0", "-ice-loopback", "-drain-timeout", "1h")
	base := "http://" + addr
	status := func(path string) int {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		_, _ = io.Copy(io.Discard, resp.Body)
		return resp.StatusCode
	}
	// connect authenticates a WebSocket as user and sends msg; it returns
	// the connection and the answer to msg (id 2).
	connect := func(user, msg string) (*websocket.Conn, string) {
		resp, err := http.Get(base + "/dev/token?user=" + user + "&create=1")
		if err != nil {
			t.Fatal(err)
		}
		var tok struct{ Token string }
		err = json.NewDecoder(resp.Body).Decode(&tok)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		conn, _, err := websocket.Dial(tctx, "ws://"+addr+"/ws", &websocket.DialOptions{HTTPHeader: http.Header{"Origin": {base}}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = conn.CloseNow() })
		for _, m := range []string{`{"id":1,"type":"auth","data":{"token":"` + tok.Token + `"}}`, msg} {
			if err := conn.Write(tctx, websocket.MessageText, []byte(m)); err != nil {
				t.Fatal(err)
			}
		}
		for {
			_, b, err := conn.Read(tctx)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(string(b), `"id":2,`) {
				return conn, string(b)
			}
		}
	}
	alice, res := connect("alice", `{"id":2,"type":"create","data":{"channelId":"c"}}`)
	if !strings.Contains(res, `"type":"result"`) {
		t.Fatalf("create: %s", res)
	}
	if got := status("/readyz"); got != http.StatusOK {
		t.Fatalf("/readyz before the signal: %d", got)
	}

	cancel() // the first signal
	end := time.Now().Add(10 * time.Second)
	for status("/readyz") != http.StatusServiceUnavailable {
		if time.Now().After(end) {
			t.Fatal("/readyz still ready after the signal")
		}
		time.Sleep(5 * time.Millisecond) // polling a condition against a deadline
	}
	if got := status("/healthz"); got != http.StatusOK {
		t.Errorf("/healthz while draining: %d", got)
	}
	if _, res := connect("bob", `{"id":2,"type":"join","data":{"channelId":"c"}}`); !strings.Contains(res, `"code":"Draining"`) {
		t.Errorf("a join while draining: %s", res)
	}
	if err := alice.Write(tctx, websocket.MessageText, []byte(`{"id":3,"type":"getUsers"}`)); err != nil {
		t.Fatal(err)
	}
	for {
		_, b, err := alice.Read(tctx)
		if err != nil {
			t.Fatalf("the call ended while draining: %v", err)
		}
		if strings.Contains(string(b), `"id":3,"type":"result"`) {
			break
		}
	}
	select {
	case err := <-done:
		t.Fatalf("run returned while draining: %v", err)
	default:
	}

	stopNow() // the second signal
	for {
		_, b, err := alice.Read(tctx)
		if err != nil {
			t.Fatalf("no bye: %v", err)
		}
		if strings.Contains(string(b), `"type":"bye"`) {
			if !strings.Contains(string(b), `"reason":"drain"`) {
				t.Errorf("bye: %s", b)
			}
			break
		}
	}
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("run: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("run did not return after the second signal")
	}
	if !strings.Contains(logs.String(), "drain limit reached") {
		t.Errorf("logs: %s", logs)
	}
}
