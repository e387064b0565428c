package pace

import "sync/atomic"

// Sender sends a queued packet: buf is its slot (len the packet as
// pushed, cap the slot size, so it may be encrypted in place), meta what
// the producer pushed with it, queued when it was pushed and now the time
// of the send (ns). It is called on the scheduler's goroutine, one packet
// at a time; the queue's slot is free again once it returns.
type Sender interface {
	Send(buf []byte, meta uint64, queued, now int64)
}

// entry is a queued packet's bookkeeping.
type entry struct {
	due, queued int64
	meta        uint64
	n           int
}

// Queue is a ring of fixed slots with one producer (one goroutine at a
// time) and the scheduler as consumer. pending counts the packets pushed
// and not yet sent: the producer increments it after writing a slot, the
// scheduler decrements it after the Sender returned. So the producer that
// sees 0 knows nothing is queued or being sent, and the transition from 0
// (the producer registers the queue in the scheduler) and to 0 (the
// scheduler drops it) are each made by one side, with one atomic
// operation: a queue is registered at most once, and never left with
// packets and no registration.
type Queue struct {
	sched  *Scheduler
	sender Sender
	size   int // bytes a slot holds

	pending atomic.Int32

	// The producer's: the next slot to write. slots and ents are
	// allocated by the producer's first Slot, before the first push.
	tail  uint32
	slots [][]byte
	ents  []entry

	// The scheduler's.
	head  uint32
	sent  int32  // sent in this round, not yet released
	wnext *Queue // the next queue in the same wheel slot, or in the round's list

	inext *Queue // the next queue in the scheduler's inbox (set before the push)
}

// NewQueue returns a queue of n slots of size bytes each, whose packets
// s sends through sender. Its memory is allocated on its first use.
func (s *Scheduler) NewQueue(n, size int, sender Sender) *Queue {
	if n < 1 {
		n = 1
	}
	return &Queue{sched: s, sender: sender, size: size, ents: make([]entry, 0, n)}
}

// Busy reports whether packets are queued (or one is being sent): the
// producer's next packet then goes behind them. For the producer.
func (q *Queue) Busy() bool { return q.pending.Load() != 0 }

// Len returns the number of packets queued and not yet sent.
func (q *Queue) Len() int { return int(q.pending.Load()) }

// Slot returns the slot the producer's next Push fills (len 0, cap the
// slot size), nil when the queue is full. For the producer.
func (q *Queue) Slot() []byte {
	if q.slots == nil {
		n := cap(q.ents)
		arena := make([]byte, n*q.size)
		q.slots = make([][]byte, n)
		for i := range q.slots {
			q.slots[i] = arena[i*q.size : i*q.size : (i+1)*q.size]
		}
		q.ents = q.ents[:n]
	}
	if int(q.pending.Load()) >= len(q.slots) {
		return nil
	}
	return q.slots[int(q.tail)%len(q.slots)]
}

// Push queues the packet written in the slot Slot returned (its first n
// bytes) to be sent at due (ns), with meta for the Sender; queued is the
// time now. The first packet of an empty queue registers it in the
// scheduler. For the producer, after a Slot that was not nil.
func (q *Queue) Push(n int, due, queued int64, meta uint64) {
	i := int(q.tail) % len(q.slots)
	q.ents[i] = entry{due: due, queued: queued, meta: meta, n: n}
	q.tail++
	if q.pending.Add(1) == 1 {
		q.sched.register(q)
	}
}

// sendDue sends the queue's packets due by limit, on the scheduler's
// goroutine, up to the first due later (it returns that one's time and
// true) or the last pushed so far. The packets sent are counted in sent
// and released by release, after the round's OnRound: until then their
// slots stay taken and the queue counts as busy, so a producer finding it
// empty knows they have left (a Sender that batches has flushed them).
func (q *Queue) sendDue(limit, now int64) (int64, bool) {
	for q.sent < q.pending.Load() {
		i := int(q.head) % len(q.slots)
		e := q.ents[i]
		if e.due > limit {
			return e.due, true
		}
		q.sender.Send(q.slots[i][:e.n], e.meta, e.queued, now)
		q.head++
		q.sent++
	}
	return 0, false
}

// release counts the round's sent packets out and reports whether the
// queue still has packets, with the first one's due time. When it has
// none, the producer may register it again from here on.
func (q *Queue) release() (int64, bool) {
	n := q.sent
	q.sent = 0
	if q.pending.Add(-n) == 0 {
		return 0, false
	}
	return q.ents[int(q.head)%len(q.slots)].due, true
}

// cap returns the number of slots.
func (q *Queue) cap() int { return cap(q.ents) }
