package fuzz

import (
	"slices"
	"testing"
	"time"

	"github.com/callcore/callcore/forward"
	"github.com/callcore/callcore/internal/clocktest"
	"github.com/callcore/callcore/internal/layertest"
	"github.com/callcore/callcore/transport/memory"
)

// FuzzLayerSwitch runs random sequences of frames of three VP8 layers
// (with packets lost on the way in), switches of two subscribers' highest
// layer, and time passing with checks for stopped layers, against a
// reference model of what each subscriber must get: the layer it is on,
// from a key frame, until the layer it heads for sends a key frame, and
// then only that one. Every subscriber must get exactly the model's
// packets, and its output must pass layertest.Continuity (numbering,
// picture IDs and TL0PICIDX continuous, splices on key frames). After
// every step, Layers.Wanted must be the model's: the lowest layer, each
// subscriber's current layer, pending one and target, and those wanted
// within KeepWanted.
func FuzzLayerSwitch(f *testing.F) {
	f.Add([]byte{0, 0, 1, 0, 2, 0, 3, 2, 0, 0, 2, 0, 2, 0, 1, 0})
	f.Add([]byte{0, 0, 1, 0, 2, 0, 3, 2, 4, 50, 0, 0, 1, 0, 4, 80, 0, 0, 1, 0, 4, 90, 2, 0, 4, 10, 2, 0})
	f.Add([]byte{2, 0, 3, 1, 1, 3, 3, 3, 1, 0, 0, 2, 7, 2, 3, 2, 0, 0, 2, 0, 3, 4, 2, 0})
	f.Fuzz(func(t *testing.T, ops []byte) {
		if len(ops) > 600 {
			ops = ops[:600]
		}
		w := newLayerWorld(t)
		for i := 0; i+1 < len(ops); i += 2 {
			w.step(ops[i]%5, ops[i+1])
			w.checkWanted()
		}
		w.check()
	})
}

type layerWorld struct {
	t       *testing.T
	clk     *clocktest.Clock
	streams [3]*layertest.Stream
	tracks  [3]*forward.Track
	l       *forward.Layers
	subs    [2]*forward.Subscriber
	sinks   [2]*memory.Sink
	models  [2]layerSubModel

	// The model's view of liveness (Layers.Check).
	arrived [3]int   // packets handed to the track since the last check
	seenAt  [3]int64 // when a check last saw some
	live    [3]bool

	wantedAt [3]int64 // when the model last found the layer wanted
}

// layerSubModel is what one subscriber must get.
type layerSubModel struct {
	max     int
	cur     int
	pend    int // -1: none
	waitKey bool
	got     [][2]int // layer and publisher sequence number of each packet it must get
}

const stale = int64(time.Second)

func newLayerWorld(t *testing.T) *layerWorld {
	w := &layerWorld{t: t, clk: &clocktest.Clock{}}
	w.clk.Advance(time.Second)
	var cfg forward.LayersConfig
	ext := []forward.Extension{{ID: layertest.TagID, URI: layertest.TagURI}}
	for i := range w.streams {
		s, err := layertest.NewStream(i, uint16(1000+30000*i), uint32(7+1<<30*i), uint16(100+16000*i), 6)
		if err != nil {
			t.Fatal(err)
		}
		tr, err := forward.NewTrack(forward.TrackConfig{Kind: forward.Video, ClockRate: 90000, PayloadType: layertest.PT,
			MimeType: "video/VP8", SSRC: s.SSRC, Clock: w.clk, Feedback: s, Extensions: ext, ReplayAge: -1})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { tr.Close() })
		w.streams[i], w.tracks[i], cfg.Tracks[i] = s, tr, tr
		w.live[i], w.seenAt[i] = true, w.clk.Nanotime()
	}
	cfg.Manual = true
	l, err := forward.NewLayers(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	w.l = l
	for k := range w.subs {
		w.sinks[k] = &memory.Sink{}
		s, err := l.Subscribe(forward.SubscriberConfig{Writer: w.sinks[k], SSRC: uint32(k + 1), PayloadType: 100, Extensions: ext}, forward.Layer(2*k))
		if err != nil {
			t.Fatal(err)
		}
		w.subs[k] = s
		w.models[k] = layerSubModel{max: 2 * k, cur: w.best(2 * k), pend: -1, waitKey: true}
	}
	return w
}

// best is the model of the layer a subscriber wanting up to max gets.
func (w *layerWorld) best(max int) int {
	for _, liveOnly := range []bool{true, false} {
		pick := -1
		for i := 2; i >= 0; i-- {
			if liveOnly && !w.live[i] {
				continue
			}
			if i <= max {
				return i
			}
			pick = i
		}
		if pick >= 0 {
			return pick
		}
	}
	return 0
}

// target is the model of the layer a subscriber heads for: the best for
// its max, or the layer its max names (every layer is present) when that
// one is stopped and nothing better than the live layer it is on is live.
func (w *layerWorld) target(m *layerSubModel) int {
	want := w.best(m.max)
	if want == m.max || w.live[m.max] {
		return want
	}
	if w.live[m.cur] && want <= m.cur {
		return m.max
	}
	return want
}

// keepWanted is forward.LayersConfig.KeepWanted's default.
const keepWanted = int64(500 * time.Millisecond)

// checkWanted compares Layers.Wanted with the model's.
func (w *layerWorld) checkWanted() {
	now := w.clk.Nanotime()
	var want [3]bool
	want[0] = true
	for k := range w.models {
		m := &w.models[k]
		want[m.max], want[m.cur] = true, true
		if m.pend >= 0 {
			want[m.pend] = true
		}
	}
	for i := range want {
		if want[i] {
			w.wantedAt[i] = now
		} else if w.wantedAt[i] != 0 && now-w.wantedAt[i] < keepWanted {
			want[i] = true
		}
	}
	if got := w.l.Wanted(); got != want {
		w.t.Fatalf("Wanted() = %v, the model's %v", got, want)
	}
}

func (w *layerWorld) route(m *layerSubModel) {
	want := w.target(m)
	switch {
	case want == m.cur:
		m.pend = -1
	case m.pend != want:
		m.pend = want
	}
}

func (w *layerWorld) step(op, arg byte) {
	switch op {
	case 0, 1, 2: // a frame of layer op; arg's low bits lose packets on the way in
		w.clk.Advance(11 * time.Millisecond)
		pkts, key := w.streams[op].Frame()
		for j, p := range pkts {
			if arg&(1<<j) != 0 {
				continue
			}
			w.arrived[op]++
			if err := w.tracks[op].HandleRTP(p); err != nil {
				w.t.Fatalf("layer %d: %v", op, err)
			}
			seq := int(uint16(p[2])<<8 | uint16(p[3]))
			for k := range w.models {
				w.deliver(&w.models[k], int(op), seq, key && j == 0)
			}
		}
	case 3: // a subscriber's highest layer changes
		k := int(arg>>2) % len(w.subs)
		m := &w.models[k]
		m.max = int(arg&3) % 3
		if err := w.l.SetMax(w.subs[k], forward.Layer(m.max)); err != nil {
			w.t.Fatal(err)
		}
		w.route(m)
	case 4: // time passes, then a check for stopped layers
		w.clk.Advance(time.Duration(arg) * 10 * time.Millisecond)
		w.l.Check()
		now, changed := w.clk.Nanotime(), false
		for i := range w.live {
			if w.arrived[i] > 0 {
				w.arrived[i], w.seenAt[i] = 0, now
			}
			live := now-w.seenAt[i] < stale
			changed = changed || live != w.live[i]
			w.live[i] = live
		}
		if changed {
			for k := range w.models {
				w.route(&w.models[k])
			}
		}
	}
}

// deliver is the model of one packet of layer reaching a subscriber.
func (w *layerWorld) deliver(m *layerSubModel, layer, seq int, key bool) {
	switch {
	case layer == m.cur && m.waitKey && !key:
	case layer == m.cur:
		m.waitKey = false
		m.got = append(m.got, [2]int{layer, seq})
	case layer == m.pend && key:
		m.cur, m.pend, m.waitKey = layer, -1, false
		m.got = append(m.got, [2]int{layer, seq})
	}
}

func (w *layerWorld) check() {
	for k, sink := range w.sinks {
		out, err := layertest.Read(sink.Packets())
		if err != nil {
			w.t.Fatal(err)
		}
		got := make([][2]int, len(out))
		for i, o := range out {
			got[i] = [2]int{o.Layer, int(o.OrigSeq)}
		}
		if !slices.Equal(got, w.models[k].got) {
			w.t.Fatalf("subscriber %d got %v\nwant %v", k, got, w.models[k].got)
		}
		if _, err := layertest.Continuity(out); err != nil {
			w.t.Fatalf("subscriber %d: %v", k, err)
		}
	}
}
