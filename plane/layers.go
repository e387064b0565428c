package plane

import (
	"fmt"

	"github.com/callcore/callcore/forward"
)

// A channel track may be published as layers (the same picture at up to
// three sizes, forward.Layers): the transport hands each layer's track to
// PublishedLayer as it arrives, and every other user receives one layer
// at a time, chosen by its receive preference (SetPreference).

// LayerReception is a reception of a layered track: its highest layer can
// be changed.
type LayerReception interface {
	Reception
	SetMaxLayer(forward.Layer) error
}

// Preference is what a user wants of another user's video track.
type Preference struct {
	// MaxHeight is the tallest picture wanted, in pixels; 0 means no
	// limit. The highest layer whose picture is no taller is sent (the
	// lowest when none is).
	MaxHeight int
	// Paused stops the track for this user; it resumes on a key frame.
	Paused bool
}

// PublishedLayer takes one layer's track of a channel track that a
// transport made (see Published): the first makes the track
// layered and subscribes the channel's other users to it; later ones join
// it (forward.Layers.AddLayer) and the subscribers move to them as their
// preferences allow.
func (p *Plane) PublishedLayer(ch, id, name string, layer forward.Layer, tr *forward.Track) error {
	k := key{id, name}
	p.mu.Lock()
	r := p.rooms[ch]
	var t *pub
	if r != nil {
		t = r.tracks[k]
	}
	var lay *forward.Layers
	if t != nil {
		lay = t.lay
	}
	p.mu.Unlock()
	if t == nil {
		return fmt.Errorf("%w: %s/%s in %s", ErrUnknownTrack, id, name, ch)
	}
	if lay != nil {
		applyMute(tr, t.state)
		if err := lay.AddLayer(layer, tr); err != nil {
			return err
		}
		p.cfg.Pulse.Add(tr)
		p.tellLayers(ch, k, "")
		p.tellWanted(ch, k)
		return nil
	}
	cfg := forward.LayersConfig{Clock: p.cfg.Clock, OnChange: func() {
		p.tellLayers(ch, k, "")
		p.tellWanted(ch, k)
	}}
	cfg.Tracks[layer] = tr
	lay, err := forward.NewLayers(cfg)
	if err != nil {
		return err
	}
	p.mu.Lock()
	if r.tracks[k] == t && t.lay != nil {
		// Another layer arrived at the same time and made the track
		// layered: this one joins it.
		p.mu.Unlock()
		lay.Close()
		return p.PublishedLayer(ch, id, name, layer, tr)
	}
	if r.tracks[k] != t || t.track != nil {
		p.mu.Unlock()
		lay.Close()
		return fmt.Errorf("%w: %s/%s in %s", ErrAttached, id, name, ch)
	}
	t.lay = lay
	p.mu.Unlock()
	if !p.install(ch, k, t, tr) {
		lay.Close()
		return fmt.Errorf("%w: %s/%s in %s", ErrAttached, id, name, ch)
	}
	p.tellWanted(ch, k)
	return nil
}

// subscribeLayers makes user u receive the layered track t, from its
// best layer.
func (p *Plane) subscribeLayers(r *room, k key, t *pub, id string, u *user) {
	rc, err := u.ep.SubscribeLayers(k.user, t.info, t.lay, forward.LayerF)
	if err == nil && !p.keep(r, k, t, id, u, rc) {
		rc.Close()
	}
}

// AttachLayers attaches s to the layered track l, at the best layer up to
// max, and returns it as a LayerReception: what an Endpoint whose
// transport writes through a forward.Subscriber (an RTP target, a link, a
// memory sink) returns from SubscribeLayers. Closing the reception closes
// s.
func AttachLayers(s *forward.Subscriber, l *forward.Layers, max forward.Layer) (LayerReception, error) {
	if err := l.Attach(s, max); err != nil {
		return nil, err
	}
	return &layerRec{Subscriber: s, l: l}, nil
}

// layerRec is a layered reception over a forward.Subscriber.
type layerRec struct {
	*forward.Subscriber
	l *forward.Layers
}

func (r *layerRec) SetMaxLayer(max forward.Layer) error { return r.l.SetMax(r.Subscriber, max) }

// SetPreference sets what user id wants of user from's track name: the
// tallest picture, and whether it is paused. The layer is chosen from the
// picture sizes known now (a layer whose size is not known yet counts as
// fitting only when it is the lowest).
func (p *Plane) SetPreference(ch, id, from, name string, pref Preference) error {
	k := key{from, name}
	p.mu.Lock()
	r := p.rooms[ch]
	if r == nil || r.tracks[k] == nil || r.users[id] == nil || r.users[id].subs[k] == nil {
		p.mu.Unlock()
		return fmt.Errorf("%w: %s does not receive %s/%s in %s", ErrUnknownTrack, id, from, name, ch)
	}
	t, u := r.tracks[k], r.users[id]
	s := u.subs[k]
	if u.paused == nil {
		u.paused = map[key]bool{}
	}
	u.paused[k] = pref.Paused
	s.pref, s.explicit = pref, true
	if w := r.wants(u, r.allowed(id), k); w != s.open {
		s.open = w
		s.rc.SetOpen(w)
	}
	r.prioritize(k, s)
	rc := s.rc
	p.mu.Unlock()
	lr, ok := rc.(LayerReception)
	if t.lay == nil || !ok {
		return nil
	}
	err := lr.SetMaxLayer(layerFor(t.lay.Tracks(), pref.MaxHeight))
	p.tellLayers(ch, k, id)
	p.tellWanted(ch, k)
	return err
}

// LayerChange is what a user receives of a layered track: told to
// Config.OnLayer when it changes (a preference, a layer that arrives,
// stops or comes back).
type LayerChange struct {
	From, Name string // the track's publisher and name
	// Layer is the layer the user is sent (or is switching to: the
	// switch waits for its key frame); Paused when none.
	Layer  forward.Layer
	Paused bool
	// Width and Height are the layer's picture size, 0 until a key frame
	// of it was seen.
	Width, Height int
	// LimitedBy says why it is not a higher layer: LimitPreference,
	// LimitPublisher, LimitBandwidth or "" (the highest there is).
	LimitedBy string
}

// Why a user does not receive a higher layer (LayerChange.LimitedBy).
const (
	LimitPreference = "preference" // its receive preference (a paused track too)
	LimitPublisher  = "publisher"  // the publisher sends no higher layer
)

// tellLayers tells Config.OnLayer what changed in the layers of track k
// for its receivers (only the user only, when given).
func (p *Plane) tellLayers(ch string, k key, only string) {
	if p.cfg.OnLayer == nil {
		return
	}
	type told struct {
		id string
		c  LayerChange
	}
	var out []told
	p.mu.Lock()
	r := p.rooms[ch]
	var t *pub
	if r != nil {
		t = r.tracks[k]
	}
	if t == nil || t.lay == nil {
		p.mu.Unlock()
		return
	}
	tracks := t.lay.Tracks()
	top := t.lay.Nearest(forward.LayerF)
	for id, u := range r.users {
		s := u.subs[k]
		if s == nil || (only != "" && id != only) {
			continue
		}
		if _, ok := s.rc.(LayerReception); !ok {
			continue
		}
		c := LayerChange{From: k.user, Name: k.name}
		switch {
		case !s.open:
			c.Paused = true
			if s.pref.Paused {
				c.LimitedBy = LimitPreference
			}
		default:
			want := layerFor(tracks, s.pref.MaxHeight)
			c.Layer = t.lay.Best(want)
			c.Width, c.Height, _ = tracks[c.Layer].PictureSize()
			// Compared with the layers present, not the live ones: a
			// layer nobody wanted is not sent (layerwant.go), which is
			// no limit of the publisher's.
			switch near := t.lay.Nearest(want); {
			case c.Layer < near:
				c.LimitedBy = LimitPublisher // it does not send the one wanted
			case near < top:
				c.LimitedBy = LimitPreference
			case c.Layer < forward.LayerF:
				c.LimitedBy = LimitPublisher // it has no higher one
			}
			bandwidthLimit(&c, s.rc, t.lay, tracks)
		}
		if s.told != nil && *s.told == c {
			continue
		}
		s.told = &c
		out = append(out, told{id, c})
	}
	p.mu.Unlock()
	for _, o := range out {
		p.cfg.OnLayer(ch, o.id, o.c)
	}
}

// layerFor picks the highest layer no taller than maxHeight (0: no limit).
func layerFor(tracks [forward.NumLayers]*forward.Track, maxHeight int) forward.Layer {
	if maxHeight <= 0 {
		return forward.LayerF
	}
	lowest := forward.Layer(forward.NumLayers)
	for i := forward.NumLayers - 1; i >= 0; i-- {
		tr := tracks[i]
		if tr == nil {
			continue
		}
		lowest = forward.Layer(i)
		if _, h, ok := tr.PictureSize(); ok && h <= maxHeight {
			return forward.Layer(i)
		}
	}
	if lowest == forward.NumLayers {
		return forward.LayerQ
	}
	return lowest
}
