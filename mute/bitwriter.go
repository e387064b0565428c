package mute

// bitWriter writes an H.264 RBSP most significant bit first.
type bitWriter struct {
	buf  []byte
	cur  uint64 // pending bits, right-aligned
	nCur uint   // number of pending bits, < 8 between calls
}

// u writes the n (at most 32) low bits of v.
func (w *bitWriter) u(n uint, v uint32) {
	w.cur = w.cur<<n | uint64(v)&(1<<n-1)
	w.nCur += n
	for w.nCur >= 8 {
		w.nCur -= 8
		w.buf = append(w.buf, byte(w.cur>>w.nCur))
	}
	w.cur &= 1<<w.nCur - 1
}

// flag writes one bit.
func (w *bitWriter) flag(b bool) {
	if b {
		w.u(1, 1)
	} else {
		w.u(1, 0)
	}
}

// ue writes an unsigned exp-Golomb code, ue(v) of H.264 section 9.1.
func (w *bitWriter) ue(v uint32) {
	x := uint64(v) + 1
	n := uint(0)
	for x>>n > 1 {
		n++
	}
	// n leading zeros, then the n+1 bits of x.
	w.u(n, 0)
	if n+1 > 32 {
		w.u(n+1-32, uint32(x>>32))
		w.u(32, uint32(x))
		return
	}
	w.u(n+1, uint32(x))
}

// se writes a signed exp-Golomb code, se(v).
func (w *bitWriter) se(v int32) {
	if v > 0 {
		w.ue(uint32(2*v - 1))
	} else {
		w.ue(uint32(-2 * int64(v)))
	}
}

// alignZero writes zero bits up to the next byte boundary.
func (w *bitWriter) alignZero() {
	if w.nCur > 0 {
		w.u(8-w.nCur, 0)
	}
}

// trailing writes rbsp_trailing_bits and returns the RBSP.
func (w *bitWriter) trailing() []byte {
	w.u(1, 1)
	w.alignZero()
	return w.buf
}

// appendNAL appends an Annex B start code, then the NAL unit header and
// rbsp with emulation prevention bytes inserted (H.264 section 7.4.1).
func appendNAL(dst []byte, header byte, rbsp []byte) []byte {
	dst = append(dst, 0, 0, 0, 1, header)
	zeros := 0
	for _, b := range rbsp {
		if zeros == 2 && b <= 3 {
			dst = append(dst, 3)
			zeros = 0
		}
		dst = append(dst, b)
		if b == 0 {
			zeros++
		} else {
			zeros = 0
		}
	}
	return dst
}
