package plane_test

import (
	"context"
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
	"github.com/callcore/callcore/transport/memory"
)

// bwEndpoint subscribes its user to layered tracks by itself, as a WebRTC
// peer does, with a bandwidth limit the test sets (what the peer's
// allocation would).
type bwEndpoint struct {
	*planetest.Endpoint
	rec *bwReception
}

type bwReception struct {
	*forward.Subscriber
	l *forward.Layers

	mu      sync.Mutex // guards the fields below
	max     forward.Layer
	paused  bool
	limited bool
	onLimit func()
	pref    int // the priority the plane gave
}

func (r *bwReception) SetMaxLayer(m forward.Layer) error { return r.l.SetMax(r.Subscriber, m) }
func (r *bwReception) BandwidthLimit() (forward.Layer, bool, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.max, r.paused, r.limited
}
func (r *bwReception) OnBandwidthLimit(f func()) { r.mu.Lock(); r.onLimit = f; r.mu.Unlock() }
func (r *bwReception) SetPriority(p int)         { r.mu.Lock(); r.pref = p; r.mu.Unlock() }

// limit sets the limit and tells the plane, as the allocation does.
func (r *bwReception) limit(max forward.Layer, paused, limited bool) {
	r.mu.Lock()
	r.max, r.paused, r.limited = max, paused, limited
	f := r.onLimit
	r.mu.Unlock()
	f()
}

func (e *bwEndpoint) SubscribeLayers(from string, info channel.TrackInfo, l *forward.Layers, max forward.Layer) (plane.LayerReception, error) {
	s, err := l.Subscribe(forward.SubscriberConfig{Writer: &memory.Sink{}, SSRC: 77, PayloadType: layertest.PT}, max)
	if err != nil {
		return nil, err
	}
	e.rec = &bwReception{Subscriber: s, l: l, max: forward.LayerF}
	return e.rec, nil
}

// TestBandwidthLimitIsTold: a reception whose transport limits it for
// bandwidth is told with LimitedBy "bandwidth": the layer the bandwidth
// allows, paused when nothing fits, and the preference's layer again
// when the limit goes; an explicit preference raises its priority.
func TestBandwidthLimitIsTold(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	clk := &clocktest.Clock{}
	clk.Advance(time.Second)
	var mu sync.Mutex
	var last plane.LayerChange
	pl, call, done := newCallWith(t, plane.Config{Clock: clk, OnLayer: func(_, _ string, c plane.LayerChange) {
		mu.Lock()
		last = c
		mu.Unlock()
	}}, "host", "c")
	defer done()
	for _, id := range []string{"pub", "viewer"} {
		var tracks []channel.TrackInfo
		if id == "pub" {
			tracks = []channel.TrackInfo{{Name: "cam", Kind: channel.Video}}
		}
		if _, err := call.Join(context.Background(), id, tracks); err != nil {
			t.Fatal(err)
		}
	}
	if err := pl.Attach("c", "pub", planetest.NewEndpoint(0)); err != nil {
		t.Fatal(err)
	}
	viewer := &bwEndpoint{Endpoint: planetest.NewEndpoint(100)}
	if err := pl.Attach("c", "viewer", viewer); err != nil {
		t.Fatal(err)
	}
	for l := range 3 {
		s, err := layertest.NewStream(l, uint16(2000*l), uint32(l)<<30, uint16(3000*l), 1000)
		if err != nil {
			t.Fatal(err)
		}
		tr, err := forward.NewTrack(forward.TrackConfig{Kind: forward.Video, ClockRate: 90000, PayloadType: layertest.PT,
			MimeType: "video/VP8", SSRC: s.SSRC, Clock: clk, Feedback: s})
		if err != nil {
			t.Fatal(err)
		}
		if err := pl.PublishedLayer("c", "pub", "cam", forward.Layer(l), tr); err != nil {
			t.Fatal(err)
		}
		pkts, _ := s.Frame() // a key frame: its size is known
		for _, p := range pkts {
			if err := tr.HandleRTP(p); err != nil {
				t.Fatal(err)
			}
		}
	}
	if viewer.rec == nil {
		t.Fatal("the viewer was not subscribed to the layers")
	}
	told := func() plane.LayerChange {
		mu.Lock()
		defer mu.Unlock()
		return last
	}
	viewer.rec.limit(forward.LayerH, false, true)
	if c := told(); c.Layer != forward.LayerH || c.LimitedBy != plane.LimitBandwidth || c.Height != 180 {
		t.Fatalf("limited to h: told %+v", c)
	}
	viewer.rec.limit(forward.LayerF, true, true)
	if c := told(); !c.Paused || c.LimitedBy != plane.LimitBandwidth {
		t.Fatalf("paused for bandwidth: told %+v", c)
	}
	viewer.rec.limit(forward.LayerF, false, false)
	if c := told(); c.Paused || c.Layer != forward.LayerF || c.LimitedBy != "" {
		t.Fatalf("no limit: told %+v", c)
	}
	// A preference below the bandwidth's limit is the preference's.
	viewer.rec.limit(forward.LayerH, false, true)
	if err := pl.SetPreference("c", "viewer", "pub", "cam", plane.Preference{MaxHeight: 90}); err != nil {
		t.Fatal(err)
	}
	if c := told(); c.Layer != forward.LayerQ || c.LimitedBy != plane.LimitPreference {
		t.Fatalf("preference under the limit: told %+v", c)
	}
	prio := func() int {
		viewer.rec.mu.Lock()
		defer viewer.rec.mu.Unlock()
		return viewer.rec.pref
	}
	p90 := prio()
	if err := pl.SetPreference("c", "viewer", "pub", "cam", plane.Preference{MaxHeight: 180}); err != nil {
		t.Fatal(err)
	}
	if p180 := prio(); p90 <= 0 || p180 <= p90 {
		t.Fatalf("priority %d after a preference of 90 pixels, %d of 180", p90, p180)
	}
}
