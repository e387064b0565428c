// Package transport is the contract between the forwarding core and the
// transports that carry media in and out of it: WebRTC peers, plain RTP
// sockets, links between nodes and the in-memory transport used by tests.
//
// The interfaces are small and declared where the data flows:
//
//   - A publisher's transport delivers each received RTP packet to an
//     [RTPHandler] (the core's track) and each RTCP packet to an
//     [RTCPHandler].
//   - The core hands each rewritten packet for a subscriber to that
//     subscriber's [RTPWriter], and RTCP it generates (key-frame requests,
//     NACKs, reports) to an [RTCPWriter].
//   - After one packet has been handed to every subscriber, the core calls
//     Flush on every distinct [Flusher] its writers expose through [Batcher],
//     so a transport can send a fan-out in one system call.
//
// Buffers are lent, never given: a callee must not keep a slice it was
// passed once the call returns, and must not modify it.
package transport

import "errors"

// Errors shared by transports. Match them with errors.Is.
var (
	// ErrClosed is returned by writers and handlers after Close.
	ErrClosed = errors.New("transport: closed")
	// ErrBufferFull is returned by a writer that cannot take a packet now
	// because its queue is full: its peer cannot keep up. The packet is
	// dropped; the core then drops that subscriber's video up to the next
	// key frame.
	ErrBufferFull = errors.New("transport: buffer full")
)

// RTPWriter takes rewritten RTP packets for one subscriber. The packet is
// header followed by payload; they are passed apart so that the payload,
// shared by every subscriber, is never copied by the core. The split is not
// always at the end of the RTP header: when the core rewrites the first
// bytes of a payload (a VP8 descriptor's picture ID), they end header, so a
// transport must treat the two as one packet. WriteRTP must not
// block: a transport that cannot take the packet now drops it and returns
// an error. It is called from one goroutine at a time.
type RTPWriter interface {
	WriteRTP(header, payload []byte) error
}

// RTPWriterFunc adapts a function to RTPWriter.
type RTPWriterFunc func(header, payload []byte) error

// WriteRTP calls f(header, payload).
func (f RTPWriterFunc) WriteRTP(header, payload []byte) error { return f(header, payload) }

// RTCPWriter takes one compound RTCP packet, for instance feedback the core
// sends upstream to a publisher. It must not block.
type RTCPWriter interface {
	WriteRTCP(pkt []byte) error
}

// RTCPWriterFunc adapts a function to RTCPWriter.
type RTCPWriterFunc func(pkt []byte) error

// WriteRTCP calls f(pkt).
func (f RTCPWriterFunc) WriteRTCP(pkt []byte) error { return f(pkt) }

// RTPHandler receives the RTP packets of one published stream, in arrival
// order, from one goroutine at a time.
type RTPHandler interface {
	HandleRTP(pkt []byte) error
}

// RTCPHandler receives compound RTCP packets: a subscriber's feedback (NACK,
// PLI, FIR, receiver reports) or a publisher's sender reports.
type RTCPHandler interface {
	HandleRTCP(pkt []byte) error
}

// Flusher sends what a transport has queued. The core calls it after each
// fan-out; nothing may wait for a batch to fill.
type Flusher interface {
	Flush() error
}

// Batcher is an optional interface of an RTPWriter whose sends can be
// batched with other writers' sends. Writers that share a socket return the
// same Flusher, and the core calls each distinct Flusher once per fan-out.
type Batcher interface {
	Batch() Flusher
}
