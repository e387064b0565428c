// Package webrtcplane attaches WebRTC peers (transport/webrtc) to a
// channel's media plane: it is the adapter between the transport, which
// knows nothing of channels, and the plane.
//
// A peer's own tracks exist only once negotiated: its OnPublish hands each
// to the plane with plane.Published(ch, user, name, track), name being the
// channel track the client's track stands for (typically its track ID,
// PublishInfo.TrackID), or, for a track sent as layers, one layer at a time
// with plane.PublishedLayer and the layer webrtc.LayerOf gives for its rid.
// The plane then hands the peer every other user's track through
// Endpoint.
package webrtcplane

import (
	"github.com/callcore/callcore/channel"
	"github.com/callcore/callcore/forward"
	"github.com/callcore/callcore/plane"
	"github.com/callcore/callcore/transport/webrtc"
)

// Endpoint attaches a Peer to a channel's media plane
// (plane.Attach(ch, user, webrtcplane.Endpoint{Peer: p})): the plane hands
// it the other users' tracks and it subscribes the peer to them
// (Peer.Subscribe, negotiated by the embedder as usual through
// OnNegotiationNeeded). The returned *webrtc.Subscription is the plane's
// Reception, so a cleared receive permission pauses it (SetOpen(false))
// and removing the track or the user closes it.
type Endpoint struct {
	Peer *webrtc.Peer
}

var (
	_ plane.Endpoint = Endpoint{}
	// A subscription says what its peer's downlink allows it and takes
	// the priority the plane gives it.
	_ plane.BandwidthLimited = (*webrtc.Subscription)(nil)
	_ plane.Prioritized      = (*webrtc.Subscription)(nil)
)

// Subscribe sends user from's track t to the peer. The client sees it with
// track ID "from/name" in a stream with ID from (one stream per sending
// user).
func (e Endpoint) Subscribe(from string, info channel.TrackInfo, t *forward.Track) (plane.Reception, error) {
	s, err := e.Peer.Subscribe(t, publishInfo(from, info))
	if err != nil {
		return nil, err
	}
	return s, nil
}

// SubscribeLayers sends user from's layered track to the peer as one
// track, fed by one layer at a time (Peer.SubscribeLayers), named as
// Subscribe names a single track.
func (e Endpoint) SubscribeLayers(from string, info channel.TrackInfo, l *forward.Layers, max forward.Layer) (plane.LayerReception, error) {
	s, err := e.Peer.SubscribeLayers(l, max, publishInfo(from, info))
	if err != nil {
		return nil, err
	}
	return s, nil
}

func publishInfo(from string, info channel.TrackInfo) webrtc.PublishInfo {
	return webrtc.PublishInfo{TrackID: from + "/" + info.Name, StreamID: from}
}
