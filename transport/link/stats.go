package link

import "sync/atomic"

// counters are the link's, across sessions; updated with atomic adds.
type counters struct {
	sessions, dials, dialErrors, sessionErrors, protocolErrors    atomic.Uint64
	rtpOut, rtcpOut, rtpIn, rtxIn, rtcpIn, nacksOut               atomic.Uint64
	unknownSource, unknownSSRC, malformed, authFailed, replayed   atomic.Uint64
	refused, oversized, noPeer, sendErrors, readErrors            atomic.Uint64
	lingerEnded, nackRetries, nackGaveUp, wouldBlock, badFeedback atomic.Uint64
}

// Stats is a snapshot of a link's counters, summed over its sessions.
type Stats struct {
	Sessions       uint64 // sessions that got past the hello
	Dials          uint64 // control connections dialed
	DialErrors     uint64 // failed dials
	SessionErrors  uint64 // connections refused before or during the hello
	ProtocolErrors uint64 // control messages that broke the protocol or were unknown

	RTPOut      uint64 // RTP packets sent, retransmissions included
	RTCPOut     uint64 // RTCP packets sent (feedback, NACKs, keepalives)
	RTPIn       uint64 // RTP packets handed to inbound tracks, retransmissions included
	RTXIn       uint64 // of which retransmissions
	RTCPIn      uint64 // RTCP packets that passed authentication
	NACKsOut    uint64 // NACK packets sent for gaps in the link's numbering, retries included
	NACKRetries uint64 // packets asked for again because they did not come after a NACK
	NACKGaveUp  uint64 // packets given up on after the last retry

	UnknownSource uint64 // datagrams from an address other than the peer's
	UnknownSSRC   uint64 // authentic RTP for an SSRC the session does not know
	Malformed     uint64 // datagrams that are not SRTP or SRTCP
	BadFeedback   uint64 // authentic RTCP that does not parse, or feedback for an unknown SSRC
	AuthFailed    uint64 // SRTP or SRTCP authentication failures
	Replayed      uint64 // replayed packets
	Refused       uint64 // packets the inbound track refused (it counts why)
	Oversized     uint64 // packets too large to send
	NoPeer        uint64 // packets not sent because the peer's media address is not known yet
	SendErrors    uint64 // sends the kernel refused
	WouldBlock    uint64 // RTP and RTCP packets dropped because the socket buffer was full
	ReadErrors    uint64 // failed reads
	LingerEnded   uint64 // times the peer's tracks were ended after Linger without a session
}

// Dropped sums the datagrams the link dropped on the way in. With RTPIn
// and RTCPIn it accounts for every datagram received exactly once.
func (s Stats) Dropped() uint64 {
	return s.UnknownSource + s.UnknownSSRC + s.Malformed + s.AuthFailed + s.Replayed
}

// Stats returns the link's counters.
func (l *Link) Stats() Stats {
	c := &l.cnt
	return Stats{Sessions: c.sessions.Load(), Dials: c.dials.Load(), DialErrors: c.dialErrors.Load(),
		SessionErrors: c.sessionErrors.Load(), ProtocolErrors: c.protocolErrors.Load(),
		RTPOut: c.rtpOut.Load(), RTCPOut: c.rtcpOut.Load(), RTPIn: c.rtpIn.Load(), RTXIn: c.rtxIn.Load(),
		RTCPIn: c.rtcpIn.Load(), NACKsOut: c.nacksOut.Load(),
		UnknownSource: c.unknownSource.Load(), UnknownSSRC: c.unknownSSRC.Load(), Malformed: c.malformed.Load(),
		AuthFailed: c.authFailed.Load(), Replayed: c.replayed.Load(), Refused: c.refused.Load(),
		Oversized: c.oversized.Load(), NoPeer: c.noPeer.Load(), SendErrors: c.sendErrors.Load(),
		ReadErrors: c.readErrors.Load(), LingerEnded: c.lingerEnded.Load(),
		NACKRetries: c.nackRetries.Load(), NACKGaveUp: c.nackGaveUp.Load(),
		WouldBlock: c.wouldBlock.Load(), BadFeedback: c.badFeedback.Load()}
}
