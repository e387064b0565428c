package server

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/callcore/callcore/internal/layertest"
)

// followLayers reads the publisher's layers pushes, turning its layers on
// and off as told (what the SDK does with setParameters), until the
// layers told active are want (their rids joined, "" for none), and
// returns how long that took.
func followLayers(t *testing.T, c *client, p *layerPublisher, want string) time.Duration {
	t.Helper()
	start := time.Now()
	timeout := time.After(deadline)
	var seen []string
	for {
		var got string
		select {
		case m := <-c.pushes:
			if m.Type != "layers" {
				continue
			}
			var d layersPush
			if err := json.Unmarshal(m.Data, &d); err != nil {
				t.Fatal(err)
			}
			if d.ChannelID != "c" || d.TrackName != "cam" || d.Active == nil {
				t.Fatalf("layers push %s", m.Data)
			}
			got = strings.Join(d.Active, "")
			seen = append(seen, got)
			for i, rid := range rids {
				p.Off[i].Store(!strings.Contains(got, rid))
			}
		case <-timeout:
			t.Fatalf("no layers push telling %q (told %q)", want, seen)
		}
		if got == want {
			return time.Since(start)
		}
	}
}

// TestLayersNobodyReceivesAreNotSent: alice publishes three VP8 layers
// from a pion client that stops and resumes each layer as the server's
// layers pushes tell it. Alone, she is told to send q alone (the lowest is
// always sent); bob's arrival (no preference: the full layer, told to him
// in a layer push from the start) wants f too;
// his max height of 90 moves him to q and, once he is there, f is told
// off and stops; no limit again wants f back, and bob is switched onto it
// (the server asks the resumed layer for the key frame its switch waits
// for); paused, q alone.
func TestLayersNobodyReceivesAreNotSent(t *testing.T) {
	leaks := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, leaks) })
	ts := newTestServer(t, nil)
	alice := login(t, ts, "alice", true)
	alice.must("create", createData{ChannelID: "c", Tracks: []trackData{{Name: "cam", Kind: "video", TrackID: "alice-cam"}}})
	pa := newLayerPublisher(t, alice, "alice-cam")
	pa.offer()
	stop := make(chan struct{})
	t.Cleanup(func() { close(stop) })
	pa.run(stop)
	took := followLayers(t, alice, pa, "q")
	t.Logf("alone: q alone wanted, told %v after her first frames", took.Round(time.Millisecond))

	bob := login(t, ts, "bob", false)
	bob.must("join", joinData{ChannelID: "c"})
	pb := newLayerSubscriber(t, bob)
	pb.answer()
	took = followLayers(t, alice, pa, "qf")
	waitFor(t, "the full layer at bob", func() bool { return pb.lastLayer(t) == 2 })
	// bob, subscribed once alice's layers were there, was told what he
	// receives from the start.
	if d := layerOf(t, bob); d.UserID != "alice" || d.TrackName != "cam" || str(d.Layer) != "f" || d.Width != 640 || d.Height != 360 || d.LimitedBy != nil {
		t.Fatalf("bob's first layer push %+v (layer %s, limitedBy %s), want f 640x360, no limit", d, str(d.Layer), str(d.LimitedBy))
	}
	t.Logf("bob joined: f wanted, told %v after his answer", took.Round(time.Millisecond))

	h90 := 90
	bob.must("setPreference", preferenceData{UserID: "alice", TrackName: "cam", MaxHeight: &h90})
	took = followLayers(t, alice, pa, "q")
	t.Logf("max height 90: q alone wanted, told %v after the preference", took.Round(time.Millisecond))
	if l := pb.lastLayer(t); l != 0 {
		t.Fatalf("f was told off while bob's last packet was of layer %d", l)
	}
	sent := pa.Sent(2)
	f := pa.Frames()
	// 1.5 s: past the second after which the server takes a silent layer
	// as stopped, so that f comes back as a layer that stopped.
	waitFor(t, "alice to send 75 frames", func() bool { return pa.Frames() >= f+75 })
	if n := pa.Sent(2); n != sent {
		t.Fatalf("alice sent %d frames of f after it was told off", n-sent)
	}
	if l := pb.lastLayer(t); l != 0 {
		t.Fatalf("bob's last packet is of layer %d, want q", l)
	}

	start := time.Now()
	bob.must("setPreference", preferenceData{UserID: "alice", TrackName: "cam"})
	followLayers(t, alice, pa, "qf")
	waitFor(t, "the full layer at bob again", func() bool { return pb.lastLayer(t) == 2 })
	t.Logf("no limit: f resumed and at bob %v after the preference", time.Since(start).Round(time.Millisecond))

	yes := true
	bob.must("setPreference", preferenceData{UserID: "alice", TrackName: "cam", Paused: &yes})
	followLayers(t, alice, pa, "q")
	out := pb.out(t)
	for len(out) > 0 && !out[0].Key {
		out = out[1:]
	}
	if _, err := layertest.Continuity(out); err != nil {
		t.Error(err)
	}
}
