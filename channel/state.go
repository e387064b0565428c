package channel

import (
	"fmt"
	"slices"
	"strings"

	"github.com/callcore/callcore/permission"
)

// EventMedia is an optional Media ability: a Media that implements it is
// given every event of every channel (cnl:req included), in each channel's
// event order, called like Media's other methods (outside locks, one
// goroutine per channel at a time), before the operation that emitted it
// returns unless another goroutine is making the channel's calls. A
// cluster uses it to publish a channel's events to other nodes. ev is
// shared: read it, do not modify it.
type EventMedia interface {
	Emitted(ev *Event)
}

// journal queues ev for an EventMedia. c.mu is held.
func (c *Channel) journal(ev *Event) {
	if _, ok := c.reg.cfg.Media.(EventMedia); ok {
		c.addFx(effect{kind: fxEvent, ev: ev})
	}
}

// State is a channel's whole state as data: what a node needs to carry on
// a channel another node ran (Registry.Restore), and what a node that only
// follows a channel's events rebuilds from them (State.Apply). Pending join
// requests are not part of it.
type State struct {
	ID       string
	Seq      uint64 // the last event it reflects
	Owner    string
	Closed   bool
	Config   CallConfig
	KindBy   string
	Members  []MemberState // by id
	Removed  []string      // sorted
	Speakers []string
}

// MemberState is a member as data.
type MemberState struct {
	ID     string
	Mode   permission.Mode
	SendBy string
	Active bool
	// Audio and Video are muteUser's admin mute of the kind (By empty and
	// On false when off).
	Audio, Video KindMuteState
	Tracks       []PublishedTrack // while active, in publication order
}

// KindMuteState is muteUser's mute of one kind of a member's tracks.
type KindMuteState struct {
	On         bool
	By, Reason string
}

// PublishedTrack is an active user's track with its self mute and its
// effective state as last announced.
type PublishedTrack struct {
	TrackState
	Self bool
}

// State returns the channel's state.
func (c *Channel) State() State {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := State{ID: c.id, Seq: c.seq, Owner: c.owner, Closed: c.closed, Config: c.cfg, KindBy: c.kindBy, Speakers: slices.Clone(c.speakers)}
	for _, m := range c.members {
		ms := MemberState{ID: m.id, Mode: m.mode, SendBy: m.sendBy, Active: m.active}
		ms.Audio = KindMuteState{On: m.kindMute[Audio].on, By: m.kindMute[Audio].by, Reason: m.kindMute[Audio].reason}
		ms.Video = KindMuteState{On: m.kindMute[Video].on, By: m.kindMute[Video].by, Reason: m.kindMute[Video].reason}
		for _, t := range m.tracks {
			ms.Tracks = append(ms.Tracks, PublishedTrack{TrackState: t.stateOf(), Self: t.self})
		}
		s.Members = append(s.Members, ms)
	}
	slices.SortFunc(s.Members, func(a, b MemberState) int { return strings.Compare(a.ID, b.ID) })
	for id := range c.removed {
		s.Removed = append(s.Removed, id)
	}
	slices.Sort(s.Removed)
	return s
}

// Restore makes a channel from st, numbering its next event st.Seq+1, with
// a new Subscription for each active user (returned by user id). Media is
// told nothing: the tracks of the state are taken as already known to the
// plane. Refusals: ErrInvalid (a bad id, a closed state, an owner that is
// not a member), ErrExists, ErrClosed (the registry is closed).
func (r *Registry) Restore(st State) (*Channel, map[string]*Subscription, error) {
	if err := checkID("channel id", st.ID); err != nil {
		return nil, nil, err
	}
	if st.Closed {
		return nil, nil, fmt.Errorf("%w: channel %q is closed", ErrInvalid, st.ID)
	}
	if err := st.Config.Validate(); err != nil {
		return nil, nil, err
	}
	c := newChannel(r, st.ID, st.Config.withDefaults(), st.Owner)
	c.seq, c.kindBy, c.speakers = st.Seq, st.KindBy, slices.Clone(st.Speakers)
	subs := make(map[string]*Subscription)
	for _, ms := range st.Members {
		if err := checkID("user id", ms.ID); err != nil {
			return nil, nil, err
		}
		m := c.addMember(ms.ID, ms.Mode)
		m.sendBy = ms.SendBy
		m.kindMute[Audio] = kindMute{on: ms.Audio.On, by: ms.Audio.By, reason: ms.Audio.Reason}
		m.kindMute[Video] = kindMute{on: ms.Video.On, by: ms.Video.By, reason: ms.Video.Reason}
		if !ms.Active {
			continue
		}
		m.active = true
		m.sub = newSubscription(r.cfg.EventBuffer)
		c.active[m.id] = m
		c.gate(m.id).Store(m.mode)
		subs[m.id] = m.sub
		for _, t := range ms.Tracks {
			m.tracks = append(m.tracks, &track{info: TrackInfo{Name: t.Name, Kind: t.Kind}, self: t.Self, state: t.State, by: t.MutedBy, reason: t.Reason})
		}
	}
	if c.members[st.Owner] == nil {
		return nil, nil, fmt.Errorf("%w: owner %q is not a member", ErrInvalid, st.Owner)
	}
	for _, id := range st.Removed {
		c.removed[id] = struct{}{}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case r.closed:
		return nil, nil, fmt.Errorf("%w: registry closed", ErrClosed)
	case r.channels[st.ID] != nil:
		return nil, nil, fmt.Errorf("%w: channel %q", ErrExists, st.ID)
	}
	r.channels[st.ID] = c
	return c, subs, nil
}

// Recipients reports whether user receives ev, given that it was active
// before ev (wasActive) or after it (isActive) and whether it is an admin
// (the owner or the admin bit): the channel's delivery rule, for a node
// that delivers the events it follows.
func Recipients(ev *Event, wasActive, isActive, admin bool) bool {
	if ev.Type == EventRequest {
		return isActive && admin
	}
	return wasActive || isActive
}

// Apply changes s as ev says, for a node that follows a channel from its
// events: what getUsers answers (active users, modes, tracks and their
// states) follows exactly. Members named at creation are known from their
// join on, with the default permission then in force. Events at or below
// s.Seq are ignored; it reports whether ev was applied.
func (s *State) Apply(ev *Event) bool {
	if ev.Seq <= s.Seq {
		return false
	}
	s.Seq = ev.Seq
	switch ev.Type {
	case EventCreate:
		*s = State{ID: ev.Channel, Seq: ev.Seq, Owner: ev.Sender, Config: ev.Config}
		s.Members = []MemberState{{ID: ev.Sender, Mode: permission.All, Active: true}}
	case EventJoin:
		m := s.member(ev.User)
		if m == nil {
			m = s.add(ev.User, s.Config.DefaultPermission)
		}
		m.Active, m.Tracks = true, nil
	case EventLeft:
		if m := s.member(ev.User); m != nil {
			m.Active, m.Tracks = false, nil
		}
	case EventDelete:
		s.Closed = true
		for i := range s.Members {
			s.Members[i].Active, s.Members[i].Tracks = false, nil
		}
	case EventUserAdd:
		for _, u := range ev.Users {
			if s.member(u.ID) == nil {
				s.add(u.ID, u.Mode)
			}
		}
	case EventUserDel:
		for _, u := range ev.Users {
			s.Members = slices.DeleteFunc(s.Members, func(m MemberState) bool { return m.ID == u.ID })
			if i, found := slices.BinarySearch(s.Removed, u.ID); !found {
				s.Removed = slices.Insert(s.Removed, i, u.ID)
			}
		}
	case EventUserMod:
		for _, u := range ev.Users {
			if m := s.member(u.ID); m != nil {
				if m.Mode.Has(permission.Send) && !u.Mode.Has(permission.Send) {
					m.SendBy = ev.Sender
				}
				m.Mode = u.Mode
			}
		}
	case EventConfig:
		if s.Config.Kind&^ev.Config.Kind != 0 {
			s.KindBy = ev.Sender
		}
		s.Config = ev.Config
	case EventTrackAdd:
		if m := s.member(ev.User); m != nil {
			old := m.Tracks
			m.Tracks = make([]PublishedTrack, 0, len(ev.Tracks))
			for _, t := range ev.Tracks {
				self := t.State == MuteSelf
				if i := slices.IndexFunc(old, func(o PublishedTrack) bool { return o.Name == t.Name }); i >= 0 && t.State == MuteAdmin {
					self = old[i].Self
				}
				m.Tracks = append(m.Tracks, PublishedTrack{TrackState: t, Self: self})
			}
			s.noteMute(m, ev.Track)
		}
	case EventTrackMute:
		if m := s.member(ev.User); m != nil {
			for i := range m.Tracks {
				if t := &m.Tracks[i]; t.Name == ev.Track.Name {
					t.TrackState = ev.Track
					switch ev.Track.State {
					case MuteSelf:
						t.Self = true
					case MuteNone:
						t.Self = false
					}
				}
			}
			s.noteMute(m, ev.Track)
		}
	case EventTrackDel:
		if m := s.member(ev.User); m != nil {
			m.Tracks = slices.DeleteFunc(m.Tracks, func(t PublishedTrack) bool { return t.Name == ev.Track.Name })
		}
	case EventSpeakers:
		s.Speakers = s.Speakers[:0:0]
		for _, sp := range ev.Speakers {
			s.Speakers = append(s.Speakers, sp.User)
		}
	}
	return true
}

// noteMute records the muteUser mute a track's announced state shows.
func (s *State) noteMute(m *MemberState, t TrackState) {
	km := &m.Audio
	if t.Kind == Video {
		km = &m.Video
	}
	switch {
	case t.State != MuteAdmin:
		*km = KindMuteState{}
	case t.Reason != ReasonSendRevoked && t.Reason != ReasonKindNotAllowed:
		*km = KindMuteState{On: true, By: t.MutedBy, Reason: t.Reason}
	}
}

func (s *State) member(id string) *MemberState {
	i, found := slices.BinarySearchFunc(s.Members, id, func(m MemberState, id string) int { return strings.Compare(m.ID, id) })
	if !found {
		return nil
	}
	return &s.Members[i]
}

func (s *State) add(id string, mode permission.Mode) *MemberState {
	i, _ := slices.BinarySearchFunc(s.Members, id, func(m MemberState, id string) int { return strings.Compare(m.ID, id) })
	s.Members = slices.Insert(s.Members, i, MemberState{ID: id, Mode: mode})
	if j, found := slices.BinarySearch(s.Removed, id); found {
		s.Removed = slices.Delete(s.Removed, j, j+1)
	}
	return &s.Members[i]
}

// Active reports whether user is active in s.
func (s *State) Active(user string) bool {
	m := s.member(user)
	return m != nil && m.Active
}

// Mode returns user's mode, if it is a member.
func (s *State) Mode(user string) (permission.Mode, bool) {
	if m := s.member(user); m != nil {
		return m.Mode, true
	}
	return 0, false
}

// Admin reports whether user is the owner or has the admin bit.
func (s *State) Admin(user string) bool {
	m := s.member(user)
	return user == s.Owner || (m != nil && m.Mode.Has(permission.Admin))
}

// Users returns getUsers' answer from s, for actor, who must be active
// (ErrNotMember otherwise).
func (s *State) Users(actor string) (Snapshot, error) {
	role := permission.Outsider
	var a permission.Actor
	if m := s.member(actor); m != nil {
		role = permission.Member
		if actor == s.Owner {
			role = permission.Owner
		}
		a.Mode, a.Active = m.Mode, m.Active
	}
	a.Role = role
	if _, err := permission.Decide(permission.OpGetUsers, permission.Facts{Actor: a}); err != nil {
		return Snapshot{}, err
	}
	snap := Snapshot{Seq: s.Seq, Users: []ActiveUser{}}
	for _, m := range s.Members {
		if !m.Active {
			continue
		}
		u := ActiveUser{ID: m.ID, Mode: m.Mode, Tracks: make([]TrackState, len(m.Tracks))}
		for i, t := range m.Tracks {
			u.Tracks[i] = t.TrackState
		}
		snap.Users = append(snap.Users, u)
	}
	return snap, nil
}

// Seq returns the sequence number of the channel's last event.
func (c *Channel) Seq() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.seq
}
