// Package poll is how callcore's tests wait for an event: they poll a
// condition against a deadline instead of sleeping a fixed time.
package poll

import (
	"testing"
	"time"
)

// Every is how often Until asks.
const Every = 2 * time.Millisecond

// Until polls cond every 2 ms until it holds, and fails t if it still
// does not after d (or once t's context is done).
func Until(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	end := time.Now().Add(d)
	tick := time.NewTicker(Every)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(end) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		select {
		case <-tick.C:
		case <-t.Context().Done():
			t.Fatalf("waiting for %s: %v", what, t.Context().Err())
		}
	}
}
