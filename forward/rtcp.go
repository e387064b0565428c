package forward

import (
	"fmt"
	"math/bits"

	"github.com/callcore/callcore/internal/rtcpx"
	"github.com/callcore/callcore/transport"
)

// maxNACKs bounds the NACK entries handled from one compound packet; more
// are counted and ignored (each entry names up to 17 packets).
const maxNACKs = 64

// fbMax bounds the NACK entries of a subscriber waiting for the section;
// more are counted as NACKOverflow and ignored.
const fbMax = 4 * maxNACKs

// HandleRTCP takes the subscriber's RTCP: generic NACKs are answered from
// the track's shared cache, rewritten for this subscriber (on its RTX stream
// when it has one), and PLI or FIR join the track's merged key-frame
// requests. Malformed RTCP is refused with ErrMalformed and counted. The
// answer is given in the track's exclusive section: at once when it is
// free, else by the goroutine holding it, before it leaves; HandleRTCP
// never waits for it. It is called from one goroutine at a time (the
// transport's read loop).
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
	s.budget(t.clock.Nanotime())
	if !fb.KeyFrame && len(fb.NACKs) == 0 {
		return nil
	}
	s.fbMu.Lock()
	n := copy(s.fbNACKs[s.fbN:], fb.NACKs)
	s.fbN += n
	if fb.KeyFrame {
		s.fbKeys++
	}
	s.fbMu.Unlock()
	if over := len(fb.NACKs) - n; over > 0 {
		s.cnt.nackOverflow.Add(uint64(over)) // the section has not caught up with earlier ones
	}
	t.submit(&s.fbTask)
	return nil
}

// answer answers the feedback handed over by HandleRTCP, in t's exclusive
// section. Feedback from before a switch of source is dropped: the
// subscriber has no segment to answer from yet, and starts on a key frame.
func (s *Subscriber) answer(t *Track) {
	s.fbMu.Lock()
	nacks := t.fbBuf[:copy(t.fbBuf[:], s.fbNACKs[:s.fbN])]
	keys := s.fbKeys
	s.fbN, s.fbKeys = 0, 0
	s.fbMu.Unlock()
	// A subscriber paused by its gate gets nothing, retransmissions
	// included; one switching source has no segment to answer from yet.
	if s.src.Load() != t || s.handoff.Load() != nil || !s.open.Load() {
		return
	}
	if keys > 0 { // requests that came while the section was held are merged here
		t.cnt.keyFrameRequestsIn.Add(uint64(keys))
		if t.mt.feeding() {
			t.mt.askKey() // muted: a black key frame at the next due time
		} else {
			t.kf.wanted.Store(true)
			t.kf.out = t.keyFrameDue(t.clock.Nanotime()) || t.kf.out
		}
	}
	for _, n := range nacks {
		s.nack(t, n.PID)
		for i := range 16 {
			if n.BLP&(1<<i) != 0 {
				s.nack(t, n.PID+uint16(i)+1)
			}
		}
	}
}

// budget holds the feedback in s.feedback to the subscriber's budgets: a
// key-frame request over its budget is dropped, and so are the NACKed
// numbers over it (the list is cut where the tokens ran out). Both are
// counted.
func (s *Subscriber) budget(now int64) {
	fb := &s.feedback
	if !s.budgeted {
		s.budgeted = true
		s.kfBudget = newBucket(s.cfg.KeyFrameRequests, now)
		s.nkBudget = newBucket(s.cfg.NACKs, now)
	}
	if fb.KeyFrame {
		s.cnt.keyFrameRequests.Add(1)
	}
	if fb.KeyFrame && !s.kfBudget.take(now) {
		fb.KeyFrame = false
		s.cnt.keyFrameRequestsDropped.Add(1)
	}
	for i := range fb.NACKs {
		n := &fb.NACKs[i]
		if !s.nkBudget.take(now) {
			s.dropNACKs(fb.NACKs[i:])
			fb.NACKs = fb.NACKs[:i]
			return
		}
		for b := range 16 {
			if n.BLP&(1<<b) != 0 && !s.nkBudget.take(now) {
				rest := n.BLP >> b << b
				n.BLP &^= rest
				s.cnt.nacksDropped.Add(uint64(bits.OnesCount16(rest)))
				s.dropNACKs(fb.NACKs[i+1:])
				fb.NACKs = fb.NACKs[:i+1]
				return
			}
		}
	}
}

func (s *Subscriber) dropNACKs(ns []rtcpx.NACK) {
	n := 0
	for _, e := range ns {
		n += 1 + bits.OnesCount16(e.BLP)
	}
	s.cnt.nacksDropped.Add(uint64(n))
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
	if !s.rtx.spend() {
		s.cnt.retransmitsRefused.Add(1) // more than its share of what it is sent
		return
	}
	if err := s.sendCached(t.main, sl, out, sl.extTS+s.m.tsOff, s.cfg.RTX != nil); err != nil {
		s.cnt.dropWrite.Add(1)
		return
	}
	s.cnt.retransmits.Add(1)
	s.cnt.retransmitBytes.Add(uint64(sl.n))
}

var _ transport.RTCPHandler = (*Subscriber)(nil)
