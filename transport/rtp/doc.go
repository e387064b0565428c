// Package rtp is callcore's plain RTP transport: RTP and RTCP over UDP,
// in the clear or protected with SRTP, to and from external senders and
// receivers such as ffmpeg, GStreamer or a hardware encoder.
//
// An [Ingest] receives one publisher's stream on a local port (RTCP on the
// next port, or on the same one with rtcp-mux) and hands each RTP packet
// to a [transport.RTPHandler], the core's forward.Track, and each RTCP
// packet to an optional [transport.RTCPHandler]. It locks onto the first
// sender whose packet passes every check, or only accepts a configured
// Source, and sends the core's feedback (PLI, FIR, NACK) back to the
// sender's RTCP port with WriteRTCP.
//
// An [Egress] sends one subscriber's stream to an external receiver: it is
// a [transport.RTPWriter] to give as forward.SubscriberConfig.Writer, and
// a [transport.RTCPWriter] for sender reports. It reads the receiver's RTCP
// and hands it to an optional [transport.RTCPHandler], the core's
// subscriber.
//
// The core and the transports point at each other (a track's Feedback is
// its Ingest; an Egress's RTCP handler is the subscriber writing to it):
// [LateWriter] and [LateHandler] are set once both exist.
//
// A [Sender] is one socket shared by many receivers' [Target]s; it is a
// [transport.Batcher], so the core's Flush after a fan-out sends every
// queued datagram with one sendmmsg.
//
// SRTP uses github.com/pion/srtp/v3 with keys given by configuration
// ([Keys], [ParseKeys] for ffmpeg's and SDP's base64 "inline" form), in two
// profiles: AES_CM_128_HMAC_SHA1_80, which ffmpeg speaks, and
// AEAD_AES_128_GCM, about 6 times cheaper. Replay protection is on.
//
// The packet paths allocate nothing: each read goroutine reuses one buffer
// and unprotects in place; WriteRTP copies header and payload once into a
// buffer it owns, protects in place and sends with one non-blocking system
// call. Bad input (unknown sources or SSRCs, failed authentication,
// replays, garbage, oversized datagrams) is dropped and counted in
// [Stats]; it never stops a read goroutine. Close stops the goroutines and
// waits for them.
//
// Links between callcore nodes are a package of their own
// (transport/link). The package knows nothing of call channels:
// plane/rtpplane publishes ingests as a channel user's tracks and sends a
// channel's tracks through egresses.
package rtp
