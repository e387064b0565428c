package webrtc

import (
	"errors"

	"github.com/callcore/callcore/channel"
	"github.com/callcore/callcore/forward"
	"github.com/callcore/callcore/plane"
)

// Endpoint attaches a Peer to a channel's media plane
// (plane.Attach(ch, user, webrtc.Endpoint{Peer: p})). It is a
// plane.SelfSubscriber: the plane hands it the other users' tracks and it
// subscribes the peer to them (Peer.Subscribe, negotiated by the server as
// usual through OnNegotiationNeeded); the returned *Subscription is the
// plane's Reception, so a cleared receive permission pauses it
// (SetOpen(false)) and removing the track or the user closes it.
//
// A peer's own tracks only exist once negotiated (OnTrack), so Publish
// returns plane.ErrPublishedByTransport: the embedder's OnPublish hands
// each track to the plane with plane.Published(ch, user, name, track),
// name being the channel's track name the client's track stands for,
// typically its track ID (PublishInfo.TrackID = the channel track's name).
// The plane then applies the channel's mute state to it.
type Endpoint struct {
	Peer *Peer
}

var (
	_ plane.Endpoint       = Endpoint{}
	_ plane.SelfSubscriber = Endpoint{}
)

// errSelfSubscriber is returned by Receive, which the plane does not call
// for a SelfSubscriber.
var errSelfSubscriber = errors.New("webrtc: Endpoint subscribes by itself (plane.SelfSubscriber)")

// Publish returns plane.ErrPublishedByTransport: see Endpoint.
func (Endpoint) Publish(channel.TrackInfo) (forward.TrackConfig, error) {
	return forward.TrackConfig{}, plane.ErrPublishedByTransport
}

// Feed does nothing: the peer feeds its own tracks.
func (Endpoint) Feed(string, *forward.Track) {}

// Receive returns an error: the plane calls Subscribe instead.
func (Endpoint) Receive(string, channel.TrackInfo) (forward.SubscriberConfig, error) {
	return forward.SubscriberConfig{}, errSelfSubscriber
}

// Received does nothing (not called for a SelfSubscriber).
func (Endpoint) Received(string, string, *forward.Subscriber) {}

// Subscribe sends user from's track t to the peer. The client sees it with
// track ID "from/name" in a stream with ID from (one stream per sending
// user).
func (e Endpoint) Subscribe(from string, info channel.TrackInfo, t *forward.Track) (plane.Reception, error) {
	s, err := e.Peer.Subscribe(t, PublishInfo{TrackID: from + "/" + info.Name, StreamID: from})
	if err != nil {
		return nil, err
	}
	return s, nil
}
