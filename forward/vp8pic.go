package forward

// VP8 picture IDs (RFC 7741) must stay continuous for a subscriber across
// a switch between the publisher's media and empty media, or a decoder
// takes the jump for loss. The track keeps one mapping for all its
// subscribers (they switch together): publisher IDs are shifted by an
// offset chosen when real media resumes, and empty frames continue the
// numbering. A publisher without picture IDs is passed through unchanged.

// picState is a track's picture-ID mapping, kept by its muter and owned by
// the exclusive section.
type picState struct {
	seen   bool   // the publisher sends picture IDs
	off    uint16 // output = input + off (mod 2^15)
	last   uint16 // the newest output picture ID
	resync bool   // the next publisher frame continues from last
}

// vp8PictureID returns the offset and width (7 or 15 bits) of the picture
// ID in an RFC 7741 payload descriptor, and the descriptor's length.
func vp8PictureID(p []byte) (at int, wide bool, descLen int, ok bool) {
	descLen = vp8DescLen(p)
	if descLen == 0 || p[0]&0x80 == 0 || p[1]&0x80 == 0 {
		return 0, false, descLen, false
	}
	return 2, p[2]&0x80 != 0, descLen, true
}

// readPicID reads the picture ID at at.
func readPicID(p []byte, at int, wide bool) uint16 {
	if wide {
		return uint16(p[at]&0x7f)<<8 | uint16(p[at+1])
	}
	return uint16(p[at] & 0x7f)
}

// writePicID copies the descriptor of p into dst with its picture ID
// shifted by off, and returns the descriptor's length.
func writePicID(dst, p []byte, at int, wide bool, descLen int, off uint16) int {
	copy(dst, p[:descLen])
	id := (readPicID(p, at, wide) + off) & 0x7fff
	if wide {
		dst[at], dst[at+1] = 0x80|byte(id>>8), byte(id)
	} else {
		dst[at] = byte(id & 0x7f)
	}
	return descLen
}

// mapPicture applies the mapping to a publisher packet about to be fanned
// out: it returns the rewritten descriptor (in dst) and the payload after
// it, or no descriptor when the packet goes out unchanged.
func (ps *picState) mapPicture(dst *[8]byte, payload []byte) (desc, rest []byte) {
	at, wide, n, ok := vp8PictureID(payload)
	if !ok {
		return nil, payload
	}
	first := !ps.seen
	ps.seen = true
	in := readPicID(payload, at, wide)
	if ps.resync {
		ps.off, ps.resync = (ps.last+1-in)&0x7fff, false
	}
	if out := (in + ps.off) & 0x7fff; first || int16((out-ps.last)<<1) > 0 { // the newest, in 15-bit order
		ps.last = out
	}
	if ps.off == 0 {
		return nil, payload
	}
	writePicID(dst[:], payload, at, wide, n, ps.off)
	return dst[:n], payload[n:]
}

// next returns the picture ID of the next empty frame.
func (ps *picState) next() uint16 {
	ps.last = (ps.last + 1) & 0x7fff
	return ps.last
}

// genVP8Payload returns a generated VP8 packet's payload with a 15-bit
// picture ID added to its one-byte descriptor, in buf.
func genVP8Payload(buf, pl []byte, id uint16) []byte {
	return append(append(buf[:0], pl[0]|0x80, 0x80, 0x80|byte(id>>8), byte(id)), pl[1:]...)
}
