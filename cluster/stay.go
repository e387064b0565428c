package cluster

import (
	"context"
	"slices"

	"github.com/callcore/callcore/channel"
	"github.com/callcore/callcore/permission"
	"github.com/callcore/callcore/plane"
)

// The methods below make a Session the user's handle on its channel, with
// the methods of channel.Channel that a server calls for a user: each
// operation goes to the channel's owner (bounded by Config.OpTimeout) and
// returns once this node's replica reflects it.

// ID returns the channel id.
func (s *Session) ID() string { return s.f.id }

// Owner returns the user who created the channel.
func (s *Session) Owner() string {
	s.f.mu.Lock()
	defer s.f.mu.Unlock()
	return s.f.st.Owner
}

// Config returns the channel's configuration, as of the replica.
func (s *Session) Config() channel.CallConfig {
	s.f.mu.Lock()
	defer s.f.mu.Unlock()
	return s.f.st.Config
}

func (s *Session) do(op Op) error {
	ctx, cancel := context.WithTimeout(s.f.n.ctx, s.f.n.cfg.OpTimeout)
	defer cancel()
	op.Channel = s.f.id
	_, err := s.f.n.Do(ctx, op)
	return err
}

// Leave makes user leave the channel.
func (s *Session) Leave(user string) error { return s.do(Op{Name: OpLeave, Actor: user}) }

// Delete deletes the channel.
func (s *Session) Delete(actor, reason string) error {
	return s.do(Op{Name: OpDelete, Actor: actor, Reason: reason})
}

// AddUsers adds members.
func (s *Session) AddUsers(actor string, ids []string) error {
	return s.do(Op{Name: OpAddUsers, Actor: actor, Users: ids})
}

// DelUsers removes members.
func (s *Session) DelUsers(actor string, ids []string) error {
	return s.do(Op{Name: OpDelUsers, Actor: actor, Users: ids})
}

// ModUsers sets modes.
func (s *Session) ModUsers(actor string, users []channel.UserMode) error {
	return s.do(Op{Name: OpModUsers, Actor: actor, Modes: users})
}

// GetUsers answers from this node's replica.
func (s *Session) GetUsers(actor string) (channel.Snapshot, error) {
	return s.f.n.GetUsers(s.f.n.ctx, actor, s.f.id)
}

// UpdateConfig changes the configuration fields p sets, on the owner.
func (s *Session) UpdateConfig(actor string, p channel.ConfigPatch) error {
	return s.do(Op{Name: OpUpdateConfig, Actor: actor, Patch: &p})
}

// AddTracks publishes tracks.
func (s *Session) AddTracks(actor string, tracks []channel.TrackInfo) error {
	return s.do(Op{Name: OpAddTracks, Actor: actor, Tracks: tracks})
}

// RemoveTracks stops publishing tracks.
func (s *Session) RemoveTracks(actor string, names []string) error {
	return s.do(Op{Name: OpRemoveTracks, Actor: actor, Names: names})
}

// MuteTracks sets the actor's self mute.
func (s *Session) MuteTracks(actor string, names []string, a channel.MuteAction) error {
	return s.do(Op{Name: OpMuteTracks, Actor: actor, Names: names, Mute: bool(a)})
}

// MuteUser sets an admin mute.
func (s *Session) MuteUser(actor, target string, kind channel.Kind, a channel.MuteAction, reason string) error {
	return s.do(Op{Name: OpMuteUser, Actor: actor, Target: target, Kind: kind, Mute: bool(a), Reason: reason})
}

// UseMedia gives the node the forwarding plane of its local users: every
// node tells it, from the events of the channels it follows, what a
// channel's Media would be told (tracks added, removed and muted, users
// gone, receive changes, configurations), in each channel's event order,
// outside locks. Call it before the node has users.
//
// When m is a *plane.Plane and the node has a LinkAddr, the node also
// carries media across nodes: its users' tracks to the nodes with users
// in their channels, and other nodes' tracks into m (links.go).
func (n *Node) UseMedia(m channel.Media) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if pl, ok := m.(*plane.Plane); ok && n.cfg.LinkAddr != "" {
		n.hub = &hub{n: n, pl: pl, tls: n.cfg.LinkTLS, via: n.linkVia, out: map[string]*outLink{}, in: map[string]*inLink{}, sent: map[string]uint64{}}
		m = hubMedia{Plane: pl, h: n.hub}
	}
	n.media = m
}

// mediaCall is one Media call a follower makes after applying an event.
type mediaCall func(m channel.Media)

// mediaCalls returns the Media calls ev means, given the replica before
// it (pre) and after it (post).
func mediaCalls(ev *channel.Event, pre, post *channel.State) []mediaCall {
	ch := ev.Channel
	var calls []mediaCall
	config := func(cfg channel.CallConfig) {
		calls = append(calls, func(m channel.Media) {
			if cm, ok := m.(channel.ConfigMedia); ok {
				cm.ConfigChanged(ch, cfg)
			}
		})
	}
	gone := func(u string) { calls = append(calls, func(m channel.Media) { m.UserGone(ch, u) }) }
	switch ev.Type {
	case channel.EventCreate, channel.EventJoin:
		u := ev.User
		if ev.Type == channel.EventCreate {
			u = ev.Sender
		}
		config(post.Config)
		if mode, ok := post.Mode(u); ok && !mode.Has(permission.Recv) {
			calls = append(calls, func(m channel.Media) { m.ReceiveChanged(ch, u, false) })
		}
	case channel.EventConfig:
		config(ev.Config)
	case channel.EventTrackAdd:
		t := ev.Track
		calls = append(calls, func(m channel.Media) {
			m.TrackAdded(ch, ev.User, channel.TrackInfo{Name: t.Name, Kind: t.Kind}, t.State)
		})
	case channel.EventTrackMute:
		calls = append(calls, func(m channel.Media) { m.MuteChanged(ch, ev.User, ev.Track.Name, ev.Track.State) })
	case channel.EventTrackDel:
		calls = append(calls, func(m channel.Media) { m.TrackRemoved(ch, ev.User, ev.Track.Name) })
	case channel.EventLeft:
		gone(ev.User)
	case channel.EventUserDel:
		for _, u := range ev.Users {
			if pre.Active(u.ID) {
				gone(u.ID)
			}
		}
	case channel.EventDelete:
		for _, m := range pre.Members {
			if m.Active {
				gone(m.ID)
			}
		}
	case channel.EventUserMod:
		for _, u := range ev.Users {
			before, _ := pre.Mode(u.ID)
			if post.Active(u.ID) && before.Has(permission.Recv) != u.Mode.Has(permission.Recv) {
				on := u.Mode.Has(permission.Recv)
				calls = append(calls, func(m channel.Media) { m.ReceiveChanged(ch, u.ID, on) })
			}
		}
	}
	return calls
}

// snapshotCalls returns the Media calls that tell a plane of the channel
// as st has it: its configuration, and each active user's receive state
// and tracks (a node that starts following a channel from its snapshot).
func snapshotCalls(st *channel.State) []mediaCall {
	if st.Closed || st.Seq == 0 {
		return nil
	}
	ch, cfg := st.ID, st.Config
	calls := []mediaCall{func(m channel.Media) {
		if cm, ok := m.(channel.ConfigMedia); ok {
			cm.ConfigChanged(ch, cfg)
		}
	}}
	for _, mem := range st.Members {
		if !mem.Active {
			continue
		}
		u := mem.ID
		if !mem.Mode.Has(permission.Recv) {
			calls = append(calls, func(m channel.Media) { m.ReceiveChanged(ch, u, false) })
		}
		for _, t := range mem.Tracks {
			calls = append(calls, func(m channel.Media) {
				m.TrackAdded(ch, u, channel.TrackInfo{Name: t.Name, Kind: t.Kind}, t.State)
			})
		}
	}
	return calls
}

// cloneState copies what mediaCalls reads of a replica.
func cloneState(st *channel.State) channel.State {
	c := *st
	c.Members = slices.Clone(st.Members)
	return c
}
