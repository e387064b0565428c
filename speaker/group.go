package speaker

import (
	"sync"
	"sync/atomic"
	"time"
)

// A Group decides the speakers of all the Detectors of a node from one
// goroutine on one ticker. The ticker runs only while some Detector is
// busy (a source was heard within the last second, or a source was muted
// or removed): a node with no audio has no timer.
type Group struct {
	cfg Config // immutable after NewGroup

	mu      sync.Mutex // guards pending, closed
	pending []*Detector
	closed  bool

	wakeCh chan struct{} // capacity 1: pending is not empty
	stop   chan struct{}
	done   chan struct{}
	once   sync.Once

	decisions atomic.Uint64 // Detector decisions made
	ticks     atomic.Uint64 // ticker periods run

	// Owned by run.
	watched []*Detector
}

// NewGroup validates cfg and starts the Group's goroutine; Close stops it.
func NewGroup(cfg Config) (*Group, error) {
	g, err := newGroup(cfg)
	if err != nil {
		return nil, err
	}
	go g.run()
	return g, nil
}

// newGroup returns a Group whose goroutine is not started: the tests
// drive its decisions with tick.
func newGroup(cfg Config) (*Group, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Group{cfg: cfg, wakeCh: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}, nil
}

// Clock returns the Group's clock: levels must be stamped with its
// readings.
func (g *Group) Clock() Clock { return g.cfg.Clock }

// Ticks returns how many ticker periods the Group has run.
func (g *Group) Ticks() uint64 { return g.ticks.Load() }

// Decisions returns how many Detector decisions the Group has made.
func (g *Group) Decisions() uint64 { return g.decisions.Load() }

// Close stops the Group's goroutine and waits for it. Its Detectors make
// no more decisions.
func (g *Group) Close() {
	g.once.Do(func() {
		g.mu.Lock()
		g.closed = true
		g.pending = nil
		g.mu.Unlock()
		close(g.stop)
	})
	<-g.done
}

// enqueue hands a Detector that became busy to the goroutine.
func (g *Group) enqueue(d *Detector) {
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return
	}
	g.pending = append(g.pending, d)
	g.mu.Unlock()
	select {
	case g.wakeCh <- struct{}{}:
	default:
	}
}

func (g *Group) run() {
	defer close(g.done)
	var ticker *time.Ticker
	var tickC <-chan time.Time
	defer func() {
		if ticker != nil {
			ticker.Stop()
		}
	}()
	for {
		select {
		case <-g.stop:
			return
		case <-g.wakeCh:
			g.adopt()
			if ticker == nil && len(g.watched) > 0 {
				ticker = time.NewTicker(g.cfg.Interval)
				tickC = ticker.C
			}
		case <-tickC:
			g.adopt()
			g.tick(g.cfg.Clock.Nanotime())
			if len(g.watched) == 0 {
				ticker.Stop()
				ticker, tickC = nil, nil
			}
		}
	}
}

// adopt moves the pending Detectors to the watched ones.
func (g *Group) adopt() {
	g.mu.Lock()
	g.watched = append(g.watched, g.pending...)
	clear(g.pending)
	g.pending = g.pending[:0]
	g.mu.Unlock()
}

// tick makes one decision for every watched Detector and stops watching
// those no longer busy. A Detector marked idle here is woken again by its
// next audible level.
func (g *Group) tick(now int64) {
	g.ticks.Add(1)
	kept := g.watched[:0]
	for _, d := range g.watched {
		g.decisions.Add(1)
		if d.evaluate(now) {
			kept = append(kept, d)
		} else {
			d.active.Store(false)
		}
	}
	clear(g.watched[len(kept):])
	g.watched = kept
}
