// Package webrtc is callcore's WebRTC transport, built on pion/webrtc v4:
// one [Peer] per connected user wraps one bundled PeerConnection. Tracks the
// user publishes become [forward.Track]s (handed to the embedder through
// PeerConfig.OnPublish), and [Peer.Subscribe] sends a forward.Track to the
// user through a subscriber of the forwarding core.
//
// It is the only callcore package that imports pion/webrtc. Signalling is
// left to the embedder: plain calls ([Peer.Offer], [Peer.Answer],
// [Peer.SetAnswer], [Peer.AddICECandidate]) and callbacks (local ICE
// candidates, negotiation needed, connection status). The server
// renegotiates on its own initiative when subscriptions come and go, as the
// impolite side of perfect negotiation.
//
// The package knows nothing of call channels: plane/webrtcplane attaches a
// Peer to a channel's media plane.
//
// Each subscriber peer's downlink has an estimate from its feedback
// ([Peer.Estimator]), shared out among its subscriptions, and its video
// is paced at 2.5 times that estimate ([Config.NoPacing], [Peer.PaceStats];
// package pace): docs/architecture.md, "Congestion control".
//
// See docs/webrtc.md for a packet's path, the threading and the pion
// interceptors that remain on the path.
package webrtc
