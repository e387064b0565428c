package bench

import (
	"encoding/binary"
	"testing"

	"github.com/callcore/callcore/forward"
	"github.com/callcore/callcore/internal/layertest"
	"github.com/callcore/callcore/transport/memory"
)

// layeredSource is a three-layer VP8 source for the benchmarks: each
// layer's packets made beforehand (real black frames from layertest),
// renumbered in place as they are sent again.
type layeredSource struct {
	pkts   [3][][]byte
	tracks [3]*forward.Track
	l      *forward.Layers
	sinks  []*memory.Counter
	subs   []*forward.Subscriber
}

var layerTag = []forward.Extension{{ID: layertest.TagID, URI: layertest.TagURI}}

// newLayeredSource makes the layers and n subscribers spread over them
// (subscriber i on layer i%3); keyEvery is the layers' key-frame period in
// frames.
func newLayeredSource(b *testing.B, n, keyEvery int) *layeredSource {
	ls := &layeredSource{}
	var cfg forward.LayersConfig
	for i := range ls.tracks {
		st, err := layertest.NewStream(i, 0, 0, 0, keyEvery)
		if err != nil {
			b.Fatal(err)
		}
		for range 30 {
			pkts, _ := st.Frame()
			ls.pkts[i] = append(ls.pkts[i], pkts...)
		}
		tr, err := forward.NewTrack(forward.TrackConfig{Kind: forward.Video, ClockRate: 90000, PayloadType: layertest.PT,
			MimeType: "video/VP8", SSRC: st.SSRC, Extensions: layerTag})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { tr.Close() })
		ls.tracks[i], cfg.Tracks[i] = tr, tr
	}
	cfg.Manual = true
	l, err := forward.NewLayers(cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { l.Close() })
	ls.l = l
	for i := range n {
		c := &memory.Counter{}
		pipe, err := memory.NewPipe(memory.PipeConfig{RTP: c})
		if err != nil {
			b.Fatal(err)
		}
		s, err := l.Subscribe(forward.SubscriberConfig{Writer: pipe, SSRC: uint32(i + 1), PayloadType: subPT, Extensions: layerTag}, forward.Layer(i%3))
		if err != nil {
			b.Fatal(err)
		}
		ls.sinks, ls.subs = append(ls.sinks, c), append(ls.subs, s)
	}
	return ls
}

// send sends packet k of layer i, renumbered as the k-th of its stream.
func (ls *layeredSource) send(b *testing.B, i, k int) {
	p := ls.pkts[i][k%len(ls.pkts[i])]
	binary.BigEndian.PutUint16(p[2:], uint16(k))
	binary.BigEndian.PutUint32(p[4:], uint32(k/3*3000))
	if err := ls.tracks[i].HandleRTP(p); err != nil {
		b.Fatal(err)
	}
}

func (ls *layeredSource) delivered() (n uint64) {
	for _, c := range ls.sinks {
		n += c.Packets
	}
	return n
}

// BenchmarkLayeredFanout is BenchmarkFanout/subs=100 for a source
// published as three layers, each of its 100 subscribers on one of them
// (34, 33, 33): one op is one packet of one layer (in turn), to the
// subscribers of that layer, the others skipping it. Run it beside
// BenchmarkFanout/subs=100 and compare pkts/s (deliveries a second).
func BenchmarkLayeredFanout(b *testing.B) {
	ls := newLayeredSource(b, 100, 1000)
	for k := range 9 { // the first frames: every subscriber starts on its key frame
		ls.send(b, k%3, k/3)
	}
	before := ls.delivered()
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		ls.send(b, i%3, 3+i/3)
	}
	b.StopTimer()
	n := ls.delivered() - before
	if want := uint64(b.N) * 100 / 3; n+100 < want || n > want+100 {
		b.Fatalf("%d deliveries for %d packets, want about %d", n, b.N, want)
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "pkts/s")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n), "ns/delivery")
}

// BenchmarkLayerSwitch measures one switch among 100 layered subscribers:
// one op asks a subscriber to move between q and h (SetMax) and sends
// that layer's next packet, a key frame's first, which splices it over.
// "noswitch" sends the same packets without asking: the difference is
// the cost of a switch.
func BenchmarkLayerSwitch(b *testing.B) {
	for _, sw := range []bool{false, true} {
		name := "noswitch"
		if sw {
			name = "switch"
		}
		b.Run(name, func(b *testing.B) {
			ls := newLayeredSource(b, 100, 1) // every frame a key frame
			for k := range 9 {
				ls.send(b, k%3, k/3)
			}
			sub := ls.subs[0] // on q
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				to := forward.Layer(1 - i%2) // h, q, h, ...
				if sw {
					if err := ls.l.SetMax(sub, to); err != nil {
						b.Fatal(err)
					}
				}
				ls.send(b, int(to), 9+3*i) // a key frame's first packet
			}
			b.StopTimer()
			if sw && ls.l.Switches() != uint64(b.N) {
				b.Fatalf("%d switches for %d ops", ls.l.Switches(), b.N)
			}
		})
	}
}
