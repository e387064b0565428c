//go:build !race

package linkplane

import "testing"

// TestRelayAllocs asserts that a packet through a relay (the source's
// fan-out, the relay's subscriber, its track's fan-out) allocates nothing.
func TestRelayAllocs(t *testing.T) {
	x := newRelayed(t, 10, false)
	for range 100 { // warm up
		x.send(t)
	}
	if n := testing.AllocsPerRun(1000, func() { x.send(t) }); n != 0 {
		t.Fatalf("%v allocations a packet", n)
	}
}
