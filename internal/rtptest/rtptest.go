// Package rtptest builds RTP and RTCP packets for tests: one header
// builder with CSRCs, RFC 8285 extensions and padding (Packet), numbered
// streams (Stream), VP8, H.264 and Opus payload streams with real key
// frames, and the RTCP feedback the core answers (NACK, PLI, FIR) and
// receiver reports. It writes the bytes itself (no pion), and its tests
// read them back with pion/rtp and pion/rtcp.
package rtptest

import "encoding/binary"

// Extension is one RFC 8285 header extension element.
type Extension struct {
	ID   uint8
	Data []byte
}

// Packet describes one RTP packet (RFC 3550).
type Packet struct {
	PayloadType uint8
	Seq         uint16
	Timestamp   uint32
	SSRC        uint32
	Marker      bool
	CSRC        []uint32
	// Extensions are written in the one-byte form (0xBEDE) when every ID
	// is 1 to 14 and every element 1 to 16 bytes, else the two-byte form.
	Extensions []Extension
	Payload    []byte
	// Padding is how many bytes of padding follow the payload (P set; the
	// last byte holds the count). 0: none.
	Padding uint8
}

// Header returns the packet's header: the bytes before the payload.
func (p Packet) Header() []byte {
	b := make([]byte, 12, 12+4*len(p.CSRC)+4+64)
	b[0] = 2<<6 | byte(len(p.CSRC)&0x0f)
	if p.Padding > 0 {
		b[0] |= 0x20
	}
	if len(p.Extensions) > 0 {
		b[0] |= 0x10
	}
	b[1] = p.PayloadType & 0x7f
	if p.Marker {
		b[1] |= 0x80
	}
	binary.BigEndian.PutUint16(b[2:], p.Seq)
	binary.BigEndian.PutUint32(b[4:], p.Timestamp)
	binary.BigEndian.PutUint32(b[8:], p.SSRC)
	for _, c := range p.CSRC {
		b = binary.BigEndian.AppendUint32(b, c)
	}
	if len(p.Extensions) > 0 {
		b = appendExtensions(b, p.Extensions)
	}
	return b
}

// Marshal returns the whole packet: header, payload and padding.
func (p Packet) Marshal() []byte {
	b := append(p.Header(), p.Payload...)
	if p.Padding > 0 {
		b = append(b, make([]byte, p.Padding-1)...)
		b = append(b, p.Padding)
	}
	return b
}

func appendExtensions(b []byte, exts []Extension) []byte {
	oneByte := true
	for _, e := range exts {
		if e.ID < 1 || e.ID > 14 || len(e.Data) < 1 || len(e.Data) > 16 {
			oneByte = false
		}
	}
	start := len(b)
	if oneByte {
		b = append(b, 0xBE, 0xDE, 0, 0)
	} else {
		b = append(b, 0x10, 0x00, 0, 0)
	}
	for _, e := range exts {
		if oneByte {
			b = append(b, e.ID<<4|byte(len(e.Data)-1))
		} else {
			b = append(b, e.ID, byte(len(e.Data)))
		}
		b = append(b, e.Data...)
	}
	for (len(b)-start)%4 != 0 {
		b = append(b, 0)
	}
	binary.BigEndian.PutUint16(b[start+2:], uint16((len(b)-start-4)/4))
	return b
}

// Stream numbers the packets of one RTP source: each Next has the next
// sequence number (wrapping) and the timestamp the caller moved to.
type Stream struct {
	PayloadType uint8
	SSRC        uint32
	Seq         uint16 // of the next packet
	Timestamp   uint32 // of the next packet; the caller advances it
	Extensions  []Extension
}

// Next returns the next packet carrying payload.
func (s *Stream) Next(payload []byte, marker bool) []byte {
	p := Packet{PayloadType: s.PayloadType, Seq: s.Seq, Timestamp: s.Timestamp, SSRC: s.SSRC, Marker: marker, Extensions: s.Extensions, Payload: payload}
	s.Seq++
	return p.Marshal()
}

// Frame returns one frame's packets, the marker on the last, all at the
// current timestamp, and then advances the timestamp by step.
func (s *Stream) Frame(payloads [][]byte, step uint32) [][]byte {
	out := make([][]byte, len(payloads))
	for i, pl := range payloads {
		out[i] = s.Next(pl, i == len(payloads)-1)
	}
	s.Timestamp += step
	return out
}
