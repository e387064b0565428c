package channel

import (
	"fmt"

	"github.com/callcore/callcore/permission"
)

// MuteAction is muteTracks' and muteUser's new state.
type MuteAction bool

// Mute actions.
const (
	Mute   MuteAction = true
	Unmute MuteAction = false
)

// AddTracks publishes tracks (active users only): one track:add each, in
// order, and Media.TrackAdded with the initial state (admin-muted when the
// actor lacks the send bit or muteUser muted its kind). Refusals:
// ErrInvalid (bad or duplicate names, unknown kinds, more than
// MaxTracksPerUser tracks in all), ErrNotMember, ErrExists (a name already
// published), ErrKindNotAllowed.
func (c *Channel) AddTracks(actor string, tracks []TrackInfo) error {
	if err := checkID("user id", actor); err != nil {
		return err
	}
	if err := checkTracks(tracks, 1); err != nil {
		return err
	}
	return c.do(func() error {
		m, err := c.activeActor(permission.OpAddTracks, actor)
		if err != nil {
			return err
		}
		for _, t := range tracks {
			if m.track(t.Name) != nil {
				return fmt.Errorf("%w: track %q", ErrExists, t.Name)
			}
		}
		if err := c.checkKinds(tracks); err != nil {
			return err
		}
		if len(m.tracks)+len(tracks) > MaxTracksPerUser {
			return fmt.Errorf("%w: more than %d tracks", ErrInvalid, MaxTracksPerUser)
		}
		for _, t := range tracks {
			c.publish(m, t)
		}
		return nil
	})
}

func (c *Channel) activeActor(op permission.Op, actor string) (*member, error) {
	if _, err := permission.Decide(op, permission.Facts{Actor: c.actor(actor)}); err != nil {
		return nil, err
	}
	return c.active[actor], nil
}

// publish adds a validated track. c.mu is held.
func (c *Channel) publish(m *member, info TrackInfo) {
	t := &track{info: info}
	t.state, t.by, t.reason = c.effective(m, t)
	m.tracks = append(m.tracks, t)
	c.emit(Event{Type: EventTrackAdd, User: m.id, Track: t.stateOf(), Tracks: m.trackStates()})
	c.addFx(effect{kind: fxTrackAdded, user: m.id, track: info, state: t.state})
}

// RemoveTracks stops publishing the named tracks (active users only): one
// track:del each, in order. Refusals: ErrInvalid, ErrNotMember,
// ErrNotFound.
func (c *Channel) RemoveTracks(actor string, names []string) error {
	if err := checkID("user id", actor); err != nil {
		return err
	}
	if err := checkIDs("track name", names); err != nil {
		return err
	}
	return c.do(func() error {
		m, err := c.activeActor(permission.OpRemoveTracks, actor)
		if err != nil {
			return err
		}
		if err := m.checkTracksExist(names); err != nil {
			return err
		}
		for _, name := range names {
			i := m.trackIndex(name)
			t := m.tracks[i]
			m.tracks = append(m.tracks[:i:i], m.tracks[i+1:]...)
			c.emit(Event{Type: EventTrackDel, User: m.id, Track: TrackState{Name: name, Kind: t.info.Kind}})
			c.addFx(effect{kind: fxTrackRemoved, user: m.id, track: t.info})
		}
		return nil
	})
}

// MuteTracks sets the actor's self mute on its named tracks: subscribers
// get empty frames. Tracks already in that state are a no-op; track:mute
// is emitted for each track whose effective state changes. Unmuting a
// track that an admin source mutes fails with ErrUnauthorized (and changes
// nothing). Refusals: ErrInvalid, ErrNotMember, ErrNotFound,
// ErrUnauthorized.
func (c *Channel) MuteTracks(actor string, names []string, action MuteAction) error {
	if err := checkID("user id", actor); err != nil {
		return err
	}
	if err := checkIDs("track name", names); err != nil {
		return err
	}
	return c.do(func() error {
		m, err := c.activeActor(permission.OpMuteTracks, actor)
		if err != nil {
			return err
		}
		if err := m.checkTracksExist(names); err != nil {
			return err
		}
		if action == Unmute {
			for _, name := range names {
				if m.track(name).state == MuteAdmin {
					return fmt.Errorf("%w: track %q is muted by an admin", ErrUnauthorized, name)
				}
			}
		}
		for _, name := range names {
			t := m.track(name)
			t.self = bool(action)
			c.recompute(m, t)
		}
		return nil
	})
}

// MuteUser sets (admins only) the admin mute of target's tracks of kind:
// they are not forwarded, and tracks of that kind it publishes later start
// muted, until an admin unmutes the kind; it lasts across leave and join
// and ends when the user is removed. A state that holds is a no-op;
// otherwise track:mute is emitted for each track whose effective state
// changes, with mutedBy the actor and reason. Refusals: ErrInvalid (kind
// not Audio or Video, reason too long), ErrUnauthorized (not an admin, or
// the target is the owner), ErrNotMember (target not a member).
func (c *Channel) MuteUser(actor, target string, kind Kind, action MuteAction, reason string) error {
	if err := checkID("user id", actor); err != nil {
		return err
	}
	if err := checkID("user id", target); err != nil {
		return err
	}
	if !kind.isTrackKind() {
		return fmt.Errorf("%w: kind %v", ErrInvalid, kind)
	}
	if err := checkReason(reason); err != nil {
		return err
	}
	return c.do(func() error {
		f := permission.Facts{Actor: c.actor(actor), Target: c.role(target)}
		if _, err := permission.Decide(permission.OpMuteUser, f); err != nil {
			return err
		}
		m := c.members[target]
		km := &m.kindMute[kind]
		if km.on == bool(action) {
			return nil
		}
		*km = kindMute{on: bool(action)}
		if action == Mute {
			km.by, km.reason = actor, reason
		}
		for _, t := range m.tracks {
			if t.info.Kind == kind {
				c.recompute(m, t)
			}
		}
		return nil
	})
}

// effective computes a track's effective state from its mute sources, with
// the admin source that explains it (muteUser, then the send bit, then the
// channel's kind). c.mu is held.
func (c *Channel) effective(m *member, t *track) (state MuteState, by, reason string) {
	switch km := m.kindMute[t.info.Kind]; {
	case km.on:
		return MuteAdmin, km.by, km.reason
	case !m.mode.Has(permission.Send):
		return MuteAdmin, m.sendBy, ReasonSendRevoked
	case !c.cfg.Kind.allows(t.info.Kind):
		return MuteAdmin, c.kindBy, ReasonKindNotAllowed
	case t.self:
		return MuteSelf, "", ""
	}
	return MuteNone, "", ""
}

// recompute announces a change of t's effective state: track:mute and
// Media.MuteChanged. c.mu is held.
func (c *Channel) recompute(m *member, t *track) {
	state, by, reason := c.effective(m, t)
	if state == t.state {
		return
	}
	t.state, t.by, t.reason = state, by, reason
	c.emit(Event{Type: EventTrackMute, User: m.id, Track: t.stateOf()})
	c.addFx(effect{kind: fxMute, user: m.id, track: t.info, state: state})
}

func (t *track) stateOf() TrackState {
	return TrackState{Name: t.info.Name, Kind: t.info.Kind, Muted: t.state != MuteNone, State: t.state, MutedBy: t.by, Reason: t.reason}
}

func (m *member) trackStates() []TrackState {
	ts := make([]TrackState, len(m.tracks))
	for i, t := range m.tracks {
		ts[i] = t.stateOf()
	}
	return ts
}

func (m *member) trackIndex(name string) int {
	for i, t := range m.tracks {
		if t.info.Name == name {
			return i
		}
	}
	return -1
}

func (m *member) track(name string) *track {
	if i := m.trackIndex(name); i >= 0 {
		return m.tracks[i]
	}
	return nil
}

func (m *member) checkTracksExist(names []string) error {
	for _, name := range names {
		if m.trackIndex(name) < 0 {
			return fmt.Errorf("%w: track %q", ErrNotFound, name)
		}
	}
	return nil
}
