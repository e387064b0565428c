//go:build !race

package pace

import "testing"

// TestPacketPathAllocatesNothing: a reservation, a charge and a push into
// a queue already in use allocate nothing.
func TestPacketPathAllocatesNothing(t *testing.T) {
	s, _ := New(Config{})
	s.Close() // nothing is sent: the test drains the queue itself
	q := s.NewQueue(8, 64, &recorder{seqs: make([]uint32, 0, 1000), at: make([]int64, 0, 1000), delay: make([]int64, 0, 1000)})
	var b Bucket
	b.SetRate(125_000, 0)
	q.Slot() // the ring's memory, once
	now := int64(0)
	allocs := testing.AllocsPerRun(200, func() {
		now += 1e6
		due, _ := b.Reserve(now, 1000, 1e9)
		b.Charge(now, 100)
		slot := q.Slot()
		q.Push(len(append(slot, 1, 2, 3, 4)), due, now, 0)
		s.inbox.Store(nil)
		q.sendDue(due, now)
		q.release()
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per packet", allocs)
	}
}
