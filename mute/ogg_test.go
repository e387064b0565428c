package mute

import (
	"bytes"
	"encoding/binary"
	"testing"
)

// oggCRCTable is the CRC-32 of Ogg: polynomial 0x04c11db7, not reflected,
// initial value 0.
var oggCRCTable = func() (t [256]uint32) {
	for i := range t {
		r := uint32(i) << 24
		for j := 0; j < 8; j++ {
			if r&0x80000000 != 0 {
				r = r<<1 ^ 0x04c11db7
			} else {
				r <<= 1
			}
		}
		t[i] = r
	}
	return t
}()

func oggCRC(b []byte) uint32 {
	var crc uint32
	for _, c := range b {
		crc = crc<<8 ^ oggCRCTable[byte(crc>>24)^c]
	}
	return crc
}

// oggWriter writes one logical Ogg stream, one packet per page.
type oggWriter struct {
	buf bytes.Buffer
	seq uint32
}

// page writes packet as one page with header type flags and granule
// position gp. Packets must be shorter than 255*255 bytes.
func (o *oggWriter) page(flags byte, gp int64, packet []byte) {
	var lacing []byte
	n := len(packet)
	for ; n >= 255; n -= 255 {
		lacing = append(lacing, 255)
	}
	lacing = append(lacing, byte(n))
	h := make([]byte, 27, 27+len(lacing)+len(packet))
	copy(h, "OggS")
	h[5] = flags
	binary.LittleEndian.PutUint64(h[6:], uint64(gp))
	binary.LittleEndian.PutUint32(h[14:], 0x63616c6c) // serial
	binary.LittleEndian.PutUint32(h[18:], o.seq)
	h[26] = byte(len(lacing))
	h = append(h, lacing...)
	h = append(h, packet...)
	binary.LittleEndian.PutUint32(h[22:], oggCRC(h))
	o.buf.Write(h)
	o.seq++
}

// oggOpus writes an Ogg Opus file (RFC 7845) of mono 48 kHz packets; the
// pre-skip is 0, so every decoded sample is output. samples gives each
// packet's duration in 48 kHz samples.
func oggOpus(packets [][]byte, samples []int) []byte {
	var o oggWriter
	head := []byte("OpusHead")
	head = append(head, 1, 1, 0, 0) // version, channels, pre-skip
	head = binary.LittleEndian.AppendUint32(head, 48000)
	head = append(head, 0, 0, 0) // gain, mapping family
	o.page(2, 0, head)
	tags := []byte("OpusTags")
	tags = binary.LittleEndian.AppendUint32(tags, 4)
	tags = append(tags, "mute"...)
	tags = binary.LittleEndian.AppendUint32(tags, 0)
	o.page(0, 0, tags)
	var gp int64
	for i, p := range packets {
		gp += int64(samples[i])
		flags := byte(0)
		if i == len(packets)-1 {
			flags = 4
		}
		o.page(flags, gp, p)
	}
	return o.buf.Bytes()
}

// oggPackets returns the packets of an Ogg file's single logical stream.
func oggPackets(t testing.TB, b []byte) [][]byte {
	t.Helper()
	var packets [][]byte
	var cur []byte
	for len(b) > 0 {
		if len(b) < 27 || string(b[:4]) != "OggS" {
			t.Fatal("bad Ogg page")
		}
		nseg := int(b[26])
		lacing := b[27 : 27+nseg]
		body := b[27+nseg:]
		for _, l := range lacing {
			cur = append(cur, body[:l]...)
			body = body[l:]
			if l < 255 {
				packets = append(packets, cur)
				cur = nil
			}
		}
		b = body
	}
	return packets
}

func TestOggCRC(t *testing.T) {
	// The CRC of a page is computed with its CRC field zero; recomputing
	// over a written page with the field cleared must give the field.
	f := oggOpus([][]byte{{0xf8, 0xff, 0xfe}}, []int{960})
	page := append([]byte(nil), f[:47]...) // the OpusHead page
	want := binary.LittleEndian.Uint32(page[22:])
	binary.LittleEndian.PutUint32(page[22:], 0)
	if got := oggCRC(page); got != want || want == 0 {
		t.Fatalf("CRC %#x, want %#x", got, want)
	}
	if got := oggCRC([]byte("123456789")); got != 0x89a1897f {
		t.Fatalf("CRC-32/MPEG-2 variant check: %#x", got)
	}
}
