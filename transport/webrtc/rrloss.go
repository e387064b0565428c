package webrtc

import (
	"encoding/binary"
	"sync/atomic"
)

// Receiver-report loss: a peer that sends no transport-wide feedback for
// a stream (it did not negotiate the extension) still reports that
// stream's loss in its receiver reports. The subscription's RTCP loop
// hands the loss of each report about the stream to the peer's estimator
// (bwe.Estimator.HandleLoss) with its inherited part: the sequence numbers
// the writer never sent, because the core forwarded the publisher's gap
// (loss upstream), which the receiver counts as lost too.

// gapRing is how many of the latest gaps seqGaps remembers: enough for
// one report interval of a stream losing 5 % of 1,000 packets a second
// upstream, with reports 5 s apart (2 KiB a subscription). Gaps older
// than the ring, between two reports, are undercounted as inherited.
const gapRing = 256

// seqGaps counts the sequence numbers of the main stream the writer
// skipped, and remembers where the latest gaps were, so that the loss in
// a report up to a number is matched with the gaps up to that number.
// note is called by the writer (one goroutine at a time, the core's
// rule); skippedUpTo by the RTCP loop.
type seqGaps struct {
	high    uint16 // the highest number written
	started bool
	total   uint64 // numbers skipped so far
	n       atomic.Uint64
	// The latest gaps: the number that ended each (its low 16 bits) and
	// the numbers skipped up to it (the high 48), written before n moves
	// past them.
	ring    [gapRing]atomic.Uint64
	skipped atomic.Uint64 // total
}

// note counts the numbers between the highest written and header's, when
// header is of the main stream ssrc and newer. An older packet (a
// retransmission, a late one) changes nothing: a late packet filling a
// gap leaves the gap counted as inherited, which only makes the loss
// charged to the link smaller.
func (g *seqGaps) note(header []byte, ssrc uint32) {
	if len(header) < 12 || binary.BigEndian.Uint32(header[8:]) != ssrc {
		return
	}
	seq := binary.BigEndian.Uint16(header[2:])
	if !g.started {
		g.high, g.started = seq, true
		return
	}
	if d := seq - g.high; d != 0 && d < 0x8000 {
		if d > 1 {
			g.total += uint64(d - 1)
			n := g.n.Load()
			g.ring[n%gapRing].Store(g.total<<16 | uint64(seq))
			g.n.Store(n + 1)
			g.skipped.Store(g.total)
		}
		g.high = seq
	}
}

// skippedUpTo returns the numbers skipped before seq: by the latest gap
// that ended at or before it among those remembered.
func (g *seqGaps) skippedUpTo(seq uint16) uint64 {
	n := g.n.Load()
	first := uint64(0)
	if n > gapRing {
		first = n - gapRing
	}
	for i := n; i > first; i-- {
		e := g.ring[(i-1)%gapRing].Load()
		if int16(seq-uint16(e)) >= 0 {
			return e >> 16
		}
	}
	if first == 0 {
		return 0
	}
	// Older than every gap remembered: what the oldest counted, at most.
	return g.ring[first%gapRing].Load() >> 16
}

// rrState is what the subscription's RTCP loop last read of the reports
// about its stream; only that loop uses it.
type rrState struct {
	have    bool
	high    uint32 // extended highest sequence number received
	lost    int32  // cumulative number of packets lost
	skipped uint64 // the numbers skipped up to high
	sent    uint64 // bytes the peer was sent, on the wire, at the report
	at      int64  // ns, the downlink's clock, at the report
}

// readLoss hands the loss in a receiver report about the subscription's
// stream in pkt (a compound RTCP packet) to the peer's estimator, when the
// stream carries no transport-wide sequence numbers, and shares the
// estimate out again.
func (s *Subscription) readLoss(pkt []byte) {
	if s.out.twccID != 0 || s.peer.cfg.Engine.cfg.NoCongestionControl {
		return
	}
	ssrc := s.out.ssrc.Load()
	if ssrc == 0 {
		return
	}
	lost, high, ok := reportBlock(pkt, ssrc)
	if !ok {
		return
	}
	skipped := s.out.gaps.skippedUpTo(uint16(high))
	now := s.peer.down.clock.Nanotime()
	sent := s.peer.sentBytes()
	st := &s.rr
	if !st.have || int32(high-st.high) < 0 {
		*st = rrState{have: true, high: high, lost: lost, skipped: skipped, sent: sent, at: now}
		return
	}
	expected := int(high - st.high)
	dLost := int(lost - st.lost)
	inherited := int(skipped) - int(st.skipped)
	var rate float64
	if now > st.at {
		rate = float64(sent-st.sent) * 8 / (float64(now-st.at) / 1e9)
	}
	st.high, st.lost, st.skipped, st.sent, st.at = high, lost, skipped, sent, now
	if expected == 0 {
		return
	}
	s.peer.down.est.HandleReport(expected, dLost, min(max(inherited, 0), expected), rate, now)
	s.peer.allocate(now)
}

// sentBytes is what the peer's subscriptions were sent, on the wire (RTP
// plus SRTP's tag and the UDP and IP headers), as
// the core counted them (retransmissions and probes included).
func (p *Peer) sentBytes() uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	var n uint64
	for s := range p.subs {
		if fs := s.sub.Load(); fs != nil {
			st := fs.Stats()
			n += st.Bytes + st.Packets*(16+28)
		}
	}
	return n
}

// reportBlock finds the last report block about ssrc in the sender and
// receiver reports of a compound RTCP packet and returns its cumulative
// number of packets lost (sign-extended from 24 bits) and extended highest
// sequence number. A malformed packet ends the search where it breaks. It
// does not allocate.
func reportBlock(pkt []byte, ssrc uint32) (lost int32, high uint32, ok bool) {
	for len(pkt) >= 4 {
		if pkt[0]>>6 != 2 {
			return lost, high, ok
		}
		n := 4 * (int(binary.BigEndian.Uint16(pkt[2:])) + 1)
		if n > len(pkt) {
			return lost, high, ok
		}
		body := pkt[:n]
		pkt = pkt[n:]
		var off int
		switch body[1] {
		case 200: // SR: header, SSRC, 20 bytes of sender info
			off = 28
		case 201: // RR: header, SSRC
			off = 8
		default:
			continue
		}
		count := int(body[0] & 0x1f)
		for i := 0; i < count && off+24 <= len(body); i, off = i+1, off+24 {
			b := body[off : off+24]
			if binary.BigEndian.Uint32(b) != ssrc {
				continue
			}
			l := uint32(b[5])<<16 | uint32(b[6])<<8 | uint32(b[7])
			lost = int32(l<<8) >> 8
			high = binary.BigEndian.Uint32(b[8:])
			ok = true
		}
	}
	return lost, high, ok
}
