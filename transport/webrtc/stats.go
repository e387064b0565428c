package webrtc

import "github.com/callcore/callcore/forward"

// Publication is a track the peer's user publishes, as the peer knows it.
type Publication struct {
	Track *forward.Track
	Info  PublishInfo
}

// Publications returns the tracks the peer's user publishes now: for
// reading their stats (forward.Track.Stats). It takes the peer's lock
// briefly and never a core lock.
func (p *Peer) Publications() []Publication {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]Publication, 0, len(p.pubs))
	for t, info := range p.pubs {
		out = append(out, Publication{Track: t, Info: info})
	}
	return out
}

// Subscriptions returns the peer's subscriptions not closed: for reading
// their stats (Subscription.Subscriber). After Close it returns the
// subscriptions the peer had then, whose counters no longer change.
func (p *Peer) Subscriptions() []*Subscription {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]*Subscription, 0, len(p.subs))
	for s := range p.subs {
		out = append(out, s)
	}
	return out
}

// TrackID is the id the client sees the subscription's track under.
func (s *Subscription) TrackID() string { return s.local.id }

// Track is the core track the subscription sends.
func (s *Subscription) Track() *forward.Track { return s.track }
