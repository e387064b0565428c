package mute

// boolEncoder is the VP8 boolean entropy encoder of RFC 6386 section 7.3.
// A prob is the probability, in 1/256 units, that the coded bit is 0.
type boolEncoder struct {
	out      []byte
	rng      uint32 // 128 <= rng <= 255 between calls
	bottom   uint32 // low end of the interval, not yet written
	bitCount int    // shifts left before the next output byte
}

func newBoolEncoder(buf []byte) *boolEncoder {
	return &boolEncoder{out: buf[:0], rng: 255, bitCount: 24}
}

// addOneToOutput propagates a carry into the bytes already written.
func (e *boolEncoder) addOneToOutput() {
	i := len(e.out) - 1
	for i >= 0 && e.out[i] == 255 {
		e.out[i] = 0
		i--
	}
	if i >= 0 {
		e.out[i]++
	}
}

// putBit codes one bit whose probability of being 0 is prob/256.
func (e *boolEncoder) putBit(prob uint8, bit bool) {
	split := 1 + ((e.rng-1)*uint32(prob))>>8
	if bit {
		e.bottom += split
		e.rng -= split
	} else {
		e.rng = split
	}
	for e.rng < 128 {
		e.rng <<= 1
		if e.bottom&(1<<31) != 0 {
			e.addOneToOutput()
		}
		e.bottom <<= 1
		e.bitCount--
		if e.bitCount == 0 {
			e.out = append(e.out, byte(e.bottom>>24))
			e.bottom &= 1<<24 - 1
			e.bitCount = 8
		}
	}
}

// putLiteral codes the n low bits of v, most significant first, each with
// probability one half (the L(n) of RFC 6386).
func (e *boolEncoder) putLiteral(v uint32, n int) {
	for i := n - 1; i >= 0; i-- {
		e.putBit(128, v>>uint(i)&1 == 1)
	}
}

// putFlag codes a one-bit flag with probability one half.
func (e *boolEncoder) putFlag(b bool) { e.putBit(128, b) }

// flush writes out the remaining state and returns the coded bytes.
func (e *boolEncoder) flush() []byte {
	c := e.bitCount
	v := e.bottom
	if v&(1<<uint(32-c)) != 0 {
		e.addOneToOutput()
	}
	v <<= uint(c & 7)
	for c >>= 3; c > 0; c-- {
		v <<= 8
	}
	for i := 0; i < 4; i++ {
		e.out = append(e.out, byte(v>>24))
		v <<= 8
	}
	return e.out
}
