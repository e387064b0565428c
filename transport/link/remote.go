package link

import (
	"sync"
	"sync/atomic"

	"github.com/callcore/callcore/forward"
)

// RemoteTrack is a track offered by the peer, forwarded on this node.
// Local subscribers join it with Subscribe; it outlives link drops: each
// session feeds a new forward.Track and the subscribers are switched onto
// it, so their numbering stays continuous.
type RemoteTrack struct {
	l      *Link
	id     string
	cfg    forward.TrackConfig // the codec as the origin announced it
	mute   atomic.Uint32       // the origin's forward.MuteSource bits
	paused atomic.Bool

	mu    sync.Mutex // guards track, subs, ended
	track *forward.Track
	subs  []*forward.Subscriber
	ended bool
}

// ID returns the ID the origin offered the track under.
func (r *RemoteTrack) ID() string { return r.id }

// Config returns the track's codec as announced by the origin: Kind,
// ClockRate, PayloadType and MimeType.
func (r *RemoteTrack) Config() forward.TrackConfig { return r.cfg }

// Track returns the forward.Track the current session feeds (the last one
// after a drop). It changes with each session: subscribe with Subscribe,
// not on it.
func (r *RemoteTrack) Track() *forward.Track {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.track
}

// MuteSources returns the mute sources set on the origin track, as last
// reported over the control channel. Mute is applied there: the media
// arriving here is already empty.
func (r *RemoteTrack) MuteSources() forward.MuteSource { return forward.MuteSource(r.mute.Load()) }

// Subscribe adds a local subscriber. Its packets come from the current
// session's track, and from each later session's after a drop, with
// continuous numbering.
func (r *RemoteTrack) Subscribe(cfg forward.SubscriberConfig) (*forward.Subscriber, error) {
	s, err := forward.NewSubscriber(cfg)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ended {
		return nil, forward.ErrClosed
	}
	if r.track != nil {
		if err := s.SwitchTo(r.track); err != nil {
			return nil, err
		}
	}
	r.subs = append(r.subs, s)
	return s, nil
}

// SetMute asks the origin to set or clear one mute source on the track
// (for instance forward.SourceAdmin when a moderator on this node mutes a
// remote user). It returns ErrNotConnected between sessions.
func (r *RemoteTrack) SetMute(src forward.MuteSource, on bool) error {
	s := r.l.current()
	if s == nil {
		return ErrNotConnected
	}
	return s.c.send(&msg{T: msgMute, ID: r.id, Source: uint32(src), On: on})
}

// Pause asks the origin to stop sending the track (nobody here needs it);
// Resume asks for it again, from a key frame. The state is kept across
// sessions.
func (r *RemoteTrack) Pause() error { return r.setPaused(true) }

// Resume undoes Pause.
func (r *RemoteTrack) Resume() error { return r.setPaused(false) }

func (r *RemoteTrack) setPaused(p bool) error {
	r.paused.Store(p)
	s := r.l.current()
	if s == nil {
		return nil // sent when the next session announces the track
	}
	t := msgResume
	if p {
		t = msgPause
	}
	return s.c.send(&msg{T: t, ID: r.id})
}

// attach makes t the track feeding the subscribers, switching them onto it
// (a splice) and closing the previous one.
func (r *RemoteTrack) attach(t *forward.Track) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ended {
		return false
	}
	old := r.track
	r.track = t
	live := r.subs[:0]
	for _, s := range r.subs {
		if s.SwitchTo(t) == nil {
			live = append(live, s) // a closed subscriber refuses and is forgotten
		}
	}
	clear(r.subs[len(live):])
	r.subs = live
	if old != nil {
		old.Close()
	}
	return true
}

// end closes the track; its subscribers get nothing more.
func (r *RemoteTrack) end() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ended = true
	if r.track != nil {
		r.track.Close()
	}
	r.subs = nil
}
