// Package rtcpx walks compound RTCP packets and builds the feedback the core
// sends, without allocating: the generic NACK (RFC 4585 6.2.1), PLI (RFC
// 4585 6.3.1) and FIR (RFC 5104 4.3.1). Other packet types are skipped.
package rtcpx

import (
	"encoding/binary"
	"errors"
)

// ErrMalformed is returned for a compound packet that is not valid RTCP.
var ErrMalformed = errors.New("rtcpx: malformed RTCP")

// Packet types and feedback formats.
const (
	TypeSR    = 200
	TypeRR    = 201
	TypeRTPFB = 205
	TypePSFB  = 206

	FormatNACK = 1 // RTPFB
	FormatPLI  = 1 // PSFB
	FormatFIR  = 4 // PSFB
)

// Feedback is what a compound packet asks of a media sender.
type Feedback struct {
	// KeyFrame is set when a PLI or FIR names MediaSSRC.
	KeyFrame bool
	// NACKs holds the FCI words of generic NACKs for MediaSSRC: each is a
	// packet ID and a bitmask of the 16 following packets. Up to len(buf).
	NACKs []NACK
	// Reports counts the sender and receiver reports.
	Reports int
}

// NACK is one FCI entry of a generic NACK.
type NACK struct {
	PID uint16
	BLP uint16
}

// Parse validates a compound packet and collects the feedback addressed to
// mediaSSRC into fb, appending NACKs to fb.NACKs up to its capacity (those
// beyond are dropped and counted in the returned overflow).
func Parse(pkt []byte, mediaSSRC uint32, fb *Feedback) (overflow int, err error) {
	if len(pkt) < 4 {
		return 0, ErrMalformed
	}
	for len(pkt) > 0 {
		if len(pkt) < 4 || pkt[0]>>6 != 2 {
			return overflow, ErrMalformed
		}
		n := 4 * (int(binary.BigEndian.Uint16(pkt[2:])) + 1)
		if n > len(pkt) {
			return overflow, ErrMalformed
		}
		body := pkt[:n]
		if pkt[0]&0x20 != 0 { // padding only on the last packet
			p := int(body[n-1])
			if n != len(pkt) || p == 0 || p > n-4 {
				return overflow, ErrMalformed
			}
			body = body[:n-p]
		}
		format, typ := pkt[0]&0x1f, pkt[1]
		switch typ {
		case TypeSR, TypeRR:
			fb.Reports++
		case TypeRTPFB, TypePSFB:
			known := typ == TypeRTPFB && format == FormatNACK || typ == TypePSFB && (format == FormatPLI || format == FormatFIR)
			if !known {
				break // other feedback (REMB, TWCC, ...) is not the core's
			}
			if len(body) < 12 {
				return overflow, ErrMalformed
			}
			overflow += feedback(typ, format, body, mediaSSRC, fb)
		}
		pkt = pkt[n:]
	}
	return overflow, nil
}

func feedback(typ, format uint8, body []byte, mediaSSRC uint32, fb *Feedback) (overflow int) {
	media := binary.BigEndian.Uint32(body[8:])
	fci := body[12:]
	switch {
	case typ == TypeRTPFB && format == FormatNACK && media == mediaSSRC:
		for ; len(fci) >= 4; fci = fci[4:] {
			if len(fb.NACKs) == cap(fb.NACKs) {
				overflow++
				continue
			}
			fb.NACKs = append(fb.NACKs, NACK{PID: binary.BigEndian.Uint16(fci), BLP: binary.BigEndian.Uint16(fci[2:])})
		}
	case typ == TypePSFB && format == FormatPLI && media == mediaSSRC:
		fb.KeyFrame = true
	case typ == TypePSFB && format == FormatFIR:
		// FIR names the media source in its FCI entries, not the header.
		for ; len(fci) >= 8; fci = fci[8:] {
			if binary.BigEndian.Uint32(fci) == mediaSSRC {
				fb.KeyFrame = true
			}
		}
	}
	return overflow
}

// AppendPLI appends a PLI from sender about media.
func AppendPLI(b []byte, sender, media uint32) []byte {
	b = append(b, 0x80|FormatPLI, TypePSFB, 0, 2)
	b = binary.BigEndian.AppendUint32(b, sender)
	return binary.BigEndian.AppendUint32(b, media)
}

// AppendNACK appends a generic NACK from sender about media for the given
// FCI entries.
func AppendNACK(b []byte, sender, media uint32, nacks []NACK) []byte {
	b = append(b, 0x80|FormatNACK, TypeRTPFB)
	b = binary.BigEndian.AppendUint16(b, uint16(2+len(nacks)))
	b = binary.BigEndian.AppendUint32(b, sender)
	b = binary.BigEndian.AppendUint32(b, media)
	for _, n := range nacks {
		b = binary.BigEndian.AppendUint16(b, n.PID)
		b = binary.BigEndian.AppendUint16(b, n.BLP)
	}
	return b
}
