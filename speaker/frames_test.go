package speaker

import (
	"testing"
)

// framesOf stores levels (-dBov) at the given arrival times (ms) in a fresh
// source and rebuilds its frames at nowMs.
func framesOf(t *testing.T, arrivals []int64, level int, nowMs int64) [numFrames]uint8 {
	t.Helper()
	g, _ := newGroup(Config{})
	d, _ := g.NewDetector(DetectorConfig{OnChange: func([]Speaker) {}})
	s, _ := d.Add("a")
	for _, ms := range arrivals {
		if err := s.Level(uint8(level), true, ms*1e6); err != nil {
			t.Fatal(err)
		}
	}
	var f [numFrames]uint8
	s.frames(&f, nowMs, 0, false)
	return f
}

// every returns arrival times from 0 to end (exclusive) every step ms,
// each moved by jitter(i) ms.
func every(step, end int64, jitter func(i int64) int64) []int64 {
	var a []int64
	for i := int64(0); i*step < end; i++ {
		a = append(a, i*step+jitter(i))
	}
	return a
}

func none(int64) int64 { return 0 }

func TestFramesRebuildSteadySpeechDespiteArrivalPattern(t *testing.T) {
	const vol = 127 - 30
	for _, tc := range []struct {
		name     string
		arrivals []int64
	}{
		{"20 ms packets", every(20, 2000, none)},
		{"10 ms packets", every(10, 2000, none)},
		{"60 ms packets", every(60, 2000, none)},
		// Packets held back up to 50 ms, then delivered in bursts.
		{"jitter bursts", every(20, 2000, func(i int64) int64 { return []int64{0, 50, 30, 10}[i%4] })},
	} {
		t.Run(tc.name, func(t *testing.T) {
			last := tc.arrivals[len(tc.arrivals)-1]
			f := framesOf(t, tc.arrivals, 30, last+15)
			for i, v := range f {
				if v != vol {
					t.Fatalf("frame %d has volume %d, want %d: %v", i, v, vol, f)
				}
			}
			if a := measure(&f, 0); a.long != numBlocks || a.medium != blockLen || a.immediate != vol/subunit {
				t.Fatalf("activity %+v, want every horizon full", a)
			}
		})
	}
}

func TestFramesCountGapsAndIdleAsSilence(t *testing.T) {
	// 400 ms of speech, 200 ms without packets (DTX), 400 ms of speech.
	var arr []int64
	for _, ms := range every(20, 1000, none) {
		if ms < 400 || ms >= 600 {
			arr = append(arr, ms)
		}
	}
	f := framesOf(t, arr, 30, 990)
	silentFrames := 0
	for _, v := range f {
		if v == 0 {
			silentFrames++
		}
	}
	if silentFrames != 10 {
		t.Fatalf("%d silent frames for a 200 ms gap, want 10: %v", silentFrames, f)
	}
	// The sender stopped 500 ms ago: the newest 25 frames are silence.
	f = framesOf(t, every(20, 1000, none), 30, 1480)
	for i := range 24 {
		if f[i] != 0 {
			t.Fatalf("frame %d after the sender stopped has volume %d: %v", i, f[i], f)
		}
	}
	if a := measure(&f, 0); a.immediate != 0 || a.medium != 0 || a.long == 0 {
		t.Fatalf("activity %+v, want nothing now but full blocks half a second ago", a)
	}
}

func TestNoiseFloorGatesSteadyNoise(t *testing.T) {
	// A fan at 42 dBov (louder than the loud-frame threshold) with no
	// pause: a speaker at first, gated within 20 s.
	s := newSim(t, "fan")
	s.run(3000, func(string, int64) int { return 42 })
	if s.dominantAt(3000) != "fan" {
		t.Fatalf("steady 42 dBov is not a speaker at first: %v", s.changes)
	}
	s.run(17_000, func(string, int64) int { return 42 })
	if f := s.src["fan"].floor; f != 127-42 {
		t.Fatalf("floor %d after 20 s of steady noise at volume %d", f, 127-42)
	}
	if a := s.src["fan"].act; a.long != 0 || a.medium != 0 || a.immediate != 0 {
		t.Fatalf("steady noise still counts as activity after 20 s: %+v", a)
	}
	// A speaker whose pauses are silent keeps a floor of zero.
	s2 := newSim(t, "ann")
	s2.run(60_000, func(_ string, ms int64) int {
		if ms%3000 < 2500 {
			return speech(ms)
		}
		return silent
	})
	if s2.src["ann"].floor != 0 || s2.dominantAt(s2.nowMs) != "ann" {
		t.Fatalf("talker's floor %d, order %v", s2.src["ann"].floor, s2.orderAt(s2.nowMs))
	}
}
