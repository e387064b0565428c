package forward

import (
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Layer is one of up to three layers of a video source: the same picture
// at quarter, half and full size, each its own RTP stream and Track.
type Layer uint8

// Layers, smallest first.
const (
	LayerQ    Layer = iota // quarter size
	LayerH                 // half size
	LayerF                 // full size
	NumLayers = 3
)

func (l Layer) String() string {
	switch l {
	case LayerQ:
		return "q"
	case LayerH:
		return "h"
	case LayerF:
		return "f"
	}
	return fmt.Sprintf("Layer(%d)", uint8(l))
}

// LayersConfig configures a Layers.
type LayersConfig struct {
	// Tracks are the source's layers, indexed by Layer; nil where the
	// source has no such layer. At least one; all of one video codec and
	// clock rate, with the same header extensions.
	Tracks [NumLayers]*Track
	// StaleAfter is how long a layer may send nothing before it is taken
	// as stopped and its subscribers move to the best remaining one.
	// Default 1 s.
	StaleAfter time.Duration
	// Clock times StaleAfter. Default: the first track's clock.
	Clock Clock
	// Manual leaves the checks for stopped layers to the owner (Check);
	// otherwise a goroutine checks every StaleAfter/4 while the Layers
	// has subscribers, and sleeps while it has none (layers may be added
	// later: AddLayer).
	Manual bool
	// KeepWanted is how long a layer stays wanted (Wanted) after the last
	// subscriber that wanted it stopped wanting it, so that preferences
	// going back and forth do not stop and start its encoding. Default
	// 500 ms.
	KeepWanted time.Duration
	// OnChange, when set, is called after Check found a layer stopped or
	// back (and moved the subscribers concerned), a layer's picture size
	// learnt or changed (Track.PictureSize) or the layers wanted changed
	// (Wanted), with no lock held, from the goroutine that ran Check.
	OnChange func()
}

// Validate reports whether the config is usable. Errors wrap
// ErrInvalidConfig.
func (c LayersConfig) Validate() error {
	var first *Track
	for i, t := range c.Tracks {
		if t == nil {
			continue
		}
		if first == nil {
			first = t
		}
		tc, fc := t.cfg, first.cfg
		switch {
		case tc.Kind != Video:
			return fmt.Errorf("%w: layer %v is not video", ErrInvalidConfig, Layer(i))
		case codecOf(tc.MimeType) != codecOf(fc.MimeType) || tc.ClockRate != fc.ClockRate:
			return fmt.Errorf("%w: layer %v is %s at %d Hz, layer of %s at %d Hz", ErrInvalidConfig,
				Layer(i), tc.MimeType, tc.ClockRate, fc.MimeType, fc.ClockRate)
		case !sameExtensions(tc.Extensions, fc.Extensions):
			return fmt.Errorf("%w: layer %v has other header extensions", ErrInvalidConfig, Layer(i))
		}
	}
	switch {
	case first == nil:
		return fmt.Errorf("%w: no layer", ErrInvalidConfig)
	case c.StaleAfter < 0:
		return fmt.Errorf("%w: StaleAfter %v", ErrInvalidConfig, c.StaleAfter)
	case c.KeepWanted < 0:
		return fmt.Errorf("%w: KeepWanted %v", ErrInvalidConfig, c.KeepWanted)
	}
	return nil
}

func sameExtensions(a, b []Extension) bool {
	key := func(e Extension) string { return fmt.Sprintf("%d %s", e.ID, e.URI) }
	ka, kb := make([]string, 0, len(a)), make([]string, 0, len(b))
	for _, e := range a {
		ka = append(ka, key(e))
	}
	for _, e := range b {
		kb = append(kb, key(e))
	}
	slices.Sort(ka)
	slices.Sort(kb)
	return slices.Equal(ka, kb)
}

// Layers groups the tracks of one source published as layers and feeds
// each of its subscribers one layer at a time: the highest live layer
// within the subscriber's target (or the lowest live one when none is
// within it). A switch is made before it breaks: the current layer keeps
// flowing until the target layer's key frame, then the subscriber is
// spliced onto it with its sequence numbers, timestamps, VP8 picture IDs
// and TL0PICIDX continuous (layerswitch.go). A layer that sends nothing
// for StaleAfter moves its subscribers to the best remaining one, and they
// move back when it returns.
//
// The tracks stay the caller's: Layers never closes them.
type Layers struct {
	cfg       LayersConfig
	codec     codec
	switched  atomic.Uint64 // switches made, counted by the target's section
	deferred  atomic.Uint64 // key frames a switch let pass while the one before still settled
	paramSets atomic.Uint64 // H.264 SPS and PPS sent ahead of an IDR that had none

	// mu guards subs, live, seenN, seenAt, size, want and closed. It is never held on
	// the packet path; Attach takes it inside a Subscriber's mu, nothing
	// takes a Subscriber's mu under it.
	mu     sync.Mutex
	subs   map[*Subscriber]*layerSel
	live   [NumLayers]bool
	seenN  [NumLayers]uint64 // the layer's PacketsIn at the last check
	seenAt [NumLayers]int64  // when it last changed
	size   [NumLayers]uint32 // the layer's picture size at the last check
	want   wantState         // the layers wanted (layerwant.go)
	closed bool

	wake chan struct{} // the watcher has subscribers to watch (capacity 1)
	stop chan struct{}
	done chan struct{} // closed when the watcher has ended; nil without one
}

// layerSel is a subscriber's selection, guarded by Layers.mu.
type layerSel struct {
	max Layer // the highest layer it wants
}

// NewLayers groups the configured tracks.
func NewLayers(cfg LayersConfig) (*Layers, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	var first *Track
	for _, t := range cfg.Tracks {
		if t != nil && first == nil {
			first = t
		}
	}
	if cfg.StaleAfter == 0 {
		cfg.StaleAfter = time.Second
	}
	if cfg.Clock == nil {
		cfg.Clock = first.clock
	}
	if cfg.KeepWanted == 0 {
		cfg.KeepWanted = 500 * time.Millisecond
	}
	l := &Layers{cfg: cfg, codec: first.codec, subs: map[*Subscriber]*layerSel{}}
	now := cfg.Clock.Nanotime()
	for i, t := range cfg.Tracks {
		if t != nil {
			l.live[i], l.seenN[i], l.seenAt[i] = true, t.cnt.packetsIn.Load(), now
		}
	}
	if !cfg.Manual {
		l.wake, l.stop, l.done = make(chan struct{}, 1), make(chan struct{}), make(chan struct{})
		go l.watch()
	}
	return l, nil
}

// Subscribe creates a subscriber fed by the best layer up to max. It
// starts on that layer's key frame, like any subscriber.
func (l *Layers) Subscribe(cfg SubscriberConfig, max Layer) (*Subscriber, error) {
	s, err := NewSubscriber(cfg)
	if err != nil {
		return nil, err
	}
	if err := l.Attach(s, max); err != nil {
		return nil, err
	}
	return s, nil
}

// Attach makes a new subscriber (NewSubscriber, its gate set as wanted) a
// subscriber of the layers, fed by the best layer up to max. A subscriber
// that was ever attached is refused with ErrAttached.
func (l *Layers) Attach(s *Subscriber, max Layer) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.shut.Load() {
		return ErrClosed
	}
	if s.lay != nil || s.src.Load() != nil {
		return ErrAttached
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return ErrClosed
	}
	s.lay = &layerState{owner: l}
	s.src.Store(l.cfg.Tracks[l.best(max)])
	for _, t := range l.cfg.Tracks {
		if t != nil && !t.add(s) {
			s.src.Store(nil)
			l.detach(s, l.cfg.Tracks)
			return fmt.Errorf("%w: a layer's track", ErrClosed)
		}
	}
	l.subs[s] = &layerSel{max: max}
	if len(l.subs) == 1 {
		l.poke()
	}
	return nil
}

// SetMax sets the highest layer s wants. When that changes the layer it
// gets, the switch waits for the new layer's key frame (asked for now)
// while the current one keeps flowing. It never blocks a packet path.
func (l *Layers) SetMax(s *Subscriber, max Layer) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	sel, ok := l.subs[s]
	if !ok {
		return ErrNotLayered
	}
	sel.max = max
	l.route(s, sel)
	return nil
}

// Layer returns the layer that feeds s now, and the one it is switching
// to (ok false when it is not switching).
func (l *Layers) Layer(s *Subscriber) (cur Layer, next Layer, switching bool, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := l.subs[s]; !ok {
		return 0, 0, false, ErrNotLayered
	}
	cur = l.layerOf(s.src.Load())
	if pd := s.pend.Load(); pd != nil {
		return cur, l.layerOf(pd.to), true, nil
	}
	return cur, 0, false, nil
}

func (l *Layers) layerOf(t *Track) Layer {
	for i, u := range l.cfg.Tracks {
		if u == t && t != nil {
			return Layer(i)
		}
	}
	return NumLayers // none
}

// Tracks returns the layers' tracks, indexed by Layer (nil where none).
func (l *Layers) Tracks() [NumLayers]*Track {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.cfg.Tracks
}

// AddLayer adds a layer's track that arrived after the others (a
// publisher's streams start one by one): every subscriber is put in its
// snapshot and routed again. A layer already present, or a track that
// does not match the others (LayersConfig.Validate), is refused with
// ErrInvalidConfig.
func (l *Layers) AddLayer(layer Layer, t *Track) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return ErrClosed
	}
	if layer >= NumLayers || l.cfg.Tracks[layer] != nil {
		return fmt.Errorf("%w: layer %v already there", ErrInvalidConfig, layer)
	}
	cfg := l.cfg
	cfg.Tracks[layer] = t
	if err := cfg.Validate(); err != nil {
		return err
	}
	l.cfg.Tracks[layer] = t
	l.live[layer], l.seenN[layer], l.seenAt[layer] = true, t.cnt.packetsIn.Load(), l.cfg.Clock.Nanotime()
	for s := range l.subs {
		if !t.add(s) {
			break // closed: Check finds it not live
		}
	}
	for s, sel := range l.subs {
		l.route(s, sel)
	}
	l.poke() // a new lowest layer leaves the one before held wanted: watched until released
	return nil
}

// poke wakes the watcher if it sleeps. Called with l.mu held.
func (l *Layers) poke() {
	if l.wake != nil {
		select {
		case l.wake <- struct{}{}:
		default:
		}
	}
}

// PictureSize returns the picture size of the track's publisher, learnt
// from its key frames; ok false until one was seen.
func (t *Track) PictureSize() (width, height int, ok bool) {
	v := t.mt.size.Load()
	return int(v >> 16), int(v & 0xffff), v != 0
}

// Switches returns how many layer switches were made.
func (l *Layers) Switches() uint64 { return l.switched.Load() }

// Deferred returns how many key frames a pending switch let pass because
// the switch before it was still waiting for a section of the layer before
// that to be left (it then waits for the next key frame).
func (l *Layers) Deferred() uint64 { return l.deferred.Load() }

// ParameterSetsSent returns how many times an H.264 subscriber starting on
// an IDR without an SPS was sent its layer's last SPS and PPS first.
func (l *Layers) ParameterSetsSent() uint64 { return l.paramSets.Load() }

// SetMute sets a mute source on every layer (Track.SetMute): a self mute
// gives each subscriber empty frames at the size of its layer, an admin
// mute forwards nothing from any layer.
func (l *Layers) SetMute(src MuteSource, on bool) MuteState {
	st := MuteNone
	for _, t := range l.Tracks() {
		if t != nil {
			st = t.SetMute(src, on)
		}
	}
	return st
}

// Check looks for layers that stopped sending (nothing for StaleAfter) or
// came back, and moves the subscribers concerned. The watcher calls it;
// with Manual set, the owner does.
func (l *Layers) Check() {
	if l.check() && l.cfg.OnChange != nil {
		l.cfg.OnChange()
	}
}

// check is Check under l.mu, reporting whether a layer stopped, came
// back or changed its picture size.
func (l *Layers) check() bool {
	now := l.cfg.Clock.Nanotime()
	l.mu.Lock()
	defer l.mu.Unlock()
	changed, resized := false, false
	for i, t := range l.cfg.Tracks {
		if t == nil {
			continue
		}
		if n := t.cnt.packetsIn.Load(); n != l.seenN[i] {
			l.seenN[i], l.seenAt[i] = n, now
		}
		live := !t.shut.Load() && now-l.seenAt[i] < int64(l.cfg.StaleAfter)
		changed = changed || live != l.live[i]
		l.live[i] = live
		if sz := t.mt.size.Load(); sz != l.size[i] {
			l.size[i], resized = sz, true
		}
	}
	if changed {
		for s, sel := range l.subs {
			l.route(s, sel)
		}
	}
	wanted := l.wanted(now)
	rewanted := wanted != l.want.checked
	l.want.checked = wanted
	return changed || resized || rewanted
}

// Best returns the layer a subscriber wanting up to max gets now: the
// highest live one within max, else the lowest live one (with none live,
// the same among the layers present).
func (l *Layers) Best(max Layer) Layer {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.best(max)
}

// best returns the layer for a subscriber wanting up to max: the highest
// live one within it, else the lowest live one; with none live, the same
// among the configured ones. Called with l.mu held.
func (l *Layers) best(max Layer) Layer {
	for _, liveOnly := range []bool{true, false} {
		pick := -1
		for i := NumLayers - 1; i >= 0; i-- {
			if l.cfg.Tracks[i] == nil || (liveOnly && !l.live[i]) {
				continue
			}
			if Layer(i) <= max {
				return Layer(i)
			}
			pick = i // the lowest above max, so far
		}
		if pick >= 0 {
			return Layer(pick)
		}
	}
	return 0 // unreachable: Validate wants a track
}

// target returns the layer s should head for: the best one for its max,
// or, when that is no higher than the layer feeding s (live) and the
// layer it would get were every layer live (Nearest) is not live, that
// one: a layer stopped for having no receiver (layerwant.go) is resumed
// for s, which keeps its current layer until the resumed one's first key
// frame rather than dip to a lower one meanwhile. Called with l.mu held.
func (l *Layers) target(s *Subscriber, sel *layerSel) Layer {
	want, near := l.best(sel.max), l.nearest(sel.max)
	if near == want || l.live[near] {
		return want
	}
	cur := l.layerOf(s.src.Load())
	if cur < NumLayers && l.live[cur] && want <= cur {
		return near
	}
	return want
}

// route makes s head for the layer it should get: nothing when it has it,
// else a pending switch to it (replacing one to another layer). Called
// with l.mu held, never from a section.
func (l *Layers) route(s *Subscriber, sel *layerSel) {
	want := l.cfg.Tracks[l.target(s, sel)]
	for range 2 {
		pd := s.pend.Load()
		if want == s.src.Load() {
			if pd == nil {
				return
			}
			// Called off; a commit under way in its target's section is
			// waited out, after which src says who won.
			s.pend.Store(nil)
			pd.to.barrier()
			continue
		}
		if pd != nil && pd.to == want {
			return
		}
		s.pend.Store(&pending{to: want})
		if pd != nil {
			pd.to.barrier() // the old target can no longer take it over
		}
		want.RequestKeyFrame()
		return
	}
}

// forget takes s out of the Layers and of every layer's snapshot, with no
// switch pending; Subscriber.Close calls it before detaching s from its
// feeding track.
func (l *Layers) forget(s *Subscriber) {
	l.mu.Lock()
	_, ok := l.subs[s]
	delete(l.subs, s)
	tracks := l.cfg.Tracks
	l.mu.Unlock()
	if ok {
		l.detach(s, tracks)
	}
}

// detach cancels s's pending switch and removes it from every layer but
// the one feeding it (Subscriber.Close removes that one and waits it out).
func (l *Layers) detach(s *Subscriber, tracks [NumLayers]*Track) {
	if pd := s.pend.Swap(nil); pd != nil {
		pd.to.barrier()
	}
	src := s.src.Load()
	for _, t := range tracks {
		if t != nil && t != src {
			t.remove(s)
		}
	}
}

// Close stops the watcher and closes the subscribers made by Subscribe.
func (l *Layers) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	subs := make([]*Subscriber, 0, len(l.subs))
	for s := range l.subs {
		subs = append(subs, s)
	}
	l.mu.Unlock()
	if l.done != nil {
		close(l.stop)
		<-l.done
	}
	for _, s := range subs {
		_ = s.Close()
	}
	return nil
}

// watch runs Check every StaleAfter/4 while there are subscribers, or a
// layer is still held wanted (KeepWanted) after the last one left.
func (l *Layers) watch() {
	defer close(l.done)
	every := l.cfg.StaleAfter / 4
	tick := time.NewTimer(every)
	defer tick.Stop()
	for {
		l.mu.Lock()
		idle := len(l.subs) == 0 && !l.holding()
		l.mu.Unlock()
		if idle {
			tick.Stop()
			select {
			case <-l.wake:
				l.Check() // notes the layers wanted now: holding
				tick.Reset(every)
				continue
			case <-l.stop:
				return
			}
		}
		select {
		case <-tick.C:
			l.Check()
			tick.Reset(every)
		case <-l.stop:
			return
		}
	}
}
