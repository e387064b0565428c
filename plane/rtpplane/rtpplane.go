// Package rtpplane brings plain RTP (transport/rtp) into a channel's media
// plane: it is the adapter between the transport, which knows nothing of
// channels, and the plane.
//
// Publish makes an external sender (ffmpeg, GStreamer, an encoder box) a
// channel user's publisher: one rtp.Ingest per channel track, each feeding
// a forward.Track made with the plane's settings (Plane.NewTrack) and
// handed to the plane with Plane.Published. The channel's muting,
// permissions and speaker detection then apply to those tracks as to any
// other.
//
// Endpoint makes an external receiver a channel user's media connection:
// the plane hands it every other user's track and it sends each one as RTP
// to the address Route gives for it (one rtp.Egress per track), reading
// the receiver's RTCP (PLI, NACK) back into the subscription.
package rtpplane

import (
	"errors"
	"fmt"
	"net/netip"
	"sync"

	"github.com/callcore/callcore/channel"
	"github.com/callcore/callcore/forward"
	"github.com/callcore/callcore/plane"
	"github.com/callcore/callcore/transport/rtp"
)

// Errors returned by the adapter.
var (
	// ErrInvalidStream is returned by Publish for a stream without a name
	// or a codec, or a name given twice.
	ErrInvalidStream = errors.New("rtpplane: invalid stream")
	// ErrNoRoute is returned by Endpoint.Subscribe when Route has no
	// address for the track: the user does not receive it.
	ErrNoRoute = errors.New("rtpplane: no route for the track")
)

// Stream is one RTP stream an external sender publishes as a channel
// track.
type Stream struct {
	// Name is the channel track the stream is published as; the channel
	// must list it for the user.
	Name string
	// Track is the stream's codec and source: Kind, MimeType, ClockRate,
	// PayloadType, and SSRC (0 adopts the first one seen); Extensions
	// when the sender sends any. The plane sets its clock, pool and mute
	// settings.
	Track forward.TrackConfig
	// Ingest is where and how the stream is received: Addr (default a
	// free loopback port pair), RTCPMux, SRTP, Source, MaxPacketSize. Its
	// RTP handler is the track and its SSRC is Track.SSRC: both are set
	// here.
	Ingest rtp.IngestConfig
}

// Publisher is an external sender's streams published in a channel.
type Publisher struct {
	ingests map[string]*rtp.Ingest // by track name; immutable after Publish
}

// Publish opens an ingest per stream and publishes each stream's track as
// user id's channel track in ch. On error nothing stays open.
func Publish(pl *plane.Plane, ch, id string, streams []Stream) (*Publisher, error) {
	p := &Publisher{ingests: map[string]*rtp.Ingest{}}
	var tracks []*forward.Track
	fail := func(err error) (*Publisher, error) {
		p.Close()
		for _, t := range tracks {
			t.Close()
		}
		return nil, err
	}
	for _, s := range streams {
		if s.Name == "" || s.Track.MimeType == "" || s.Track.ClockRate == 0 {
			return fail(fmt.Errorf("%w: %q needs a name and a codec", ErrInvalidStream, s.Name))
		}
		if _, dup := p.ingests[s.Name]; dup {
			return fail(fmt.Errorf("%w: %q given twice", ErrInvalidStream, s.Name))
		}
		fb := &rtp.LateWriter{}
		cfg := s.Track
		cfg.Feedback = fb
		tr, err := pl.NewTrack(cfg)
		if err != nil {
			return fail(fmt.Errorf("rtpplane: track %q: %w", s.Name, err))
		}
		tracks = append(tracks, tr)
		icfg := s.Ingest
		icfg.RTP, icfg.SSRC = tr, s.Track.SSRC
		in, err := rtp.NewIngest(icfg)
		if err != nil {
			return fail(fmt.Errorf("rtpplane: ingest of %q: %w", s.Name, err))
		}
		fb.Set(in)
		p.ingests[s.Name] = in
	}
	for i, s := range streams {
		if err := pl.Published(ch, id, s.Name, tracks[i]); err != nil {
			// The plane owns the tracks published before this one: they
			// are closed with the user or the channel track.
			tracks = tracks[i:]
			return fail(err)
		}
	}
	return p, nil
}

// Addr returns the local RTP address of the stream published as name.
func (p *Publisher) Addr(name string) (netip.AddrPort, bool) {
	in := p.ingests[name]
	if in == nil {
		return netip.AddrPort{}, false
	}
	return in.Addr(), true
}

// RTCPAddr returns the local RTCP address of the stream published as name:
// the next port, or Addr with RTCPMux.
func (p *Publisher) RTCPAddr(name string) (netip.AddrPort, bool) {
	in := p.ingests[name]
	if in == nil {
		return netip.AddrPort{}, false
	}
	return in.RTCPAddr(), true
}

// Stats returns the counters of the stream published as name.
func (p *Publisher) Stats(name string) (rtp.Stats, bool) {
	in := p.ingests[name]
	if in == nil {
		return rtp.Stats{}, false
	}
	return in.Stats(), true
}

// Close stops receiving. The tracks are the plane's: they end with the
// user's channel tracks (TrackRemoved, UserGone).
func (p *Publisher) Close() error {
	for _, in := range p.ingests {
		in.Close()
	}
	return nil
}

// Output is where and how one track is sent to an external receiver.
type Output struct {
	// Egress is the receiver's address and the sending socket's settings;
	// its RTCP handler is set here.
	Egress rtp.EgressConfig
	// SSRC and PayloadType are what the receiver sees; PayloadType 0
	// keeps the publisher's.
	SSRC        uint32
	PayloadType uint8
}

// Endpoint is an external receiver attached to a channel
// (plane.Attach(ch, user, &rtpplane.Endpoint{Route: ...})).
type Endpoint struct {
	// Route gives the output for user from's track, or an error (ErrNoRoute)
	// when the receiver does not take it. Called without any plane lock.
	Route func(from string, info channel.TrackInfo, codec forward.TrackConfig) (Output, error)
}

var _ plane.Endpoint = (*Endpoint)(nil)

// Subscribe sends user from's track t to the address Route gives.
func (e *Endpoint) Subscribe(from string, info channel.TrackInfo, t *forward.Track) (plane.Reception, error) {
	s, eg, err := e.open(from, info, t.Config())
	if err != nil {
		return nil, err
	}
	if err := s.SwitchTo(t); err != nil {
		s.Close()
		eg.Close()
		return nil, err
	}
	return &reception{Subscriber: s, eg: eg}, nil
}

// SubscribeLayers sends user from's layered track, one layer at a time.
func (e *Endpoint) SubscribeLayers(from string, info channel.TrackInfo, l *forward.Layers, max forward.Layer) (plane.LayerReception, error) {
	var codec forward.TrackConfig
	for _, t := range l.Tracks() {
		if t != nil {
			codec = t.Config()
			break
		}
	}
	s, eg, err := e.open(from, info, codec)
	if err != nil {
		return nil, err
	}
	lr, err := plane.AttachLayers(s, l, max)
	if err != nil {
		s.Close()
		eg.Close()
		return nil, err
	}
	return &layerReception{LayerReception: lr, eg: eg}, nil
}

// open makes the egress and the subscriber writing to it.
func (e *Endpoint) open(from string, info channel.TrackInfo, codec forward.TrackConfig) (*forward.Subscriber, *rtp.Egress, error) {
	if e.Route == nil {
		return nil, nil, ErrNoRoute
	}
	out, err := e.Route(from, info, codec)
	if err != nil {
		return nil, nil, err
	}
	if out.PayloadType == 0 {
		out.PayloadType = codec.PayloadType
	}
	h := &rtp.LateHandler{}
	out.Egress.RTCP = h
	eg, err := rtp.NewEgress(out.Egress)
	if err != nil {
		return nil, nil, err
	}
	s, err := forward.NewSubscriber(forward.SubscriberConfig{Writer: eg, SSRC: out.SSRC, PayloadType: out.PayloadType})
	if err != nil {
		eg.Close()
		return nil, nil, err
	}
	h.Set(s)
	return s, eg, nil
}

// reception is a subscription to one track and its egress.
type reception struct {
	*forward.Subscriber
	eg   *rtp.Egress
	once sync.Once
}

func (r *reception) Close() error {
	var err error
	r.once.Do(func() { err = errors.Join(r.Subscriber.Close(), r.eg.Close()) })
	return err
}

// layerReception is a subscription to a layered track and its egress.
type layerReception struct {
	plane.LayerReception
	eg   *rtp.Egress
	once sync.Once
}

func (r *layerReception) Close() error {
	var err error
	r.once.Do(func() { err = errors.Join(r.LayerReception.Close(), r.eg.Close()) })
	return err
}
