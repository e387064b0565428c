package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/coder/websocket"

	"github.com/callcore/callcore/channel"
	"github.com/callcore/callcore/permission"
	"github.com/callcore/callcore/plane"
	"github.com/callcore/callcore/transport/webrtc"
)

// maxTrackIDLen bounds a track's media id (a MediaStreamTrack id is a
// 36-byte UUID in browsers).
const maxTrackIDLen = 256

// channelOp is a request that acts on the session's channel.
type channelOp func(ss *session, st *stay, data json.RawMessage) (any, error)

// channelOps are the requests that need a channel stay, by type.
var channelOps = map[string]channelOp{
	"leave":         (*session).opLeave,
	"delete":        (*session).opDelete,
	"addUsers":      (*session).opAddUsers,
	"delUsers":      (*session).opDelUsers,
	"modUsers":      (*session).opModUsers,
	"getUsers":      (*session).opGetUsers,
	"configure":     (*session).opConfigure,
	"addTracks":     (*session).opAddTracks,
	"removeTracks":  (*session).opRemoveTracks,
	"muteTracks":    (*session).opMuteTracks,
	"muteUser":      (*session).opMuteUser,
	"setPreference": (*session).opSetPreference,
	"getStats":      (*session).opGetStats,
	"offer":         (*session).opOffer,
	"answer":        (*session).opAnswer,
	"candidate":     (*session).opCandidate,
	"rtpPublish":    (*session).opRTPPublish,
	"rtpReceive":    (*session).opRTPReceive,
}

var okResult = statusResult{Status: true}

// handle answers one request, before the next one is read; only a join
// that is a join request (it waits for an admin) runs beside the read loop.
func (ss *session) handle(req request) {
	switch req.Type {
	case "create", "join":
		ss.startJoin(req)
		return
	case "auth":
		ss.renew(req)
		return
	}
	op := channelOps[req.Type]
	if op == nil {
		ss.srv.stats.invalid.Add(1)
		ss.reply(req.ID, nil, fmt.Errorf("%w: unknown type %q", ErrInvalidMessage, req.Type))
		return
	}
	st := ss.current()
	if st == nil {
		if req.Type == "leave" && ss.cancelJoin() { // leaving withdraws a pending join request
			ss.reply(req.ID, okResult, nil)
			return
		}
		ss.reply(req.ID, nil, fmt.Errorf("%w: not in a channel", channel.ErrNotMember))
		return
	}
	data, err := op(ss, st, json.RawMessage(req.Data))
	if req.Type == "answer" && err != nil && !errors.Is(err, webrtc.ErrNoOffer) {
		st.kick() // the server's offer stays outstanding: make a fresh one
	}
	if errors.Is(err, ErrInvalidMessage) {
		ss.srv.stats.invalid.Add(1)
	}
	ss.reply(req.ID, data, err)
}

// current returns the session's stay, nil when it is in no channel.
func (ss *session) current() *stay {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	return ss.stay
}

// cancelJoin withdraws a join in progress, reporting whether there was
// one.
func (ss *session) cancelJoin() bool {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.joining != nil {
		ss.joining()
		return true
	}
	return false
}

// startJoin runs a create or join request: refused at once when the
// session is in a channel or joining one.
func (ss *session) startJoin(req request) {
	var c createData
	var err error
	resume := false
	if req.Type == "create" {
		err = decodeStrict(req.Data, &c)
	} else {
		var j joinData
		err = decodeStrict(req.Data, &j)
		c = createData{ChannelID: j.ChannelID, Tracks: j.Tracks}
		resume = j.Resume
	}
	var tracks []channel.TrackInfo
	var ids map[string]string
	if err == nil {
		tracks, ids, err = tracksFromWire(c.Tracks)
	}
	if err != nil {
		ss.srv.stats.invalid.Add(1)
		ss.reply(req.ID, nil, err)
		return
	}
	ss.mu.Lock()
	if ss.stay != nil || ss.joining != nil {
		ss.mu.Unlock()
		ss.reply(req.ID, nil, fmt.Errorf("%w: already in a channel (leave it first)", channel.ErrExists))
		return
	}
	ctx, cancel := context.WithCancel(ss.ctx)
	ss.joining = cancel
	ss.mu.Unlock()
	finish := func(data any, err error) {
		cancel()
		ss.mu.Lock()
		ss.joining = nil
		ss.mu.Unlock()
		ss.reply(req.ID, data, err)
	}
	// Requests are answered in order; only a join the channel made a join
	// request (decided under its lock) waits for an admin beside the read
	// loop.
	data, wait, err := ss.join(ctx, req.Type == "create", resume, c, tracks, ids)
	if wait == nil {
		finish(data, err)
		return
	}
	ss.wg.Add(1)
	go func() {
		defer ss.wg.Done()
		finish(wait())
	}()
}

// join creates or joins the channel and starts the stay. When the join
// is a join request, it returns wait instead, which waits for the answer
// and then does the rest: the caller runs it beside the read loop.
func (ss *session) join(ctx context.Context, create, resume bool, c createData, tracks []channel.TrackInfo, ids map[string]string) (data any, wait func() (any, error), err error) {
	var ch *channel.Channel
	var sub *channel.Subscription
	var pend *channel.PendingJoin
	if err := ss.srv.admit(create, c.ChannelID, ss.user); err != nil {
		return nil, nil, err
	}
	if create && !ss.claims.Create {
		return nil, nil, fmt.Errorf("%w: this user's token does not allow creating calls", channel.ErrUnauthorized)
	}
	if ss.srv.cfg.Cluster != nil {
		data, err := ss.joinCluster(ctx, create, resume, c, tracks, ids)
		return data, nil, err
	}
	if create {
		opts := channel.CreateOptions{Tracks: tracks, Users: c.Users}
		if c.Config != nil {
			if opts.Config, err = configFromWire(*c.Config); err != nil {
				return nil, nil, err
			}
		}
		ch, sub, err = ss.srv.reg.Create(ss.user, c.ChannelID, opts)
	} else {
		if ch, err = ss.srv.reg.Get(c.ChannelID); err != nil {
			return nil, nil, err
		}
		if resume {
			if st := ss.srv.adopt(ch.ID(), ss.user, ss); st != nil {
				data, err := ss.resume(st)
				if err == nil {
					st.retellWanted()
				}
				return data, nil, err
			}
		}
		sub, pend, err = ch.StartJoin(ss.user, tracks)
		if prev := ss.srv.holder(ch.ID(), ss.user); errors.Is(err, channel.ErrExists) && prev != nil && prev.owner.Load() != ss {
			// The user is in the call through another connection, or
			// through a lost one waiting to be resumed: this join takes
			// the call over (a second tab, a client that lost its media
			// connection too), but only when it is refused for that
			// alone, so that a join refused for another reason changes
			// nothing. The channel checks Exists before kinds: those are
			// checked here.
			if !kindsAllowed(ch.Config().Kind, tracks) {
				return nil, nil, fmt.Errorf("%w: the channel allows %s", channel.ErrKindNotAllowed, ch.Config().Kind)
			}
			ss.srv.stats.takeovers.Add(1)
			ss.log.Info("call taken over from another connection", "channel", ch.ID())
			if orphan := ss.srv.adopt(ch.ID(), ss.user, nil); orphan != nil {
				orphan.end(true)
			} else if other := prev.owner.Load(); other != nil {
				other.bye("replaced", websocket.StatusNormalClosure)
			}
			sub, pend, err = ch.StartJoin(ss.user, tracks)
		}
	}
	if err != nil {
		return nil, nil, err
	}
	if pend != nil {
		return nil, func() (any, error) {
			sub, err := pend.Wait(ctx)
			if err != nil {
				if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
					err = fmt.Errorf("%w: join request withdrawn", channel.ErrNotMember)
				}
				return nil, err
			}
			return ss.joined(ctx, ch, sub, ids)
		}, nil
	}
	data, err = ss.joined(ctx, ch, sub, ids)
	return data, nil, err
}

// joined starts the stay of a user that has joined ch.
func (ss *session) joined(ctx context.Context, ch call, sub events, ids map[string]string) (any, error) {
	if ctx.Err() != nil { // the session ended or the join was withdrawn meanwhile
		_ = ch.Leave(ss.user)
		return nil, fmt.Errorf("%w: join request withdrawn", channel.ErrNotMember)
	}
	if _, err := ss.newStay(ch, sub, ids); err != nil {
		return nil, err
	}
	snap, err := ch.GetUsers(ss.user)
	if err != nil {
		return nil, err // the stay's pump sees the end too
	}
	return stayResultOf(ch, snap, false), nil
}

// resume makes the orphaned stay st, just adopted, the session's: the
// user never left the call and its media connection goes on. The server's
// offer still awaiting an answer, if any, is sent again.
func (ss *session) resume(st *stay) (any, error) {
	ss.mu.Lock()
	if ss.done {
		ss.mu.Unlock()
		ss.srv.orphan(st) // this connection is gone too
		return nil, fmt.Errorf("%w: connection closed", channel.ErrClosed)
	}
	ss.stay = st
	ss.mu.Unlock()
	ss.srv.stats.resumes.Add(1)
	ss.log.Info("stay resumed", "channel", st.ch.ID())
	snap, err := st.ch.GetUsers(ss.user)
	if err != nil {
		return nil, err
	}
	st.mu.Lock()
	offer := st.offer
	st.mu.Unlock()
	if offer != "" {
		ss.push("offer", sdpData{SDP: offer})
	}
	return stayResultOf(st.ch, snap, true), nil
}

// stayResultOf is create's and join's answer: the channel as snap shows it.
func stayResultOf(ch call, snap channel.Snapshot, resumed bool) stayResult {
	return stayResult{Status: true, ChannelID: ch.ID(), Owner: ch.Owner(), Resumed: resumed, Seq: snap.Seq,
		Users: usersToWire(snap.Users), Config: configToWire(ch.Config())}
}

// kindsAllowed reports whether a channel of kind allows every track.
func kindsAllowed(kind channel.Kind, tracks []channel.TrackInfo) bool {
	for _, t := range tracks {
		if kind&t.Kind == 0 {
			return false
		}
	}
	return true
}

// tracksFromWire checks announced tracks and returns them for the channel
// with the media ids they will arrive with.
func tracksFromWire(in []trackData) ([]channel.TrackInfo, map[string]string, error) {
	out := make([]channel.TrackInfo, 0, len(in))
	ids := make(map[string]string, len(in))
	for _, t := range in {
		k, err := kindFromWire(t.Kind)
		if err != nil {
			return nil, nil, err
		}
		if !validName(t.Name) {
			return nil, nil, fmt.Errorf("%w: track name %q has whitespace or control characters", channel.ErrInvalid, t.Name)
		}
		if t.TrackID == "" || len(t.TrackID) > maxTrackIDLen {
			return nil, nil, fmt.Errorf("%w: track %q needs a trackId of 1 to %d bytes", channel.ErrInvalid, t.Name, maxTrackIDLen)
		}
		if _, dup := ids[t.TrackID]; dup {
			return nil, nil, fmt.Errorf("%w: trackId %q announced twice", channel.ErrInvalid, t.TrackID)
		}
		ids[t.TrackID] = t.Name
		out = append(out, channel.TrackInfo{Name: t.Name, Kind: k})
	}
	return out, ids, nil
}

func (ss *session) opLeave(st *stay, data json.RawMessage) (any, error) {
	if err := decodeStrict(data, &struct{}{}); err != nil {
		return nil, err
	}
	ss.endStayIf(st, true, "left")
	return okResult, nil
}

func (ss *session) opDelete(st *stay, data json.RawMessage) (any, error) {
	var d reasonData
	if err := decodeStrict(data, &d); err != nil {
		return nil, err
	}
	return okResult, st.ch.Delete(ss.user, d.Reason)
}

func (ss *session) opAddUsers(st *stay, data json.RawMessage) (any, error) {
	var d usersData
	if err := decodeStrict(data, &d); err != nil {
		return nil, err
	}
	return okResult, st.ch.AddUsers(ss.user, d.Users)
}

func (ss *session) opDelUsers(st *stay, data json.RawMessage) (any, error) {
	var d usersData
	if err := decodeStrict(data, &d); err != nil {
		return nil, err
	}
	return okResult, st.ch.DelUsers(ss.user, d.Users)
}

func (ss *session) opModUsers(st *stay, data json.RawMessage) (any, error) {
	var d modUsersData
	if err := decodeStrict(data, &d); err != nil {
		return nil, err
	}
	users := make([]channel.UserMode, len(d.Users))
	for i, u := range d.Users {
		if u.Mode < 0 || u.Mode > int(permission.Admin|permission.Send|permission.Recv) {
			return nil, fmt.Errorf("%w: mode %d of %q is outside 0..7", channel.ErrInvalid, u.Mode, u.ID)
		}
		users[i] = channel.UserMode{ID: u.ID, Mode: permission.Mode(u.Mode)}
	}
	return okResult, st.ch.ModUsers(ss.user, users)
}

func (ss *session) opGetUsers(st *stay, data json.RawMessage) (any, error) {
	if err := decodeStrict(data, &struct{}{}); err != nil {
		return nil, err
	}
	snap, err := st.ch.GetUsers(ss.user)
	if err != nil {
		return nil, err
	}
	return usersResult{Seq: snap.Seq, Users: usersToWire(snap.Users)}, nil
}

func (ss *session) opConfigure(st *stay, data json.RawMessage) (any, error) {
	var d configureData
	if err := decodeStrict(data, &d); err != nil {
		return nil, err
	}
	p, err := d.Config.patch()
	if err != nil {
		return nil, err
	}
	return okResult, st.ch.UpdateConfig(ss.user, p)
}

func (ss *session) opAddTracks(st *stay, data json.RawMessage) (any, error) {
	var d tracksData
	if err := decodeStrict(data, &d); err != nil {
		return nil, err
	}
	tracks, ids, err := tracksFromWire(d.Tracks)
	if err != nil {
		return nil, err
	}
	if err := st.announce(ids); err != nil {
		return nil, err
	}
	if err := st.ch.AddTracks(ss.user, tracks); err != nil {
		st.forget(ids)
		return nil, err
	}
	return okResult, nil
}

func (ss *session) opRemoveTracks(st *stay, data json.RawMessage) (any, error) {
	var d namesData
	if err := decodeStrict(data, &d); err != nil {
		return nil, err
	}
	if err := st.ch.RemoveTracks(ss.user, d.Names); err != nil {
		return nil, err
	}
	st.forgetNames(d.Names)
	st.wanted.forget(d.Names)
	return okResult, nil
}

func (ss *session) opMuteTracks(st *stay, data json.RawMessage) (any, error) {
	var d muteTracksData
	if err := decodeStrict(data, &d); err != nil {
		return nil, err
	}
	if d.State == nil {
		return nil, fmt.Errorf("%w: muteTracks needs a state", channel.ErrInvalid)
	}
	return okResult, st.ch.MuteTracks(ss.user, d.Names, channel.MuteAction(*d.State))
}

func (ss *session) opMuteUser(st *stay, data json.RawMessage) (any, error) {
	var d muteUserData
	if err := decodeStrict(data, &d); err != nil {
		return nil, err
	}
	kind, err := kindFromWire(d.Kind)
	if err != nil {
		return nil, err
	}
	if d.State == nil {
		return nil, fmt.Errorf("%w: muteUser needs a state", channel.ErrInvalid)
	}
	return okResult, st.ch.MuteUser(ss.user, d.UserID, kind, channel.MuteAction(*d.State), d.Reason)
}

// maxPreferredHeight bounds setPreference's maxHeight (a picture is at
// most 65535 pixels tall).
const maxPreferredHeight = 65535

func (ss *session) opSetPreference(st *stay, data json.RawMessage) (any, error) {
	var d preferenceData
	if err := decodeStrict(data, &d); err != nil {
		return nil, err
	}
	var pref plane.Preference
	if d.MaxHeight != nil {
		if *d.MaxHeight < 0 || *d.MaxHeight > maxPreferredHeight {
			return nil, fmt.Errorf("%w: maxHeight %d is outside 0..%d", channel.ErrInvalid, *d.MaxHeight, maxPreferredHeight)
		}
		pref.MaxHeight = *d.MaxHeight
	}
	if d.Paused != nil {
		pref.Paused = *d.Paused
	}
	err := ss.srv.plane.SetPreference(st.ch.ID(), ss.user, d.UserID, d.TrackName, pref)
	if errors.Is(err, plane.ErrUnknownTrack) {
		return nil, fmt.Errorf("%w: %v", channel.ErrNotFound, err)
	}
	return okResult, err
}

func (ss *session) opOffer(st *stay, data json.RawMessage) (any, error) {
	var d sdpData
	if err := decodeStrict(data, &d); err != nil {
		return nil, err
	}
	sdp, err := st.peer.Answer(d.SDP)
	if err != nil {
		return nil, sdpError(err)
	}
	return sdpData{SDP: sdp}, nil
}

func (ss *session) opAnswer(st *stay, data json.RawMessage) (any, error) {
	var d sdpData
	if err := decodeStrict(data, &d); err != nil {
		return nil, err
	}
	if err := st.peer.SetAnswer(d.SDP); err != nil {
		return nil, sdpError(err)
	}
	st.mu.Lock()
	st.offer = ""
	st.mu.Unlock()
	return nil, nil
}

func (ss *session) opCandidate(st *stay, data json.RawMessage) (any, error) {
	var d candidateData
	if err := decodeStrict(data, &d); err != nil {
		return nil, err
	}
	c := webrtc.ICECandidate{Candidate: d.Candidate, SDPMid: d.SDPMid, SDPMLineIndex: d.SDPMLineIndex, UsernameFragment: d.UsernameFragment}
	if err := st.peer.AddICECandidate(c); err != nil {
		return nil, fmt.Errorf("%w: candidate: %v", ErrInvalidMessage, err)
	}
	return nil, nil
}

// sdpError keeps the transport's sentinels and calls anything else a bad
// description.
func sdpError(err error) error {
	if err == nil || errors.Is(err, webrtc.ErrGlare) || errors.Is(err, webrtc.ErrClosed) ||
		errors.Is(err, webrtc.ErrNoOffer) {
		return err
	}
	return fmt.Errorf("%w: session description refused: %v", ErrInvalidMessage, err)
}
