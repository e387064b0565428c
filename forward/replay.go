package forward

// Sending from the retransmission cache: a joining subscriber's replay of
// the run since the last key frame, and the retransmissions that answer
// NACKs (rtcp.go), both rebuilt for the subscriber in its fanCtx.

import (
	"encoding/binary"

	"github.com/callcore/callcore/internal/rtpx"
)

// sendCached rewrites a cached packet for s and sends it: as it was first
// sent (its VP8 picture ID included), or on the subscriber's RTX stream
// (RFC 4588) when rtx is set.
func (s *Subscriber) sendCached(fc *fanCtx, sl *slot, out, outTS uint64, rtx bool) error {
	pkt := sl.buf[:sl.n]
	h := &fc.parsed
	if rtpx.Parse(pkt, h) != nil {
		return ErrMalformed // cannot happen: it was parsed on arrival
	}
	hl := buildHeader(fc.rtxHdr, pkt, h, &s.prof.Load().remap)
	payload := pkt[h.HeaderLen:]
	var desc []byte
	if sl.picOff != 0 {
		if at, wide, dl, ok := vp8PictureID(payload); ok {
			desc = fc.rtxHdr[hl : hl+writePicID(fc.rtxHdr[hl:], payload, at, wide, dl, sl.picOff)]
			payload = payload[dl:]
		}
	}
	if s.lay != nil && s.lay.owner.codec == codecVP8 {
		desc, payload = s.layerCached(fc.rtxHdr[hl:], desc, payload)
	}
	hdr := fc.rtxHdr[:hl]
	if !rtx {
		putHeader(hdr, s.cfg.PayloadType, uint16(out), uint32(outTS), s.cfg.SSRC)
		return s.cfg.Writer.WriteRTP(fc.rtxHdr[:hl+len(desc)], payload)
	}
	hdr[0] &^= 0x20 // the original padding is not carried
	putHeader(hdr, s.cfg.RTX.PayloadType, s.rtxSeq, uint32(outTS), s.cfg.RTX.SSRC)
	s.rtxSeq++
	body := fc.rtxBody[:2]
	binary.BigEndian.PutUint16(body, uint16(out))
	body = append(body, desc...)
	body = append(body, payload[:len(payload)-h.PaddingLen]...)
	return s.cfg.Writer.WriteRTP(hdr, body)
}

// replay sends s the cached run from the last key frame up to p, when it is
// whole and recent, and reports whether it did.
func (t *Track) replay(s *Subscriber, fc *fanCtx, p *pktInfo) bool {
	k := t.kf.last
	if t.cfg.ReplayAge < 0 || k == 0 || t.kf.epoch != p.epoch || k >= p.ext || p.now-t.kf.lastAt > int64(t.cfg.ReplayAge) ||
		p.ext-k > uint64(len(t.cache.slots)) {
		return false
	}
	for e := k; e < p.ext; e++ {
		if sl := t.cache.get(e); sl == nil || !sl.sent || sl.epoch != p.epoch {
			return false // a hole, or held back by the muter: wait for a key frame instead
		}
	}
	for e := k; e < p.ext; e++ {
		sl := t.cache.get(e)
		if sl.noMedia && s.m.withhold(e) {
			continue
		}
		out, outTS, ok := s.m.next(e, sl.extTS, p.now, t.cfg.ClockRate)
		if !ok {
			continue
		}
		if err := s.sendCached(fc, sl, out, outTS, false); err != nil {
			s.writeFailed(t, e, out)
			return false
		}
		s.cnt.replayed.Add(1)
	}
	return true
}
