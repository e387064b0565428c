package forward

import (
	"fmt"

	"github.com/callcore/callcore/internal/rtcpx"
	"github.com/callcore/callcore/transport"
)

// maxNACKs bounds the NACK entries handled from one compound packet; more
// are counted and ignored (each entry names up to 17 packets).
const maxNACKs = 64

// HandleRTCP takes the subscriber's RTCP: generic NACKs are answered from
// the track's shared cache, rewritten for this subscriber (on its RTX stream
// when it has one), and PLI or FIR join the track's merged key-frame
// requests. Malformed RTCP is refused with ErrMalformed and counted.
// It is called from one goroutine at a time (the transport's read loop).
func (s *Subscriber) HandleRTCP(pkt []byte) error {
	fb := &s.feedback
	*fb = rtcpx.Feedback{NACKs: s.nackBuf[:0]}
	over, err := rtcpx.Parse(pkt, s.cfg.SSRC, fb)
	if err != nil {
		s.cnt.badRTCP.Add(1)
		return fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	s.cnt.nackOverflow.Add(uint64(over))
	t := s.src.Load()
	if t == nil || (!fb.KeyFrame && len(fb.NACKs) == 0) {
		return nil
	}
	t.enter()
	ask := false
	// A subscriber paused by its gate gets nothing, retransmissions
	// included; one switching source has no segment to answer from yet.
	if s.src.Load() == t && s.handoff.Load() == nil && s.open.Load() {
		if fb.KeyFrame {
			s.cnt.keyFrameRequests.Add(1)
			t.cnt.keyFrameRequestsIn.Add(1)
			if t.mt.onGen && !t.mt.unmuting {
				t.mt.wantKey.Store(true) // muted: a black key frame at the next due time
			} else {
				t.kf.wanted.Store(true)
				ask = t.keyFrameDue(t.clock.Nanotime())
			}
		}
		for _, n := range fb.NACKs {
			s.nack(t, n.PID)
			for i := range 16 {
				if n.BLP&(1<<i) != 0 {
					s.nack(t, n.PID+uint16(i)+1)
				}
			}
		}
	}
	t.exit()
	if ask {
		t.sendPLI()
	}
	return nil
}

// nack answers one lost sequence number, in t's exclusive section.
func (s *Subscriber) nack(t *Track, seq uint16) {
	s.cnt.nacks.Add(1)
	out := s.m.lastOut + uint64(int64(int16(seq-uint16(s.m.lastOut))))
	in, ok := s.m.inverse(out)
	if !ok {
		s.cnt.nackTooOld.Add(1) // before the key frame it started on, or not sent yet
		return
	}
	sl := t.cache.get(in)
	if sl == nil {
		s.cnt.cacheMiss.Add(1) // lost upstream, or older than the cache
		return
	}
	if err := s.sendCached(t.main, sl, out, sl.extTS+s.m.tsOff, s.cfg.RTX != nil); err != nil {
		s.cnt.dropWrite.Add(1)
		return
	}
	s.cnt.retransmits.Add(1)
}

var _ transport.RTCPHandler = (*Subscriber)(nil)
