package server

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/coder/websocket"
	"go.uber.org/goleak"
)

// TestDrainLimit: a server draining refuses new calls (create, and a join
// of the call in progress) with Draining and fails /readyz while /healthz
// stays up; the call in progress goes on with its media; when the drain
// limit passes, Shutdown ends it with a bye whose reason is drain.
func TestDrainLimit(t *testing.T) {
	leaks := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, leaks) })
	ts := newTestServer(t, nil)
	alice, bob, pb := videoCall(t, ts)
	if code, _ := ts.get(t, "/readyz"); code != http.StatusOK {
		t.Fatalf("/readyz before the drain: %d", code)
	}

	const limit = 1500 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	drained := make(chan error, 1)
	go func() { drained <- ts.Drain(ctx) }()
	waitFor(t, "the drain to begin", ts.Draining)

	if code, _ := ts.get(t, "/readyz"); code != http.StatusServiceUnavailable {
		t.Errorf("/readyz while draining: %d, want 503", code)
	}
	if code, _ := ts.get(t, "/healthz"); code != http.StatusOK {
		t.Errorf("/healthz while draining: %d, want 200", code)
	}
	carol := login(t, ts, "carol", true)
	carol.want(CodeDraining, "create", createData{ChannelID: "other"})
	carol.want(CodeDraining, "join", joinData{ChannelID: "c"})
	if got := ts.Stats().Draining; got != 2 {
		t.Errorf("refusals counted: %d, want 2", got)
	}

	n := pb.received.Load()
	waitFor(t, "media while draining", func() bool { return pb.received.Load() >= n+10 })
	alice.must("getUsers", nil) // the call answers requests too

	select {
	case err := <-drained:
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Drain with a call left: %v, want the deadline", err)
		}
	case <-time.After(deadline):
		t.Fatal("Drain did not return at its limit")
	}
	sctx, scancel := context.WithTimeout(context.Background(), deadline)
	defer scancel()
	if err := ts.Shutdown(sctx); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*client{alice, bob} {
		var bye reasonData
		if err := json.Unmarshal(c.pushOf("bye"), &bye); err != nil || bye.Reason != ReasonDrain {
			t.Errorf("bye: %+v %v, want reason %q", bye, err, ReasonDrain)
		}
		if code := c.waitClosed(); code != websocket.StatusGoingAway {
			t.Errorf("closed with %d, want going away", code)
		}
	}
}

// TestDrainEnds: Drain returns as soon as the last call ends (the users
// leave), before its limit; a later Shutdown says shutdown, and a second
// Drain returns at once.
func TestDrainEnds(t *testing.T) {
	leaks := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, leaks) })
	ts := newTestServer(t, nil)
	alice, bob, _ := videoCall(t, ts)
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	drained := make(chan error, 1)
	go func() { drained <- ts.Drain(ctx) }()
	waitFor(t, "the drain to begin", ts.Draining)
	bob.must("leave", nil)
	select {
	case err := <-drained:
		t.Fatalf("Drain returned (%v) with alice still in the call", err)
	default:
	}
	alice.must("leave", nil)
	select {
	case err := <-drained:
		if err != nil {
			t.Fatalf("Drain: %v", err)
		}
	case <-ctx.Done():
		t.Fatal("Drain did not return when the calls ended")
	}
	if err := ts.Drain(ctx); err != nil {
		t.Errorf("a second Drain: %v", err)
	}
	alice.want(CodeDraining, "join", joinData{ChannelID: "c"}) // alice holds no stay any more
	sctx, scancel := context.WithTimeout(context.Background(), deadline)
	defer scancel()
	if err := ts.Shutdown(sctx); err != nil {
		t.Fatal(err)
	}
	var bye reasonData
	if err := json.Unmarshal(alice.pushOf("bye"), &bye); err != nil || bye.Reason != ReasonShutdown {
		t.Errorf("bye: %+v %v, want reason %q", bye, err, ReasonShutdown)
	}
}
