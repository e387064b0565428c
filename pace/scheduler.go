package pace

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// ErrInvalidConfig is wrapped by the errors of Config.Validate.
var ErrInvalidConfig = errors.New("pace: invalid config")

// Config configures a Scheduler. Zero fields take the defaults.
type Config struct {
	// Slot is the width of a wheel slot: packets due within one slot
	// leave together. Default 1 ms.
	Slot time.Duration
	// Slots is the number of wheel slots; a packet due further ahead waits
	// in the last one and is put back when that comes. Default 128.
	Slots int
	// OnRound, when set, is called on the scheduler's goroutine after each
	// round of sends (the packets of the slots that came due): a Sender
	// that batches its sends flushes them here.
	OnRound func()
}

func (c *Config) setDefaults() {
	if c.Slot == 0 {
		c.Slot = time.Millisecond
	}
	if c.Slots == 0 {
		c.Slots = 128
	}
}

// Validate reports whether the config, with defaults applied, is usable.
// Errors wrap ErrInvalidConfig.
func (c Config) Validate() error {
	c.setDefaults()
	switch {
	case c.Slot < 100*time.Microsecond || c.Slot > time.Second:
		return fmt.Errorf("%w: slot %v (100µs to 1s)", ErrInvalidConfig, c.Slot)
	case c.Slots < 2 || c.Slots > 1<<16:
		return fmt.Errorf("%w: %d slots (2 to 65536)", ErrInvalidConfig, c.Slots)
	}
	return nil
}

// Scheduler sends the queued packets of its queues at their due times
// from one goroutine. Queues register themselves (lock-free: a stack of
// queues swapped out whole by the goroutine); the goroutine keeps them in
// a timer wheel it alone touches.
type Scheduler struct {
	slot    int64 // ns
	epoch   time.Time
	onRound func()

	inbox   atomic.Pointer[Queue] // queues registered since the goroutine last looked
	waiting atomic.Bool           // the goroutine is about to wait, or waits
	wake    chan struct{}         // buffered 1: a registration while it waits
	stop    chan struct{}
	done    chan struct{}

	startMu sync.Mutex // guards started and stopped: the goroutine's start and Close, never the packet path
	started atomic.Bool
	stopped bool
	armed   atomic.Bool // the goroutine's timer is armed
	queues  atomic.Int32
	sent    atomic.Uint64
	wakeups atomic.Uint64

	// The goroutine's.
	wheel []*Queue
	count int   // queues in the wheel
	cur   int64 // the last slot processed (absolute)
	timer *time.Timer
}

// New returns a scheduler; its goroutine starts with the first queue
// registered. Close stops it.
func New(cfg Config) (*Scheduler, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.setDefaults()
	return &Scheduler{
		slot: int64(cfg.Slot), epoch: time.Now(), onRound: cfg.OnRound,
		wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{}),
		wheel: make([]*Queue, cfg.Slots),
	}, nil
}

// Now returns the scheduler's time, in ns on a monotonic clock.
func (s *Scheduler) Now() int64 { return int64(time.Since(s.epoch)) }

// Stats are a scheduler's counters.
type Stats struct {
	Queues  int    // queues with packets now (in the wheel or registering)
	Sent    uint64 // packets sent from queues
	Wakeups uint64 // times the goroutine woke
	Armed   bool   // its timer is armed: some queue has packets
	Running bool   // its goroutine runs
}

// Stats returns the scheduler's counters.
func (s *Scheduler) Stats() Stats {
	return Stats{Queues: int(s.queues.Load()), Sent: s.sent.Load(), Wakeups: s.wakeups.Load(),
		Armed: s.armed.Load(), Running: s.started.Load() && !s.isStopped()}
}

func (s *Scheduler) isStopped() bool {
	s.startMu.Lock()
	defer s.startMu.Unlock()
	return s.stopped
}

// register puts q in the inbox and wakes the goroutine if it waits (a
// non-blocking send on a buffered channel, only when a queue goes from
// empty to not empty).
func (s *Scheduler) register(q *Queue) {
	s.queues.Add(1)
	for {
		h := s.inbox.Load()
		q.inext = h
		if s.inbox.CompareAndSwap(h, q) {
			break
		}
	}
	if !s.started.Load() {
		s.start()
	}
	if s.waiting.Load() {
		select {
		case s.wake <- struct{}{}:
		default:
		}
	}
}

// start starts the goroutine once, unless the scheduler is closed.
func (s *Scheduler) start() {
	s.startMu.Lock()
	defer s.startMu.Unlock()
	if s.started.Load() || s.stopped {
		return
	}
	s.timer = time.NewTimer(time.Hour)
	s.timer.Stop()
	s.started.Store(true)
	go s.run()
}

// Close stops the goroutine and waits for it. Packets still queued are
// not sent; a queue registered after Close is never served.
func (s *Scheduler) Close() {
	s.startMu.Lock()
	if s.stopped {
		s.startMu.Unlock()
		return
	}
	s.stopped = true
	started := s.started.Load()
	s.startMu.Unlock()
	if started {
		close(s.stop)
		<-s.done
	}
}

func (s *Scheduler) run() {
	defer close(s.done)
	for {
		now := s.Now()
		if s.count == 0 {
			s.cur = now/s.slot - 1 // nothing in the wheel: it starts at now
		}
		s.drain()
		s.advance(now)
		s.waiting.Store(true)
		if s.inbox.Load() != nil { // registered before waiting was set
			s.waiting.Store(false)
			continue
		}
		var tc <-chan time.Time
		if s.count > 0 {
			s.timer.Reset(time.Duration(s.next() - s.Now()))
			s.armed.Store(true)
			tc = s.timer.C
		}
		select {
		case <-tc:
		case <-s.wake:
		case <-s.stop:
			s.timer.Stop()
			s.armed.Store(false)
			return
		}
		s.wakeups.Add(1)
		s.waiting.Store(false)
		if tc != nil {
			s.timer.Stop()
			s.armed.Store(false)
		}
	}
}

// drain moves the registered queues into the wheel, each at its first
// packet's due time.
func (s *Scheduler) drain() {
	for q := s.inbox.Swap(nil); q != nil; {
		next := q.inext
		q.inext = nil
		s.insert(q, q.ents[int(q.head)%len(q.slots)].due)
		q = next
	}
}

// insert puts q in the slot of due (the next slot at the soonest, the
// last at the latest).
func (s *Scheduler) insert(q *Queue, due int64) {
	k := min(max(due/s.slot, s.cur+1), s.cur+int64(len(s.wheel))-1)
	i := int(k % int64(len(s.wheel)))
	q.wnext = s.wheel[i]
	s.wheel[i] = q
	s.count++
}

// advance processes the slots up to now's: each queue there sends what
// is due (up to half a slot ahead, so a packet does not wait a whole slot
// for a fraction of one). After the round's OnRound, each queue releases
// what it sent and goes back in at its next packet's time, or leaves the
// wheel when it is empty.
func (s *Scheduler) advance(now int64) {
	target := now / s.slot
	var round *Queue
	sent := s.sent.Load()
	for s.cur < target && s.count > 0 {
		s.cur++
		i := int(s.cur % int64(len(s.wheel)))
		q := s.wheel[i]
		s.wheel[i] = nil
		for q != nil {
			next := q.wnext
			s.count--
			before := q.sent
			q.sendDue(now+s.slot/2, now)
			s.sent.Add(uint64(q.sent - before))
			q.wnext, round = round, q
			q = next
		}
	}
	if s.onRound != nil && s.sent.Load() != sent {
		s.onRound()
	}
	for q := round; q != nil; {
		next := q.wnext
		q.wnext = nil
		if due, left := q.release(); left {
			s.insert(q, due)
		} else {
			s.queues.Add(-1)
		}
		q = next
	}
	if s.count == 0 {
		s.cur = target
	}
}

// next returns the start of the first slot that holds a queue.
func (s *Scheduler) next() int64 {
	for k := s.cur + 1; k < s.cur+int64(len(s.wheel)); k++ {
		if s.wheel[int(k%int64(len(s.wheel)))] != nil {
			return k * s.slot
		}
	}
	return (s.cur + 1) * s.slot
}
