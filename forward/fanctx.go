package forward

import (
	"encoding/binary"

	"github.com/callcore/callcore/internal/rtpx"
)

// fanCtx is the scratch of one goroutine that delivers packets: the header
// of the current packet for each extension profile, and buffers to rebuild
// cached packets for replays and retransmissions.
type fanCtx struct {
	maxPacket int
	hdrs      [][]byte // per profile, patched per subscriber
	lens      []int
	rtxHdr    []byte
	rtxBody   []byte
	layHdr    []byte // a layered subscriber's header with its own VP8 descriptor
	parsed    rtpx.Header
}

func newFanCtx(maxPacket int) *fanCtx {
	return &fanCtx{
		maxPacket: maxPacket,
		rtxHdr:    make([]byte, maxPacket+8),
		rtxBody:   make([]byte, maxPacket+2),
		layHdr:    make([]byte, maxPacket+8),
	}
}

// fanout delivers the packet to the subscribers set.entries[lo:hi].
func (fc *fanCtx) fanout(t *Track, set *subSet, lo, hi int, pkt []byte, p *pktInfo) {
	for len(fc.hdrs) < len(set.profiles) { // grows only when a snapshot has more profiles
		fc.hdrs = append(fc.hdrs, make([]byte, fc.maxPacket+8))
		fc.lens = append(fc.lens, 0)
	}
	for i, prof := range set.profiles {
		fc.lens[i] = buildHeader(fc.hdrs[i], pkt, p.hdr, &prof.remap)
		fc.lens[i] += copy(fc.hdrs[i][fc.lens[i]:], p.desc)
	}
	for i := lo; i < hi; i++ {
		e := &set.entries[i]
		e.sub.deliver(t, fc, e.prof, p)
	}
}

// buildHeader writes into dst the header a profile's subscribers get,
// before their own SSRC, payload type, sequence number and timestamp are
// patched in, and returns its length.
func buildHeader(dst, pkt []byte, h *rtpx.Header, remap *[256]uint8) int {
	fixed := 12 + 4*int(h.CSRCCount)
	copy(dst, pkt[:fixed])
	if h.ExtProfile == 0 {
		return fixed
	}
	n := rtpx.RewriteExtensions(dst[fixed:], pkt[h.ExtStart:h.ExtEnd], h.ExtProfile, remap)
	if n == 0 {
		dst[0] &^= 0x10
	}
	return fixed + n
}

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
