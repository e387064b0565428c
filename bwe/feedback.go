package bwe

import (
	"encoding/binary"
	"fmt"
	"math"
)

// RTCP packet types and feedback formats read here.
const (
	typeRTPFB  = 205
	typePSFB   = 206
	formatTWCC = 15 // RTPFB: transport-wide congestion control feedback
	formatAFB  = 15 // PSFB: application layer feedback (REMB)
)

// Packet statuses of a transport-wide feedback.
const (
	StatusNotReceived   = 0
	StatusSmallDelta    = 1     // received, one-byte delta
	StatusLargeDelta    = 2     // received, two-byte signed delta
	StatusNoDelta       = 3     // received, no delta (reserved by the format; read as received)
	deltaUnit           = 250   // µs, a receive delta's unit
	referenceUnit       = 64000 // µs, the reference time's unit
	twccFixed           = 20    // header, two SSRCs, base, count, reference, fb count
	maxStatusesPerChunk = 14
)

// TWCC is one transport-wide congestion control feedback, parsed in place:
// it refers to the packet it was parsed from.
type TWCC struct {
	SenderSSRC, MediaSSRC uint32
	BaseSeq               uint16
	Count                 uint16 // packet status count
	RefTime               int32  // reference time, in units of 64 ms (24-bit signed)
	FbCount               uint8  // feedback packet count
	chunks, deltas        []byte
}

// parseTWCC validates the body of a transport-wide feedback (the RTCP
// header included, padding removed) and fills t.
func parseTWCC(body []byte, t *TWCC) error {
	if len(body) < twccFixed {
		return fmt.Errorf("%w: transport-wide feedback of %d bytes", ErrMalformed, len(body))
	}
	t.SenderSSRC = binary.BigEndian.Uint32(body[4:])
	t.MediaSSRC = binary.BigEndian.Uint32(body[8:])
	t.BaseSeq = binary.BigEndian.Uint16(body[12:])
	t.Count = binary.BigEndian.Uint16(body[14:])
	ref := binary.BigEndian.Uint32(body[16:])
	t.RefTime = int32(ref) >> 8 // sign-extends the 24 bits
	t.FbCount = uint8(ref)
	rest := body[twccFixed:]
	left := int(t.Count)
	need := 0 // delta bytes
	i := 0
	for left > 0 {
		if i+2 > len(rest) {
			return fmt.Errorf("%w: transport-wide feedback chunks end before %d statuses", ErrMalformed, t.Count)
		}
		c := binary.BigEndian.Uint16(rest[i:])
		i += 2
		n, small, large := chunkCounts(c, left)
		left -= n
		need += small + 2*large
	}
	t.chunks = rest[:i]
	if len(rest)-i < need {
		return fmt.Errorf("%w: transport-wide feedback needs %d delta bytes, has %d", ErrMalformed, need, len(rest)-i)
	}
	t.deltas = rest[i : i+need]
	return nil
}

// chunkCounts returns how many of at most left statuses a chunk holds,
// and how many of them have a small and a large delta.
func chunkCounts(c uint16, left int) (n, small, large int) {
	if c&0x8000 == 0 { // run length
		n = min(int(c&0x1fff), left)
		switch c >> 13 & 3 {
		case StatusSmallDelta:
			small = n
		case StatusLargeDelta:
			large = n
		}
		return n, small, large
	}
	if c&0x4000 == 0 { // 14 one-bit symbols
		n = min(14, left)
		for k := range n {
			if c>>(13-k)&1 != 0 {
				small++
			}
		}
		return n, small, 0
	}
	n = min(7, left) // 7 two-bit symbols
	for k := range n {
		switch c >> (12 - 2*k) & 3 {
		case StatusSmallDelta:
			small++
		case StatusLargeDelta:
			large++
		}
	}
	return n, small, large
}

// Packets returns an iterator over the feedback's packet statuses, in
// sequence order.
func (t *TWCC) Packets() TWCCIter {
	return TWCCIter{t: t, seq: t.BaseSeq}
}

// TWCCIter walks the statuses of a TWCC; its zero value walks nothing.
type TWCCIter struct {
	t       *TWCC
	done    int // statuses returned
	ci, di  int // chunk and delta offsets
	chunk   uint16
	inChunk int // statuses of the current chunk still to read
	pos     int // index in the current chunk
	seq     uint16
}

// Next returns the next packet: its transport-wide sequence number, its
// status, and for a received packet with a delta the delta to the
// previous received packet (or to the reference time for the first), in
// µs. ok is false after the last.
func (it *TWCCIter) Next() (seq uint16, status uint8, delta int64, ok bool) {
	t := it.t
	if t == nil || it.done >= int(t.Count) {
		return 0, 0, 0, false
	}
	for it.inChunk == 0 { // a run of length 0 holds nothing; parseTWCC saw chunks enough
		it.chunk = binary.BigEndian.Uint16(t.chunks[it.ci:])
		it.ci += 2
		it.inChunk, _, _ = chunkCounts(it.chunk, int(t.Count)-it.done)
		it.pos = 0
	}
	c := it.chunk
	switch {
	case c&0x8000 == 0:
		status = uint8(c >> 13 & 3)
	case c&0x4000 == 0:
		status = uint8(c >> (13 - it.pos) & 1)
	default:
		status = uint8(c >> (12 - 2*it.pos) & 3)
	}
	switch status {
	case StatusSmallDelta:
		delta = int64(t.deltas[it.di]) * deltaUnit
		it.di++
	case StatusLargeDelta:
		delta = int64(int16(binary.BigEndian.Uint16(t.deltas[it.di:]))) * deltaUnit
		it.di += 2
	}
	seq = it.seq
	it.seq++
	it.pos++
	it.inChunk--
	it.done++
	return seq, status, delta, true
}

// Feedback is what one compound RTCP packet says about the transport's
// downlink.
type Feedback struct {
	// TWCC holds the transport-wide feedback, up to len(TWCCBuf).
	TWCC    []TWCC
	TWCCBuf [4]TWCC
	// REMB is the receiver's estimate in bit/s, when HasREMB.
	REMB    float64
	HasREMB bool
}

// Reset empties f, keeping its buffer.
func (f *Feedback) Reset() {
	f.TWCC = f.TWCCBuf[:0]
	f.REMB, f.HasREMB = 0, false
}

// ParseRTCP validates a compound RTCP packet and collects its
// transport-wide feedback and REMB into f (reset first). Other packets are
// skipped; transport-wide feedback beyond len(f.TWCCBuf) is dropped. It
// does not allocate, and the TWCC entries refer to pkt.
func ParseRTCP(pkt []byte, f *Feedback) error {
	f.Reset()
	if len(pkt) < 4 {
		return fmt.Errorf("%w: %d bytes", ErrMalformed, len(pkt))
	}
	for len(pkt) > 0 {
		if len(pkt) < 4 || pkt[0]>>6 != 2 {
			return fmt.Errorf("%w: bad RTCP header", ErrMalformed)
		}
		n := 4 * (int(binary.BigEndian.Uint16(pkt[2:])) + 1)
		if n > len(pkt) {
			return fmt.Errorf("%w: RTCP length %d over %d bytes", ErrMalformed, n, len(pkt))
		}
		body := pkt[:n]
		if pkt[0]&0x20 != 0 {
			p := int(body[n-1])
			if n != len(pkt) || p == 0 || p > n-4 {
				return fmt.Errorf("%w: bad RTCP padding", ErrMalformed)
			}
			body = body[:n-p]
		}
		format, typ := pkt[0]&0x1f, pkt[1]
		switch {
		case typ == typeRTPFB && format == formatTWCC:
			if len(f.TWCC) == cap(f.TWCC) {
				break
			}
			f.TWCC = f.TWCC[:len(f.TWCC)+1]
			if err := parseTWCC(body, &f.TWCC[len(f.TWCC)-1]); err != nil {
				f.TWCC = f.TWCC[:len(f.TWCC)-1]
				return err
			}
		case typ == typePSFB && format == formatAFB && len(body) >= 20 && string(body[12:16]) == "REMB":
			r, err := parseREMB(body)
			if err != nil {
				return err
			}
			f.REMB, f.HasREMB = r, true
		}
		pkt = pkt[n:]
	}
	return nil
}

// parseREMB reads the bitrate of a REMB (header included).
func parseREMB(body []byte) (float64, error) {
	// header 4, sender 4, media 4 (0), "REMB" 4, num SSRC 1, exp 6 bits, mantissa 18 bits, SSRCs
	num := int(body[16])
	if len(body) < 20+4*num {
		return 0, fmt.Errorf("%w: REMB of %d SSRCs in %d bytes", ErrMalformed, num, len(body))
	}
	exp := int(body[17] >> 2)
	mant := uint64(body[17]&3)<<16 | uint64(body[18])<<8 | uint64(body[19])
	return math.Ldexp(float64(mant), exp), nil
}
