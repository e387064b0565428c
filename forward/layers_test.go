package forward_test

import (
	"errors"
	"math/rand/v2"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtp"

	"github.com/callcore/callcore/forward"
	"github.com/callcore/callcore/internal/clocktest"
	"github.com/callcore/callcore/internal/layertest"
	"github.com/callcore/callcore/transport/memory"
)

// layered is a three-layer VP8 source on a manual clock: one frame per
// layer every 33 ms, key frames only on request (PLI) and at the start.
type layered struct {
	clk     *clocktest.Clock
	streams [3]*layertest.Stream
	tracks  [3]*forward.Track
	l       *forward.Layers
	ticks   int
}

var tagExt = forward.Extension{ID: layertest.TagID, URI: layertest.TagURI}

func newLayered(t testing.TB, keyEvery int) *layered {
	t.Helper()
	return newLayeredWith(t, keyEvery, nil)
}

// newLayeredWith is newLayered with its Layers' config changed by set.
func newLayeredWith(t testing.TB, keyEvery int, set func(*forward.LayersConfig)) *layered {
	t.Helper()
	c := &layered{clk: &clocktest.Clock{}}
	c.clk.Advance(time.Second)
	firsts := [3][3]uint32{{1000, 1 << 31, 100}, {30000, 5, 20000}, {65500, 4294960000, 32760}} // seq, ts, picture ID: some wrap
	var cfg forward.LayersConfig
	for i := range c.streams {
		s, err := layertest.NewStream(i, uint16(firsts[i][0]), firsts[i][1], uint16(firsts[i][2]), keyEvery)
		if err != nil {
			t.Fatal(err)
		}
		tr, err := forward.NewTrack(forward.TrackConfig{Kind: forward.Video, ClockRate: 90000, PayloadType: layertest.PT,
			MimeType: "video/VP8", SSRC: s.SSRC, Clock: c.clk, Feedback: s, Extensions: []forward.Extension{tagExt}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { tr.Close() })
		c.streams[i], c.tracks[i], cfg.Tracks[i] = s, tr, tr
	}
	cfg.Manual = true
	if set != nil {
		set(&cfg)
	}
	l, err := forward.NewLayers(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	c.l = l
	return c
}

func (c *layered) subscribe(t testing.TB, w *memory.Sink, ssrc uint32, max forward.Layer) *forward.Subscriber {
	t.Helper()
	s, err := c.l.Subscribe(forward.SubscriberConfig{Writer: w, SSRC: ssrc, PayloadType: 100, FirstSeq: 65530,
		Extensions: []forward.Extension{tagExt}}, max)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// tick sends one frame of every layer that is sending, smallest first.
func (c *layered) tick(t testing.TB, sending ...int) {
	t.Helper()
	c.clk.Advance(33 * time.Millisecond)
	c.ticks++
	if len(sending) == 0 {
		sending = []int{0, 1, 2}
	}
	for _, i := range sending {
		pkts, _ := c.streams[i].Frame()
		for _, p := range pkts {
			if err := c.tracks[i].HandleRTP(p); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func read(t testing.TB, w *memory.Sink) []layertest.Out {
	t.Helper()
	out, err := layertest.Read(w.Packets())
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestLayerSwitchesAreInvisible moves one subscriber q → f → h → q → f
// while every layer flows: each switch keeps the old layer until the new
// one's key frame (asked for at the switch), splices onto it with sequence
// numbers, timestamps, picture IDs and TL0PICIDX continuous, and the first
// frame of each layer decodes at that layer's size.
func TestLayerSwitchesAreInvisible(t *testing.T) {
	c := newLayered(t, 1000)
	var w memory.Sink
	s := c.subscribe(t, &w, 0x5151, forward.LayerQ)
	plan := map[int]forward.Layer{10: forward.LayerF, 30: forward.LayerH, 50: forward.LayerQ, 70: forward.LayerF}
	asked := map[int]int{} // output length when each switch was asked for
	perTick := make([]int, 0, 90)
	for i := range 90 {
		if to, ok := plan[i]; ok {
			asked[len(asked)] = w.Len()
			if err := c.l.SetMax(s, to); err != nil {
				t.Fatal(err)
			}
		}
		before := w.Len()
		c.tick(t)
		perTick = append(perTick, w.Len()-before)
	}
	for i, n := range perTick {
		if n < 3 {
			t.Fatalf("tick %d: %d packets, want at least a whole frame: a gap", i, n)
		}
	}
	out := read(t, &w)
	sw, err := layertest.Continuity(out)
	if err != nil {
		t.Fatal(err)
	}
	want := []int{2, 1, 0, 2}
	if len(sw) != len(want) {
		t.Fatalf("%d switches, want %d", len(sw), len(want))
	}
	if wd, hd, err := layertest.Decode(out, 0); err != nil || wd != layertest.Sizes[0][0] || hd != layertest.Sizes[0][1] {
		t.Fatalf("first frame: %dx%d %v", wd, hd, err)
	}
	for k, at := range sw {
		if out[at].Layer != want[k] {
			t.Fatalf("switch %d went to layer %d, want %d", k, out[at].Layer, want[k])
		}
		wd, hd, err := layertest.Decode(out, at)
		if err != nil {
			t.Fatalf("switch %d: first frame does not decode: %v", k, err)
		}
		if wd != layertest.Sizes[want[k]][0] || hd != layertest.Sizes[want[k]][1] {
			t.Fatalf("switch %d: first frame is %dx%d, want layer %d's size", k, wd, hd, want[k])
		}
		// The old layer flowed from the request to the switch.
		oldFrames := 0
		for _, o := range out[asked[k]:at] {
			if o.Start {
				oldFrames++
			}
		}
		t.Logf("switch %d to %v: %d packets (%d frames) of the old layer after the request, then the key frame",
			k, forward.Layer(want[k]), at-asked[k], oldFrames)
	}
	if n := c.l.Switches(); n != 4 {
		t.Fatalf("Switches() = %d, want 4", n)
	}
	if cur, _, switching, err := c.l.Layer(s); err != nil || cur != forward.LayerF || switching {
		t.Fatalf("Layer = %v %v %v", cur, switching, err)
	}
}

// TestLayerSwitchWaitsForTheKeyFrame: with the target layer's key frames
// throttled (asked for 100 ms after the last request), the old layer keeps
// flowing, frame after frame, until the key frame comes.
func TestLayerSwitchWaitsForTheKeyFrame(t *testing.T) {
	c := newLayered(t, 1000)
	var w memory.Sink
	s := c.subscribe(t, &w, 0x5151, forward.LayerF)
	for range 3 {
		c.tick(t)
	}
	c.tracks[1].RequestKeyFrame() // uses up layer h's allowance for 500 ms
	c.tick(t)
	if err := c.l.SetMax(s, forward.LayerH); err != nil {
		t.Fatal(err)
	}
	start := c.clk.Now()
	var waited time.Duration
	for range 30 {
		c.tick(t)
		if cur, _, _, _ := c.l.Layer(s); cur == forward.LayerH && waited == 0 {
			waited = c.clk.Now() - start
		}
	}
	out := read(t, &w)
	sw, err := layertest.Continuity(out)
	if err != nil {
		t.Fatal(err)
	}
	if len(sw) != 1 || out[sw[0]].Layer != 1 {
		t.Fatalf("switches at %v, want one to h", sw)
	}
	if waited < 400*time.Millisecond || waited > 600*time.Millisecond {
		t.Fatalf("switched after %v, want the key-frame interval", waited)
	}
	frames := 0
	for _, o := range out[:sw[0]] {
		if o.Start && o.Layer == 2 {
			frames++
		}
	}
	if frames < 15 {
		t.Fatalf("only %d frames of f before the switch", frames)
	}
	t.Logf("switch waited %v for the throttled key frame; f kept flowing (%d frames)", waited, frames)
}

// TestStoppedLayerMovesItsSubscribers: f stops; after StaleAfter the
// subscriber that wanted f is on h, the best remaining layer, and it goes
// back to f when f sends again, each time on a key frame and continuous.
func TestStoppedLayerMovesItsSubscribers(t *testing.T) {
	c := newLayered(t, 1000)
	var wf, wq memory.Sink
	sf := c.subscribe(t, &wf, 0x5151, forward.LayerF)
	c.subscribe(t, &wq, 0x5252, forward.LayerQ)
	for range 5 {
		c.tick(t)
		c.l.Check()
	}
	moved := -1
	for i := range 60 { // f stops
		c.tick(t, 0, 1)
		c.l.Check()
		if cur, _, _, _ := c.l.Layer(sf); cur == forward.LayerH && moved < 0 {
			moved = i
		}
	}
	if moved < 0 {
		t.Fatal("the subscriber of f never moved")
	}
	for range 10 { // f is back
		c.tick(t)
		c.l.Check()
	}
	out := read(t, &wf)
	sw, err := layertest.Continuity(out)
	if err != nil {
		t.Fatal(err)
	}
	if len(sw) != 2 || out[sw[0]].Layer != 1 || out[sw[1]].Layer != 2 {
		t.Fatalf("switches %v, want to h then back to f", sw)
	}
	for _, at := range sw {
		if _, _, err := layertest.Decode(out, at); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := layertest.Continuity(read(t, &wq)); err != nil {
		t.Fatal(err)
	}
	if q := read(t, &wq); len(q) == 0 || q[len(q)-1].Layer != 0 {
		t.Fatal("the subscriber of q moved")
	}
	t.Logf("moved to h %v after f stopped (StaleAfter 1 s, checked every tick)", time.Duration(moved+1)*33*time.Millisecond)
}

// TestLayersMuteAtEachLayersSize: a self mute gives each subscriber black
// key frames at the size of the layer it gets; an admin mute then sends
// nothing from any layer once its flush is over.
func TestLayersMuteAtEachLayersSize(t *testing.T) {
	c := newLayered(t, 1000)
	sinks := [3]*memory.Sink{{}, {}, {}}
	for i, w := range sinks {
		c.subscribe(t, w, uint32(0x100+i), forward.Layer(i))
	}
	for range 3 {
		c.tick(t)
	}
	start := [3]int{}
	for i, w := range sinks {
		start[i] = w.Len()
	}
	c.l.SetMute(forward.SourceSelf, true)
	for range 10 {
		c.tick(t)
	}
	for i, w := range sinks {
		pkts := w.Packets()[start[i]:]
		var frame []byte
		found := false
		for _, b := range pkts {
			var p rtp.Packet
			if err := p.Unmarshal(b); err != nil {
				t.Fatal(err)
			}
			if p.Payload[0]&0x10 != 0 {
				frame = frame[:0]
			}
			n := layertest.DescLen(p.Payload)
			frame = append(frame, p.Payload[n:]...)
			if p.Marker && frame[0]&1 == 0 {
				wd, hd, err := layertest.DecodeFrame(frame)
				if err != nil {
					t.Fatalf("layer %d: black key frame: %v", i, err)
				}
				if wd != layertest.Sizes[i][0] || hd != layertest.Sizes[i][1] {
					t.Fatalf("layer %d: black key frame %dx%d", i, wd, hd)
				}
				found = true
			}
		}
		if !found {
			t.Fatalf("layer %d: no black key frame while muted", i)
		}
	}
	c.l.SetMute(forward.SourceAdmin, true)
	for range 10 {
		c.tick(t)
		c.l.SetMute(forward.SourceAdmin, true) // pumps
	}
	for i, w := range sinks {
		start[i] = w.Len()
	}
	for range 10 {
		c.tick(t)
	}
	for i, w := range sinks {
		if n := w.Len() - start[i]; n != 0 {
			t.Fatalf("layer %d: %d packets under an admin mute", i, n)
		}
	}
}

func TestLayersRefusesUnknownSubscribersAndBadConfig(t *testing.T) {
	c := newLayered(t, 1000)
	tr := vp8Track(t, nil, nil)
	s, err := tr.Subscribe(forward.SubscriberConfig{Writer: &memory.Sink{}, SSRC: 9})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.l.SetMax(s, forward.LayerF); !errors.Is(err, forward.ErrNotLayered) {
		t.Fatalf("SetMax of a stranger: %v", err)
	}
	if _, err := forward.NewLayers(forward.LayersConfig{}); !errors.Is(err, forward.ErrInvalidConfig) {
		t.Fatalf("no layer: %v", err)
	}
	audio, err := forward.NewTrack(forward.TrackConfig{Kind: forward.Audio, ClockRate: 48000, MimeType: "audio/opus"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := forward.NewLayers(forward.LayersConfig{Tracks: [3]*forward.Track{c.tracks[0], audio}}); !errors.Is(err, forward.ErrInvalidConfig) {
		t.Fatalf("audio layer: %v", err)
	}
}

// TestClosedLayeredSubscriberLeavesEveryLayer: Close takes a layered
// subscriber out of every layer's track, with a switch pending.
func TestClosedLayeredSubscriberLeavesEveryLayer(t *testing.T) {
	c := newLayered(t, 1000)
	var w memory.Sink
	s := c.subscribe(t, &w, 0x5151, forward.LayerQ)
	c.tick(t)
	if err := c.l.SetMax(s, forward.LayerF); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	for i, tr := range c.tracks {
		if n := tr.Subscribers(); n != 0 {
			t.Fatalf("layer %d still has %d subscribers", i, n)
		}
	}
	n := w.Len()
	c.tick(t)
	if w.Len() != n {
		t.Fatal("a closed subscriber got packets")
	}
	if err := c.l.SetMax(s, forward.LayerH); !errors.Is(err, forward.ErrNotLayered) {
		t.Fatalf("SetMax after Close: %v", err)
	}
}

// TestLayerSwitchesUnderConcurrentLayers feeds the three layers from three
// goroutines (as three transports' read loops do) while a fourth switches
// eight subscribers at random: whatever section held the old layer at a
// switch is waited out, so every subscriber's output stays continuous, on
// key frames at every switch, with no packet of an old layer after a new
// one started. Run with -race.
func TestLayerSwitchesUnderConcurrentLayers(t *testing.T) {
	c := newLayered(t, 8)
	sinks := make([]*memory.Sink, 8)
	subs := make([]*forward.Subscriber, 8)
	for i := range sinks {
		sinks[i] = &memory.Sink{}
		subs[i] = c.subscribe(t, sinks[i], uint32(0x300+i), forward.Layer(i%3))
	}
	const frames = 300
	var wg sync.WaitGroup
	done := make(chan struct{})
	for i := range c.streams {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range frames {
				c.clk.Advance(11 * time.Millisecond)
				pkts, _ := c.streams[i].Frame()
				for _, p := range pkts {
					if err := c.tracks[i].HandleRTP(p); err != nil {
						t.Error(err)
						return
					}
				}
			}
		}()
	}
	go func() { wg.Wait(); close(done) }()
	rng := rand.New(rand.NewPCG(1, 2))
	asks := 0
	for stop := false; !stop; {
		select {
		case <-done:
			stop = true
		default:
			if err := c.l.SetMax(subs[rng.IntN(len(subs))], forward.Layer(rng.IntN(3))); err != nil {
				t.Fatal(err)
			}
			asks++
			runtime.Gosched()
		}
	}
	total := 0
	for i, w := range sinks {
		out := read(t, w)
		sw, err := layertest.Continuity(out)
		if err != nil {
			t.Fatalf("subscriber %d: %v", i, err)
		}
		for _, at := range sw {
			if _, _, err := layertest.Decode(out, at); err != nil {
				t.Fatalf("subscriber %d: switch at %d: %v", i, at, err)
			}
		}
		total += len(sw)
	}
	t.Logf("%d switches asked, %d made (%d splices seen in the outputs), %d key frames deferred", asks, c.l.Switches(), total, c.l.Deferred())
	if total == 0 {
		t.Fatal("no switch happened")
	}
}

// TestAddedLayerTakesItsSubscribers: a source whose f layer arrives after
// q (a publisher's streams start one by one): the subscriber wanting f is
// on q until AddLayer, then moves to f on its key frame. A layer of another
// codec is refused.
func TestAddedLayerTakesItsSubscribers(t *testing.T) {
	c := newLayered(t, 1000)
	l, err := forward.NewLayers(forward.LayersConfig{Tracks: [3]*forward.Track{c.tracks[0]}, Manual: true})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var w memory.Sink
	if _, err := l.Subscribe(forward.SubscriberConfig{Writer: &w, SSRC: 3, Extensions: []forward.Extension{tagExt}}, forward.LayerF); err != nil {
		t.Fatal(err)
	}
	for range 5 {
		c.tick(t)
	}
	opus, err := forward.NewTrack(forward.TrackConfig{Kind: forward.Audio, ClockRate: 48000, MimeType: "audio/opus"})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.AddLayer(forward.LayerH, opus); !errors.Is(err, forward.ErrInvalidConfig) {
		t.Fatalf("an audio layer: %v", err)
	}
	if err := l.AddLayer(forward.LayerF, c.tracks[2]); err != nil {
		t.Fatal(err)
	}
	for range 5 {
		c.tick(t)
	}
	out := read(t, &w)
	sw, err := layertest.Continuity(out)
	if err != nil {
		t.Fatal(err)
	}
	if len(sw) != 1 || out[sw[0]].Layer != 2 || out[0].Layer != 0 {
		t.Fatalf("splices %v, want q then f", sw)
	}
	if wd, hd, ok := c.tracks[2].PictureSize(); !ok || wd != 640 || hd != 360 {
		t.Fatalf("PictureSize %dx%d %v", wd, hd, ok)
	}
}
