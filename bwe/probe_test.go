package bwe_test

import (
	"errors"
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
				c, ok := p.Plan(target, clock.now)
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
				if got := float64(c.Size*8) / (float64(c.Interval) / 1e9); got < 0.99*c.Rate || got > 1.01*c.Rate {
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
