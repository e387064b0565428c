package speaker

import (
	"cmp"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
)

// Speaker is one entry of a Detector's order.
type Speaker struct {
	// Key is the source's key (a user or track id of the caller's
	// choosing).
	Key string
	// Level is the loudest level of the source's last 100 ms in -dBov:
	// 0 the loudest, 127 silence.
	Level int
}

// A Detector keeps the speakers of one channel. Its sources are fed from
// packet paths (Source.Level, Detector.Level); the Group decides.
type Detector struct {
	g   *Group         // immutable
	cfg DetectorConfig // immutable

	refused atomic.Uint64
	active  atomic.Bool // queued for or watched by the Group's goroutine
	closed  atomic.Bool
	index   atomic.Pointer[map[string]*Source] // replaced under mu

	mu      sync.Mutex // guards sources, added, last, and Source.muted/sinceMs
	sources []*Source
	added   int
	last    []Speaker

	// Owned by the Group's goroutine.
	scratch  []entry
	order    []*Source
	reported []*Source
	dominant *Source
	frames   [numFrames]uint8
}

// entry is a source as one decision sees it.
type entry struct {
	src     *Source
	muted   bool
	sinceMs int64
}

// NewDetector returns a Detector decided by g.
func (g *Group) NewDetector(cfg DetectorConfig) (*Detector, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	g.mu.Lock()
	closed := g.closed
	g.mu.Unlock()
	if closed {
		return nil, ErrClosed
	}
	d := &Detector{g: g, cfg: cfg}
	d.index.Store(&map[string]*Source{})
	return d, nil
}

// Add adds an audio source under key and returns it; the packet path
// keeps it and calls its Level method. It refuses an empty key with
// ErrEmptyKey and a key already added with ErrDuplicateSource.
func (d *Detector) Add(key string) (*Source, error) {
	if key == "" {
		return nil, ErrEmptyKey
	}
	if d.closed.Load() {
		return nil, ErrClosed
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	old := *d.index.Load()
	if _, ok := old[key]; ok {
		return nil, fmt.Errorf("%w: %q", ErrDuplicateSource, key)
	}
	d.added++
	s := &Source{key: key, det: d, order: d.added}
	d.sources = append(d.sources, s)
	d.index.Store(withKey(old, key, s))
	return s, nil
}

// withKey returns a copy of m with key set to s, or deleted when s is nil.
func withKey(m map[string]*Source, key string, s *Source) *map[string]*Source {
	n := make(map[string]*Source, len(m)+1)
	for k, v := range m {
		n[k] = v
	}
	if s != nil {
		n[key] = s
	} else {
		delete(n, key)
	}
	return &n
}

// Level records a level for the source added under key (see
// Source.Level); a packet path that keeps the *Source saves the lookup.
// An unknown key is refused with ErrUnknownSource and counted.
func (d *Detector) Level(key string, level uint8, voiced bool, now int64) error {
	s, ok := (*d.index.Load())[key]
	if !ok {
		d.refused.Add(1)
		return ErrUnknownSource
	}
	return s.Level(level, voiced, now)
}

// Remove removes the source added under key: it leaves the order at the
// next decision.
func (d *Detector) Remove(key string) error {
	d.mu.Lock()
	s, ok := (*d.index.Load())[key]
	if ok {
		s.removed.Store(true)
		d.sources = slices.DeleteFunc(d.sources, func(x *Source) bool { return x == s })
		d.index.Store(withKey(*d.index.Load(), key, nil))
	}
	d.mu.Unlock()
	if !ok {
		return fmt.Errorf("%w: %q", ErrUnknownSource, key)
	}
	d.wake()
	return nil
}

// SetMuted mutes or unmutes the source added under key. A muted source
// never speaks: it leaves the order at the next decision and cannot
// become dominant; on unmute, the levels it sent while muted are ignored.
func (d *Detector) SetMuted(key string, muted bool) error {
	now := d.g.cfg.Clock.Nanotime() / 1e6
	d.mu.Lock()
	s, ok := (*d.index.Load())[key]
	changed := ok && s.muted != muted
	if changed {
		s.muted = muted
		if !muted {
			s.sinceMs = now
		}
	}
	d.mu.Unlock()
	if !ok {
		return fmt.Errorf("%w: %q", ErrUnknownSource, key)
	}
	if changed {
		d.wake()
	}
	return nil
}

// Speakers returns the order last passed to OnChange.
func (d *Detector) Speakers() []Speaker {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.last)
}

// Refused returns how many levels were refused (out of range, unknown or
// removed source).
func (d *Detector) Refused() uint64 { return d.refused.Load() }

// Close stops the decisions of d: no OnChange call starts after Close
// returns, except one the Group's goroutine had already begun. Sources
// keep accepting levels, which are ignored.
func (d *Detector) Close() { d.closed.Store(true) }

// wake makes sure the Group watches d.
func (d *Detector) wake() {
	if !d.closed.Load() && d.active.CompareAndSwap(false, true) {
		d.g.enqueue(d)
	}
}

// evaluate makes one decision at now (Group clock nanoseconds) and calls
// OnChange when the order changed. It reports whether d stays busy: some
// source was heard within the window, or the order just changed.
func (d *Detector) evaluate(now int64) bool {
	if d.closed.Load() {
		return false
	}
	nowMs := now / 1e6
	d.mu.Lock()
	d.scratch = d.scratch[:0]
	for _, s := range d.sources {
		d.scratch = append(d.scratch, entry{src: s, muted: s.muted, sinceMs: s.sinceMs})
	}
	d.mu.Unlock()

	busy, domOK := false, false
	for i := range d.scratch {
		e := &d.scratch[i]
		if e.muted {
			e.src.act = activity{}
			continue
		}
		covered := e.src.frames(&d.frames, nowMs, e.sinceMs, d.cfg.VoiceFlag)
		e.src.updateFloor(&d.frames, covered, nowMs)
		e.src.act = measure(&d.frames, e.src.floor)
		busy = busy || e.src.act.heard
		domOK = domOK || e.src == d.dominant
	}
	if !domOK {
		d.dominant = nil
	}
	d.decide()
	if !d.reorder() {
		return busy
	}
	list := make([]Speaker, len(d.order))
	for i, s := range d.order {
		list[i] = Speaker{Key: s.key, Level: 127 - int(s.act.loudest)}
	}
	d.mu.Lock()
	d.last = list
	d.mu.Unlock()
	if !d.closed.Load() {
		d.cfg.OnChange(slices.Clone(list))
	}
	return true
}

// decide applies the dominant speaker rule. Without a dominant speaker
// (none yet, or it was removed or muted) the most active speaking source
// takes the role. Otherwise a challenger takes it only by beating it on
// all three horizons; among several, the one that beats it most on the
// medium horizon.
func (d *Detector) decide() {
	if d.dominant == nil {
		for i := range d.scratch {
			e := &d.scratch[i]
			if !e.muted && e.src.act.long > 0 && (d.dominant == nil || moreActive(e.src, d.dominant)) {
				d.dominant = e.src
			}
		}
		return
	}
	best, bestBy := (*Source)(nil), c2
	for i := range d.scratch {
		e := &d.scratch[i]
		if e.muted || e.src == d.dominant {
			continue
		}
		if by, ok := beats(&e.src.act, &d.dominant.act); ok && by > bestBy {
			best, bestBy = e.src, by
		}
	}
	if best != nil {
		d.dominant = best
	}
}

// moreActive orders sources by activity: long, then medium, then
// immediate horizon, then the earlier added.
func moreActive(a, b *Source) bool { return compareActivity(a, b) < 0 }

func compareActivity(a, b *Source) int {
	return cmp.Or(
		cmp.Compare(b.act.long, a.act.long),
		cmp.Compare(b.act.medium, a.act.medium),
		cmp.Compare(b.act.immediate, a.act.immediate),
		cmp.Compare(a.order, b.order))
}

// reorder computes the order (the dominant speaker, then the other
// sources with a full loud block in the window, most active first) and
// reports whether its keys differ from the last reported.
func (d *Detector) reorder() bool {
	d.order = d.order[:0]
	if d.dominant != nil {
		d.order = append(d.order, d.dominant)
	}
	for i := range d.scratch {
		e := &d.scratch[i]
		if !e.muted && e.src != d.dominant && e.src.act.long > 0 {
			d.order = append(d.order, e.src)
		}
	}
	if len(d.order) > 1 {
		slices.SortFunc(d.order[1:], compareActivity)
	}
	if slices.EqualFunc(d.order, d.reported, func(a, b *Source) bool { return a.key == b.key }) {
		return false
	}
	d.reported = append(d.reported[:0], d.order...)
	return true
}
