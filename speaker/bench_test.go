package speaker

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"
)

// benchNode is a node's speaker detection: channels Detectors of four
// sources each on one Group, driven frame by frame as its goroutine would
// drive them.
type benchNode struct {
	g     *Group
	srcs  [][]*Source
	nowMs int64
}

func newBenchNode(b *testing.B, channels int) *benchNode {
	n := &benchNode{}
	g, err := newGroup(Config{Clock: clockFunc(func() int64 { return n.nowMs * 1e6 })})
	if err != nil {
		b.Fatal(err)
	}
	n.g = g
	for c := range channels {
		d, err := g.NewDetector(DetectorConfig{OnChange: func([]Speaker) {}})
		if err != nil {
			b.Fatal(err)
		}
		var ss []*Source
		for i := range 4 {
			s, err := d.Add(fmt.Sprintf("c%d-u%d", c, i))
			if err != nil {
				b.Fatal(err)
			}
			ss = append(ss, s)
		}
		n.srcs = append(n.srcs, ss)
	}
	return n
}

// second plays one second: 50 levels from each source (two of the four
// take turns talking every 2 s, the others are silent), and a decision
// every Interval. feed and decide choose what runs.
func (n *benchNode) second(feed, decide bool) {
	interval := int64(n.g.cfg.Interval / time.Millisecond)
	for range 50 {
		if feed {
			now := n.nowMs * 1e6
			talker := int(n.nowMs/2000) % 2
			for _, ss := range n.srcs {
				for i, s := range ss {
					lv := uint8(silent)
					if i == talker {
						lv = uint8(speech(n.nowMs))
					}
					_ = s.Level(lv, true, now)
				}
			}
		}
		n.nowMs += frameMs
		if decide && n.nowMs%interval == 0 {
			n.g.adopt()
			n.g.tick(n.nowMs * 1e6)
		}
	}
}

// BenchmarkDetect measures speaker detection for a node of 1,000
// channels with four sources each sending 50 levels/s. One iteration is
// one second of the node; the metrics are per channel-second, and
// cpu-fraction is the share of one core the whole node uses.
func BenchmarkDetect(b *testing.B) {
	const channels = 1000
	for _, tc := range []struct {
		name         string
		feed, decide bool
	}{
		{"levels+decisions", true, true},
		{"decisions", false, true},
	} {
		b.Run(fmt.Sprintf("%s/channels=%d", tc.name, channels), func(b *testing.B) {
			n := newBenchNode(b, channels)
			for range 3 { // warm up: every Detector busy, floors set
				n.second(true, true)
			}
			var elapsed time.Duration
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if !tc.feed {
					b.StopTimer()
					n.second(true, false) // the levels, untimed
					n.nowMs -= 1000
					b.StartTimer()
				}
				start := time.Now()
				n.second(tc.feed, tc.decide)
				elapsed += time.Since(start)
			}
			perChannelSecond := float64(elapsed.Nanoseconds()) / float64(b.N) / channels
			b.ReportMetric(perChannelSecond, "ns/channel-s")
			b.ReportMetric(perChannelSecond*channels/1e9, "cpu-fraction")
			if tc.feed {
				b.ReportMetric(float64(b.N*channels*4*50)/elapsed.Seconds(), "levels/s")
			}
		})
	}
}

// BenchmarkLevel is the packet path's cost of one level, against the
// floor of one atomic store.
func BenchmarkLevel(b *testing.B) {
	b.Run("Source.Level", func(b *testing.B) {
		n := newBenchNode(b, 1)
		n.second(true, true)
		s := n.srcs[0][0]
		b.ReportAllocs()
		now := n.nowMs * 1e6
		for b.Loop() {
			now += 20e6
			_ = s.Level(33, true, now)
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "pkts/s")
	})
	b.Run("Detector.Level", func(b *testing.B) {
		n := newBenchNode(b, 1)
		n.second(true, true)
		d := n.srcs[0][0].det
		b.ReportAllocs()
		now := n.nowMs * 1e6
		for b.Loop() {
			now += 20e6
			_ = d.Level("c0-u0", 33, true, now)
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "pkts/s")
	})
	b.Run("baseline-atomic-store", func(b *testing.B) {
		var v atomic.Uint64
		b.ReportAllocs()
		for b.Loop() {
			v.Store(v.Load() + 1)
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "pkts/s")
	})
}
