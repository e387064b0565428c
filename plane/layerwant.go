package plane

import "github.com/callcore/callcore/forward"

// A layer nobody receives need not be encoded: the plane tells the
// transport of a layered track's publisher (Config.OnLayersWanted) when
// the layers its receivers want may have changed, and the transport reads
// them (WantedLayers) and has the publisher stop or resume them.

// WantedLayers reports, by layer, which layers of user id's track name
// should be sent (forward.Layers.Wanted: a layer a receiver with an open
// gate gets, switches to or targets, one wanted within the last
// KeepWanted, one not arrived yet); a receiver that takes only the first
// layer (a SelfSubscriber without LayerSubscriber) wants that one. ok is
// false when the track is not published as layers.
func (p *Plane) WantedLayers(ch, id, name string) (w [forward.NumLayers]bool, ok bool) {
	k := key{id, name}
	p.mu.Lock()
	r := p.rooms[ch]
	var t *pub
	if r != nil {
		t = r.tracks[k]
	}
	if t == nil || t.lay == nil {
		p.mu.Unlock()
		return w, false
	}
	lay, first, plain := t.lay, t.track, false
	for _, u := range r.users {
		if s := u.subs[k]; s != nil && s.open {
			if _, layered := s.rc.(LayerReception); !layered {
				plain = true
			}
		}
	}
	p.mu.Unlock()
	w = lay.Wanted()
	if plain {
		for i, tr := range lay.Tracks() {
			if tr != nil && tr == first {
				w[i] = true
			}
		}
	}
	return w, true
}

// tellWanted tells Config.OnLayersWanted that the layers wanted of track
// k may have changed. Called with no plane lock held.
func (p *Plane) tellWanted(ch string, k key) {
	if p.cfg.OnLayersWanted != nil {
		p.cfg.OnLayersWanted(ch, k.user, k.name)
	}
}
