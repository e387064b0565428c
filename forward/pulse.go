package forward

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// Pulse keeps empty media flowing: it calls Pump on those of its tracks
// that generate empty media (muted, or unmuting and waiting for the
// publisher's key frame, or flushing an admin mute), at a steady interval,
// from one goroutine, so a muted track's cadence holds even when its
// publisher sends nothing. Publisher packets pump too, so the interval
// only needs to be as fine as the audio frame (10 ms default).
//
// Its timer runs only while some track generates empty media: a track
// tells its pulse when it starts to, and the pulse lets it go at the first
// tick after it stopped. With none, the pulse's goroutine sleeps on a
// channel and nothing ticks.
type Pulse struct {
	interval time.Duration
	mu       sync.Mutex          // guards tracks and active; taken off the packet path only
	tracks   map[*Track]struct{} // added and not removed
	active   map[*Track]struct{} // of those, the ones pumped at each tick
	kick     chan struct{}       // a track became active
	stop     chan struct{}
	done     chan struct{}
	once     sync.Once
	ticks    atomic.Uint64
	ticking  atomic.Bool
}

// PulseStats counts what a pulse did.
type PulseStats struct {
	Ticks   uint64 // timer ticks so far
	Tracks  int    // tracks added and not removed
	Active  int    // of those, tracks pumped at each tick
	Ticking bool   // the timer runs
}

// NewPulse starts a pulse. interval is from 1 ms to 1 s; 0 means 10 ms.
func NewPulse(interval time.Duration) (*Pulse, error) {
	if interval == 0 {
		interval = 10 * time.Millisecond
	}
	if interval < time.Millisecond || interval > time.Second {
		return nil, fmt.Errorf("%w: pulse interval %v", ErrInvalidConfig, interval)
	}
	p := &Pulse{interval: interval, tracks: map[*Track]struct{}{}, active: map[*Track]struct{}{},
		kick: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	go p.run()
	return p, nil
}

// Add makes the pulse pump t whenever it generates empty media.
func (p *Pulse) Add(t *Track) {
	p.mu.Lock()
	p.tracks[t] = struct{}{}
	p.mu.Unlock()
	t.pulse.Store(p) // before needPulse is read: see Track.notePulse
	if t.needPulse.Load() || t.MuteState() != MuteNone {
		p.wake(t)
	}
}

// Remove stops pumping t.
func (p *Pulse) Remove(t *Track) {
	t.pulse.CompareAndSwap(p, nil)
	p.mu.Lock()
	delete(p.tracks, t)
	delete(p.active, t)
	p.mu.Unlock()
}

// wake makes t active, and starts the timer if it was stopped.
func (p *Pulse) wake(t *Track) {
	p.mu.Lock()
	_, known := p.tracks[t]
	if known {
		p.active[t] = struct{}{}
	}
	p.mu.Unlock()
	if known {
		select {
		case p.kick <- struct{}{}:
		default:
		}
	}
}

// Stats returns the pulse's counters.
func (p *Pulse) Stats() PulseStats {
	p.mu.Lock()
	defer p.mu.Unlock()
	return PulseStats{Ticks: p.ticks.Load(), Tracks: len(p.tracks), Active: len(p.active), Ticking: p.ticking.Load()}
}

func (p *Pulse) run() {
	defer close(p.done)
	var batch []*Track
	for {
		// Nothing to pump: no timer, sleep until a track needs it.
		select {
		case <-p.stop:
			return
		case <-p.kick:
		}
		p.ticking.Store(true)
		tick := time.NewTicker(p.interval)
		for {
			var n int
			batch, n = p.pumpActive(batch[:0])
			if n == 0 && !p.pending() {
				break
			}
			select {
			case <-p.stop:
				tick.Stop()
				p.ticking.Store(false)
				return
			case <-tick.C:
				p.ticks.Add(1)
			}
		}
		tick.Stop()
		p.ticking.Store(false)
	}
}

// pending reports whether a track was woken since the last look.
func (p *Pulse) pending() bool {
	select {
	case <-p.kick:
		return true
	default:
		return false
	}
}

// pumpActive pumps the active tracks (outside the lock), then lets go of
// those that no longer generate empty media. It returns the batch, for
// reuse, and how many tracks are still active.
func (p *Pulse) pumpActive(batch []*Track) ([]*Track, int) {
	p.mu.Lock()
	for t := range p.active {
		batch = append(batch, t)
	}
	p.mu.Unlock()
	for _, t := range batch {
		if !t.shut.Load() {
			t.Pump()
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, t := range batch {
		// needPulse is read under mu: a track that needs the pulse again
		// stores it before it wakes the pulse (under mu), so it is kept or
		// added back.
		if t.shut.Load() || !t.needPulse.Load() {
			delete(p.active, t)
		}
	}
	return batch, len(p.active)
}

// Close stops the pulse and waits for its goroutine.
func (p *Pulse) Close() error {
	p.once.Do(func() { close(p.stop) })
	<-p.done
	return nil
}
