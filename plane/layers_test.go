package plane_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/callcore/callcore/channel"
	"github.com/callcore/callcore/forward"
	"github.com/callcore/callcore/internal/clocktest"
	"github.com/callcore/callcore/internal/layertest"
	"github.com/callcore/callcore/internal/planetest"
	"github.com/callcore/callcore/plane"
)

// TestLayeredTrackFollowsThePreference: a publisher's transport hands the
// plane its camera's three layers one by one (PublishedLayer); a viewer on
// the memory transport is fed one layer at a time: q while it is the only
// one, f once it arrives (no limit by default), h when its preference
// limits the height to 180, nothing while paused, and again from a key
// frame after. Every splice is continuous and starts on a key frame that
// decodes at its layer's size.
func TestLayeredTrackFollowsThePreference(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	clk := &clocktest.Clock{}
	clk.Advance(time.Second)
	pl, call, done := newCall(t, clk, "host", "c")
	defer done()
	if _, err := call.Join(context.Background(), "pub", []channel.TrackInfo{{Name: "cam", Kind: channel.Video}}); err != nil {
		t.Fatal(err)
	}
	if _, err := call.Join(context.Background(), "viewer", nil); err != nil {
		t.Fatal(err)
	}
	viewer := newEndpoint(100)
	if err := pl.Attach("c", "pub", newEndpoint(0)); err != nil {
		t.Fatal(err)
	}
	if err := pl.Attach("c", "viewer", viewer); err != nil {
		t.Fatal(err)
	}
	streams, tracks := planetest.LayerStreams(t, 1000, func(c forward.TrackConfig) (*forward.Track, error) {
		c.Clock = clk
		return forward.NewTrack(c)
	})
	tick := func(n int, sending ...int) {
		for range n {
			clk.Advance(33 * time.Millisecond)
			for _, i := range sending {
				pkts, _ := streams[i].Frame()
				for _, p := range pkts {
					if err := tracks[i].HandleRTP(p); err != nil {
						t.Fatal(err)
					}
				}
			}
		}
	}
	if err := pl.PublishedLayer("c", "pub", "cam", forward.LayerQ, tracks[0]); err != nil {
		t.Fatal(err)
	}
	tick(5, 0)
	for _, l := range []forward.Layer{forward.LayerH, forward.LayerF} {
		if err := pl.PublishedLayer("c", "pub", "cam", l, tracks[l]); err != nil {
			t.Fatal(err)
		}
	}
	tick(5, 0, 1, 2)
	if err := pl.SetPreference("c", "viewer", "pub", "cam", plane.Preference{MaxHeight: 180}); err != nil {
		t.Fatal(err)
	}
	tick(20, 0, 1, 2) // h was asked for a key frame 330 ms ago: the next request waits for the interval
	sink := viewer.sink(t, "pub/cam")
	if err := pl.SetPreference("c", "viewer", "pub", "cam", plane.Preference{MaxHeight: 180, Paused: true}); err != nil {
		t.Fatal(err)
	}
	paused := sink.Len()
	tick(5, 0, 1, 2)
	if sink.Len() != paused {
		t.Fatalf("%d packets while paused", sink.Len()-paused)
	}
	if err := pl.SetPreference("c", "viewer", "pub", "cam", plane.Preference{}); err != nil {
		t.Fatal(err)
	}
	tick(20, 0, 1, 2)
	out, err := layertest.Read(sink.Packets())
	if err != nil {
		t.Fatal(err)
	}
	layers, err := layertest.Segments(out)
	if err != nil {
		t.Fatal(err)
	}
	// q, then f, then h, then f again after the pause (on f's key frame).
	if want := []int{0, 2, 1, 2}; !equalInts(layers, want) {
		t.Fatalf("layers %v, want %v", layers, want)
	}
	if err := pl.SetPreference("c", "viewer", "pub", "mic", plane.Preference{}); !errors.Is(err, plane.ErrUnknownTrack) {
		t.Fatalf("a track not received: %v", err)
	}
	if err := call.Leave("pub"); err != nil {
		t.Fatal(err)
	}
	for i, tr := range tracks {
		if err := tr.HandleRTP(nil); !errors.Is(err, forward.ErrClosed) {
			t.Fatalf("layer %d not closed when its publisher left: %v", i, err)
		}
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestLayerChangesAreTold: OnLayer tells the viewer's layer of a layered
// track when it changes, with its picture size and why it is not higher:
// the preference, then no limit, then the publisher once its full layer
// stopped (found by the Layers' watcher), then paused. A preference that
// changes nothing tells nothing.
func TestLayerChangesAreTold(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	clk := &clocktest.Clock{}
	clk.Advance(time.Second)
	var mu sync.Mutex
	var told []plane.LayerChange
	onLayer := func(ch, id string, c plane.LayerChange) {
		if ch != "c" || id != "viewer" {
			t.Errorf("told %s in %s", id, ch)
		}
		mu.Lock()
		told = append(told, c)
		mu.Unlock()
	}
	pl, call, done := newCallWith(t, plane.Config{Clock: clk, OnLayer: onLayer}, "host", "c")
	defer done()
	if _, err := call.Join(context.Background(), "pub", []channel.TrackInfo{{Name: "cam", Kind: channel.Video}}); err != nil {
		t.Fatal(err)
	}
	if _, err := call.Join(context.Background(), "viewer", nil); err != nil {
		t.Fatal(err)
	}
	if err := pl.Attach("c", "pub", newEndpoint(0)); err != nil {
		t.Fatal(err)
	}
	if err := pl.Attach("c", "viewer", newEndpoint(100)); err != nil {
		t.Fatal(err)
	}
	streams, tracks := planetest.LayerStreams(t, 1000, func(c forward.TrackConfig) (*forward.Track, error) {
		c.Clock = clk
		return forward.NewTrack(c)
	})
	tick := func(n int, sending ...int) {
		for range n {
			clk.Advance(33 * time.Millisecond)
			for _, i := range sending {
				pkts, _ := streams[i].Frame()
				for _, p := range pkts {
					if err := tracks[i].HandleRTP(p); err != nil {
						t.Fatal(err)
					}
				}
			}
		}
	}
	for l := range tracks {
		if err := pl.PublishedLayer("c", "pub", "cam", forward.Layer(l), tracks[l]); err != nil {
			t.Fatal(err)
		}
	}
	tick(3, 0, 1, 2) // the first frames are key frames: every size is known
	last := func() (plane.LayerChange, int) {
		mu.Lock()
		defer mu.Unlock()
		if len(told) == 0 {
			return plane.LayerChange{}, 0
		}
		return told[len(told)-1], len(told)
	}
	// waitTold waits for the last change told to be want, running each
	// (if any) between looks.
	waitTold := func(what string, want plane.LayerChange, each ...func()) {
		t.Helper()
		end := time.Now().Add(5 * time.Second)
		for {
			c, _ := last()
			if c == want {
				return
			}
			for _, f := range each {
				f()
			}
			if time.Now().After(end) {
				t.Fatalf("%s: last told %+v, want %+v", what, c, want)
			}
			time.Sleep(5 * time.Millisecond) // polling a condition against a deadline
		}
	}
	set := func(p plane.Preference) {
		t.Helper()
		if err := pl.SetPreference("c", "viewer", "pub", "cam", p); err != nil {
			t.Fatal(err)
		}
	}
	set(plane.Preference{MaxHeight: 180})
	waitTold("max height 180", plane.LayerChange{From: "pub", Name: "cam", Layer: forward.LayerH, Width: 320, Height: 180, LimitedBy: plane.LimitPreference})
	set(plane.Preference{})
	full := plane.LayerChange{From: "pub", Name: "cam", Layer: forward.LayerF, Width: 640, Height: 360}
	waitTold("no limit", full)
	_, n := last()
	set(plane.Preference{MaxHeight: 1080}) // still f: nothing to tell
	if c, m := last(); m != n {
		t.Fatalf("a preference that changes nothing told %+v", c)
	}
	// f sends nothing: the watcher (every 250 ms) finds it stopped once
	// it saw no packet of it for a second of the test's clock.
	waitTold("f stopped", plane.LayerChange{From: "pub", Name: "cam", Layer: forward.LayerH, Width: 320, Height: 180, LimitedBy: plane.LimitPublisher},
		func() { tick(1, 0, 1) })
	waitTold("f back", full, func() { tick(1, 0, 1, 2) })
	set(plane.Preference{Paused: true})
	waitTold("paused", plane.LayerChange{From: "pub", Name: "cam", Paused: true, LimitedBy: plane.LimitPreference})
}
