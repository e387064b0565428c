package server

import (
	"net/http/httptest"
	"os"
	"testing"
	"time"
)

// TestHoldOnePublisher is a measuring aid, skipped unless
// CALLCORE_HOLD_SERVER names a running callserver (http://127.0.0.1:PORT,
// its token secret the tests' testSecret): a pion client creates a
// channel and publishes a 30 frames/s VP8 track with no subscriber for
// CALLCORE_HOLD (default 40 s), while the server's CPU time is read from
// /proc. It checks that the server took the track.
func TestHoldOnePublisher(t *testing.T) {
	url := os.Getenv("CALLCORE_HOLD_SERVER")
	if url == "" {
		t.Skip("CALLCORE_HOLD_SERVER not set")
	}
	hold := 40 * time.Second
	if d, err := time.ParseDuration(os.Getenv("CALLCORE_HOLD")); err == nil {
		hold = d
	}
	ts := &testServer{http: &httptest.Server{URL: url}}
	alice := login(t, ts, "alice", true)
	alice.must("create", createData{ChannelID: "hold", Tracks: []trackData{{Name: "cam", Kind: "video", TrackID: "alice-cam"}}})
	pa := newPeer(t, alice)
	stop := make(chan struct{})
	t.Cleanup(func() { close(stop) })
	pa.sendVP8("alice-cam", stop)
	pa.offer()
	waitFor(t, "the media connection", func() bool { return pa.pc.ICEConnectionState().String() == "connected" })
	t.Logf("publishing to %s for %v", url, hold)
	<-time.After(hold) // the measuring window itself, not a wait for an event
}
