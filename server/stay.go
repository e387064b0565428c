package server

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/coder/websocket"

	"github.com/callcore/callcore/channel"
	"github.com/callcore/callcore/forward"
	"github.com/callcore/callcore/transport/webrtc"
)

// stay is a session's time in one channel: the channel's event stream,
// the user's WebRTC peer attached to the media plane, and two goroutines:
// the event pump (channel events to the client) and the negotiator (the
// server's offers). It ends once (end): by leave, by the channel (the
// user removed, the channel deleted), by the session's end, by a takeover
// or when the media connection has been lost for Config.Grace.
type stay struct {
	ss   *session
	ch   *channel.Channel
	sub  *channel.Subscription
	peer *webrtc.Peer

	ctx    context.Context // ends with the stay
	cancel context.CancelFunc
	need   chan struct{} // the peer has changes to offer
	once   sync.Once

	mu    sync.Mutex
	names map[string]string // announced media track id → channel track name; guarded by mu
}

// newStay starts the session's stay in ch (the user is active there with
// event stream sub): a peer for its media, attached to the plane.
func (ss *session) newStay(ch *channel.Channel, sub *channel.Subscription, ids map[string]string) (*stay, error) {
	ctx, cancel := context.WithCancel(ss.ctx)
	st := &stay{ss: ss, ch: ch, sub: sub, ctx: ctx, cancel: cancel, need: make(chan struct{}, 1), names: ids}
	peer, err := webrtc.NewPeer(webrtc.PeerConfig{
		Engine:              ss.srv.engine,
		Track:               forward.TrackConfig{},
		OnPublish:           st.onPublish,
		OnNegotiationNeeded: st.kick,
		OnStatus: func(s webrtc.Status) {
			if st.ctx.Err() == nil { // not once the stay has ended
				ss.push("status", statusPush{Status: string(s)})
			}
		},
		Grace: ss.srv.cfg.Grace,
		// The media connection stayed lost: the user leaves, and the
		// pump ends the stay on its user:left, which the client reads.
		OnGone: func() { go func() { _ = ch.Leave(ss.user) }() },
	})
	if err != nil {
		cancel()
		_ = ch.Leave(ss.user)
		ss.srv.releaseStay(ch.ID(), ss.user, ss)
		return nil, fmt.Errorf("server: media connection: %w", err)
	}
	st.peer = peer
	if err := ss.srv.plane.Attach(ch.ID(), ss.user, webrtc.Endpoint{Peer: peer}); err != nil {
		st.end(true)
		return nil, fmt.Errorf("server: attaching media: %w", err)
	}
	ss.mu.Lock()
	if ss.done { // the session ended while the stay was set up
		ss.mu.Unlock()
		st.end(true)
		return nil, fmt.Errorf("%w: connection closed", channel.ErrClosed)
	}
	ss.stay = st
	ss.mu.Unlock()
	ss.wg.Add(2)
	go func() { defer ss.wg.Done(); st.pump() }()
	go func() { defer ss.wg.Done(); st.negotiate() }()
	ss.log.Info("in channel", "channel", ch.ID())
	return st, nil
}

// endStayIf ends st if it is still the session's stay; leave makes the
// user leave the channel first (when the channel did not end the stay).
func (ss *session) endStayIf(st *stay, leave bool, why string) {
	ss.mu.Lock()
	if ss.stay != st {
		ss.mu.Unlock()
		return
	}
	ss.stay = nil
	ss.mu.Unlock()
	ss.log.Info("out of channel", "channel", st.ch.ID(), "why", why)
	st.end(leave)
}

// endStay ends the session's stay, if any.
func (ss *session) endStay(leave bool, why string) {
	if st := ss.current(); st != nil {
		ss.endStayIf(st, leave, why)
	}
}

// end stops the stay's goroutines, makes the user leave (when leave is
// set), closes its peer and frees its place. It runs once.
func (st *stay) end(leave bool) {
	st.once.Do(func() {
		st.cancel()
		if leave {
			_ = st.ch.Leave(st.ss.user)
		}
		if st.peer != nil {
			_ = st.peer.Close()
		}
		st.ss.srv.releaseStay(st.ch.ID(), st.ss.user, st.ss)
	})
}

// pump sends the channel's events to the client. The event that ends the
// user's stay (its own user:left, a user:del naming it, cnl:delete) is
// sent after the stay has ended, so that a client reading it knows its
// media connection is closed.
func (st *stay) pump() {
	user := st.ss.user
	for {
		ev, err := st.sub.Next(st.ctx)
		if err != nil {
			if st.ctx.Err() != nil {
				return
			}
			st.ss.endStayIf(st, false, err.Error())
			if errors.Is(err, channel.ErrSlowConsumer) {
				st.ss.closeWith(websocket.StatusPolicyViolation, "too slow for the channel's events")
			}
			return
		}
		last := isLast(&ev, user)
		if last {
			st.ss.endStayIf(st, false, ev.Type.String())
		}
		st.ss.push("event", eventToWire(&ev))
		if last {
			return
		}
	}
}

// isLast reports whether ev ends user's stay.
func isLast(ev *channel.Event, user string) bool {
	switch ev.Type {
	case channel.EventDelete:
		return true
	case channel.EventLeft:
		return ev.User == user
	case channel.EventUserDel:
		return slices.ContainsFunc(ev.Users, func(u channel.UserMode) bool { return u.ID == user })
	}
	return false
}

// kick asks the negotiator for an offer; it never blocks (pion's
// callback).
func (st *stay) kick() {
	select {
	case st.need <- struct{}{}:
	default:
	}
}

// negotiate sends the server's offers: one per kick, when the peer has
// changes for the client (tracks to send, an ICE restart).
func (st *stay) negotiate() {
	for {
		select {
		case <-st.ctx.Done():
			return
		case <-st.need:
		}
		sdp, err := st.peer.Offer()
		if err != nil {
			// An offer still unanswered: the peer asks again after its
			// answer (see webrtc.Peer.Offer).
			if st.ctx.Err() == nil {
				st.ss.log.Debug("server offer not made", "err", err)
			}
			continue
		}
		st.ss.push("offer", sdpData{SDP: sdp})
	}
}

// onPublish hands a track the client publishes to the plane under the
// channel name its media id was announced with. Media nobody announced is
// counted and not forwarded.
func (st *stay) onPublish(tr *forward.Track, info webrtc.PublishInfo) {
	st.mu.Lock()
	name, ok := st.names[info.TrackID]
	st.mu.Unlock()
	if !ok {
		st.ss.srv.stats.unannounced.Add(1)
		st.ss.log.Warn("media of an unannounced track is not forwarded", "trackId", info.TrackID, "kind", info.Kind)
		return
	}
	if err := st.ss.srv.plane.Published(st.ch.ID(), st.ss.user, name, tr); err != nil {
		st.ss.log.Warn("publishing a track", "track", name, "err", err)
	}
}

// announce records the media ids of tracks about to be added; an id or a
// name already announced is refused.
func (st *stay) announce(ids map[string]string) error {
	st.mu.Lock()
	defer st.mu.Unlock()
	for id, name := range ids {
		if _, dup := st.names[id]; dup {
			return fmt.Errorf("%w: trackId %q already announced", channel.ErrExists, id)
		}
		for _, n := range st.names {
			if n == name {
				return fmt.Errorf("%w: track %q already published", channel.ErrExists, name)
			}
		}
	}
	for id, name := range ids {
		st.names[id] = name
	}
	return nil
}

// forget drops announced ids (their addTracks was refused).
func (st *stay) forget(ids map[string]string) {
	st.mu.Lock()
	defer st.mu.Unlock()
	for id := range ids {
		delete(st.names, id)
	}
}

// forgetNames drops the ids announced for removed tracks.
func (st *stay) forgetNames(names []string) {
	st.mu.Lock()
	defer st.mu.Unlock()
	for id, n := range st.names {
		if slices.Contains(names, n) {
			delete(st.names, id)
		}
	}
}
