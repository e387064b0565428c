package rtptest

import "encoding/binary"

// rtcpHeader starts an RTCP packet of length words after the header.
func rtcpHeader(count, pt byte, words int) []byte {
	b := make([]byte, 4, 4+4*words)
	b[0] = 2<<6 | count&0x1f
	b[1] = pt
	binary.BigEndian.PutUint16(b[2:], uint16(words))
	return b
}

// NACK returns a generic NACK (RFC 4585 6.2.1) from sender about media,
// naming seqs: each entry a PID and the bitmask of the 16 numbers after it.
func NACK(sender, media uint32, seqs ...uint16) []byte {
	type pair struct{ pid, blp uint16 }
	var pairs []pair
	for _, s := range seqs {
		if n := len(pairs); n > 0 {
			d := s - pairs[n-1].pid
			if d == 0 {
				continue
			}
			if d <= 16 {
				pairs[n-1].blp |= 1 << (d - 1)
				continue
			}
		}
		pairs = append(pairs, pair{pid: s})
	}
	b := rtcpHeader(1, 205, 2+len(pairs))
	b = binary.BigEndian.AppendUint32(b, sender)
	b = binary.BigEndian.AppendUint32(b, media)
	for _, p := range pairs {
		b = binary.BigEndian.AppendUint16(b, p.pid)
		b = binary.BigEndian.AppendUint16(b, p.blp)
	}
	return b
}

// PLI returns a picture loss indication (RFC 4585 6.3.1) from sender about media.
func PLI(sender, media uint32) []byte {
	b := rtcpHeader(1, 206, 2)
	b = binary.BigEndian.AppendUint32(b, sender)
	return binary.BigEndian.AppendUint32(b, media)
}

// FIR returns a full intra request (RFC 5104 4.3.1) from sender for media
// with command sequence number seq.
func FIR(sender, media uint32, seq uint8) []byte {
	b := rtcpHeader(4, 206, 4)
	b = binary.BigEndian.AppendUint32(b, sender)
	b = binary.BigEndian.AppendUint32(b, 0) // media source: unused
	b = binary.BigEndian.AppendUint32(b, media)
	return append(b, seq, 0, 0, 0)
}

// Report is one reception report block (RFC 3550 6.4.1).
type Report struct {
	SSRC         uint32
	FractionLost uint8
	TotalLost    uint32 // 24 bits
	HighestSeq   uint32 // extended
	Jitter       uint32
	LastSR       uint32
	DelaySinceSR uint32
}

// RR returns a receiver report from sender with the given blocks.
func RR(sender uint32, reports ...Report) []byte {
	b := rtcpHeader(byte(len(reports)), 201, 1+6*len(reports))
	b = binary.BigEndian.AppendUint32(b, sender)
	for _, r := range reports {
		b = binary.BigEndian.AppendUint32(b, r.SSRC)
		b = binary.BigEndian.AppendUint32(b, uint32(r.FractionLost)<<24|r.TotalLost&0xffffff)
		b = binary.BigEndian.AppendUint32(b, r.HighestSeq)
		b = binary.BigEndian.AppendUint32(b, r.Jitter)
		b = binary.BigEndian.AppendUint32(b, r.LastSR)
		b = binary.BigEndian.AppendUint32(b, r.DelaySinceSR)
	}
	return b
}

// Compound joins RTCP packets into one compound packet.
func Compound(pkts ...[]byte) []byte {
	var b []byte
	for _, p := range pkts {
		b = append(b, p...)
	}
	return b
}
