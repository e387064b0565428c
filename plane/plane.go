// Package plane is the media plane under the call channels: a
// channel.Media that forwards each published track to the channel's other
// users with the forward core, applies the channel's layers of muting
// through the muter, and pauses and resumes what each user receives.
//
// Transports take part through one contract. A transport makes each of
// its user's tracks itself (it knows their codec, SSRC and extensions; a
// WebRTC peer only once negotiated) and hands it to the plane with
// Published, or one stream at a time with PublishedLayer when the track is
// sent as layers. The plane hands every other user's Endpoint each track
// (Endpoint.Subscribe) or layered track (Endpoint.SubscribeLayers), and the
// endpoint subscribes its user to it, returning the Reception the plane
// opens, closes and, for layers, moves between streams.
//
// The adapters that make a transport an Endpoint live beside the plane,
// not in the transports: plane/webrtcplane (a WebRTC peer), plane/rtpplane
// (plain RTP ingests and targets) and plane/linkplane (a link to another
// node). The transport packages import neither plane nor channel.
package plane

import (
	"errors"
	"fmt"
	"sync"

	"github.com/callcore/callcore/channel"
	"github.com/callcore/callcore/forward"
	"github.com/callcore/callcore/speaker"
)

// Errors returned by the plane.
var (
	// ErrInvalidConfig is wrapped by Config.Validate.
	ErrInvalidConfig = errors.New("plane: invalid config")
	// ErrAttached is returned when a user is attached twice.
	ErrAttached = errors.New("plane: endpoint already attached")
	// ErrUnknownTrack is returned by Published for a track the channel does
	// not list.
	ErrUnknownTrack = errors.New("plane: no such track in the channel")
)

// Reception is one subscription an Endpoint made: the plane opens and
// closes its gate (a receive permission cleared, lastN, a paused
// preference) and closes it when the track or the user goes.
type Reception interface {
	SetOpen(open bool)
	Close() error
}

// Endpoint is a user's media connection, as the plane needs it: the plane
// hands it every other user's track and it subscribes its user to it. Its
// methods are called without any plane lock held. The user's own tracks
// are made by its transport and handed over with Published or
// PublishedLayer.
type Endpoint interface {
	// Subscribe makes the user receive user from's track t, the channel
	// track info.
	Subscribe(from string, info channel.TrackInfo, t *forward.Track) (Reception, error)
	// SubscribeLayers makes the user receive user from's track published
	// as layers (several streams of one picture, forward.Layers), one
	// stream at a time: the best up to max, until the reception's
	// SetMaxLayer moves it. AttachLayers makes such a reception from a
	// forward.Subscriber.
	SubscribeLayers(from string, info channel.TrackInfo, l *forward.Layers, max forward.Layer) (LayerReception, error)
}

// Config configures a plane.
type Config struct {
	// Clock is given to every track. Default: each track's own system clock.
	Clock forward.Clock
	// Pulse keeps muted tracks' cadence; every published track is added to
	// it, and it ticks only while some track generates empty media. Nil
	// makes the plane start its own (closed by Close).
	Pulse *forward.Pulse
	// Pool, when set, is given to every track for parallel fan-out.
	Pool *forward.Pool
	// Mute sets the empty media of muted tracks.
	Mute forward.MuteConfig
	// Speakers decides the speakers of every channel from the audio
	// levels of their tracks (one Detector per channel). Nil makes the
	// plane start its own with the default interval (closed by Close).
	Speakers *speaker.Group
	// OnSpeakers is told each channel's speakers when their order changes
	// (channel.Registry implements it). Nil: the order only drives lastN.
	OnSpeakers SpeakerSink
	// OnLayer, when set, is told when what a user receives of a layered
	// track changes (LayerChange). It is called with no plane lock held
	// and must not block for long.
	OnLayer func(ch, id string, c LayerChange)
	// OnLayersWanted, when set, is told that the layers wanted of user
	// id's layered track name may have changed: read them with
	// WantedLayers. It is called with no plane lock held and must not
	// block for long.
	OnLayersWanted func(ch, id, name string)
}

// SpeakerSink takes the speakers of a channel, the dominant first. It is
// called from the speaker Group's goroutine with no plane lock held, one
// call at a time, and must not block for long: it delays every channel.
type SpeakerSink interface {
	SetSpeakers(ch string, speakers []channel.Speaker) error
}

// SpeakerSinkFunc is a function as a SpeakerSink, for a sink made after
// the plane (the registry that takes the plane as its Media).
type SpeakerSinkFunc func(ch string, speakers []channel.Speaker) error

// SetSpeakers calls f.
func (f SpeakerSinkFunc) SetSpeakers(ch string, speakers []channel.Speaker) error {
	return f(ch, speakers)
}

// Validate reports whether the config is usable.
func (c Config) Validate() error {
	if c.Mute.VideoRate < 0 || c.Mute.AudioFrame < 0 || c.Mute.Width < 0 || c.Mute.Height < 0 {
		return fmt.Errorf("%w: mute %+v", ErrInvalidConfig, c.Mute)
	}
	return nil
}

// Plane implements channel.Media.
type Plane struct {
	cfg      Config
	ownPulse bool
	ownGroup bool
	clock    forward.Clock // the speaker Group's, given to the tracks the plane makes

	mu    sync.Mutex // guards rooms; never held while calling forward or an Endpoint
	rooms map[string]*room
}

// room is the media of one channel.
type room struct {
	users  map[string]*user
	tracks map[key]*pub
	det    *speaker.Detector // immutable
	lastN  int               // the channel's lastN; 0 no limit
	// recent is every user with a published track, the most recent
	// speakers first, then the others in the order they published.
	recent []string
	// speakers are the current speakers, the dominant first.
	speakers []string
}

type key struct{ user, name string }

// user is one attached or known user of a room.
type user struct {
	ep     Endpoint // nil until attached
	recv   bool
	subs   map[key]*reception // what it receives, by publisher and track
	paused map[key]bool       // tracks its preference pauses (SetPreference)
}

// reception is one subscription with the gate state last given to it.
type reception struct {
	rc       Reception
	open     bool
	pref     Preference   // its receive preference (SetPreference)
	explicit bool         // the preference was set (SetPreference)
	prio     int          // the priority last given (Prioritized); -1 before any
	told     *LayerChange // the layer last told to OnLayer; nil before any
}

// pub is one published track.
type pub struct {
	info  channel.TrackInfo
	state channel.MuteState
	track *forward.Track  // nil until its transport publishes it; a layered track's first layer
	lay   *forward.Layers // set when the track is published as layers (layers.go)
	level string          // the key of its speaker source, "" if none
}

// New returns a plane.
func New(cfg Config) (*Plane, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	p := &Plane{cfg: cfg, rooms: map[string]*room{}}
	if cfg.Speakers == nil {
		var clock speaker.Clock
		if cfg.Clock != nil {
			clock = cfg.Clock
		} else {
			clock = forward.NewSystemClock()
		}
		g, err := speaker.NewGroup(speaker.Config{Clock: clock})
		if err != nil {
			return nil, err
		}
		p.cfg.Speakers, p.ownGroup = g, true
	}
	p.clock = p.cfg.Speakers.Clock()
	if cfg.Pulse == nil {
		pulse, err := forward.NewPulse(0)
		if err != nil {
			if p.ownGroup {
				p.cfg.Speakers.Close()
			}
			return nil, err
		}
		p.cfg.Pulse, p.ownPulse = pulse, true
	}
	return p, nil
}

// NewTrack makes a forward track with the plane's clock, worker pool and
// mute settings over cfg: what a transport adapter that makes its own
// tracks (an RTP ingest, a link) publishes with Published.
func (p *Plane) NewTrack(cfg forward.TrackConfig) (*forward.Track, error) {
	cfg.Clock = p.clock // the speaker Group's: levels are stamped with it
	cfg.Pool, cfg.Mute = p.cfg.Pool, p.cfg.Mute
	return forward.NewTrack(cfg)
}

// Close closes every track and subscription, and the plane's own pulse
// and speaker Group.
func (p *Plane) Close() error {
	p.mu.Lock()
	rooms := p.rooms
	p.rooms = map[string]*room{}
	p.mu.Unlock()
	for ch, r := range rooms {
		for u := range r.users {
			p.teardown(ch, r, u)
		}
		if r.det != nil {
			r.det.Close()
		}
	}
	if p.ownGroup {
		p.cfg.Speakers.Close()
	}
	if p.ownPulse {
		return p.cfg.Pulse.Close()
	}
	return nil
}

// room returns the room of ch, made if there is none. p.mu is held.
func (p *Plane) room(ch string) *room {
	r := p.rooms[ch]
	if r == nil {
		r = &room{users: map[string]*user{}, tracks: map[key]*pub{}}
		det, err := p.cfg.Speakers.NewDetector(speaker.DetectorConfig{
			OnChange: func(list []speaker.Speaker) { p.speakersChanged(ch, r, list) },
		})
		if err != nil {
			// The Group is closed (only by its owner): no speakers.
			det = nil
		}
		r.det = det
		p.rooms[ch] = r
	}
	return r
}

func (r *room) user(id string) *user {
	u := r.users[id]
	if u == nil {
		u = &user{recv: true, subs: map[key]*reception{}}
		r.users[id] = u
	}
	return u
}

// Attach connects a user's media endpoint to a channel: it receives every
// other track of the channel. Its own tracks come with Published.
func (p *Plane) Attach(ch, id string, ep Endpoint) error {
	p.mu.Lock()
	r := p.room(ch)
	u := r.user(id)
	if u.ep != nil {
		p.mu.Unlock()
		return ErrAttached
	}
	u.ep = ep
	var others []key
	for k := range r.tracks {
		if k.user != id {
			others = append(others, k)
		}
	}
	p.mu.Unlock()
	for _, k := range others {
		p.subscribe(ch, id, k)
	}
	return nil
}
