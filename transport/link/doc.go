// Package link connects two callcore nodes so that tracks published on
// one are forwarded on the other.
//
// A [Link] carries any number of tracks, both ways, over one UDP flow
// (demultiplexed by SSRC) beside one reliable control channel (TCP, JSON
// lines). Every link session, that is every time the control connection is
// (re)established, each side draws fresh SRTP master keys
// (AEAD_AES_128_GCM) with crypto/rand and sends them to its peer in its
// hello, so a key never protects the same SSRC and sequence number twice.
//
// On the origin, [Link.Offer] subscribes the track once per session with a
// forward.Subscriber whose writer is the link: the track crosses the link
// once, however many subscribers the far node has. Mute is applied on the
// origin track, so what crosses is already the empty media the origin's
// own subscribers get; the mute state travels on the control channel.
//
// On the far node each offered track becomes a [RemoteTrack]: a
// forward.Track fed by the link's receive loop, which local subscribers
// join with [RemoteTrack.Subscribe]. Their PLIs go back over the link to
// the origin's subscriber, which merges them upstream; the receive loop
// NACKs gaps in the link's numbering and the origin answers from its
// track's cache on an RTX stream (RFC 4588), so loss on the link is
// repaired before the far node's subscribers notice it.
//
// When the link drops, the dialing side redials. Each session feeds a new
// forward.Track on the far node and its subscribers are switched onto it
// with forward.Subscriber.SwitchTo, a splice: their sequence numbers stay
// continuous across the outage.
//
// The control channel carries the SRTP keys: set Config.TLS (mutual TLS)
// for any network that is not private; without it the channel is plain
// TCP. See docs/link.md.
//
// The package knows nothing of call channels: plane/linkplane offers a
// channel's tracks over a link and publishes a link's tracks on the far
// node's plane.
package link
