package forward

import (
	"fmt"
	"sync"
	"time"
)

// Pulse keeps empty media flowing: it calls Pump on each of its tracks at
// a steady interval, from one goroutine, so a muted track's cadence holds
// even when its publisher sends nothing. Publisher packets pump too, so
// the interval only needs to be as fine as the audio frame (10 ms default).
type Pulse struct {
	mu     sync.Mutex // guards tracks
	tracks map[*Track]struct{}
	stop   chan struct{}
	done   chan struct{}
	once   sync.Once
}

// NewPulse starts a pulse. interval is from 1 ms to 1 s; 0 means 10 ms.
func NewPulse(interval time.Duration) (*Pulse, error) {
	if interval == 0 {
		interval = 10 * time.Millisecond
	}
	if interval < time.Millisecond || interval > time.Second {
		return nil, fmt.Errorf("%w: pulse interval %v", ErrInvalidConfig, interval)
	}
	p := &Pulse{tracks: map[*Track]struct{}{}, stop: make(chan struct{}), done: make(chan struct{})}
	go p.run(interval)
	return p, nil
}

// Add makes the pulse pump t.
func (p *Pulse) Add(t *Track) {
	p.mu.Lock()
	p.tracks[t] = struct{}{}
	p.mu.Unlock()
}

// Remove stops pumping t.
func (p *Pulse) Remove(t *Track) {
	p.mu.Lock()
	delete(p.tracks, t)
	p.mu.Unlock()
}

func (p *Pulse) run(interval time.Duration) {
	defer close(p.done)
	tick := time.NewTicker(interval)
	defer tick.Stop()
	var batch []*Track
	for {
		select {
		case <-p.stop:
			return
		case <-tick.C:
		}
		batch = batch[:0]
		p.mu.Lock()
		for t := range p.tracks {
			batch = append(batch, t)
		}
		p.mu.Unlock()
		for _, t := range batch { // outside the lock
			if !t.shut.Load() {
				t.Pump()
			}
		}
	}
}

// Close stops the pulse and waits for its goroutine.
func (p *Pulse) Close() error {
	p.once.Do(func() { close(p.stop) })
	<-p.done
	return nil
}
