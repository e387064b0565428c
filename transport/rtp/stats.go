package rtp

import "sync/atomic"

// Stats are the counters of an Ingest or an Egress. Every field only grows.
// Stats are read without locks, field by field, so a snapshot taken while
// packets flow may be off by the packets in flight.
type Stats struct {
	RTPIn    uint64 // RTP packets handed to the RTP handler
	RTCPIn   uint64 // RTCP packets handed to the RTCP handler (or dropped for lack of one)
	BytesIn  uint64 // bytes of the datagrams counted in RTPIn and RTCPIn, as received
	RTPOut   uint64 // RTP packets sent
	RTCPOut  uint64 // RTCP packets sent
	BytesOut uint64 // bytes of the datagrams counted in RTPOut and RTCPOut, as sent

	UnknownSource uint64 // datagrams from an address other than the sender's
	UnknownSSRC   uint64 // RTP packets whose SSRC the filter refused
	Oversized     uint64 // datagrams larger than MaxPacketSize, in or out
	Malformed     uint64 // datagrams that are neither valid RTP nor valid RTCP
	AuthFailed    uint64 // SRTP or SRTCP packets whose authentication failed
	Replayed      uint64 // SRTP or SRTCP packets refused as replays
	Refused       uint64 // packets a handler returned an error for
	WouldBlock    uint64 // packets dropped because the send buffer was full
	SendErrors    uint64 // packets the kernel refused (for instance port unreachable)
	ReadErrors    uint64 // failed reads other than the one ending Close
}

// Dropped is the number of packets dropped by the transport itself: every
// counter of bad input or failed sends, not Refused.
func (s Stats) Dropped() uint64 {
	return s.UnknownSource + s.UnknownSSRC + s.Oversized + s.Malformed + s.AuthFailed +
		s.Replayed + s.WouldBlock + s.SendErrors
}

// counters is Stats as atomics, written by the read goroutines and writers.
type counters struct {
	rtpIn, rtcpIn, bytesIn, rtpOut, rtcpOut, bytesOut          atomic.Uint64
	unknownSource, unknownSSRC, oversized, malformed, authFail atomic.Uint64
	replayed, refused, wouldBlock, sendErrors, readErrors      atomic.Uint64
}

func (c *counters) stats() Stats {
	return Stats{
		RTPIn: c.rtpIn.Load(), RTCPIn: c.rtcpIn.Load(), BytesIn: c.bytesIn.Load(),
		RTPOut: c.rtpOut.Load(), RTCPOut: c.rtcpOut.Load(), BytesOut: c.bytesOut.Load(),
		UnknownSource: c.unknownSource.Load(), UnknownSSRC: c.unknownSSRC.Load(),
		Oversized: c.oversized.Load(), Malformed: c.malformed.Load(), AuthFailed: c.authFail.Load(),
		Replayed: c.replayed.Load(), Refused: c.refused.Load(), WouldBlock: c.wouldBlock.Load(),
		SendErrors: c.sendErrors.Load(), ReadErrors: c.readErrors.Load(),
	}
}
