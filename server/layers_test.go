package server

import (
	"encoding/json"
	"testing"
	"time"

	pion "github.com/pion/webrtc/v4"
	"go.uber.org/goleak"

	"github.com/callcore/callcore/internal/layertest"
	"github.com/callcore/callcore/internal/piontest"
)

var rids = piontest.Rids

// layerPublisher is a pion client sending three synthetic VP8 layers
// (piontest.LayerPublisher: 160x90, 320x180, 640x360) with rids q, h and
// f through one sender, speaking the protocol through a client.
type layerPublisher struct {
	*peer
	*piontest.LayerPublisher
}

func newLayerPublisher(t *testing.T, c *client, trackID string) *layerPublisher {
	t.Helper()
	p := newPeerWith(t, c, piontest.API(t, piontest.Simulcast), pion.Configuration{})
	return &layerPublisher{peer: p, LayerPublisher: piontest.NewLayerPublisher(p.Client, trackID, "stream")}
}

// run sends a frame of every layer every 20 ms until stop is closed (at
// most 60 s), and reads each layer's RTCP. Call it once the publisher's
// offer has been answered.
func (p *layerPublisher) run(stop chan struct{}) { p.Run(stop) }

// layerSubscriber is a pion subscriber that keeps the video packets it
// reads.
type layerSubscriber struct {
	*peer
	rec *piontest.Recorder
}

func newLayerSubscriber(t *testing.T, c *client) *layerSubscriber {
	t.Helper()
	p := &peer{Client: piontest.New(t, nil), t: t, c: c, tracks: make(chan *pion.TrackRemote, 16)}
	p.pc = p.PC
	s := &layerSubscriber{peer: p}
	s.rec = piontest.Record(p.Client, piontest.RecordConfig{Keep: true, OnPacket: func(*pion.TrackRemote, []byte) { p.received.Add(1) }})
	return s
}

// out returns the packets received so far, read back, in sequence
// order, once each.
func (s *layerSubscriber) out(t *testing.T) []layertest.Out {
	t.Helper()
	out, err := s.rec.Layers()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// lastLayer returns the layer of the last packet received, -1 before any.
func (s *layerSubscriber) lastLayer(t *testing.T) int {
	out := s.out(t)
	if len(out) == 0 {
		return -1
	}
	return out[len(out)-1].Layer
}

// layerOf waits for the next layer push.
func layerOf(t *testing.T, c *client) layerPush {
	t.Helper()
	var d layerPush
	if err := json.Unmarshal(c.pushOf("layer"), &d); err != nil {
		t.Fatal(err)
	}
	return d
}

func str(p *string) string {
	if p == nil {
		return "null"
	}
	return *p
}

// TestSetPreferenceSwitchesLayers: alice publishes three VP8 layers from a
// pion client; bob receives the full one, and his setPreference moves him:
// a max height of 90 to the quarter layer, no limit back to the full one,
// paused to nothing. Each change is pushed to bob alone as a layer push
// with the layer's size and why it is not higher, and the packets he
// receives follow, continuous across the switches (layertest.Continuity).
// A preference for a track bob does not receive is NotFound; a bad one is
// Invalid.
func TestSetPreferenceSwitchesLayers(t *testing.T) {
	leaks := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, leaks) })
	ts := newTestServer(t, nil)
	alice := login(t, ts, "alice", true)
	alice.must("create", createData{ChannelID: "c", Tracks: []trackData{{Name: "cam", Kind: "video", TrackID: "alice-cam"}}})
	pa := newLayerPublisher(t, alice, "alice-cam")
	pa.offer()
	stop := make(chan struct{})
	t.Cleanup(func() { close(stop) }) // before pa's close, which waits for the sender
	pa.run(stop)

	bob := login(t, ts, "bob", false)
	bob.must("join", joinData{ChannelID: "c"})
	pb := newLayerSubscriber(t, bob)
	pb.answer()
	waitFor(t, "the full layer at bob", func() bool { return pb.lastLayer(t) == 2 })

	// The pushes told as alice's layers arrived (their sizes may not be
	// known yet) are not this test's.
	for drained := false; !drained; {
		select {
		case <-bob.pushes:
		default:
			drained = true
		}
	}
	pref := func(maxHeight *int, paused *bool) {
		t.Helper()
		bob.must("setPreference", preferenceData{UserID: "alice", TrackName: "cam", MaxHeight: maxHeight, Paused: paused})
	}
	h90, yes := 90, true
	switches := []struct {
		maxHeight *int
		paused    *bool
		layer     string
		w, h      int
		limitedBy string
		rtp       int // the layer the packets come from
	}{
		{&h90, nil, "q", 160, 90, "preference", 0},
		{nil, nil, "f", 640, 360, "null", 2},
		{&h90, nil, "q", 160, 90, "preference", 0},
	}
	for _, s := range switches {
		start := time.Now()
		pref(s.maxHeight, s.paused)
		d := layerOf(t, bob)
		if str(d.Layer) == s.layer && d.Width == 0 { // told before a key frame of it showed its size: told again
			d = layerOf(t, bob)
			t.Logf("layer %s: its size told after %v", s.layer, time.Since(start).Round(time.Millisecond))
		}
		if d.UserID != "alice" || d.TrackName != "cam" || d.ChannelID != "c" || str(d.Layer) != s.layer ||
			d.Width != s.w || d.Height != s.h || str(d.LimitedBy) != s.limitedBy {
			t.Fatalf("layer push %+v (layer %s, limitedBy %s), want layer %s %dx%d limited by %s",
				d, str(d.Layer), str(d.LimitedBy), s.layer, s.w, s.h, s.limitedBy)
		}
		waitFor(t, "bob's packets from layer "+s.layer, func() bool { return pb.lastLayer(t) == s.rtp })
		t.Logf("layer %s at bob after %v", s.layer, time.Since(start).Round(time.Millisecond))
	}
	// Paused: null, and no packet arrives while alice sends 25 frames.
	pref(nil, &yes)
	d := layerOf(t, bob)
	if d.Layer != nil || str(d.LimitedBy) != "preference" {
		t.Fatalf("paused: layer push %+v (layer %s, limitedBy %s)", d, str(d.Layer), str(d.LimitedBy))
	}
	f := pa.Frames()
	waitFor(t, "alice to send 5 frames", func() bool { return pa.Frames() >= f+5 }) // what was in flight lands
	n := pb.received.Load()
	f = pa.Frames()
	waitFor(t, "alice to send 25 frames", func() bool { return pa.Frames() >= f+25 })
	if got := pb.received.Load(); got != n {
		t.Errorf("paused, bob received %d packets while alice sent 25 frames", got-n)
	}
	// Resumed without a limit: the full layer again.
	pref(nil, nil)
	if d := layerOf(t, bob); str(d.Layer) != "f" {
		t.Fatalf("resumed: layer push %+v (layer %s)", d, str(d.Layer))
	}
	waitFor(t, "bob's packets again", func() bool { return pb.received.Load() > n+10 && pb.lastLayer(t) == 2 })
	// From the first key frame: the first packets may have gone out
	// before bob's transport was up.
	out := pb.out(t)
	for len(out) > 0 && !out[0].Key {
		out = out[1:]
	}
	if sw, err := layertest.Continuity(out); err != nil {
		t.Error(err)
	} else if len(sw) < 3 {
		t.Errorf("%d splices in bob's packets, want 3 or more (f, q, f after the pause, after the first key frame: q or before)", len(sw))
	}
	// alice was told nothing: layer pushes are the subscriber's.
	for drained := false; !drained; {
		select {
		case p := <-alice.pushes:
			if p.Type == "layer" {
				t.Errorf("alice got a layer push: %s", p.Data)
			}
		default:
			drained = true
		}
	}

	bob.want("NotFound", "setPreference", preferenceData{UserID: "alice", TrackName: "screen"})
	bob.want("NotFound", "setPreference", preferenceData{UserID: "carol", TrackName: "cam"})
	alice.want("NotFound", "setPreference", preferenceData{UserID: "alice", TrackName: "cam"})
	neg := -1
	bob.want("Invalid", "setPreference", preferenceData{UserID: "alice", TrackName: "cam", MaxHeight: &neg})
	bob.want("Invalid", "setPreference", map[string]any{"userId": "alice", "trackName": "cam", "maxheight": 90})
	bob.want("Invalid", "setPreference", map[string]any{"userId": "alice", "trackName": "cam", "width": 90})
}
