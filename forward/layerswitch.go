package forward

// The section side of a layer switch (make-before-break). A subscriber of
// a Layers sits in the snapshot of every layer's track, but only the track
// named by its src feeds it; the others skip it with one atomic load, or,
// when it is their pending target, watch for their key frame:
//
//  1. Layers names the target in s.pend (a pending, allocated by the
//     control call) and asks the target for a key frame.
//  2. The current layer keeps feeding the subscriber.
//  3. The target's section, on its first packet that starts a key frame,
//     moves src from the current track to itself with one
//     compare-and-swap. From then on the old track's sections skip the
//     subscriber; one the old track was in at that moment is waited out
//     with the usual handoff (the target leaves the subscriber alone until
//     it is left, then starts it from its cached run since the key frame).
//  4. The subscriber starts a new segment on the key frame: its sequence
//     numbers and timestamps follow the old layer's (the munger's splice),
//     and its VP8 picture IDs and TL0PICIDX follow the last ones it was
//     sent (layerState).
//
// Until step 3 the target's non-key packets ask it for a key frame, merged
// and throttled like every other request (keyFrameDue).

// pending is a switch of a layered subscriber waiting for its target's key
// frame. It is made by a control call and never reused; h is written once,
// by the target's section, before it is published in Subscriber.handoff.
type pending struct {
	to *Track
	h  handoff
}

// layerState is what a layered subscriber keeps beyond a plain one. The
// fields below owner are owned by the exclusive section of the track that
// feeds it.
type layerState struct {
	owner *Layers

	picOff  uint16 // output picture ID = input + picOff (mod 2^15)
	tl0Off  uint8  // output TL0PICIDX = input + tl0Off (mod 2^8)
	lastPic uint16 // newest picture ID sent
	lastTL0 uint8  // newest TL0PICIDX sent
	sentPic bool   // a picture ID was sent
	sentTL0 bool   // a TL0PICIDX was sent
	resync  bool   // the next segment's first descriptor continues from lastPic and lastTL0
}

// candidate handles packet p of track t for a layered subscriber that t
// does not feed. It reports whether t has just taken the subscriber over
// (p starts the key frame it was waiting for): the caller then delivers p
// as the first packet of the new segment.
func (s *Subscriber) candidate(t *Track, p *pktInfo) bool {
	pd := s.pend.Load()
	if pd == nil || pd.to != t {
		return false // not wanted here: one load per packet
	}
	if !p.key {
		if p.ext >= genBase {
			t.mt.wantKey.Store(true) // muted: a black key frame, not the publisher's
		} else if !t.kf.wanted.Load() {
			t.kf.wanted.Store(true)
		}
		return false
	}
	if h := s.handoff.Load(); h != nil && !h.from.quiescent(h.gen) {
		// The switch before this one still waits for a section of the
		// layer before that: the munger may be in use there. Rare (two
		// switches within one fan-out); the next key frame will do.
		s.lay.owner.deferred.Add(1)
		return false
	}
	from := s.src.Load()
	if s.shut.Load() || !s.src.CompareAndSwap(from, t) {
		return false
	}
	s.pend.CompareAndSwap(pd, nil)
	s.lay.owner.switched.Add(1)
	if from != nil {
		// A section of the old track that read src before the swap is
		// still under way when its generation is odd and unchanged.
		if g := from.gen.Load(); !from.quiescent(g) {
			pd.h = handoff{from: from, gen: g}
			s.handoff.Store(&pd.h)
			return true
		}
	}
	s.restart()
	return true
}

// vp8Desc locates the fields of an RFC 7741 payload descriptor.
type vp8Desc struct {
	n     int  // descriptor length; 0 when malformed
	picAt int  // picture ID offset; 0 when absent
	wide  bool // 15-bit picture ID
	tl0At int  // TL0PICIDX offset; 0 when absent
}

func parseVP8Desc(p []byte) (d vp8Desc) {
	d.n = vp8DescLen(p)
	if d.n == 0 || p[0]&0x80 == 0 {
		return d
	}
	i := 2
	if p[1]&0x80 != 0 {
		d.picAt, d.wide = i, p[i]&0x80 != 0
		i++
		if d.wide {
			i++
		}
	}
	if p[1]&0x40 != 0 {
		d.tl0At = i
	}
	return d
}

// newer15 reports whether picture ID a comes after b in 15-bit order.
func newer15(a, b uint16) bool { return int16((a-b)<<1) > 0 }

// mapDesc maps the descriptor at the start of src for the subscriber,
// keeping its picture IDs and TL0PICIDX continuous across switches. It
// reports whether the output differs from src, and what to write.
func (l *layerState) mapDesc(src []byte) (d vp8Desc, pic uint16, tl0 uint8, changed bool) {
	d = parseVP8Desc(src)
	if d.n == 0 {
		return d, 0, 0, false
	}
	if d.picAt > 0 {
		in := readPicID(src, d.picAt, d.wide)
		if l.resync && l.sentPic {
			l.picOff = (l.lastPic + 1 - in) & 0x7fff
		}
		pic = (in + l.picOff) & 0x7fff
		if !l.sentPic || newer15(pic, l.lastPic) {
			l.lastPic, l.sentPic = pic, true
		}
		changed = l.picOff != 0
	}
	if d.tl0At > 0 {
		in := src[d.tl0At]
		if l.resync && l.sentTL0 {
			l.tl0Off = l.lastTL0 + 1 - in
		}
		tl0 = in + l.tl0Off
		if !l.sentTL0 || int8(tl0-l.lastTL0) > 0 {
			l.lastTL0, l.sentTL0 = tl0, true
		}
		changed = changed || l.tl0Off != 0
	}
	if d.picAt > 0 || d.tl0At > 0 {
		l.resync = false
	}
	return d, pic, tl0, changed
}

// writeDesc copies the descriptor d of src into dst with the picture ID
// and TL0PICIDX given, and returns its length.
func writeDesc(dst, src []byte, d vp8Desc, pic uint16, tl0 uint8) int {
	copy(dst, src[:d.n])
	if d.picAt > 0 {
		if d.wide {
			dst[d.picAt], dst[d.picAt+1] = 0x80|byte(pic>>8), byte(pic)
		} else {
			dst[d.picAt] = byte(pic & 0x7f)
		}
	}
	if d.tl0At > 0 {
		dst[d.tl0At] = tl0
	}
	return d.n
}

// layerVP8 rewrites a packet's VP8 descriptor for a layered subscriber.
// hdr is the subscriber's header, ending with the track's rewritten
// descriptor when descInHdr > 0 (else the descriptor starts the payload).
// The shared buffers are never written: a changed header is built in fc.
func (s *Subscriber) layerVP8(fc *fanCtx, hdr []byte, descInHdr int, payload []byte) ([]byte, []byte) {
	src := payload
	base := len(hdr) - descInHdr
	if descInHdr > 0 {
		src = hdr[base:]
	}
	d, pic, tl0, changed := s.lay.mapDesc(src)
	if !changed {
		return hdr, payload
	}
	b := fc.layHdr[:copy(fc.layHdr, hdr[:base])]
	b = b[:base+writeDesc(fc.layHdr[base:], src, d, pic, tl0)]
	if descInHdr == 0 {
		payload = payload[d.n:]
	}
	return b, payload
}

// layerCached rewrites the descriptor of a cached packet being sent again
// (a replay or a retransmission) for a layered subscriber: desc, when not
// nil, is the track's rewritten descriptor at the start of dst; otherwise
// the descriptor starts payload and is moved into dst when it changes.
func (s *Subscriber) layerCached(dst, desc, payload []byte) ([]byte, []byte) {
	src := desc
	if src == nil {
		src = payload
	}
	d, pic, tl0, changed := s.lay.mapDesc(src)
	if !changed {
		return desc, payload
	}
	n := writeDesc(dst, src, d, pic, tl0)
	if desc == nil {
		payload = payload[d.n:]
	}
	return dst[:n], payload
}

// parameterSets sends a layered H.264 subscriber starting a segment on an
// IDR that carries no SPS the track's last SPS and PPS first, in one
// STAP-A with the IDR's timestamp: after a switch of layer its decoder
// needs the new layer's (another picture size). The STAP-A takes the
// number after the last one sent and the IDR the next; it cannot be
// retransmitted (it has no input), which a NACK for it finds
// (NACKTooOld). It reports false when the writer refused it.
func (s *Subscriber) parameterSets(t *Track, fc *fanCtx, prof int, p *pktInfo) bool {
	g := &t.mt
	media := p.payload[:len(p.payload)-t.hdr.PaddingLen]
	if len(g.sps) == 0 || len(g.pps) == 0 || hasSPS(media) ||
		len(g.sps)+len(g.pps)+5 > len(fc.rtxBody) || fc.lens[prof] > len(fc.layHdr) {
		return true
	}
	m := &s.m
	out, outTS, _ := m.next(p.ext, p.extTS, p.now, t.cfg.ClockRate) // starts the segment
	m.seqOff++                                                      // the IDR comes one later
	m.lastIn, m.lastOut = p.ext-1, out
	b := append(fc.rtxBody[:0], g.sps[0]&0x60|24, byte(len(g.sps)>>8), byte(len(g.sps)))
	b = append(b, g.sps...)
	b = append(b, byte(len(g.pps)>>8), byte(len(g.pps)))
	b = append(b, g.pps...)
	hdr := fc.layHdr[:copy(fc.layHdr, fc.hdrs[prof][:fc.lens[prof]])]
	hdr[1] &^= 0x80 // the IDR ends the access unit, not this
	putHeader(hdr, s.cfg.PayloadType, uint16(out), uint32(outTS), s.cfg.SSRC)
	if err := s.cfg.Writer.WriteRTP(hdr, b); err != nil {
		m.seqOff--
		m.lastOut--
		s.writeFailed(t, p.ext, out)
		return false
	}
	s.lay.owner.paramSets.Add(1)
	s.cnt.packets.Add(1)
	s.cnt.bytes.Add(uint64(len(hdr) + len(b)))
	return true
}
