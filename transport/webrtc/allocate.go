package webrtc

import (
	"sync"

	"github.com/callcore/callcore/bwe"
	"github.com/callcore/callcore/forward"
)

// Allocation of a peer's downlink (bwe.Allocator): once the peer has sent
// feedback, its estimate, less the rate of the retransmissions the peer
// is sent (bwe.Budget), is shared among its subscriptions, audio first,
// then video by priority, each video at the highest layer that fits,
// paused when even the lowest does not. It runs when feedback arrives, at
// most every allocEvery: nothing ticks for a peer. The layer rates are
// measured from what the publishers send (the tracks' byte counters).
// The bandwidth limit is kept apart from the subscription's own (its
// preference, SetMaxLayer and SetOpen): the lower of the two applies.

// allocEvery is the least time between two allocations of a peer.
const allocEvery = 250e6 // ns

// allocator is a peer's allocation state; mu guards it. It is taken by
// the RTCP loops that bring feedback, never on the packet path, and no
// callback is made with it held.
type allocator struct {
	mu      sync.Mutex
	a       *bwe.Allocator
	last    int64           // ns: the last allocation
	budget  float64         // the estimate it shared
	raises  uint64          // the estimator's ProbeRaises the allocator was told of
	rtx     bwe.CounterRate // the subscriptions' retransmitted bytes
	streams map[*Subscription]*allocStream
	meters  map[*forward.Track]*rateMeter
	list    []*bwe.Stream
	subs    []*Subscription
}

// allocStream is a subscription's stream in the allocation; seen is the
// allocation that last listed it.
type allocStream struct {
	bwe.Stream
	seen int64
}

// rateMeter measures a track's rate from its byte counter.
type rateMeter struct {
	bytes uint64
	at    int64 // ns
	rate  float64
	seen  int64 // ns: the allocation that last read it
}

func (m *rateMeter) read(t *forward.Track, now int64) float64 {
	b := t.Stats().BytesIn
	if m.at != 0 && now > m.at {
		r := float64(b-m.bytes) * 8 / (float64(now-m.at) / 1e9)
		if m.rate == 0 {
			m.rate = r
		} else {
			m.rate = 0.5*m.rate + 0.5*r
		}
	}
	m.bytes, m.at, m.seen = b, now, now
	return m.rate
}

// allocate shares the estimate among the peer's subscriptions at now
// (ns, the downlink's clock), unless it did less than allocEvery ago or
// the peer has sent no feedback.
func (p *Peer) allocate(now int64) {
	al := &p.alloc
	est := p.down.est
	if !est.HasFeedback() {
		return
	}
	budget := est.Estimate()
	al.mu.Lock()
	if now-al.last < allocEvery && budget >= 0.9*al.budget { // a cut is answered at once
		al.mu.Unlock()
		return
	}
	al.last, al.budget = now, budget
	if al.a == nil {
		// A new stream is sent what it wants for its first second: the
		// estimate starts as a guess until feedback measured the path.
		al.a = bwe.NewAllocator(bwe.AllocConfig{StartGrace: 1e9})
		al.streams = map[*Subscription]*allocStream{}
		al.meters = map[*forward.Track]*rateMeter{}
	}
	p.mu.Lock()
	al.subs = al.subs[:0]
	for s := range p.subs {
		al.subs = append(al.subs, s)
	}
	p.mu.Unlock()
	al.list = al.list[:0]
	var rtxBytes uint64
	for _, s := range al.subs {
		if fs := s.sub.Load(); fs != nil {
			rtxBytes += fs.Stats().RetransmitBytes
		}
		st := al.streams[s]
		if st == nil {
			st = &allocStream{}
			al.streams[s] = st
		}
		st.seen = now
		s.fill(&st.Stream, now, al.meter)
		al.list = append(al.list, &st.Stream)
	}
	for s, st := range al.streams { // subscriptions gone
		if st.seen != now {
			delete(al.streams, s)
		}
	}
	for t, m := range al.meters {
		if m.seen != now {
			delete(al.meters, t)
		}
	}
	if n := est.ProbeRaises(); n != al.raises {
		al.raises = n
		al.a.Probed() // the room a probe showed: up without the hold
	}
	// Retransmissions go on the downlink whatever the allocation: their
	// rate comes off what it shares, and the probing target is the media
	// it wants plus them.
	rtx := budget - bwe.Budget(budget, al.rtx.Update(rtxBytes, now))
	al.a.Allocate(budget-rtx, now, al.list)
	target := al.a.UpTarget(budget-rtx, al.list)
	if target > 0 {
		target += rtx
	}
	media := bwe.Sending(al.list) + rtx
	var changed []*Subscription
	for _, s := range al.subs {
		if s.setBandwidth(&al.streams[s].Stream) {
			changed = append(changed, s)
		}
	}
	al.mu.Unlock()
	if !p.cfg.Engine.cfg.NoProbing {
		p.probe(target, media, now) // probe.go
	}
	for _, s := range changed {
		if f := s.onLimit.Load(); f != nil {
			(*f)()
		}
	}
}

// meter returns the rate of t, measured at now.
func (al *allocator) meter(t *forward.Track, now int64) float64 {
	if t == nil {
		return 0
	}
	m := al.meters[t]
	if m == nil {
		m = &rateMeter{}
		al.meters[t] = m
	}
	if m.seen == now {
		return m.rate
	}
	return m.read(t, now)
}

// fill sets the allocator's view of the subscription.
func (s *Subscription) fill(st *bwe.Stream, now int64, rate func(*forward.Track, int64) float64) {
	s.openMu.Lock()
	defer s.openMu.Unlock()
	st.Audio = s.local.kind == forward.Audio
	st.Priority = s.priority
	st.Rates = [bwe.MaxLayers]float64{}
	if s.layers != nil {
		for i, t := range s.layers.l.Tracks() {
			st.Rates[i] = rate(t, now)
		}
		st.Max = int(s.layers.max)
	} else {
		st.Rates[0] = rate(s.track, now)
		st.Max = 0
	}
	if s.paused {
		st.Max = -1
	}
}

// setBandwidth applies an allocation to the subscription and reports
// whether its bandwidth limit changed.
func (s *Subscription) setBandwidth(st *bwe.Stream) bool {
	if st.Audio {
		return false
	}
	s.openMu.Lock()
	defer s.openMu.Unlock()
	lim := bwLimit{limited: st.Limited, paused: st.Layer < 0 && st.Limited, max: forward.LayerF}
	if st.Limited && st.Layer >= 0 {
		lim.max = forward.Layer(st.Layer)
	}
	if lim == s.bw {
		return false
	}
	s.bw = lim
	s.applyLocked()
	return true
}

// bwLimit is a subscription's bandwidth limit.
type bwLimit struct {
	max     forward.Layer // the highest layer that fits (LayerF when not limited)
	paused  bool          // not even the lowest fits
	limited bool
}

// applyLocked sets the core subscriber's gate and highest layer from the
// subscription's own settings and its bandwidth limit, with openMu held.
func (s *Subscription) applyLocked() {
	fs := s.sub.Load()
	if fs == nil {
		return
	}
	fs.SetOpen(!s.paused && !s.bw.paused)
	if s.layers != nil {
		_ = s.layers.l.SetMax(fs, min(s.layers.max, s.bw.max))
	}
}

// SetPriority sets the subscription's priority in the allocation of the
// peer's downlink: higher first (an explicit receive preference above a
// screen share above the rest). Default 0.
func (s *Subscription) SetPriority(p int) {
	s.openMu.Lock()
	s.priority = p
	s.openMu.Unlock()
}

// BandwidthLimit reports whether the peer's downlink estimate limits the
// subscription, and to what: the highest layer that fits, or paused when
// not even the lowest does.
func (s *Subscription) BandwidthLimit() (max forward.Layer, paused, limited bool) {
	s.openMu.Lock()
	defer s.openMu.Unlock()
	return s.bw.max, s.bw.paused, s.bw.limited
}

// OnBandwidthLimit sets a function called (on an RTCP loop, with no lock
// held) when the subscription's bandwidth limit changes.
func (s *Subscription) OnBandwidthLimit(f func()) { s.onLimit.Store(&f) }
