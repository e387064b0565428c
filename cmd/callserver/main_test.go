package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/callcore/callcore/server"
	"github.com/coder/websocket"
	"go.uber.org/goleak"
)

// syncBuffer is a log sink safe for the server's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func noEnv(string) string { return "" }

// start runs the command with args until ctx ends (now ends a drain at
// once, as a second signal does) and returns its public address, the
// channel run's result arrives on and its logs.
func start(t *testing.T, ctx context.Context, now <-chan struct{}, args ...string) (addr string, done chan error, logs *syncBuffer) {
	t.Helper()
	addrc := make(chan string, 1)
	done = make(chan error, 1)
	logs = &syncBuffer{}
	go func() {
		done <- run(ctx, now, args, noEnv, logs, func(a string) { addrc <- a })
	}()
	select {
	case addr = <-addrc:
	case err := <-done:
		t.Fatalf("run: %v", err)
	}
	return addr, done, logs
}

// TestRunDemoAndShutdown runs the command as `callserver -addr
// 127.0.0.1:0`: demo mode serves tokens, the page and the SDK; a client
// creates a call; the end of the context (SIGTERM in main) gives that
// client a bye and a going-away close, and run returns cleanly.
func TestRunDemoAndShutdown(t *testing.T) {
	leaks := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, leaks) })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addr, done, logs := start(t, ctx, nil, "-addr", "127.0.0.1:0", "-ice-loopback", "-drain-timeout", "0")
	base := "http://" + addr
	get := func(path string) string {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %d %s", path, resp.StatusCode, b)
		}
		return string(b)
	}
	if !strings.Contains(get("/"), "<html") {
		t.Error("/ is not the demo page")
	}
	if !strings.Contains(get("/sdk/calls.js"), "export") {
		t.Error("/sdk/calls.js is not the SDK")
	}
	var tok struct{ Token string }
	if err := json.Unmarshal([]byte(get("/dev/token?user=alice&create=1")), &tok); err != nil || tok.Token == "" {
		t.Fatalf("dev token: %v", err)
	}
	conn, _, err := websocket.Dial(ctx, "ws://"+addr+"/ws", &websocket.DialOptions{HTTPHeader: http.Header{"Origin": {base}}})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.CloseNow()
	for _, m := range []string{
		`{"id":1,"type":"auth","data":{"token":"` + tok.Token + `"}}`,
		`{"id":2,"type":"create","data":{"channelId":"c"}}`,
	} {
		if err := conn.Write(ctx, websocket.MessageText, []byte(m)); err != nil {
			t.Fatal(err)
		}
	}
	var seen []string
	for len(seen) < 3 { // two answers and cnl:create
		_, b, err := conn.Read(ctx)
		if err != nil {
			t.Fatal(err)
		}
		seen = append(seen, string(b))
	}
	if !strings.Contains(strings.Join(seen, "\n"), `"id":2,"type":"result"`) {
		t.Fatalf("create: %s", seen)
	}

	cancel() // SIGTERM
	_, b, err := conn.Read(context.Background())
	if err != nil || !strings.Contains(string(b), `"type":"bye"`) || !strings.Contains(string(b), "shutdown") {
		t.Fatalf("before the close: %s %v", b, err)
	}
	_, _, err = conn.Read(context.Background())
	if got := websocket.CloseStatus(err); got != websocket.StatusGoingAway {
		t.Errorf("closed with %d (%v), want going away", got, err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("run: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("run did not return after shutdown")
	}
	if !strings.Contains(logs.String(), "server stopped") {
		t.Errorf("logs: %s", logs)
	}
}

// TestConfig: flags and environment variables, and the refusals.
func TestConfig(t *testing.T) {
	env := map[string]string{"CALLSERVER_UDP_PORT": "3478", "CALLSERVER_LOG_LEVEL": "debug", "CALLSERVER_ICE_SERVERS": "stun:stun.example:3478,turn:u:p@turn.example:3478"}
	o, err := parse([]string{"-public-ip", "203.0.113.7", "-secret", strings.Repeat("s", 32)}, func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	cfg, demo, err := o.config(nil)
	if err != nil {
		t.Fatal(err)
	}
	if demo || cfg.DevTokens || cfg.WebRTC.UDPPort != 3478 || o.logLevel != "debug" || cfg.WebRTC.NoCongestionControl ||
		len(cfg.WebRTC.NAT1To1IPs) != 1 || len(cfg.WebRTC.ICEServers) != 2 ||
		cfg.WebRTC.ICEServers[1].Username != "u" || cfg.WebRTC.ICEServers[1].URLs[0] != "turn:turn.example:3478" {
		t.Errorf("config: demo %v %+v", demo, cfg.WebRTC)
	}
	// Congestion control is on unless turned off.
	o, _ = parse([]string{"-no-congestion-control", "-no-pacing", "-no-probing"}, noEnv)
	if cfg, _, err := o.config(nil); err != nil || !cfg.WebRTC.NoCongestionControl || !cfg.WebRTC.NoPacing || !cfg.WebRTC.NoProbing {
		t.Errorf("-no-congestion-control -no-pacing -no-probing: %+v, %v", cfg.WebRTC, err)
	}
	// No secret away from loopback is refused; with -dev it is demo mode.
	o, _ = parse([]string{"-addr", ":8080"}, noEnv)
	if _, _, err := o.config(nil); err == nil {
		t.Error("no secret on a public address was accepted")
	}
	o, _ = parse([]string{"-addr", ":8080", "-dev"}, noEnv)
	if _, demo, err := o.config(nil); err != nil || !demo {
		t.Errorf("-dev without a secret: demo %v, %v", demo, err)
	}
	if _, err := parse([]string{"-udp-port", "x"}, noEnv); err == nil {
		t.Error("a bad flag was accepted")
	}
	if _, err := parse(nil, func(k string) string {
		if k == "CALLSERVER_UDP_PORT" {
			return "x"
		}
		return ""
	}); err == nil {
		t.Error("a bad environment variable was accepted")
	}
	o, _ = parse([]string{"-secret", "short"}, noEnv)
	if _, _, err := o.config(nil); err == nil {
		t.Error("a short secret was accepted")
	}
	// ICE over TCP and the embedded TURN server.
	o, _ = parse([]string{"-secret", strings.Repeat("s", 32), "-udp-port", "3478", "-ice-tcp-port", "7881",
		"-turn-udp-port", "3479", "-turn-tcp-port", "3479", "-turn-host", "turn.example"}, noEnv)
	if cfg, _, err := o.config(nil); err != nil || cfg.WebRTC.TCPPort != 7881 || cfg.TURN.UDPPort != 3479 ||
		cfg.TURN.TCPPort != 3479 || cfg.TURN.Host != "turn.example" {
		t.Errorf("ICE-TCP and TURN flags: %+v %+v, %v", cfg.WebRTC, cfg.TURN, err)
	}
	for _, args := range [][]string{
		{"-turn-udp-port", "3479", "-turn-host", "turn.example"},                                        // no single media port
		{"-udp-port", "3478", "-turn-udp-port", "3479"},                                                 // no host for the URLs
		{"-udp-port", "3478", "-turn-tls-port", "5349", "-turn-host", "t", "-tls-cert", "/nonexistent"}, // no certificate
	} {
		o, _ = parse(append([]string{"-secret", strings.Repeat("s", 32)}, args...), noEnv)
		if _, _, err := o.config(nil); err == nil {
			t.Errorf("%v was accepted", args)
		}
	}
	if err := run(context.Background(), nil, []string{"-log-level", "loud"}, noEnv, io.Discard, nil); err == nil || errors.Is(err, context.Canceled) {
		t.Errorf("a bad log level: %v", err)
	}
}

// TestRTPFlags: -rtp-addr and -rtp-announce enable RTP participants; an
// address that is not an IP is refused.
func TestRTPFlags(t *testing.T) {
	secret := strings.Repeat("s", 32)
	o, err := parse([]string{"-secret", secret, "-rtp-addr", "127.0.0.1", "-rtp-announce", "127.0.0.2"}, noEnv)
	if err != nil {
		t.Fatal(err)
	}
	cfg, _, err := o.config(nil)
	if err != nil || cfg.RTP.Addr != "127.0.0.1" || cfg.RTP.Announce != "127.0.0.2" {
		t.Fatalf("RTP config %+v, %v", cfg.RTP, err)
	}
	o, _ = parse([]string{"-secret", secret, "-rtp-addr", "media.example"}, noEnv)
	if _, _, err := o.config(nil); !errors.Is(err, server.ErrInvalidConfig) {
		t.Errorf("-rtp-addr media.example: %v", err)
	}
}
