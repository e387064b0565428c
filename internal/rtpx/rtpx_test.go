package rtpx

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/pion/rtp"
)

// FuzzParse checks Parse against pion/rtp, the reference parser: whatever
// both accept has the same header fields, payload and extension elements,
// and a rewrite with the identity mapping keeps every element.
func FuzzParse(f *testing.F) {
	p := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 96, SequenceNumber: 9, Timestamp: 7, SSRC: 5, CSRC: []uint32{1}}, Payload: []byte{1, 2}}
	_ = p.SetExtension(3, []byte{1, 2, 3})
	b, _ := p.Marshal()
	f.Add(b)
	p.Header.Extensions, p.Header.Extension = nil, false
	p.Header.ExtensionProfile = 0
	_ = p.SetExtension(200, []byte{9}) // two-byte form
	b, _ = p.Marshal()
	f.Add(b)
	f.Add([]byte{0xa0, 96, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 9, 0, 0, 2})
	f.Fuzz(func(t *testing.T, b []byte) {
		var h Header
		err := Parse(b, &h)
		var ref rtp.Packet
		refErr := ref.Unmarshal(b)
		if err != nil || refErr != nil {
			return // the two differ on some malformed inputs; each refuses cleanly
		}
		if h.Marker != ref.Marker || h.PayloadType != ref.PayloadType || h.Seq != ref.SequenceNumber ||
			h.Timestamp != ref.Timestamp || h.SSRC != ref.SSRC || int(h.CSRCCount) != len(ref.CSRC) {
			t.Fatalf("header differs: %+v vs %+v", h, ref.Header)
		}
		if !bytes.Equal(b[h.HeaderLen:len(b)-h.PaddingLen], ref.Payload) {
			t.Fatalf("payload differs")
		}
		if h.ExtProfile != ProfileOneByte && h.ExtProfile&0xfff0 != ProfileTwoByte {
			return
		}
		ok := true
		n := 0
		seen := map[uint8]bool{}
		Elements(b[h.ExtStart:h.ExtEnd], h.ExtProfile, func(id uint8, data []byte) bool {
			n++
			first := !seen[id] // pion reports the first of repeated IDs
			seen[id] = true
			if first && !bytes.Equal(ref.GetExtension(id), data) && ref.GetExtension(id) != nil {
				t.Fatalf("element %d: %x vs pion %x", id, data, ref.GetExtension(id))
			}
			return true
		}, &ok)
		var identity [256]uint8
		for i := range identity {
			identity[i] = uint8(i)
		}
		dst := make([]byte, h.ExtEnd-h.ExtStart+8)
		w := RewriteExtensions(dst, b[h.ExtStart:h.ExtEnd], h.ExtProfile, &identity)
		m := 0
		if w > 0 {
			Elements(dst[4:w], binary.BigEndian.Uint16(dst), func(uint8, []byte) bool { m++; return true }, &ok)
		}
		if h.ExtProfile == ProfileOneByte && m != countKept(b[h.ExtStart:h.ExtEnd]) || h.ExtProfile != ProfileOneByte && m != n {
			t.Fatalf("identity rewrite kept %d of %d elements", m, n)
		}
	})
}

// countKept counts the one-byte elements a rewrite keeps (IDs 1 to 14).
func countKept(b []byte) int {
	n := 0
	ok := true
	Elements(b, ProfileOneByte, func(id uint8, _ []byte) bool {
		if id < 15 {
			n++
		}
		return true
	}, &ok)
	return n
}
