package bwe

import "slices"

// MaxLayers is the most layers a stream has.
const MaxLayers = 3

// Stream is one stream a transport sends, as the Allocator sees it. The
// caller fills the inputs before each Allocate and keeps the Stream
// between calls: Layer and the hold time are its state.
type Stream struct {
	// Audio streams are allocated first and never cut.
	Audio bool
	// Priority orders video streams: higher first (an explicit receive
	// preference above a screen share above the rest); equal priorities
	// keep the caller's order.
	Priority int
	// Rates are the layers' measured rates in bit/s, lowest layer first;
	// 0 for a layer that is not sent. A single-layer stream uses Rates[0].
	Rates [MaxLayers]float64
	// Max is the highest layer wanted (the receive preference); -1 when
	// the stream is paused by preference.
	Max int

	// Layer is the allocated layer, -1 when paused. Limited reports
	// whether the budget kept it below Max (or paused it).
	Layer   int
	Limited bool
	fitAt   int64 // ns: since when a higher layer has fit with headroom; 0 when none
	cut     bool  // the budget moved it down, and it has not been unlimited since
	// A stream paused for bandwidth gets nothing that would raise the
	// estimate when nothing else is sent: after a backoff it is tried
	// again on its lowest layer for TrialFor, kept there unless the
	// estimate is cut meanwhile.
	pausedAt    int64 // ns: when it was paused for bandwidth, when paused
	paused      bool
	backoff     int64   // ns: the wait before the next trial
	trialUntil  int64   // ns: the end of the trial under way; 0 when none
	trialBudget float64 // the budget when the trial started
	// A move up after a cut that is cut again within UpHold doubles the
	// hold before the next one (from 2 × UpHold to TrialMax); one that
	// holds resets it.
	upAt      int64 // ns: the last move up after a cut, 0 once judged
	upBackoff int64 // ns
	started   bool
	startAt   int64 // ns: the first allocation
}

// AllocConfig tunes an Allocator; zero values are documented defaults.
type AllocConfig struct {
	// UpHeadroom is the margin a higher layer needs over its rate before
	// the stream moves up to it. Default 0.15.
	UpHeadroom float64
	// UpHold is how long (ns) a higher layer must keep fitting with
	// headroom before the stream moves up. Default 2 s.
	UpHold int64
	// TrialAfter is how long (ns) a stream stays paused for bandwidth
	// before its lowest layer is tried again; it doubles after each
	// trial that fails, up to TrialMax. Defaults 5 s and 40 s.
	TrialAfter, TrialMax int64
	// TrialFor is how long (ns) a trial lasts. Default 2 s.
	TrialFor int64
	// KeepLowest is the margin by which a stream's lowest layer may
	// exceed what is left for it and still be kept rather than paused:
	// a pause costs the subscriber the whole picture for seconds, so it
	// takes a budget clearly short of the lowest layer, not one over-use
	// cut (15 % under the rate sent) of a stream that has one layer.
	// Default 0.25.
	KeepLowest float64
	// StartGrace is how long (ns) a new stream is sent what it wants
	// whatever the budget: the estimate a transport starts from is a
	// guess until its feedback has measured what the path delivers.
	// Default 0: none.
	StartGrace int64
}

// Allocator shares a transport's estimate among its streams: audio first,
// then video streams by priority, each at the highest layer that fits in
// what is left, paused when even its lowest does not (by more than
// KeepLowest, for a stream sending now). A stream moves
// down at once; after such a cut it moves up only when the higher layer
// has fitted with headroom for the hold time, so it does not oscillate;
// a move up that is cut again within the hold time doubles the next
// hold.
// A stream the budget never cut moves up at once when there is headroom
// (a preference raised, a layer that comes back). A stream paused for
// bandwidth is tried again on its lowest layer after a backoff (5 s,
// doubling up to 40 s while trials fail), so that a paused stream, which
// sends nothing the estimate could rise on, is not stuck. It is not safe for
// concurrent use.
type Allocator struct {
	cfg   AllocConfig
	order []*Stream
	// probed: a probe cluster raised the estimate since the last
	// Allocate; the room it showed moves a stream up without the hold.
	probed bool
}

// Probed tells the allocator that a probe raised the estimate (the path
// delivered a cluster at that rate): at the next Allocate, a stream
// whose higher layer fits with headroom moves up at once, without the
// hold a move up after a cut otherwise waits.
func (a *Allocator) Probed() { a.probed = true }

// NewAllocator returns an allocator.
func NewAllocator(cfg AllocConfig) *Allocator {
	if cfg.UpHeadroom <= 0 {
		cfg.UpHeadroom = 0.15
	}
	if cfg.UpHold <= 0 {
		cfg.UpHold = 2e9
	}
	if cfg.TrialAfter <= 0 {
		cfg.TrialAfter = 5e9
	}
	if cfg.TrialMax <= 0 {
		cfg.TrialMax = 40e9
	}
	if cfg.TrialFor <= 0 {
		cfg.TrialFor = 2e9
	}
	if cfg.KeepLowest <= 0 {
		cfg.KeepLowest = 0.25
	}
	return &Allocator{cfg: cfg}
}

// Allocate shares budget (bit/s) among streams at now (ns), setting each
// one's Layer and Limited.
func (a *Allocator) Allocate(budget float64, now int64, streams []*Stream) {
	left := budget
	a.order = a.order[:0]
	for _, s := range streams {
		if s.Audio {
			s.Layer, s.Limited = 0, false
			left -= s.Rates[0]
			continue
		}
		a.order = append(a.order, s)
	}
	slices.SortStableFunc(a.order, func(x, y *Stream) int { return y.Priority - x.Priority })
	for _, s := range a.order {
		want := top(s, s.Max)
		if want < 0 { // paused by preference, or no rate measured yet
			s.Layer, s.Limited, s.fitAt = -1, false, 0
			continue
		}
		if !s.started { // starts unconstrained; the estimate corrects it
			s.Layer, s.started, s.startAt = want, true, now
		}
		if now-s.startAt < a.cfg.StartGrace {
			s.Layer, s.Limited = want, false
			left -= s.Rates[want]
			continue
		}
		fit := -1 // the highest layer up to want that fits now
		for l := want; l >= 0; l-- {
			if r := s.Rates[l]; r > 0 && r <= left {
				fit = l
				break
			}
		}
		if lowest := bottom(s, want); fit < 0 && lowest >= 0 && s.Layer >= 0 &&
			s.Rates[lowest] <= left*(1+a.cfg.KeepLowest) {
			fit = lowest // short of it by less than the margin: kept, not paused
		}
		next := fit
		if fit > s.Layer { // up: only with headroom, held after a cut
			roomy := s.Rates[fit]*(1+a.cfg.UpHeadroom) <= left
			switch {
			case roomy && !s.cut:
				// never cut for bandwidth (a preference raised, a layer
				// back): at once
			case roomy && a.probed:
				// a probe showed the room: at once
				s.fitAt, s.upAt = 0, now
			case !roomy || s.fitAt == 0:
				if roomy {
					s.fitAt = now
				}
				next = max(s.Layer, -1)
				if s.Layer >= 0 && s.Rates[s.Layer] == 0 {
					next = fit // its layer stopped: take what fits
				}
			case now-s.fitAt < max(a.cfg.UpHold, s.upBackoff):
				next = s.Layer
			default:
				s.fitAt, s.upAt = 0, now
			}
		} else {
			s.fitAt = 0
		}
		next = a.trial(s, next, want, budget, now)
		if next < s.Layer {
			s.cut = true
			if s.upAt != 0 && now-s.upAt < a.cfg.UpHold { // the move up failed: wait longer next time
				s.upBackoff = min(max(2*s.upBackoff, 2*a.cfg.UpHold), a.cfg.TrialMax)
			}
			s.upAt = 0
		} else if s.upAt != 0 && now-s.upAt >= a.cfg.UpHold {
			s.upAt, s.upBackoff = 0, 0 // the move up held
		}
		s.Layer = next
		s.Limited = next < want
		if !s.Limited {
			s.cut = false
		}
		if next >= 0 {
			left -= s.Rates[next]
		}
	}
	a.probed = false
}

// top returns the highest layer up to max that is sent, -1 for none.
func top(s *Stream, max int) int {
	for l := min(max, MaxLayers-1); l >= 0; l-- {
		if s.Rates[l] > 0 {
			return l
		}
	}
	return -1
}

// bottom returns the lowest layer up to max that is sent, -1 for none.
func bottom(s *Stream, max int) int {
	for l := 0; l <= min(max, MaxLayers-1); l++ {
		if s.Rates[l] > 0 {
			return l
		}
	}
	return -1
}

// trial returns the layer of a stream paused for bandwidth, or under
// trial, given next, the layer the budget gives it.
func (a *Allocator) trial(s *Stream, next, want int, budget float64, now int64) int {
	lowest := bottom(s, want)
	if s.trialUntil != 0 {
		switch {
		case now < s.trialUntil && budget >= 0.95*s.trialBudget:
			return max(next, lowest) // kept while the estimate answers
		case now >= s.trialUntil && next >= 0:
			s.trialUntil, s.backoff = 0, 0 // it fits now
			return next
		default: // cut during the trial, or still no room at its end
			s.trialUntil = 0
			s.backoff = min(2*s.backoff, a.cfg.TrialMax)
			s.pausedAt, s.paused = now, true
			return -1
		}
	}
	if next >= 0 {
		s.paused = false
		return next
	}
	if !s.paused {
		s.pausedAt, s.paused = now, true
	}
	if s.backoff == 0 {
		s.backoff = a.cfg.TrialAfter
	}
	if now-s.pausedAt < s.backoff || lowest < 0 {
		return -1
	}
	s.paused, s.trialUntil, s.trialBudget = false, now+a.cfg.TrialFor, budget
	return lowest
}

// Sending returns the rate (bit/s) the streams' allocated layers send:
// what a transport sends as media, the rest of a probe cluster's rate
// being padding.
func Sending(streams []*Stream) float64 {
	r := 0.0
	for _, s := range streams {
		if s.Layer >= 0 {
			r += s.Rates[s.Layer]
		}
	}
	return r
}
