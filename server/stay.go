package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/callcore/callcore/channel"
	"github.com/callcore/callcore/forward"
	"github.com/callcore/callcore/plane"
	"github.com/callcore/callcore/plane/rtpplane"
	"github.com/callcore/callcore/plane/webrtcplane"
	"github.com/callcore/callcore/transport/webrtc"
)

// stay is a user's time in one channel: the channel's event stream, the
// user's WebRTC peer attached to the media plane, and two goroutines: the
// event pump (channel events to the client) and the negotiator (the
// server's offers). It speaks through its owner session. When that
// session's connection is lost (not closed), the stay is orphaned for
// Config.ResumeGrace: the media keeps flowing and a new connection of the
// user may resume it (join with resume), else it ends. It ends once (end):
// by leave, by the channel (the user removed, the channel deleted), by
// its session's clean end, by a takeover, by an orphan's expiry or when
// the media connection has been lost for Config.Grace.
type stay struct {
	srv  *Server
	user string
	ch   call   // *channel.Channel, or a ClusterStay
	sub  events // the channel's events for user
	peer *webrtc.Peer

	owner atomic.Pointer[session] // nil while orphaned

	ctx    context.Context // ends with the stay
	cancel context.CancelFunc
	need   chan struct{} // the peer has changes to offer
	once   sync.Once

	mu    sync.Mutex
	names map[string]string // announced media track id → channel track name; guarded by mu
	offer string            // the server's offer awaiting the client's answer; guarded by mu

	samples map[string]statSample // byte counts at the last getStats, by track; guarded by mu

	media      *mediaEndpoint        // the peer and the RTP legs, attached to the plane (rtpleg.go)
	rtpPubs    []*rtpplane.Publisher // the RTP sources of rtpPublish; guarded by mu
	rtpStreams int                   // RTP streams published and received; guarded by mu
	rtpEnded   bool                  // closeRTP ran; guarded by mu
	wanted     wantedLayers          // the layers wanted of its tracks, as last pushed (layerpush.go)

	orphaned bool        // guarded by Server.mu
	expiry   *time.Timer // ends an orphan; guarded by Server.mu
}

// newStay starts the session's stay in ch (the user is active there with
// event stream sub): a peer for its media, attached to the plane.
func (ss *session) newStay(ch call, sub events, ids map[string]string) (*stay, error) {
	ctx, cancel := context.WithCancel(context.Background())
	st := &stay{srv: ss.srv, user: ss.user, ch: ch, sub: sub, ctx: ctx, cancel: cancel, need: make(chan struct{}, 1), names: ids}
	st.owner.Store(ss)
	peer, err := webrtc.NewPeer(webrtc.PeerConfig{
		Engine:              ss.srv.engine,
		Track:               forward.TrackConfig{},
		OnPublish:           st.onPublish,
		Admit:               st.admit,
		OnRefused:           st.refused,
		OnNegotiationNeeded: st.kick,
		OnStatus: func(s webrtc.Status) {
			if st.ctx.Err() == nil { // not once the stay has ended
				st.push("status", statusPush{Status: string(s)})
			}
		},
		Grace: ss.srv.cfg.Grace,
		// The media connection stayed lost: the user leaves, and the
		// pump ends the stay on its user:left, which the client reads.
		OnGone: func() { go func() { _ = ch.Leave(st.user) }() },
	})
	if err != nil {
		cancel()
		_ = ch.Leave(ss.user)
		return nil, fmt.Errorf("server: media connection: %w", err)
	}
	st.peer = peer
	ss.srv.hooks.join(ch.ID(), sub) // before the pump starts
	ss.srv.claimStay(st)
	st.media = newMediaEndpoint(webrtcplane.Endpoint{Peer: peer})
	if err := ss.srv.plane.Attach(ch.ID(), ss.user, st.media); err != nil {
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
	ss.srv.stayWG.Add(2)
	go func() { defer ss.srv.stayWG.Done(); st.pump() }()
	go func() { defer ss.srv.stayWG.Done(); st.negotiate() }()
	ss.log.Info("in channel", "channel", ch.ID())
	return st, nil
}

// push sends a push through the stay's session; nothing while orphaned.
func (st *stay) push(typ string, data any) {
	if ss := st.owner.Load(); ss != nil {
		ss.push(typ, data)
	}
}

// log is the stay's logger.
func (st *stay) log() *slog.Logger {
	if ss := st.owner.Load(); ss != nil {
		return ss.log
	}
	return st.srv.log.With("user", st.user, "orphan", true)
}

// finish detaches st from its session (if any) and ends it.
func (st *stay) finish(leave bool, why string) {
	if ss := st.owner.Load(); ss != nil && ss.endStayIf(st, leave, why) {
		return
	}
	// An orphan, or a stay its session is just handing to orphan().
	st.log().Info("out of channel", "channel", st.ch.ID(), "why", why)
	st.end(leave)
}

// endStayIf ends st if it is still the session's stay, reporting whether
// it did; leave makes the user leave the channel first (when the channel
// did not end the stay).
func (ss *session) endStayIf(st *stay, leave bool, why string) bool {
	ss.mu.Lock()
	if ss.stay != st {
		ss.mu.Unlock()
		return false
	}
	ss.stay = nil
	ss.mu.Unlock()
	ss.log.Info("out of channel", "channel", st.ch.ID(), "why", why)
	st.end(leave)
	return true
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
			_ = st.ch.Leave(st.user)
		}
		st.srv.hooks.rest(st.ch.ID(), st.sub) // what the pump did not read, this user's user:left among them
		if st.peer != nil {
			_ = st.peer.Close()
			st.srv.metrics.ledger.peer(st.peer) // before the release: see ledger
		}
		st.closeRTP()
		st.srv.releaseStay(st)
	})
}

// pump sends the channel's events to the client. The event that ends the
// user's stay (its own user:left, a user:del naming it, cnl:delete) is
// sent after the stay has ended, so that a client reading it knows its
// media connection is closed.
func (st *stay) pump() {
	for {
		ev, err := st.sub.Next(st.ctx)
		if err != nil {
			if st.ctx.Err() != nil {
				return
			}
			ss := st.owner.Load()
			st.finish(false, err.Error())
			if ss != nil && errors.Is(err, channel.ErrSlowConsumer) {
				ss.closeWith(websocket.StatusPolicyViolation, "too slow for the channel's events")
			}
			return
		}
		st.srv.hooks.observe(st.sub, &ev)
		last := isLast(&ev, st.user)
		ss := st.owner.Load() // the session that reads the last event
		if last {
			st.finish(false, ev.Type.String())
		}
		if ss != nil {
			ss.push("event", eventToWire(&ev))
		}
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
				st.log().Debug("server offer not made", "err", err)
			}
			continue
		}
		st.mu.Lock()
		st.offer = sdp // sent again if the stay is resumed before its answer
		st.mu.Unlock()
		st.push("offer", sdpData{SDP: sdp})
	}
}

// errUnannounced refuses media under an id no create, join or addTracks
// announced.
var errUnannounced = errors.New("server: media id not announced")

// admit lets through only media whose id was announced: anything else is
// refused before it costs anything (webrtc.PeerConfig.Admit).
func (st *stay) admit(info webrtc.PublishInfo) error {
	st.mu.Lock()
	_, ok := st.names[info.TrackID]
	st.mu.Unlock()
	if !ok {
		return fmt.Errorf("%w: %q", errUnannounced, info.TrackID)
	}
	return nil
}

// refused counts a published track the peer refused, and logs it at most
// once a second.
func (st *stay) refused(info webrtc.PublishInfo, err error) {
	if errors.Is(err, errUnannounced) {
		st.srv.stats.unannounced.Add(1)
	} else {
		st.srv.stats.excessStreams.Add(1)
	}
	st.srv.warnRefusedMedia.warn(st.log(), "published media refused", "trackId", info.TrackID, "kind", info.Kind, "ssrc", info.SSRC, "err", err)
}

// onPublish hands a track the client publishes to the plane under the
// channel name its media id was announced with.
func (st *stay) onPublish(tr *forward.Track, info webrtc.PublishInfo) {
	st.srv.metrics.ledger.track(tr)
	st.mu.Lock()
	name, ok := st.names[info.TrackID]
	st.mu.Unlock()
	if !ok { // forgotten since it was admitted (its track was removed)
		return
	}
	var err error
	if info.RID == "" {
		err = st.srv.plane.Published(st.ch.ID(), st.user, name, tr)
	} else if layer, ok := webrtc.LayerOf(info.RID); ok { // one layer of a track sent as layers
		err = st.srv.plane.PublishedLayer(st.ch.ID(), st.user, name, layer, tr)
	} else {
		err = fmt.Errorf("rid %q is not a layer (q, h, f)", info.RID)
	}
	if err != nil {
		st.log().Warn("publishing a track", "track", name, "err", err)
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

// tellLayer pushes a change of what user id receives of a layered track
// to that user's session only (plane.Config.OnLayer).
func (s *Server) tellLayer(ch, id string, c plane.LayerChange) {
	st := s.holder(ch, id)
	if st == nil {
		return
	}
	d := layerPush{ChannelID: ch, UserID: c.From, TrackName: c.Name, Width: c.Width, Height: c.Height}
	if !c.Paused {
		l := c.Layer.String()
		d.Layer = &l
	}
	if c.LimitedBy != "" {
		d.LimitedBy = &c.LimitedBy
	}
	st.push("layer", d)
}
