package server

import (
	"encoding/json"
	"testing"

	"go.uber.org/goleak"
)

// TestGetStats: through the protocol, each user of a real call (pion)
// gets the server's view of its tracks: alice what she sends, bob what he
// receives from her, with counts that match what his client received, a
// bitrate from the second call on, and loss, jitter, rtt and layer null.
// Outside a channel getStats is refused; unknown fields are invalid.
func TestGetStats(t *testing.T) {
	leaks := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, leaks) })
	ts := newTestServer(t, nil)
	carol := login(t, ts, "carol", false)
	carol.want("NotMember", "getStats", nil)
	alice, bob, pb := videoCall(t, ts)
	bob.want("Invalid", "getStats", map[string]any{"verbose": true})

	stats := func(c *client) statsResult {
		t.Helper()
		var r statsResult
		if err := json.Unmarshal(c.must("getStats", nil), &r); err != nil {
			t.Fatal(err)
		}
		return r
	}
	a := stats(alice)
	if a.Status != "connected" || len(a.Sent) != 1 || len(a.Received) != 0 {
		t.Fatalf("alice: %+v", a)
	}
	if s := a.Sent[0]; s.UserID != "alice" || s.Track != "cam" || s.Kind != "video" || s.Packets == 0 || s.Bytes < s.Packets*100 ||
		s.KeyFrame == 0 || s.Bitrate != nil || s.Loss != nil || s.Jitter != nil || s.RTT != nil || s.Layer != nil {
		t.Errorf("alice's cam: %+v", s)
	}
	if a.Downlink != nil {
		t.Errorf("downlink: %v", *a.Downlink)
	}

	before := pb.received.Load()
	b := stats(bob)
	after := pb.received.Load()
	if len(b.Sent) != 0 || len(b.Received) != 1 {
		t.Fatalf("bob: %+v", b)
	}
	r := b.Received[0]
	if r.UserID != "alice" || r.Track != "cam" || r.Kind != "video" || r.Bitrate != nil {
		t.Errorf("bob's reception: %+v", r)
	}
	// The server counts what it handed to the transport: at least what
	// the client had received before the request, at most what it had
	// after it plus the few packets sent before its connection was up.
	if int64(r.Packets) < before || int64(r.Packets) > after+60 {
		t.Errorf("bob's packets: server %d, client %d..%d", r.Packets, before, after)
	}

	n := pb.received.Load()
	waitFor(t, "more media", func() bool { return pb.received.Load() >= n+10 })
	b = stats(bob)
	if br := b.Received[0].Bitrate; br == nil || *br <= 0 {
		t.Errorf("bob's second bitrate: %v", br)
	}
	a = stats(alice)
	if br := a.Sent[0].Bitrate; br == nil || *br <= 0 {
		t.Errorf("alice's second bitrate: %v", br)
	}
}
