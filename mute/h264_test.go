package mute

import (
	"bytes"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/callcore/callcore/internal/e2e"
)

func splitAnnexB(b []byte) [][]byte { return SplitAnnexB(b) }

var h264Sizes = [][2]int{
	{16, 16}, {18, 18}, {32, 16}, {16, 32}, {176, 144}, {320, 180},
	{322, 182}, {640, 360}, {1280, 720}, {1920, 1080}, {1080, 1920},
	{4096, 2304}, {2304, 4096}, {4096, 16}, {16, 4096},
}

func TestH264Structure(t *testing.T) {
	for _, s := range h264Sizes {
		key, err := BlackKeyFrame(MimeTypeH264, s[0], s[1])
		if err != nil {
			t.Fatal(err)
		}
		nals := splitAnnexB(key)
		if len(nals) != 3 || nals[0][0] != 0x67 || nals[1][0] != 0x68 || nals[2][0] != 0x65 {
			t.Fatalf("%v: key frame NAL units %d, want SPS, PPS, IDR", s, len(nals))
		}
		w, h, ok := H264SPSSize(nals[0])
		if !ok || w != s[0] || h != s[1] {
			t.Errorf("H264SPSSize = %d×%d %v, want %d×%d", w, h, ok, s[0], s[1])
		}
		rep, err := RepeatFrame(MimeTypeH264, s[0], s[1])
		if err != nil {
			t.Fatal(err)
		}
		if nals := splitAnnexB(rep); len(nals) != 1 || nals[0][0] != 0x01 {
			t.Fatalf("%v: repeat frame is not one non-reference slice", s)
		}
	}
}

func TestH264Level(t *testing.T) {
	for _, c := range []struct {
		w, h int
		want uint32
	}{
		{16, 16, 10}, {176, 144, 10}, {320, 180, 11}, {352, 288, 11},
		{640, 360, 22}, {480, 270, 21}, {1280, 720, 31}, {1920, 1080, 40},
		{2048, 1088, 42}, {2560, 1440, 50}, {3840, 2160, 51}, {4096, 2304, 51},
		{4096, 16, 40}, // 256 macroblocks wide needs 8*MaxFS >= 256*256
	} {
		if got := h264Level((c.w+15)/16, (c.h+15)/16); got != c.want {
			t.Errorf("level for %d×%d = %d, want %d", c.w, c.h, got, c.want)
		}
		key, _ := BlackKeyFrame(MimeTypeH264, c.w, c.h)
		if got := splitAnnexB(key)[0][3]; uint32(got) != c.want {
			t.Errorf("level_idc in SPS for %d×%d = %d, want %d", c.w, c.h, got, c.want)
		}
	}
}

func TestH264SPSSizeRejects(t *testing.T) {
	key, _ := BlackKeyFrame(MimeTypeH264, 640, 360)
	nals := splitAnnexB(key)
	for i, nal := range [][]byte{nil, {0x67}, {0x67, 66, 0, 30}, nals[1], nals[2], {0xE7, 66, 0, 30, 0xff}} {
		if w, h, ok := H264SPSSize(nal); ok {
			t.Errorf("case %d: H264SPSSize = %d×%d, true", i, w, h)
		}
	}
	// With a start code in front it still parses.
	if w, h, ok := H264SPSSize(append([]byte{0, 0, 0, 1}, nals[0]...)); !ok || w != 640 || h != 360 {
		t.Errorf("with start code: %d×%d %v", w, h, ok)
	}
}

// Known SPSs of other encoders.
func TestH264SPSSizeKnown(t *testing.T) {
	for _, c := range []struct {
		sps  []byte
		w, h int
	}{
		// x264 High 4:2:0 1920×1080 (1088 cropped by 8).
		{[]byte{0x67, 0x64, 0x00, 0x28, 0xac, 0xd9, 0x40, 0x78, 0x02, 0x27, 0xe5, 0xc0, 0x44, 0x00, 0x00, 0x03, 0x00, 0x04, 0x00, 0x00, 0x03, 0x00, 0xc8, 0x3c, 0x60, 0xc6, 0x58}, 1920, 1080},
	} {
		w, h, ok := H264SPSSize(c.sps)
		if !ok || w != c.w || h != c.h {
			t.Errorf("H264SPSSize(% x) = %d×%d %v, want %d×%d", c.sps[:4], w, h, ok, c.w, c.h)
		}
	}
}

func TestBitWriterReaderRoundTrip(t *testing.T) {
	var w bitWriter
	vals := []uint32{0, 1, 2, 3, 7, 8, 255, 256, 65535, 1<<31 - 1, 1<<32 - 2}
	for _, v := range vals {
		w.ue(v)
	}
	for _, v := range []int32{0, 1, -1, 2, -2, 1000, -1000} {
		w.se(v)
	}
	w.u(13, 0x1abc)
	r := &bitReader{b: w.trailing()}
	for _, v := range vals {
		if got := r.ue(); got != v {
			t.Fatalf("ue = %d, want %d", got, v)
		}
	}
	for _, v := range []int32{0, 1, -1, 2, -2, 1000, -1000} {
		if got := r.se(); got != v {
			t.Fatalf("se = %d, want %d", got, v)
		}
	}
	if got := r.u(13); got != 0x1abc || r.failed {
		t.Fatalf("u(13) = %#x, failed %v", got, r.failed)
	}
}

func TestEmulationPrevention(t *testing.T) {
	rbsp := []byte{0, 0, 0, 0, 0, 1, 0, 0, 2, 0, 0, 3, 0, 0, 4, 0x80}
	nal := appendNAL(nil, 0x67, rbsp)[4:]
	if bytes.Contains(nal, []byte{0, 0, 0}) || bytes.Contains(nal, []byte{0, 0, 1}) ||
		bytes.Contains(nal, []byte{0, 0, 2}) {
		t.Fatalf("start code emulation left in % x", nal)
	}
	if got := unescapeRBSP(nal[1:]); !bytes.Equal(got, rbsp) {
		t.Fatalf("unescape = % x, want % x", got, rbsp)
	}
}

func ExampleH264SPSSize() {
	key, _ := BlackKeyFrame(MimeTypeH264, 1280, 720)
	sps := splitAnnexB(key)[0]
	w, h, ok := H264SPSSize(sps)
	fmt.Println(w, h, ok)
	// Output: 1280 720 true
}

// TestH264SPSSizeX264FFmpeg reads the SPS of real x264 streams: High
// profiles with 4:2:0, 4:2:2 and 4:4:4 chroma (whose crop units differ),
// interlacing and picture order count type 0.
func TestH264SPSSizeX264FFmpeg(t *testing.T) {
	e2e.LookPath(t, "ffmpeg")
	cases := []struct {
		w, h          int
		pixFmt, extra string
	}{
		{1920, 1080, "yuv420p", ""},
		{642, 362, "yuv422p", ""},
		{641, 361, "yuv444p", ""},
		{640, 360, "yuv420p", "interlaced=1"},
		{1280, 720, "yuv420p", "bframes=2:ref=4"},
	}
	for _, c := range cases {
		t.Run(fmt.Sprintf("%dx%d-%s-%s", c.w, c.h, c.pixFmt, c.extra), func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			out := filepath.Join(dir, "x.h264")
			args := []string{"-f", "lavfi", "-i", fmt.Sprintf("testsrc=size=%dx%d:rate=30", c.w, c.h),
				"-frames:v", "1", "-c:v", "libx264", "-pix_fmt", c.pixFmt}
			if c.extra != "" {
				args = append(args, "-x264-params", c.extra)
			}
			ffmpeg(t, append(args, "-f", "h264", out)...)
			var found bool
			for _, nal := range splitAnnexB(readFile(t, out)) {
				if nal[0]&0x1f != 7 {
					continue
				}
				found = true
				if w, h, ok := H264SPSSize(nal); !ok || w != c.w || h != c.h {
					t.Errorf("H264SPSSize = %d×%d %v, want %d×%d", w, h, ok, c.w, c.h)
				}
			}
			if !found {
				t.Fatal("no SPS")
			}
		})
	}
}

// TestH264SPSSizeScalingLists parses a High 4:4:4 SPS with explicit
// sequence scaling lists (x264 puts its matrices in the PPS), separate
// colour planes, picture order count type 1 and field coding.
func TestH264SPSSizeScalingLists(t *testing.T) {
	var b bitWriter
	b.u(8, 244) // High 4:4:4 Predictive
	b.u(16, 0x0033)
	b.ue(3)   // seq_parameter_set_id
	b.ue(3)   // chroma_format_idc 4:4:4
	b.u(1, 1) // separate_colour_plane_flag: ChromaArrayType 0
	b.ue(2)   // bit_depth_luma_minus8
	b.ue(2)   // bit_depth_chroma_minus8
	b.u(1, 0) // qpprime_y_zero_transform_bypass_flag
	b.u(1, 1) // seq_scaling_matrix_present_flag
	for i := 0; i < 12; i++ {
		b.u(1, uint32(i%2)) // seq_scaling_list_present_flag
		if i%2 == 0 {
			continue
		}
		n := 16
		if i >= 6 {
			n = 64
		}
		if i == 7 {
			b.se(-8) // next scale 0: use the default list, stop
			continue
		}
		for j := 0; j < n; j++ {
			b.se(int32(j%5) - 2)
		}
	}
	b.ue(2)   // log2_max_frame_num_minus4
	b.ue(1)   // pic_order_cnt_type 1
	b.u(1, 0) // delta_pic_order_always_zero_flag
	b.se(-2)  // offset_for_non_ref_pic
	b.se(1)   // offset_for_top_to_bottom_field
	b.ue(3)   // num_ref_frames_in_pic_order_cnt_cycle
	b.se(2)
	b.se(2)
	b.se(-4)
	b.ue(4)   // max_num_ref_frames
	b.u(1, 0) // gaps
	b.ue(44)  // 45 macroblocks: 720
	b.ue(14)  // 15 map units of 2 macroblocks: 480
	b.u(1, 0) // frame_mbs_only_flag
	b.u(1, 1) // mb_adaptive_frame_field_flag
	b.u(1, 1) // direct_8x8_inference_flag
	b.u(1, 1) // frame_cropping_flag; crop units 1 and 2
	b.ue(1)
	b.ue(2)
	b.ue(3)
	b.ue(4)
	b.u(1, 0) // vui_parameters_present_flag
	sps := appendNAL(nil, 0x67, b.trailing())
	if w, h, ok := H264SPSSize(sps); !ok || w != 720-3 || h != 480-2*7 {
		t.Fatalf("H264SPSSize = %d×%d %v, want %d×%d", w, h, ok, 720-3, 480-14)
	}
	for n := 0; n < len(sps)-1; n++ {
		H264SPSSize(sps[:n]) // truncated: must not panic
	}
}
