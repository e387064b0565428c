package forward

import "fmt"

// Padding for bandwidth probing: padding-only packets (RFC 4588 allows
// them on a retransmission stream) on the subscriber's RTX stream, which
// a receiver counts in its transport-wide feedback and otherwise drops.
// They are written in the track's exclusive section, where the RTX
// stream's sequence numbers are owned.

// MaxPadding is the most padding one packet carries (its last byte says
// how much).
const MaxPadding = 255

// Pad asks for n padding-only packets of size padding bytes (1 to
// MaxPadding) on the subscriber's RTX stream, written with the RTP
// timestamp of the last packet sent, at once when the track's section is
// free, else by its owner before it leaves; it never waits. Requests not
// yet written add up. A subscriber with no RTX stream, not attached or
// with its gate closed, or a size outside 1..MaxPadding, is refused with
// ErrPadding and counted.
func (s *Subscriber) Pad(n, size int) error {
	t := s.src.Load()
	switch {
	case s.cfg.RTX == nil:
		s.cnt.paddingRefused.Add(1)
		return fmt.Errorf("%w: no RTX stream", ErrPadding)
	case size < 1 || size > MaxPadding || n < 1 || n > 1000:
		s.cnt.paddingRefused.Add(1)
		return fmt.Errorf("%w: %d packets of %d bytes", ErrPadding, n, size)
	case t == nil || !s.open.Load() || s.shut.Load():
		s.cnt.paddingRefused.Add(1)
		return fmt.Errorf("%w: not attached, or gate closed", ErrPadding)
	}
	s.padSize.Store(uint32(size))
	s.padN.Add(uint32(n))
	t.submit(&s.padTask)
	return nil
}

// pad writes the padding asked for, in t's exclusive section. While a
// handoff is set, the track that fed the subscriber before t may still be
// in its writer, as deliver knows: the padding is dropped then.
func (s *Subscriber) pad(t *Track) {
	n, size := int(s.padN.Swap(0)), int(s.padSize.Load())
	if n == 0 || s.src.Load() != t || !s.m.started || !s.open.Load() {
		return // nothing sent yet, or no longer: the timestamp would be a guess
	}
	if s.handoff.Load() != nil {
		s.cnt.paddingRefused.Add(uint64(n))
		return
	}
	fc := t.main
	hdr, body := fc.rtxHdr[:12], fc.rtxBody[:size]
	hdr[0] = 0x80 | 0x20 // version 2, padding
	hdr[1] = 0
	clear(body)
	body[size-1] = byte(size)
	for range n {
		putHeader(hdr, s.cfg.RTX.PayloadType, s.rtxSeq, uint32(s.m.lastTS), s.cfg.RTX.SSRC)
		s.rtxSeq++
		if err := s.cfg.Writer.WriteRTP(hdr, body); err != nil {
			s.cnt.dropWrite.Add(1)
			return
		}
		s.cnt.padding.Add(1)
		s.cnt.paddingBytes.Add(uint64(size))
	}
}
