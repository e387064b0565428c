package plane

import (
	"fmt"
	"slices"

	"github.com/callcore/callcore/channel"
	"github.com/callcore/callcore/forward"
)

var _ channel.Media = (*Plane)(nil)

// TrackAdded records the channel's track; its transport publishes it
// (Published).
func (p *Plane) TrackAdded(ch, id string, info channel.TrackInfo, state channel.MuteState) {
	p.mu.Lock()
	r := p.room(ch)
	r.tracks[key{id, info.Name}] = &pub{info: info, state: state}
	r.user(id)
	p.mu.Unlock()
}

// Published takes the track a transport made for the channel track name
// of user id: the plane applies its mute state and subscribes the
// channel's other users to it. A track the channel does not list is
// refused with ErrUnknownTrack; a second track for the same name with
// ErrAttached.
func (p *Plane) Published(ch, id, name string, tr *forward.Track) error {
	k := key{id, name}
	p.mu.Lock()
	r := p.rooms[ch]
	var t *pub
	if r != nil {
		t = r.tracks[k]
	}
	p.mu.Unlock()
	if t == nil {
		return fmt.Errorf("%w: %s/%s in %s", ErrUnknownTrack, id, name, ch)
	}
	if !p.install(ch, k, t, tr) {
		return fmt.Errorf("%w: %s/%s in %s", ErrAttached, id, name, ch)
	}
	return nil
}

// install makes tr the forward track of the channel's track t, and
// subscribes everyone else; an audio track becomes a speaker source. It
// reports false when t was removed or already has a track.
func (p *Plane) install(ch string, k key, t *pub, tr *forward.Track) bool {
	applyMute(tr, t.state)
	p.mu.Lock()
	r := p.rooms[ch]
	if r == nil || r.tracks[k] != t || t.track != nil {
		p.mu.Unlock()
		return false
	}
	t.track = tr
	p.addVoice(r, k, t, tr)
	if !slices.Contains(r.recent, k.user) {
		r.heard(k.user)
		p.refresh(r) // a new publisher may fill a free lastN place
	}
	var receivers []string
	for id, u := range r.users {
		if id != k.user && u.ep != nil {
			receivers = append(receivers, id)
		}
	}
	p.mu.Unlock()
	p.cfg.Pulse.Add(tr)
	for _, id := range receivers {
		p.subscribe(ch, id, k)
	}
	return true
}

// subscribe makes user id receive track k.
func (p *Plane) subscribe(ch, id string, k key) {
	p.mu.Lock()
	r := p.rooms[ch]
	if r == nil || r.tracks[k] == nil || r.tracks[k].track == nil || r.users[id] == nil || r.users[id].ep == nil ||
		r.users[id].subs[k] != nil {
		p.mu.Unlock()
		return
	}
	t, u := r.tracks[k], r.users[id]
	p.mu.Unlock()

	if t.lay != nil {
		p.subscribeLayers(r, k, t, id, u)
		p.watchBandwidth(ch, id, k)
		p.tellLayers(ch, k, id) // what it receives, from the start
		p.tellWanted(ch, k)
		return
	}
	rc, err := u.ep.Subscribe(k.user, t.info, t.track)
	if err != nil {
		return
	}
	if !p.keep(r, k, t, id, u, rc) {
		rc.Close()
	}
}

// keep records a new subscription of user id to k and opens it as the
// user's recv state and lastN want; it reports false when the track or the
// user went meanwhile.
func (p *Plane) keep(r *room, k key, t *pub, id string, u *user, rc Reception) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if r.tracks[k] != t || r.users[id] != u || u.subs[k] != nil {
		return false
	}
	open := r.wants(u, r.allowed(id), k)
	s := &reception{rc: rc, open: open, prio: -1}
	u.subs[k] = s
	rc.SetOpen(open)
	r.prioritize(k, s)
	return true
}

// TrackRemoved closes the track and every subscription to it.
func (p *Plane) TrackRemoved(ch, id, name string) {
	k := key{id, name}
	p.mu.Lock()
	r := p.rooms[ch]
	if r == nil || r.tracks[k] == nil {
		p.mu.Unlock()
		return
	}
	t := r.tracks[k]
	delete(r.tracks, k)
	r.dropVoice(t)
	var subs []Reception
	for _, u := range r.users {
		if s := u.subs[k]; s != nil {
			subs = append(subs, s.rc)
			delete(u.subs, k)
		}
	}
	p.mu.Unlock()
	p.closePub(t, subs)
}

// closePub closes a published track: every layer when it is layered.
func (p *Plane) closePub(t *pub, subs []Reception) {
	if t.lay == nil {
		p.closeTrack(t.track, subs)
		return
	}
	t.lay.Close()
	for _, tr := range t.lay.Tracks() {
		if tr != nil {
			p.closeTrack(tr, subs)
			subs = nil
		}
	}
}

func (p *Plane) closeTrack(tr *forward.Track, subs []Reception) {
	for _, s := range subs {
		s.Close()
	}
	if tr != nil {
		p.cfg.Pulse.Remove(tr)
		tr.Close()
	}
}

// MuteChanged applies a track's effective state through the muter; a
// muted audio track stops being a speaker.
func (p *Plane) MuteChanged(ch, id, name string, state channel.MuteState) {
	p.mu.Lock()
	r := p.rooms[ch]
	var tr *forward.Track
	var lay *forward.Layers
	if r != nil && r.tracks[key{id, name}] != nil {
		t := r.tracks[key{id, name}]
		t.state, tr, lay = state, t.track, t.lay
		if r.det != nil && t.level != "" {
			_ = r.det.SetMuted(t.level, state != channel.MuteNone)
		}
	}
	p.mu.Unlock()
	if lay != nil {
		for _, l := range lay.Tracks() {
			if l != nil {
				applyMute(l, state)
			}
		}
	} else if tr != nil {
		applyMute(tr, state)
	}
}

// applyMute maps the channel's effective state onto the muter's sources:
// the channel has already combined its layers.
func applyMute(tr *forward.Track, state channel.MuteState) {
	switch state {
	case channel.MuteAdmin:
		tr.SetMute(forward.SourceAdmin, true)
	case channel.MuteSelf:
		tr.SetMute(forward.SourceSelf, true)
		tr.SetMute(forward.SourceAdmin, false)
	default:
		tr.SetMute(forward.SourceAdmin, false)
		tr.SetMute(forward.SourceSelf, false)
	}
}

// ReceiveChanged pauses or resumes everything forwarded to a user; each
// track resumes on a key frame.
func (p *Plane) ReceiveChanged(ch, id string, on bool) {
	p.mu.Lock()
	r := p.room(ch)
	u := r.user(id)
	u.recv = on
	p.refreshUser(r, id, u)
	p.mu.Unlock()
}

// UserGone closes a user's publications and subscriptions.
func (p *Plane) UserGone(ch, id string) {
	p.mu.Lock()
	r := p.rooms[ch]
	p.mu.Unlock()
	if r != nil {
		p.teardown(ch, r, id)
	}
}

// teardown removes a user from a room, with all its media.
func (p *Plane) teardown(ch string, r *room, id string) {
	p.mu.Lock()
	u := r.users[id]
	delete(r.users, id)
	var subs []Reception
	if u != nil {
		for _, s := range u.subs {
			subs = append(subs, s.rc)
		}
	}
	var tracks []*pub
	for k, t := range r.tracks {
		if k.user != id {
			continue
		}
		tracks = append(tracks, t)
		delete(r.tracks, k)
		r.dropVoice(t)
		for _, other := range r.users {
			if s := other.subs[k]; s != nil {
				subs = append(subs, s.rc)
				delete(other.subs, k)
			}
		}
	}
	if i := slices.Index(r.recent, id); i >= 0 {
		r.recent = slices.Delete(r.recent, i, i+1)
		p.refresh(r) // the next user in the order may take its lastN place
	}
	gone := len(r.users) == 0 && len(r.tracks) == 0 && p.rooms[ch] == r
	if gone {
		delete(p.rooms, ch)
	}
	p.mu.Unlock()
	if gone && r.det != nil {
		r.det.Close()
	}
	for _, s := range subs {
		s.Close()
	}
	for _, t := range tracks {
		p.closePub(t, nil)
	}
}
