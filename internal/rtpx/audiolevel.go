package rtpx

import "errors"

// Errors returned by AudioLevel.
var (
	// ErrNoElement is returned when the packet carries no extension
	// element with the asked ID.
	ErrNoElement = errors.New("rtpx: no such extension element")
	// ErrEmptyElement is returned for an audio-level element without data
	// (possible only in the two-byte form).
	ErrEmptyElement = errors.New("rtpx: empty extension element")
)

// Element returns the data of the first element with the given ID in the
// extension block of pkt, which must have passed Parse into h. It never
// allocates: the data aliases pkt. ok is false when there is no such
// element (or no RFC 8285 extension at all).
func Element(pkt []byte, h *Header, id uint8) (data []byte, ok bool) {
	if h.ExtProfile == 0 || id == 0 || h.ExtEnd > len(pkt) || h.ExtStart > h.ExtEnd {
		return nil, false
	}
	b := pkt[h.ExtStart:h.ExtEnd]
	switch {
	case h.ExtProfile == ProfileOneByte:
		if id >= 15 {
			return nil, false
		}
		for i := 0; i < len(b); {
			eid := b[i] >> 4
			if eid == 0 {
				i++
				continue
			}
			if eid == 15 {
				return nil, false
			}
			l := int(b[i]&0x0f) + 1
			if i+1+l > len(b) {
				return nil, false
			}
			if eid == id {
				return b[i+1 : i+1+l], true
			}
			i += 1 + l
		}
	case h.ExtProfile&0xfff0 == ProfileTwoByte:
		for i := 0; i < len(b); {
			eid := b[i]
			if eid == 0 {
				i++
				continue
			}
			if i+2 > len(b) {
				return nil, false
			}
			l := int(b[i+1])
			if i+2+l > len(b) {
				return nil, false
			}
			if eid == id {
				return b[i+2 : i+2+l], true
			}
			i += 2 + l
		}
	}
	return nil, false
}

// AudioLevel reads the RFC 6464 client-to-mixer audio level carried in the
// element with the given ID: level is the audio level in -dBov, from 0
// (the loudest) to 127 (silence), and voiced is the V flag (the sender's
// voice activity detection; meaningful only when the sender negotiated
// it). pkt must have passed Parse into h. It never allocates.
//
// Only the first byte of the element is read, so the padded forms some
// senders use are accepted as pion/rtp accepts them.
func AudioLevel(pkt []byte, h *Header, id uint8) (level uint8, voiced bool, err error) {
	data, ok := Element(pkt, h, id)
	if !ok {
		return 0, false, ErrNoElement
	}
	if len(data) == 0 {
		return 0, false, ErrEmptyElement
	}
	return data[0] & 0x7f, data[0]&0x80 != 0, nil
}
