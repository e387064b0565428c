package bwe_test

import (
	"fmt"
	"testing"
)

func TestEstimateConvergesBelowTheCap(t *testing.T) {
	for _, capacity := range []float64{300e3, 1e6, 3e6} {
		t.Run(fmt.Sprintf("%.0fkbps", capacity/1000), func(t *testing.T) {
			s := newSim(t, capacity)
			var conv int64 = -1
			for i := range 30 { // 3 s in 100 ms steps
				s.run(100 * ms)
				if conv < 0 && s.est.Estimate() < capacity {
					conv = int64(i+1) * 100
				}
			}
			rate, _ := s.window(500 * ms)
			if rate >= capacity {
				t.Fatalf("sending %.0f bit/s 3.5 s after a cap of %.0f (estimate %.0f)", rate, capacity, s.est.Estimate())
			}
			rate, loss := s.window(6000 * ms)
			st := s.est.Stats()
			t.Logf("cap %.0f: estimate under it after %d ms; then over 6 s sent %.0f bit/s (%.0f%% of the cap), loss %.2f%%; stats %+v",
				capacity, conv, rate, 100*rate/capacity, 100*loss, st)
			if conv < 0 {
				t.Fatalf("estimate %.0f never under the cap in 3 s", s.est.Estimate())
			}
			if rate >= capacity || rate < 0.5*capacity {
				t.Fatalf("after convergence sent %.0f bit/s on a cap of %.0f", rate, capacity)
			}
			if loss >= 0.01 {
				t.Fatalf("loss after convergence %.2f%%", 100*loss)
			}
		})
	}
}

func TestEstimateRampsUpWhenTheCapLifts(t *testing.T) {
	s := newSim(t, 300e3)
	s.run(5000 * ms)
	low := s.est.Estimate()
	if low >= 1.1*300e3 { // around the cap: it probes up to over-use and back
		t.Fatalf("estimate %.0f on a 300 kbit/s cap", low)
	}
	s.link.capacity = 0
	for i := range 10 {
		s.run(1000 * ms)
		t.Logf("%2d s after the cap lifted: estimate %.0f", i+1, s.est.Estimate())
	}
	// Additive increase near the rate that last congested, then 8 % a
	// second once the receive rate passes it: no probing.
	if got := s.est.Estimate(); got < 1.25*low {
		t.Fatalf("estimate %.0f 10 s after the cap lifted, from %.0f", got, low)
	}
}
