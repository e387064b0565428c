package pace

import "sync/atomic"

// Bucket is a token bucket kept as one virtual time (the generic cell
// rate algorithm): tat is when the bucket would be full again. A packet of
// cost c (its size at the rate, in ns) may leave at max(now, tat-depth);
// it moves tat to max(tat, then)+c. The zero Bucket has rate 0: off.
// Every method is lock-free and allocates nothing.
type Bucket struct {
	rate  atomic.Int64 // bytes per second; 0: off
	depth atomic.Int64 // ns of burst allowed at once
	tat   atomic.Int64 // ns
}

// SetRate sets the rate (bytes per second; 0 turns the bucket off) and the
// burst depth (ns at that rate a burst may take at once).
func (b *Bucket) SetRate(bytesPerSec, depth int64) {
	b.depth.Store(max(depth, 0))
	b.rate.Store(max(bytesPerSec, 0))
}

// Rate returns the rate in bytes per second, 0 when off.
func (b *Bucket) Rate() int64 { return b.rate.Load() }

// cost returns the time size bytes take at rate, in ns.
func cost(size int, rate int64) int64 {
	if rate <= 0 || size <= 0 {
		return 0
	}
	return int64(size) * 1e9 / rate
}

// Reserve takes the time for a packet of size bytes wanting to leave at
// now: it returns when the packet may leave (now when the bucket has room)
// and reports true, or reports false and reserves nothing when that would
// be more than maxDelay ns after now. With the bucket off, it returns now.
func (b *Bucket) Reserve(now int64, size int, maxDelay int64) (int64, bool) {
	rate := b.rate.Load()
	if rate == 0 {
		return now, true
	}
	c, depth := cost(size, rate), b.depth.Load()
	for {
		tat := b.tat.Load()
		due := max(now, tat-depth)
		if due-now > maxDelay {
			return 0, false
		}
		if b.tat.CompareAndSwap(tat, max(tat, due)+c) {
			return due, true
		}
	}
}

// Charge counts a packet of size bytes that left at now without waiting:
// the packets reserved after it wait for it.
func (b *Bucket) Charge(now int64, size int) {
	rate := b.rate.Load()
	if rate == 0 {
		return
	}
	c := cost(size, rate)
	for {
		tat := b.tat.Load()
		if b.tat.CompareAndSwap(tat, max(tat, now)+c) {
			return
		}
	}
}

// Delay returns how long after now a packet of no size would leave: the
// backlog of the bucket beyond its depth, 0 when it has room.
func (b *Bucket) Delay(now int64) int64 {
	if b.rate.Load() == 0 {
		return 0
	}
	return max(b.tat.Load()-b.depth.Load()-now, 0)
}
