package plane_test

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/callcore/callcore/channel"
	"github.com/callcore/callcore/forward"
	"github.com/callcore/callcore/internal/clocktest"
	"github.com/callcore/callcore/internal/planetest"
	"github.com/callcore/callcore/plane"
)

// TestWantedLayersFollowTheViewer: the layers wanted of a layered track
// are the ones its viewer receives or targets, and the lowest: f with no
// preference, h once a max height of 180 moved it there and KeepWanted
// passed (and limited by that preference, not the publisher, once f,
// wanted by nobody, stopped), q alone while paused, f again after. OnLayersWanted is told, for the
// publisher's track, each time they may have changed; a track not sent as
// layers has none.
func TestWantedLayersFollowTheViewer(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	clk := &clocktest.Clock{}
	clk.Advance(time.Second)
	var told atomic.Int64
	var lastLayer atomic.Pointer[plane.LayerChange]
	onLayer := func(_, _ string, c plane.LayerChange) { lastLayer.Store(&c) }
	onWanted := func(ch, id, name string) {
		if ch != "c" || id != "pub" || name != "cam" {
			t.Errorf("told %s/%s in %s", id, name, ch)
		}
		told.Add(1)
	}
	pl, call, done := newCallWith(t, plane.Config{Clock: clk, OnLayersWanted: onWanted, OnLayer: onLayer}, "host", "c")
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
	if _, ok := pl.WantedLayers("c", "pub", "cam"); ok {
		t.Fatal("layers wanted of a track not published yet")
	}
	streams, tracks := planetest.LayerStreams(t, 1000, func(c forward.TrackConfig) (*forward.Track, error) {
		c.Clock = clk
		return forward.NewTrack(c)
	})
	stopped := -1 // a layer not sent
	tick := func() {
		clk.Advance(33 * time.Millisecond)
		for i := range streams {
			if i == stopped {
				continue
			}
			pkts, _ := streams[i].Frame()
			for _, p := range pkts {
				if err := tracks[i].HandleRTP(p); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	for l := range tracks {
		if err := pl.PublishedLayer("c", "pub", "cam", forward.Layer(l), tracks[l]); err != nil {
			t.Fatal(err)
		}
	}
	wanted := func() string {
		w, ok := pl.WantedLayers("c", "pub", "cam")
		if !ok {
			t.Fatal("no layers wanted of a layered track")
		}
		s := ""
		for i, on := range w {
			if on {
				s += forward.Layer(i).String()
			}
		}
		return s
	}
	// waitWanted sends frames until the layers wanted are want (the
	// Layers' watcher checks every 250 ms of real time; KeepWanted runs
	// on the test's clock).
	waitWanted := func(what, want string) {
		t.Helper()
		end := time.Now().Add(5 * time.Second)
		for wanted() != want {
			if time.Now().After(end) {
				t.Fatalf("%s: layers wanted %q, want %q", what, wanted(), want)
			}
			tick()
			time.Sleep(5 * time.Millisecond) // polling a condition against a deadline
		}
	}
	set := func(p plane.Preference) {
		t.Helper()
		if err := pl.SetPreference("c", "viewer", "pub", "cam", p); err != nil {
			t.Fatal(err)
		}
	}
	for range 3 {
		tick() // the first frames are key frames: every size is known
	}
	waitWanted("no preference", "qf")
	n := told.Load()
	set(plane.Preference{MaxHeight: 180})
	if told.Load() == n {
		t.Fatal("a preference told nothing")
	}
	waitWanted("max height 180", "qh")
	// alice stops f, which nobody wants: once it is taken as stopped,
	// the viewer is still told that its preference limits it, not the
	// publisher.
	stopped = 2
	for i := 0; i < 40 || told.Load() == n; i++ { // 1.3 s of the test's clock, past StaleAfter
		tick()
	}
	end := time.Now().Add(600 * time.Millisecond) // two checks of the watcher
	for time.Now().Before(end) {
		if c := lastLayer.Load(); c == nil || c.Layer != forward.LayerH || c.LimitedBy != plane.LimitPreference {
			t.Fatalf("f stopped: told %+v, want h limited by the preference", c)
		}
		tick()
		time.Sleep(5 * time.Millisecond) // polling a condition against a deadline
	}
	stopped = -1
	set(plane.Preference{Paused: true})
	waitWanted("paused", "q")
	set(plane.Preference{})
	if got := wanted(); !strings.Contains(got, "f") {
		t.Fatalf("resumed with no limit: layers wanted %q at once, want f among them", got)
	}
	waitWanted("resumed", "qf")
}
