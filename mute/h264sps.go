package mute

import "bytes"

// highProfiles are the profile_idc values whose SPS carries chroma format,
// bit depth and scaling matrices (H.264 section 7.3.2.1.1).
var highProfiles = map[uint32]bool{
	100: true, 110: true, 122: true, 244: true, 44: true, 83: true,
	86: true, 118: true, 128: true, 138: true, 139: true, 134: true, 135: true,
}

// H264SPSSize returns the picture size, after frame cropping, coded in an
// H.264 sequence parameter set. nal is one NAL unit, starting with its
// header byte (an Annex B start code before it is skipped), with emulation
// prevention bytes as sent. ok is false when nal is not an SPS or is
// malformed; H264SPSSize never panics, whatever the input.
func H264SPSSize(nal []byte) (w, h int, ok bool) {
	if bytes.HasPrefix(nal, []byte{0, 0, 0, 1}) {
		nal = nal[4:]
	} else if bytes.HasPrefix(nal, []byte{0, 0, 1}) {
		nal = nal[3:]
	}
	if len(nal) < 4 || nal[0]&0x80 != 0 || nal[0]&0x1f != 7 {
		return 0, 0, false
	}
	r := &bitReader{b: unescapeRBSP(nal[1:])}
	profile := r.u(8)
	r.u(16) // constraint flags, level_idc
	if r.ue() > 31 {
		return 0, 0, false
	}
	chromaFormat, separate := uint32(1), false
	if highProfiles[profile] {
		if chromaFormat = r.ue(); chromaFormat > 3 {
			return 0, 0, false
		}
		if chromaFormat == 3 {
			separate = r.flag()
		}
		r.ue()   // bit_depth_luma_minus8
		r.ue()   // bit_depth_chroma_minus8
		r.flag() // qpprime_y_zero_transform_bypass_flag
		if r.flag() && !skipScalingMatrices(r, chromaFormat) {
			return 0, 0, false
		}
	}
	if !skipFrameNumAndPOC(r) {
		return 0, 0, false
	}
	r.ue()   // max_num_ref_frames
	r.flag() // gaps_in_frame_num_value_allowed_flag
	wMbs := int64(r.ue()) + 1
	hMapUnits := int64(r.ue()) + 1
	frameMbsOnly := r.flag()
	if !frameMbsOnly {
		r.flag() // mb_adaptive_frame_field_flag
	}
	r.flag()          // direct_8x8_inference_flag
	var crop [4]int64 // left, right, top, bottom
	if r.flag() {
		for i := range crop {
			crop[i] = int64(r.ue())
		}
	}
	if r.failed {
		return 0, 0, false
	}
	chromaArrayType := chromaFormat
	if separate {
		chromaArrayType = 0
	}
	return croppedSize(chromaArrayType, frameMbsOnly, wMbs, hMapUnits, crop)
}

// croppedSize applies frame cropping (H.264 section 7.4.2.1.1) to a picture
// of wMbs macroblocks by hMapUnits map units.
func croppedSize(chromaArrayType uint32, frameMbsOnly bool, wMbs, hMapUnits int64, crop [4]int64) (w, h int, ok bool) {
	fieldFactor := int64(1)
	if !frameMbsOnly {
		fieldFactor = 2
	}
	cropX, cropY := int64(1), fieldFactor
	if chromaArrayType != 0 {
		if chromaArrayType != 3 {
			cropX = 2 // SubWidthC of 4:2:0 and 4:2:2
		}
		if chromaArrayType == 1 {
			cropY = 2 * fieldFactor // SubHeightC of 4:2:0
		}
	}
	width := 16*wMbs - cropX*(crop[0]+crop[1])
	height := 16*hMapUnits*fieldFactor - cropY*(crop[2]+crop[3])
	const limit = 1 << 20
	if width <= 0 || height <= 0 || width > limit || height > limit {
		return 0, 0, false
	}
	return int(width), int(height), true
}

// skipScalingMatrices skips seq_scaling_list_present_flag and the lists.
func skipScalingMatrices(r *bitReader, chromaFormat uint32) bool {
	n := 8
	if chromaFormat == 3 {
		n = 12
	}
	for i := 0; i < n; i++ {
		if !r.flag() {
			continue
		}
		size := 16
		if i >= 6 {
			size = 64
		}
		last, next := int32(8), int32(8)
		for j := 0; j < size && !r.failed; j++ {
			if next != 0 {
				delta := r.se()
				if delta < -128 || delta > 127 {
					return false
				}
				next = (last + delta + 256) % 256
			}
			if next != 0 {
				last = next
			}
		}
	}
	return !r.failed
}

// skipFrameNumAndPOC skips log2_max_frame_num_minus4 and the picture order
// count fields.
func skipFrameNumAndPOC(r *bitReader) bool {
	if r.ue() > 12 { // log2_max_frame_num_minus4
		return false
	}
	switch r.ue() { // pic_order_cnt_type
	case 0:
		if r.ue() > 12 { // log2_max_pic_order_cnt_lsb_minus4
			return false
		}
	case 1:
		r.flag() // delta_pic_order_always_zero_flag
		r.se()   // offset_for_non_ref_pic
		r.se()   // offset_for_top_to_bottom_field
		n := r.ue()
		if n > 255 {
			return false
		}
		for i := uint32(0); i < n && !r.failed; i++ {
			r.se() // offset_for_ref_frame
		}
	case 2:
	default:
		return false
	}
	return !r.failed
}
