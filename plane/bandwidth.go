package plane

import (
	"slices"

	"github.com/callcore/callcore/channel"
	"github.com/callcore/callcore/forward"
)

// LimitBandwidth is LayerChange.LimitedBy when the estimate of the
// user's downlink keeps it below the layer it wants (or pauses the
// track).
const LimitBandwidth = "bandwidth"

// BandwidthLimited is an optional LayerReception ability: a transport
// that shares its user's downlink among the receptions (a WebRTC peer)
// says what the bandwidth leaves a reception and when that changes.
type BandwidthLimited interface {
	// BandwidthLimit returns the highest layer the bandwidth allows, or
	// paused when not even the lowest fits; limited is false when the
	// bandwidth does not limit the reception.
	BandwidthLimit() (max forward.Layer, paused, limited bool)
	// OnBandwidthLimit sets a function called, with no lock held, when
	// the limit changes.
	OnBandwidthLimit(func())
}

// Prioritized is an optional Reception ability: the transport shares its
// user's downlink among the receptions by priority, higher first. The
// plane gives each video reception its priority when it is made and
// whenever it changes (a receive preference set, the speakers changed):
// a reception with an explicit receive preference first (the taller
// picture first), then screen shares, then the current speakers' tracks
// (the dominant first), then the rest. SetPriority is called with the
// plane's lock held, like SetOpen, so that priorities follow the order of
// the changes: it must not call back into the plane.
type Prioritized interface {
	SetPriority(int)
}

// The priority bands, highest first: each band's priorities are above
// every priority of the bands below.
const (
	prioPreference = 3 << 21 // plus preferencePriority, at most 1<<20
	prioScreen     = 2 << 21
	prioSpeaker    = 1 << 21 // plus how many speakers follow it
)

// priority returns the priority of reception s of track k. p.mu is held.
func (r *room) priority(k key, s *reception) int {
	switch {
	case s.explicit:
		return prioPreference + preferencePriority(s.pref)
	case k.name == ScreenTrack:
		return prioScreen
	}
	if i := slices.Index(r.speakers, k.user); i >= 0 {
		return prioSpeaker + len(r.speakers) - i
	}
	return 0
}

// prioritize gives reception s of track k its priority when it changed.
// p.mu is held.
func (r *room) prioritize(k key, s *reception) {
	pr, ok := s.rc.(Prioritized)
	if !ok {
		return
	}
	if t := r.tracks[k]; t != nil && t.info.Kind != channel.Video {
		return // audio comes first whatever its priority
	}
	if v := r.priority(k, s); v != s.prio {
		s.prio = v
		pr.SetPriority(v)
	}
}

// watchBandwidth has a layered reception of user id tell its bandwidth
// limit's changes (tellLayers).
func (p *Plane) watchBandwidth(ch, id string, k key) {
	p.mu.Lock()
	var rc Reception
	if r := p.rooms[ch]; r != nil && r.users[id] != nil && r.users[id].subs[k] != nil {
		rc = r.users[id].subs[k].rc
	}
	p.mu.Unlock()
	if b, ok := rc.(BandwidthLimited); ok {
		b.OnBandwidthLimit(func() { p.tellLayers(ch, k, id) })
	}
}

// bandwidthLimit lowers c to what the reception's bandwidth allows, when
// that is less than the layer its preference and the publisher give.
func bandwidthLimit(c *LayerChange, rc Reception, lay *forward.Layers, tracks [forward.NumLayers]*forward.Track) {
	b, ok := rc.(BandwidthLimited)
	if !ok {
		return
	}
	max, paused, limited := b.BandwidthLimit()
	switch {
	case !limited:
	case paused:
		*c = LayerChange{From: c.From, Name: c.Name, Paused: true, LimitedBy: LimitBandwidth}
	case lay.Best(max) < c.Layer:
		c.Layer = lay.Best(max)
		c.Width, c.Height, _ = tracks[c.Layer].PictureSize()
		c.LimitedBy = LimitBandwidth
	}
}

// preferencePriority is the priority of a reception with an explicit
// preference: above the others (0), the taller picture first, no limit
// the highest.
func preferencePriority(pref Preference) int {
	if pref.MaxHeight <= 0 {
		return 1 << 20
	}
	return pref.MaxHeight
}
