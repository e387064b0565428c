//go:build !race

package speaker

import "testing"

func TestLevelAllocatesNothing(t *testing.T) {
	s := newSim(t, "ann", "bob")
	s.run(1000, talking(map[string][][2]int64{"ann": {{0, 1000}}}))
	ann := s.src["ann"]
	now := s.nowMs * 1e6
	allocs := testing.AllocsPerRun(1000, func() {
		now += 20e6
		if err := ann.Level(33, true, now); err != nil {
			t.Fatal(err)
		}
		if err := s.d.Level("bob", 127, false, now); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("Level: %v allocs per packet", allocs)
	}
	// A decision with no change allocates nothing either.
	s.g.adopt()
	allocs = testing.AllocsPerRun(100, func() { s.g.tick(now) })
	if allocs != 0 {
		t.Fatalf("a decision without change: %v allocs", allocs)
	}
}
