package mute

import "bytes"

// H.264 frames (Constrained Baseline, CAVLC, Annex B): an IDR picture whose
// every pixel is black and a P picture that repeats it. Every macroblock of
// the IDR is Intra 16x16 without AC or chroma residual. The top-left one
// has no neighbours: its DC prediction is 128 for luma and chroma, and one
// luma DC level takes luma down to 16. The rest of the top row predicts
// horizontally and every other macroblock vertically, so black propagates
// from the top-left macroblock with no residual at all.

// Parameter set ids of the black frames. They are the largest a Constrained
// Baseline stream allows for the SPS, and far from the 0 that encoders use,
// so the black frames never overwrite a publisher's parameter sets in a
// subscriber's decoder.
const (
	H264SPSID = 31
	H264PPSID = 31
)

const (
	h264NALSPS = 0x67 // nal_ref_idc 3, nal_unit_type 7
	h264NALPPS = 0x68 // nal_ref_idc 3, nal_unit_type 8
	h264NALIDR = 0x65 // nal_ref_idc 3, nal_unit_type 5
	h264NALP   = 0x01 // nal_ref_idc 0, nal_unit_type 1: non-reference

	h264ProfileBaseline = 66
	// h264Constraints sets constraint_set0..2: the stream conforms to
	// Baseline, Main and Extended, i.e. Constrained Baseline (42e0xx).
	h264Constraints = 0xE0

	h264MbTypeI16V  = 1 // I_16x16_0_0_0: vertical prediction, no AC, no chroma
	h264MbTypeI16H  = 2 // I_16x16_1_0_0: horizontal prediction
	h264MbTypeI16DC = 3 // I_16x16_2_0_0: DC prediction

	// h264SliceQP is the QP of the IDR (26 + slice_qp_delta). At QP 51 the
	// luma DC level -8 dequantizes to (-8*16*14)<<2 = -7168 in every 4x4
	// block (the inverse Hadamard transform of a lone first level is flat),
	// and the inverse transform adds (-7168+32)>>6 = -112 to every pixel:
	// 128-112 = 16. The other macroblocks have no residual, so QP does not
	// matter to them, and deblocking is off.
	h264SliceQP = 51
)

// h264Levels lists level_idc with the largest frame in macroblocks (MaxFS)
// of H.264 Table A-1, skipping levels that do not raise MaxFS.
var h264Levels = [...]struct {
	idc   uint32
	maxFS int
}{
	{10, 99}, {11, 396}, {21, 792}, {22, 1620}, {31, 3600}, {32, 5120},
	{40, 8192}, {42, 8704}, {50, 22080}, {51, 36864},
}

// h264Level returns the smallest level whose MaxFS covers a frame of
// mbw×mbh macroblocks, also within the limit of A.3.1 on each side
// (at most sqrt(8*MaxFS) macroblocks).
func h264Level(mbw, mbh int) uint32 {
	for _, l := range h264Levels {
		if mbw*mbh <= l.maxFS && mbw*mbw <= 8*l.maxFS && mbh*mbh <= 8*l.maxFS {
			return l.idc
		}
	}
	return h264Levels[len(h264Levels)-1].idc
}

// h264SPS returns the SPS RBSP for a w×h picture.
func h264SPS(w, h int) []byte {
	mbw, mbh := (w+15)/16, (h+15)/16
	var b bitWriter
	b.u(8, h264ProfileBaseline)
	b.u(8, h264Constraints)
	b.u(8, h264Level(mbw, mbh))
	b.ue(H264SPSID)
	b.ue(0)   // log2_max_frame_num_minus4
	b.ue(2)   // pic_order_cnt_type: output order is decoding order
	b.ue(1)   // max_num_ref_frames
	b.u(1, 0) // gaps_in_frame_num_value_allowed_flag
	b.ue(uint32(mbw - 1))
	b.ue(uint32(mbh - 1))
	b.u(1, 1) // frame_mbs_only_flag
	b.u(1, 1) // direct_8x8_inference_flag
	cropRight, cropBottom := (16*mbw-w)/2, (16*mbh-h)/2
	b.flag(cropRight != 0 || cropBottom != 0)
	if cropRight != 0 || cropBottom != 0 {
		b.ue(0) // left, in units of 2 pixels for 4:2:0
		b.ue(uint32(cropRight))
		b.ue(0) // top
		b.ue(uint32(cropBottom))
	}
	b.u(1, 1) // vui_parameters_present_flag
	b.u(1, 0) // aspect_ratio_info_present_flag
	b.u(1, 0) // overscan_info_present_flag
	b.u(1, 0) // video_signal_type_present_flag
	b.u(1, 0) // chroma_loc_info_present_flag
	b.u(1, 0) // timing_info_present_flag
	b.u(1, 0) // nal_hrd_parameters_present_flag
	b.u(1, 0) // vcl_hrd_parameters_present_flag
	b.u(1, 0) // pic_struct_present_flag
	b.u(1, 1) // bitstream_restriction_flag: lets decoders output at once
	b.u(1, 1) // motion_vectors_over_pic_boundaries_flag
	b.ue(0)   // max_bytes_per_pic_denom
	b.ue(0)   // max_bits_per_mb_denom
	b.ue(16)  // log2_max_mv_length_horizontal
	b.ue(16)  // log2_max_mv_length_vertical
	b.ue(0)   // max_num_reorder_frames
	b.ue(1)   // max_dec_frame_buffering
	return b.trailing()
}

// h264PPS returns the PPS RBSP: CAVLC, one slice group, one reference,
// QP 26, deblocking controllable from the slice header.
func h264PPS() []byte {
	var b bitWriter
	b.ue(H264PPSID)
	b.ue(H264SPSID)
	b.u(1, 0) // entropy_coding_mode_flag: CAVLC
	b.u(1, 0) // bottom_field_pic_order_in_frame_present_flag
	b.ue(0)   // num_slice_groups_minus1
	b.ue(0)   // num_ref_idx_l0_default_active_minus1
	b.ue(0)   // num_ref_idx_l1_default_active_minus1
	b.u(1, 0) // weighted_pred_flag
	b.u(2, 0) // weighted_bipred_idc
	b.se(0)   // pic_init_qp_minus26
	b.se(0)   // pic_init_qs_minus26
	b.se(0)   // chroma_qp_index_offset
	b.u(1, 1) // deblocking_filter_control_present_flag
	b.u(1, 0) // constrained_intra_pred_flag
	b.u(1, 0) // redundant_pic_cnt_present_flag
	return b.trailing()
}

// h264KeyFrame returns SPS, PPS and a black IDR slice for a w×h picture.
func h264KeyFrame(w, h int) []byte {
	mbw, mbh := (w+15)/16, (h+15)/16
	var b bitWriter
	// Six bits per macroblock, plus the slice header and the top-left one.
	b.buf = make([]byte, 0, mbw*mbh*6/8+64)
	b.ue(0) // first_mb_in_slice
	b.ue(7) // slice_type: I, and so are all slices of the picture
	b.ue(H264PPSID)
	b.u(4, 0)              // frame_num
	b.ue(0)                // idr_pic_id
	b.u(1, 0)              // no_output_of_prior_pics_flag
	b.u(1, 0)              // long_term_reference_flag
	b.se(h264SliceQP - 26) // slice_qp_delta
	b.ue(1)                // disable_deblocking_filter_idc: off, nothing to smooth

	h264TopLeftMB(&b)
	// The other macroblocks: mb_type ue(2) "011" along the top row, ue(1)
	// "010" below it; intra_chroma_pred_mode ue(0) "1" (DC); mb_qp_delta
	// se(0) "1"; Intra16x16DCLevel coeff_token "1" (TotalCoeff 0, nC 0).
	const horizontal, vertical = 0b011_1_1_1, 0b010_1_1_1
	for i := 1; i < mbw*mbh; i++ {
		if i < mbw {
			b.u(6, horizontal)
		} else {
			b.u(6, vertical)
		}
	}
	sps, pps, idr := h264SPS(w, h), h264PPS(), b.trailing()
	out := make([]byte, 0, 15+len(sps)+len(pps)+len(idr)+len(idr)/64)
	out = appendNAL(out, h264NALSPS, sps)
	out = appendNAL(out, h264NALPPS, pps)
	return appendNAL(out, h264NALIDR, idr)
}

// h264TopLeftMB writes the top-left macroblock of the IDR: Intra 16x16 DC
// prediction (128, no neighbours) with a single luma DC level of -8 that
// makes every luma sample 16 at QP h264SliceQP (H.264 sections 8.5.10 and
// 8.5.12). Its neighbours' coefficient counts (nC) stay 0: the DC block
// does not count towards the 4x4 blocks (section 9.2.1).
func h264TopLeftMB(b *bitWriter) {
	b.ue(h264MbTypeI16DC)
	b.ue(0) // intra_chroma_pred_mode: DC, 128 without neighbours
	b.se(0) // mb_qp_delta
	// Intra16x16DCLevel, CAVLC (section 9.2) with nC 0:
	b.u(6, 0b000101) // coeff_token: TotalCoeff 1, TrailingOnes 0
	// level_prefix 13, no suffix: levelCode 13+2 = 15 (the first level
	// after fewer than three trailing ones is coded minus 2), levelVal
	// (-15-1)>>1 = -8.
	b.u(14, 1)
	b.u(1, 0b1) // total_zeros 0 (TotalCoeff 1)
}

// h264RepeatFrame returns a non-reference P slice in which every one of the
// mbw×mbh macroblocks is skipped: it shows the black IDR again. Because it
// is not a reference, frame_num stays 1 and the same bytes can be sent
// again and again.
func h264RepeatFrame(mbw, mbh int) []byte {
	var b bitWriter
	b.ue(0) // first_mb_in_slice
	b.ue(5) // slice_type: P, and so are all slices of the picture
	b.ue(H264PPSID)
	b.u(4, 1) // frame_num: the IDR's plus one
	b.u(1, 0) // num_ref_idx_active_override_flag
	b.u(1, 0) // ref_pic_list_modification_flag_l0
	b.se(0)   // slice_qp_delta
	b.ue(1)   // disable_deblocking_filter_idc
	b.ue(uint32(mbw * mbh))
	return appendNAL(nil, h264NALP, b.trailing())
}

// SplitAnnexB returns the NAL units of an Annex B byte stream, without
// their start codes (three or four bytes). The units share b's memory.
func SplitAnnexB(b []byte) [][]byte {
	var nals [][]byte
	for {
		i := bytes.Index(b, []byte{0, 0, 1})
		if i < 0 {
			break
		}
		b = b[i+3:]
		j := bytes.Index(b, []byte{0, 0, 1})
		if j < 0 {
			nals = append(nals, b)
			break
		}
		end := j
		if end > 0 && b[end-1] == 0 { // a four-byte start code follows
			end--
		}
		nals = append(nals, b[:end])
		b = b[j:]
	}
	return nals
}
