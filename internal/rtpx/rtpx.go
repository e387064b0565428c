// Package rtpx parses and writes RTP headers (RFC 3550) in place, without
// allocating. It is the packet path's parser: the core never calls
// pion/rtp's Unmarshal per packet, which allocates for extensions.
package rtpx

import (
	"encoding/binary"
	"errors"
)

// Errors returned by Parse. They are wrapped by the callers' own sentinels.
var (
	ErrShort     = errors.New("rtpx: packet shorter than its header")
	ErrVersion   = errors.New("rtpx: RTP version is not 2")
	ErrExtension = errors.New("rtpx: malformed header extension")
	ErrPadding   = errors.New("rtpx: malformed padding")
)

// Extension profiles (RFC 8285).
const (
	ProfileOneByte = 0xBEDE
	ProfileTwoByte = 0x1000 // the upper 12 bits; the low 4 are "appbits"
)

// Header is the parsed view of an RTP packet. Offsets index the packet the
// header was parsed from; nothing is copied.
type Header struct {
	Marker      bool
	Padding     bool
	PayloadType uint8
	Seq         uint16
	Timestamp   uint32
	SSRC        uint32
	CSRCCount   uint8

	// ExtProfile is 0 when the packet has no header extension.
	ExtProfile uint16
	// ExtStart and ExtEnd bound the extension elements (after the 4-byte
	// extension header). Both are 0 without an extension.
	ExtStart, ExtEnd int
	// HeaderLen is the offset of the payload.
	HeaderLen int
	// PaddingLen is the number of padding bytes at the end, the count byte
	// included.
	PaddingLen int
}

// PayloadLen returns the number of payload bytes, padding excluded.
func (h *Header) PayloadLen(pkt []byte) int { return len(pkt) - h.HeaderLen - h.PaddingLen }

// Parse validates pkt as one RTP packet and fills h. It never allocates and
// never reads outside pkt.
func Parse(pkt []byte, h *Header) error {
	if len(pkt) < 12 {
		return ErrShort
	}
	b0 := pkt[0]
	if b0>>6 != 2 {
		return ErrVersion
	}
	h.Padding = b0&0x20 != 0
	hasExt := b0&0x10 != 0
	h.CSRCCount = b0 & 0x0f
	h.Marker = pkt[1]&0x80 != 0
	h.PayloadType = pkt[1] & 0x7f
	h.Seq = binary.BigEndian.Uint16(pkt[2:])
	h.Timestamp = binary.BigEndian.Uint32(pkt[4:])
	h.SSRC = binary.BigEndian.Uint32(pkt[8:])
	n := 12 + 4*int(h.CSRCCount)
	if len(pkt) < n {
		return ErrShort
	}
	h.ExtProfile, h.ExtStart, h.ExtEnd = 0, 0, 0
	if hasExt {
		if len(pkt) < n+4 {
			return ErrShort
		}
		h.ExtProfile = binary.BigEndian.Uint16(pkt[n:])
		words := int(binary.BigEndian.Uint16(pkt[n+2:]))
		h.ExtStart = n + 4
		h.ExtEnd = h.ExtStart + 4*words
		if len(pkt) < h.ExtEnd {
			return ErrShort
		}
		if h.ExtProfile == 0 {
			// A zero profile would be indistinguishable from "no extension".
			return ErrExtension
		}
		if err := checkElements(pkt[h.ExtStart:h.ExtEnd], h.ExtProfile); err != nil {
			return err
		}
		n = h.ExtEnd
	}
	h.HeaderLen = n
	h.PaddingLen = 0
	if h.Padding {
		if len(pkt) == n {
			return ErrPadding
		}
		p := int(pkt[len(pkt)-1])
		if p == 0 || p > len(pkt)-n {
			return ErrPadding
		}
		h.PaddingLen = p
	}
	return nil
}

// checkElements validates the RFC 8285 elements of a one- or two-byte
// extension block. Other profiles are opaque and accepted as they are.
func checkElements(b []byte, profile uint16) error {
	ok := true
	Elements(b, profile, func(id uint8, data []byte) bool { return true }, &ok)
	if !ok {
		return ErrExtension
	}
	return nil
}

// Elements calls fn for each element of an RFC 8285 extension block, in
// order, skipping padding. It stops when fn returns false. *ok is set to
// false when the block is malformed. Blocks of other profiles have no
// elements. fn must not retain data.
func Elements(b []byte, profile uint16, fn func(id uint8, data []byte) bool, ok *bool) {
	switch {
	case profile == ProfileOneByte:
		for i := 0; i < len(b); {
			id := b[i] >> 4
			if id == 0 { // padding byte
				i++
				continue
			}
			if id == 15 { // reserved: stop parsing (RFC 8285 4.2)
				return
			}
			l := int(b[i]&0x0f) + 1
			if i+1+l > len(b) {
				*ok = false
				return
			}
			if !fn(id, b[i+1:i+1+l]) {
				return
			}
			i += 1 + l
		}
	case profile&0xfff0 == ProfileTwoByte:
		for i := 0; i < len(b); {
			id := b[i]
			if id == 0 {
				i++
				continue
			}
			if i+2 > len(b) {
				*ok = false
				return
			}
			l := int(b[i+1])
			if i+2+l > len(b) {
				*ok = false
				return
			}
			if !fn(id, b[i+2:i+2+l]) {
				return
			}
			i += 2 + l
		}
	}
}

// RewriteExtensions writes into dst an extension block (its 4-byte header
// included, padded to a multiple of 4 bytes) holding the elements of src
// whose ID maps to a nonzero ID in remap, renumbered. It returns the number
// of bytes written: 0 when no element remains (the packet then carries no
// extension). src must have passed Parse. dst needs len(src)+8 bytes.
// Blocks of profiles other than RFC 8285's are dropped.
func RewriteExtensions(dst, src []byte, profile uint16, remap *[256]uint8) int {
	twoByte := profile&0xfff0 == ProfileTwoByte
	if profile != ProfileOneByte && !twoByte {
		return 0
	}
	w := 4
	for i := 0; i < len(src); {
		var id uint8
		var l, hdr int
		if twoByte {
			id = src[i]
			if id == 0 {
				i++
				continue
			}
			l, hdr = int(src[i+1]), 2
		} else {
			id = src[i] >> 4
			if id == 0 {
				i++
				continue
			}
			if id == 15 {
				break
			}
			l, hdr = int(src[i]&0x0f)+1, 1
		}
		if nid := remap[id]; nid != 0 && (twoByte || nid < 15) {
			if twoByte {
				dst[w], dst[w+1] = nid, uint8(l)
			} else {
				dst[w] = nid<<4 | uint8(l-1)
			}
			copy(dst[w+hdr:], src[i+hdr:i+hdr+l])
			w += hdr + l
		}
		i += hdr + l
	}
	if w == 4 {
		return 0
	}
	for w%4 != 0 {
		dst[w] = 0
		w++
	}
	if twoByte {
		profile = ProfileTwoByte // appbits are not ours to pass on
	}
	binary.BigEndian.PutUint16(dst, profile)
	binary.BigEndian.PutUint16(dst[2:], uint16((w-4)/4))
	return w
}
