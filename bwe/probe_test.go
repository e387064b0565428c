package bwe_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/callcore/callcore/bwe"
)

// climbTime runs a sender of three layers on a 300 kbit/s cap for 5 s,
// lifts the cap to 3 Mbit/s and returns how long (ms) the estimate took
// to reach 80 % of it (-1 if not within 15 s), and the probe bytes sent
// after the lift.
func climbTime(t *testing.T, probe bool) (int64, int, *sim) {
	s := newSim(t, 300e3)
	s.layers = []float64{150e3, 500e3, 2e6}
	if probe {
		p, err := bwe.NewProber(bwe.ProbeConfig{}, s.est)
		if err != nil {
			t.Fatal(err)
		}
		s.prober = p
	}
	s.run(5000 * ms)
	if e := s.est.Estimate(); e > 1.1*300e3 {
		t.Fatalf("estimate %.0f on a 300 kbit/s cap", e)
	}
	s.link.capacity = 3e6
	s.link.queueBytes = int(3e6 / 8 * 0.25)
	before := s.probeBytes
	for i := range 150 {
		s.run(100 * ms)
		if s.est.Estimate() >= 0.8*3e6 {
			return int64(i+1) * 100, s.probeBytes - before, s
		}
	}
	return -1, s.probeBytes - before, s
}

func TestProbingClimbsToALiftedCapWithin5s(t *testing.T) {
	without, _, _ := climbTime(t, false)
	with, bytes, s := climbTime(t, true)
	t.Logf("cap 300 kbit/s -> 3 Mbit/s: estimate at 80%% after %d ms without probing (-1: not in 15 s), %d ms with (probe bytes %d, stats %+v, prober %+v)",
		without, with, bytes, s.est.Stats(), s.prober.Stats())
	if with < 0 || with > 5000 {
		t.Fatalf("with probing the estimate took %d ms to reach 80%% of the lifted cap", with)
	}
	if without >= 0 && without <= with {
		t.Fatalf("probing (%d ms) no faster than without (%d ms)", with, without)
	}
	if bytes == 0 {
		t.Fatal("no probe bytes counted")
	}
	// Settled: the estimate answered, probing stops, media at the top
	// layer goes through with no loss.
	rate, loss := s.window(3000 * ms)
	clusters := s.prober.Stats().Clusters
	rate2, loss2 := s.window(2000 * ms)
	t.Logf("then: sent %.0f bit/s (loss %.2f%%), %.0f bit/s (loss %.2f%%); clusters %d then %d",
		rate, 100*loss, rate2, 100*loss2, clusters, s.prober.Stats().Clusters)
	if got := s.prober.Stats().Clusters; got != clusters {
		t.Fatalf("still probing at the top layer: %d clusters, %d before", got, clusters)
	}
	if loss2 > 0.01 || rate2 < 1.9e6 {
		t.Fatalf("at the top layer: %.0f bit/s, loss %.2f%%", rate2, 100*loss2)
	}
}

func TestProbingStaysUnderACapItCannotPass(t *testing.T) {
	s := newSim(t, 300e3)
	s.probedConfig()
	s.layers = []float64{150e3, 500e3, 2.2e6}
	p, err := bwe.NewProber(bwe.ProbeConfig{}, s.est)
	if err != nil {
		t.Fatal(err)
	}
	s.prober = p
	s.run(5000 * ms)
	rate, loss := s.window(10000 * ms)
	st := s.est.Stats()
	t.Logf("10 s on a 300 kbit/s cap with probing: media %.0f bit/s, loss %.2f%%, estimate %.0f, probe bytes %d, stats %+v",
		rate, 100*loss, s.est.Estimate(), p.Stats().Bytes, st)
	if e := s.est.Estimate(); e > 1.2*300e3 || e < 150e3 {
		// Over-use a probe caused is cut no lower than the probe was
		// received at: the layer that fits stays.
		t.Fatalf("estimate %.0f on a 300 kbit/s cap, sending a 150 kbit/s layer", e)
	}
	if loss > 0.02 {
		t.Fatalf("loss %.2f%% from probing a cap that cannot carry the next layer", 100*loss)
	}
	if p.Stats().Clusters == 0 {
		t.Fatal("never probed")
	}
	// Clusters that fail back off: the probes cost at most 10 % of the cap.
	if over := float64(p.Stats().Bytes*8) / 15; over > 0.1*300e3 {
		t.Fatalf("probes averaged %.0f bit/s on a 300 kbit/s cap", over)
	}
}

func TestProbeConfigRefusesBadValues(t *testing.T) {
	clock := &manualClock{now: 1}
	est, err := bwe.New(bwe.Config{}, bwe.NewHistory(clock))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []bwe.ProbeConfig{{Packets: 2}, {Size: 5000}, {MaxFactor: 0.5}, {Margin: -1}, {Duration: -1}} {
		if _, err := bwe.NewProber(c, est); !errors.Is(err, bwe.ErrInvalidConfig) {
			t.Fatalf("%+v: %v", c, err)
		}
	}
	if _, err := bwe.NewProber(bwe.ProbeConfig{}, nil); !errors.Is(err, bwe.ErrInvalidConfig) {
		t.Fatalf("nil estimator: %v", err)
	}
}

// FuzzProber drives a prober with any sequence of targets, time steps,
// early stops and sends, against an estimator held at a fixed estimate,
// and checks every cluster planned: above the estimate, at most
// MaxFactor times it and (1 + Margin) times the target, 5 to Packets
// packets of at most Size bytes at an interval that gives its rate; none
// planned while one is being sent, none when the estimate reaches the
// target; the counters add up.
func FuzzProber(f *testing.F) {
	f.Add([]byte{10, 0, 200, 3, 50, 1, 255, 2})
	f.Add([]byte{255, 255, 0, 0, 1, 1, 128, 7})
	f.Fuzz(func(t *testing.T, ops []byte) {
		clock := &manualClock{now: 1e9}
		est, err := bwe.New(bwe.Config{Initial: 300e3}, bwe.NewHistory(clock))
		if err != nil {
			t.Fatal(err)
		}
		cfg := bwe.ProbeConfig{}
		p, err := bwe.NewProber(cfg, est)
		if err != nil {
			t.Fatal(err)
		}
		var (
			busyUntil int64
			have      bool
			last      bwe.Cluster
			sent      uint64
			clusters  uint64
		)
		for i := 0; i+1 < len(ops); i += 2 {
			op, v := ops[i]%4, int64(ops[i+1])
			switch op {
			case 0: // plan towards a target from 0 to 2.55 Mbit/s
				target := float64(v) * 10e3
				media := float64(i%5) * 50e3 // the transport's media, 0 to 200 kbit/s
				c, ok := p.Plan(target, media, clock.now)
				if !ok {
					continue
				}
				clusters++
				e := est.Estimate()
				switch {
				case target <= e:
					t.Fatalf("planned %+v with the estimate %v at the target %v", c, e, target)
				case have && clock.now < busyUntil:
					t.Fatalf("planned %+v while %+v is sent (until %d, now %d)", c, last, busyUntil, clock.now)
				case c.Rate <= e || c.Rate > 2*e+1e-6 || c.Rate > 1.25*target+1e-6:
					t.Fatalf("cluster rate %v, estimate %v, target %v", c.Rate, e, target)
				case c.Packets < 5 || c.Packets > 10 || c.Size < 100 || c.Size > 1000 || c.Interval <= 0:
					t.Fatalf("cluster %+v", c)
				}
				if c.Padding < 0.1*c.Rate || c.Padding > c.Rate-media+1e-6 || c.Padding < c.Rate-media-1e-6 {
					t.Fatalf("cluster %+v with media at %v", c, media)
				}
				if got := float64(c.Size*8) / (float64(c.Interval) / 1e9); got < 0.99*c.Padding || got > 1.01*c.Padding {
					t.Fatalf("cluster %+v sends at %v", c, got)
				}
				last, have, busyUntil = c, true, clock.now+int64(c.Packets)*c.Interval
			case 1: // time passes, up to 255 ms
				clock.now += v * 1e6
			case 2: // a packet of the last cluster sent
				if have {
					p.Sent(last.Size)
					sent += uint64(last.Size)
				}
			case 3: // asked whether to go on
				if !have {
					continue
				}
				if !p.Continue(last, float64(v)*10e3) {
					if est.Estimate() < float64(v)*10e3 {
						t.Fatal("stopped below the target")
					}
					busyUntil = min(busyUntil, clock.now) // a stop ends the cluster
				}
			}
		}
		st := p.Stats()
		if st.Bytes != sent || st.Clusters != clusters {
			t.Fatalf("stats %+v, sent %d bytes in %d clusters", st, sent, clusters)
		}
	})
}

// newLayeredSim returns a sim of a transport sending one stream of three
// layers (100, 300 and 600 kbit/s, the allocator choosing) through a
// link of capacity, with probing.
func newLayeredSim(t *testing.T, capacity float64) *sim {
	s := newSim(t, capacity)
	s.probedConfig()
	s.size = 600
	s.alloc = bwe.NewAllocator(bwe.AllocConfig{})
	s.stream = &bwe.Stream{Rates: [bwe.MaxLayers]float64{100e3, 300e3, 600e3}, Max: 2}
	p, err := bwe.NewProber(bwe.ProbeConfig{Size: 275, Packets: 50}, s.est)
	if err != nil {
		t.Fatal(err)
	}
	s.prober = p
	return s
}

// TestProbingOnANarrowCapKeepsTheLayerThatFits: on the top layer when
// the path narrows to 300 kbit/s, the transport settles on the lowest
// layer, and the clusters probing towards the next one (which does not
// fit) overfill the path: the over-use they cause must not cut the
// estimate under the layer being sent, which would pause it.
func TestProbingOnANarrowCapKeepsTheLayerThatFits(t *testing.T) {
	for _, fbEvery := range []int64{50 * ms, 100 * ms, 200 * ms, 300 * ms} {
		t.Run(fmt.Sprint(fbEvery/ms, "ms"), func(t *testing.T) { narrowCap(t, fbEvery) })
	}
}

func narrowCap(t *testing.T, fbEvery int64) {
	s := newLayeredSim(t, 0)
	s.fbEvery = fbEvery
	s.run(3000 * ms)
	if s.stream.Layer != 2 {
		t.Fatalf("unshaped: layer %d", s.stream.Layer)
	}
	s.link.capacity, s.link.queueBytes = 300e3, int(300e3/8*0.25)
	s.run(3000 * ms)
	s.minBudget = s.est.Estimate()
	paused := 0
	sent, lost := 0, 0
	for range 70 {
		s.sent, s.lost = 0, 0
		s.run(100 * ms)
		sent, lost = sent+s.sent, lost+s.lost
		if s.stream.Layer < 0 {
			paused++
		}
	}
	t.Logf("7 s on a 300 kbit/s cap after 3 s: lowest budget %.0f, layer %d, paused in %d of 70 samples, loss %d of %d; estimator %+v; prober %+v",
		s.minBudget, s.stream.Layer, paused, lost, sent, s.est.Stats(), s.prober.Stats())
	if s.prober.Stats().Clusters == 0 {
		t.Fatal("never probed")
	}
	if s.minBudget < 100e3 || paused > 0 {
		t.Fatalf("the estimate fell to %.0f under the 100 kbit/s layer sent (paused in %d samples)", s.minBudget, paused)
	}
	if float64(lost) > 0.01*float64(sent) {
		t.Fatalf("loss %d of %d", lost, sent)
	}
}

// TestProbingClimbsToTheLayerThatFitsWithin5s: on the lowest layer
// under a 300 kbit/s cap, the cap rises to 1 Mbit/s, where the top
// layer (600 kbit/s, 690 with headroom) fits: the transport is on it
// within 5 s.
func TestProbingClimbsToTheLayerThatFitsWithin5s(t *testing.T) {
	s := newLayeredSim(t, 0)
	s.run(3000 * ms)
	s.link.capacity, s.link.queueBytes = 300e3, int(300e3/8*0.25)
	s.run(8000 * ms)
	if s.stream.Layer != 0 {
		t.Fatalf("on a 300 kbit/s cap: layer %d", s.stream.Layer)
	}
	s.link.capacity, s.link.queueBytes = 1e6, int(1e6/8*0.25)
	before := s.probeBytes
	at := -1
	for i := range 100 {
		s.run(100 * ms)
		if s.stream.Layer == 2 {
			at = (i + 1) * 100
			break
		}
	}
	t.Logf("cap 300 kbit/s -> 1 Mbit/s: on the top layer after %d ms (-1: not in 10 s), layer %d, probe bytes %d; estimator %+v; prober %+v",
		at, s.stream.Layer, s.probeBytes-before, s.est.Stats(), s.prober.Stats())
	if at < 0 || at > 5000 {
		t.Fatalf("on the top layer after %d ms", at)
	}
	rate, loss := s.window(3000 * ms)
	if s.stream.Layer != 2 || loss > 0.01 {
		t.Fatalf("then: layer %d, %.0f bit/s, loss %.2f%%", s.stream.Layer, rate, 100*loss)
	}
}

// TestOveruseReportedWithTheClusterIsBlamedOnIt: a probe cluster that
// overfills a 300 kbit/s path carrying a 100 kbit/s stream makes the
// delay over-use, sometimes in the very feedback that first reports the
// cluster (with feedback every 300 ms, and the cluster at some phases
// of the receive-rate window, as in the shaped-link test): the cut is
// the cluster's, no lower than 0.85 times the rate the path delivered
// it at, never down to the stream's own rate, which pauses the layer
// being sent when its measured rate is a little higher.
func TestOveruseReportedWithTheClusterIsBlamedOnIt(t *testing.T) {
	for _, fbEvery := range []int64{100 * ms, 300 * ms} {
		for phase := int64(0); phase < 250*ms; phase += 10 * ms {
			t.Run(fmt.Sprint(fbEvery/ms, "ms+", phase/ms), func(t *testing.T) { blame(t, fbEvery, phase) })
		}
	}
}

func blame(t *testing.T, fbEvery, phase int64) {
	s := newSim(t, 300e3)
	s.fbEvery = fbEvery
	s.size = 500
	s.layers = []float64{100e3, 600e3} // the upper does not fit
	s.run(8000*ms + phase)
	pre := s.est.Estimate()
	if pre < 150e3 || pre > 450e3 {
		t.Fatalf("estimate %.0f before the cluster", pre)
	}
	// A cluster at 2.2 Mbit/s for 15 ms, on top of the stream.
	const id = 7
	s.tag = id
	for range 15 {
		seq := s.hist.RecordProbe(275, id)
		if at, ok := s.link.send(s.clock.now, 275); ok {
			s.inflight = append(s.inflight, arrival{at, seq})
		}
		s.run(1 * ms)
	}
	s.tag = 0
	low := s.est.Estimate()
	for range 20 {
		s.run(100 * ms)
		low = min(low, s.est.Estimate())
	}
	st := s.est.Stats()
	t.Logf("estimate %.0f before the cluster, lowest %.0f in the 2 s after; estimator %+v", pre, low, st)
	if st.Overuses == 0 || st.Probes == 0 {
		t.Fatalf("the cluster caused no over-use or was not measured: %+v", st)
	}
	if low < 0.8*300e3 {
		t.Fatalf("the cluster's over-use cut the estimate from %.0f to %.0f, near the stream's 100 kbit/s", pre, low)
	}
}

// TestOneLayerAboveTheFirstEstimateIsNeverPaused: a stream with one layer
// of 7.2 Mbit/s, above the 5 Mbit/s the estimate starts from, on a path
// that carries it with room: what the path delivers without over-use is
// what it carries, so the estimate rises to it at once and the stream is
// never paused (it was, then tried again for 2 s every 5 to 40 s).
func TestOneLayerAboveTheFirstEstimateIsNeverPaused(t *testing.T) {
	s := newSim(t, 50e6)
	s.probedConfig()
	s.alloc = bwe.NewAllocator(bwe.AllocConfig{StartGrace: 1e9}) // as transport/webrtc's
	s.stream = &bwe.Stream{Rates: [bwe.MaxLayers]float64{7.2e6}, Max: 2}
	paused := 0
	for range 100 {
		s.run(100 * ms)
		if s.stream.Layer < 0 {
			paused++
		}
	}
	if paused > 0 {
		t.Fatalf("paused in %d of 100 windows of 100 ms; estimate %.0f, stats %+v", paused, s.est.Estimate(), s.est.Stats())
	}
	t.Logf("estimate %.0f after 10 s of 7.2 Mbit/s", s.est.Estimate())
}
