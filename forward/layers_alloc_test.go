//go:build !race

package forward_test

import (
	"runtime"
	"testing"

	"github.com/callcore/callcore/forward"
	"github.com/callcore/callcore/transport/memory"
)

// TestLayeredFanoutAllocatesNothing feeds three layers to 30 subscribers
// that switch between them: the packets, the switches' splices (on the
// target's key frame) and the rewritten picture IDs allocate nothing. The
// switches are asked for (SetMax, a control call) outside the measured
// spans; the first round warms up, as AllocsPerRun's first run does.
func TestLayeredFanoutAllocatesNothing(t *testing.T) {
	c := newLayered(t, 4)
	var subs []*forward.Subscriber
	sinks := make([]*memory.Counter, 30)
	for i := range sinks {
		sinks[i] = &memory.Counter{}
		pipe, err := memory.NewPipe(memory.PipeConfig{RTP: sinks[i]})
		if err != nil {
			t.Fatal(err)
		}
		s, err := c.l.Subscribe(forward.SubscriberConfig{Writer: pipe, SSRC: uint32(i + 1), Extensions: []forward.Extension{tagExt}}, forward.Layer(i%3))
		if err != nil {
			t.Fatal(err)
		}
		subs = append(subs, s)
	}
	// The packets of every round, made beforehand: 20 frames per layer,
	// a key frame every 4.
	rounds := make([][][][]byte, 10)
	for r := range rounds {
		for range 20 {
			for _, st := range c.streams {
				pkts, _ := st.Frame()
				rounds[r] = append(rounds[r], pkts)
			}
		}
	}
	var mallocs uint64
	var m0, m1 runtime.MemStats
	for r, frames := range rounds {
		for i, s := range subs {
			if err := c.l.SetMax(s, forward.Layer((i+r+1)%3)); err != nil {
				t.Fatal(err)
			}
		}
		runtime.ReadMemStats(&m0)
		for k, pkts := range frames {
			for _, p := range pkts {
				if err := c.tracks[k%3].HandleRTP(p); err != nil {
					t.Fatal(err)
				}
			}
		}
		runtime.ReadMemStats(&m1)
		if r > 0 { // the first round is the warm-up: scratch buffers grow once
			mallocs += m1.Mallocs - m0.Mallocs
		}
	}
	if mallocs != 0 {
		t.Fatalf("%d allocations on the packet path", mallocs)
	}
	if c.l.Switches() < 300 || sinks[0].Packets == 0 {
		t.Fatalf("%d switches, %d packets: the test did not switch", c.l.Switches(), sinks[0].Packets)
	}
}
