package mute

// bitReader reads an H.264 RBSP most significant bit first. Reading past
// the end sets failed and returns zeros, so callers check once at the end.
type bitReader struct {
	b      []byte
	pos    int // in bits
	failed bool
}

// unescapeRBSP removes the emulation prevention bytes of a NAL unit
// payload (H.264 section 7.4.1).
func unescapeRBSP(p []byte) []byte {
	out := make([]byte, 0, len(p))
	zeros := 0
	for _, c := range p {
		if zeros >= 2 && c == 3 {
			zeros = 0
			continue
		}
		out = append(out, c)
		if c == 0 {
			zeros++
		} else {
			zeros = 0
		}
	}
	return out
}

// bit reads one bit.
func (r *bitReader) bit() uint32 {
	if r.pos >= 8*len(r.b) {
		r.failed = true
		return 0
	}
	v := uint32(r.b[r.pos>>3]>>(7-uint(r.pos&7))) & 1
	r.pos++
	return v
}

// u reads n (at most 32) bits.
func (r *bitReader) u(n int) uint32 {
	var v uint32
	for i := 0; i < n; i++ {
		v = v<<1 | r.bit()
	}
	return v
}

// flag reads one bit as a bool.
func (r *bitReader) flag() bool { return r.bit() == 1 }

// ue reads an unsigned exp-Golomb code. Codes longer than 32 bits cannot
// occur in a valid stream; they fail.
func (r *bitReader) ue() uint32 {
	zeros := 0
	for r.bit() == 0 {
		if r.failed || zeros == 31 {
			r.failed = true
			return 0
		}
		zeros++
	}
	return uint32(1)<<uint(zeros) - 1 + r.u(zeros)
}

// se reads a signed exp-Golomb code.
func (r *bitReader) se() int32 {
	k := r.ue()
	if k&1 == 1 {
		return int32((k + 1) / 2)
	}
	return -int32(k / 2)
}
