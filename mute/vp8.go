package mute

// VP8 frames (RFC 6386): a key frame whose every pixel is black and an inter
// frame that repeats the previous picture. Every macroblock of the key frame
// uses DC prediction. The top-left one has no neighbours and predicts
// mid-grey (128), so it carries one second-order (Y2) DC coefficient that
// takes its luma down to 16; chroma predicts 128 there already. Every other
// macroblock predicts from decoded black neighbours (VP8's DC prediction of
// an edge macroblock averages the neighbours it has) and is skipped.

const (
	// vp8QIndex is the quantizer index of the key frame: its Y2 DC step is
	// 2*dc_qlookup[122] = 286.
	vp8QIndex = 122
	// vp8Y2Level is the Y2 DC level of the top-left macroblock:
	// -25*286 = -7150; the inverse WHT gives (-7150+3)>>3 = -894 to each
	// luma block's DC, the inverse DCT adds (-894+4)>>3 = -112 to each
	// pixel, and 128-112 = 16.
	vp8Y2Level = 25
	// vp8ProbSkipFalse is the probability that a macroblock has
	// coefficients: all but one are skipped.
	vp8ProbSkipFalse = 1
)

// bands maps a coefficient position to its probability band (RFC 6386
// section 13.3).
var vp8Bands = [17]uint8{0, 1, 2, 3, 6, 4, 5, 6, 6, 6, 6, 6, 6, 6, 6, 7, 0}

// vp8FrameTag writes the 3-byte frame tag of RFC 6386 section 9.1: version
// 0, shown, with the size of the first partition.
func vp8FrameTag(dst []byte, key bool, firstPart int) []byte {
	b0 := byte(1<<4) | byte(firstPart&7)<<5
	if !key {
		b0 |= 1
	}
	return append(dst, b0, byte(firstPart>>3), byte(firstPart>>11))
}

// vp8CommonHeader writes the header fields shared by key and inter frames,
// from segmentation_enabled to the quantizer indices: no segmentation, the
// loop filter off (level 0: it cannot change a flat picture, and off it
// costs the decoder nothing), one token partition, and qIndex for every
// quantizer.
func vp8CommonHeader(e *boolEncoder, qIndex uint32) {
	e.putFlag(false)        // segmentation_enabled
	e.putFlag(false)        // filter_type: normal
	e.putLiteral(0, 6)      // loop_filter_level
	e.putLiteral(0, 3)      // sharpness_level
	e.putFlag(false)        // loop_filter_adj_enable
	e.putLiteral(0, 2)      // log2_nbr_of_dct_partitions
	e.putLiteral(qIndex, 7) // y_ac_qi
	for i := 0; i < 5; i++ {
		e.putFlag(false) // y_dc, y2_dc, y2_ac, uv_dc, uv_ac deltas absent
	}
}

// vp8NoCoeffUpdates codes "no update" for every coefficient probability.
func vp8NoCoeffUpdates(e *boolEncoder) {
	for i := range coeffUpdateProb {
		for j := range coeffUpdateProb[i] {
			for k := range coeffUpdateProb[i][j] {
				for _, p := range coeffUpdateProb[i][j][k] {
					e.putBit(p, false)
				}
			}
		}
	}
}

// vp8KeyFrame returns a black VP8 key frame of w×h pixels.
func vp8KeyFrame(w, h int) []byte {
	mbw, mbh := (w+15)/16, (h+15)/16
	// About 3.43 bits per macroblock of modes, plus the fixed header.
	e := newBoolEncoder(make([]byte, 0, mbw*mbh*7/16+300))
	e.putFlag(false) // color_space
	e.putFlag(false) // clamping_type
	vp8CommonHeader(e, vp8QIndex)
	e.putFlag(true) // refresh_entropy_probs
	vp8NoCoeffUpdates(e)
	e.putFlag(true) // mb_no_coeff_skip
	e.putLiteral(vp8ProbSkipFalse, 8)
	for i := 0; i < mbw*mbh; i++ {
		e.putBit(vp8ProbSkipFalse, i != 0) // mb_skip_coeff
		// Key-frame y mode DC_PRED (tree path 1, 0, 0).
		e.putBit(kfYModeProb[0], true)
		e.putBit(kfYModeProb[1], false)
		e.putBit(kfYModeProb[2], false)
		e.putBit(kfUVModeProb[0], false) // uv mode DC_PRED
	}
	first := e.flush()
	tokens := vp8TopLeftTokens()

	out := make([]byte, 0, 10+len(first)+len(tokens))
	out = vp8FrameTag(out, true, len(first))
	out = append(out, 0x9d, 0x01, 0x2a,
		byte(w), byte(w>>8), // 14-bit width, horizontal scale 0
		byte(h), byte(h>>8)) // 14-bit height, vertical scale 0
	out = append(out, first...)
	return append(out, tokens...)
}

// vp8TopLeftTokens codes the token partition of the key frame: the
// residual of the top-left macroblock, the only one not skipped. Its Y2
// block holds the single DC level -vp8Y2Level; its 16 luma and 8 chroma
// blocks are empty. Every block's context is 0: no neighbour has
// coefficients.
func vp8TopLeftTokens() []byte {
	e := newBoolEncoder(make([]byte, 0, 16))
	p := &defaultCoeffProb[planeY2][vp8Bands[0]][0]
	e.putBit(p[0], true) // not EOB
	e.putBit(p[1], true) // not ZERO
	e.putBit(p[2], true) // not ONE
	e.putBit(p[3], true) // not TWO..FOUR
	e.putBit(p[6], true) // not category 1 or 2
	e.putBit(p[8], false)
	e.putBit(p[9], true) // category 4: 19 + 4 extra bits
	extra := uint32(vp8Y2Level - 19)
	for i, prob := range [4]uint8{176, 155, 140, 135} {
		e.putBit(prob, extra>>(3-uint(i))&1 == 1)
	}
	e.putFlag(true) // negative
	// EOB after a coefficient larger than one: context 2 of the next band.
	e.putBit(defaultCoeffProb[planeY2][vp8Bands[1]][2][0], false)
	for i := 0; i < 16; i++ { // luma blocks start at coefficient 1
		e.putBit(defaultCoeffProb[planeYAfterY2][vp8Bands[1]][0][0], false)
	}
	for i := 0; i < 8; i++ {
		e.putBit(defaultCoeffProb[planeUV][vp8Bands[0]][0][0], false)
	}
	return e.flush()
}

// vp8InterFrame returns a VP8 inter frame of mbw×mbh macroblocks in which
// every macroblock is skipped and predicted with a zero motion vector from
// the last frame: it repeats the previous picture. It refreshes only the
// last frame buffer (with an identical picture) and leaves the decoder's
// probabilities as they were.
func vp8InterFrame(mbw, mbh int) []byte {
	e := newBoolEncoder(make([]byte, 0, mbw*mbh/32+200))
	vp8CommonHeader(e, vp8QIndex)
	e.putFlag(false)   // refresh_golden_frame
	e.putFlag(false)   // refresh_alternate_frame
	e.putLiteral(0, 2) // copy_buffer_to_golden
	e.putLiteral(0, 2) // copy_buffer_to_alternate
	e.putFlag(false)   // sign_bias_golden
	e.putFlag(false)   // sign_bias_alternate
	e.putFlag(false)   // refresh_entropy_probs
	e.putFlag(true)    // refresh_last
	vp8NoCoeffUpdates(e)
	e.putFlag(true) // mb_no_coeff_skip
	e.putLiteral(vp8ProbSkipFalse, 8)
	const probIntra, probLast = 1, 255
	e.putLiteral(probIntra, 8)
	e.putLiteral(probLast, 8)
	e.putLiteral(128, 8) // prob_gf, unused
	e.putFlag(false)     // intra_16x16_prob_update_flag
	e.putFlag(false)     // intra_chroma_prob_update_flag
	for i := range mvUpdateProb {
		for _, p := range mvUpdateProb[i] {
			e.putBit(p, false)
		}
	}
	for y := 0; y < mbh; y++ {
		for x := 0; x < mbw; x++ {
			e.putBit(vp8ProbSkipFalse, true) // mb_skip_coeff
			e.putBit(probIntra, true)        // is_inter_mb
			e.putBit(probLast, false)        // reference: last frame
			// ZEROMV; the probability depends on how many of the above
			// (weight 2), left (2) and above-left (1) neighbours are
			// inter macroblocks with a zero motion vector.
			cnt := 0
			if y > 0 {
				cnt += 2
			}
			if x > 0 {
				cnt += 2
			}
			if x > 0 && y > 0 {
				cnt++
			}
			e.putBit(modeContexts[cnt][0], false)
		}
	}
	first := e.flush()
	out := make([]byte, 0, 3+len(first)+1)
	out = vp8FrameTag(out, false, len(first))
	out = append(out, first...)
	// The token partition holds nothing, but decoders reject an empty one.
	return append(out, 0)
}

// VP8FrameSize returns the picture size coded in a VP8 key frame (the VP8
// payload, without the RTP payload descriptor). ok is false when frame is
// not a key frame or is too short to hold the size.
func VP8FrameSize(frame []byte) (w, h int, ok bool) {
	if len(frame) < 10 || frame[0]&1 != 0 ||
		frame[3] != 0x9d || frame[4] != 0x01 || frame[5] != 0x2a {
		return 0, 0, false
	}
	w = int(frame[6]) | int(frame[7]&0x3f)<<8
	h = int(frame[8]) | int(frame[9]&0x3f)<<8
	return w, h, w > 0 && h > 0
}
