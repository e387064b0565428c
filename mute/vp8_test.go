package mute

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"testing"

	"golang.org/x/image/vp8"
)

// decodeVP8 decodes a VP8 key frame with the pure Go decoder.
func decodeVP8(t testing.TB, frame []byte) *image.YCbCr {
	t.Helper()
	d := vp8.NewDecoder()
	d.Init(bytes.NewReader(frame), len(frame))
	if _, err := d.DecodeFrameHeader(); err != nil {
		t.Fatalf("DecodeFrameHeader: %v", err)
	}
	img, err := d.DecodeFrame()
	if err != nil {
		t.Fatalf("DecodeFrame: %v", err)
	}
	return img
}

// checkBlackYCbCr reports the first pixel of img that is not black: luma
// above 16 or chroma more than 2 from 128.
func checkBlackYCbCr(img *image.YCbCr) error {
	b := img.Rect
	w, h := b.Dx(), b.Dy()
	for y := 0; y < h; y++ {
		row := img.Y[img.YOffset(b.Min.X, b.Min.Y+y):][:w]
		for x, v := range row {
			if v > 16 {
				return fmt.Errorf("luma at %d,%d is %d", x, y, v)
			}
		}
	}
	for y := 0; y < (h+1)/2; y++ {
		off := img.COffset(b.Min.X, b.Min.Y+2*y)
		cb, cr := img.Cb[off:][:(w+1)/2], img.Cr[off:][:(w+1)/2]
		for x := range cb {
			if abs(int(cb[x])-128) > 2 || abs(int(cr[x])-128) > 2 {
				return fmt.Errorf("chroma at %d,%d is %d,%d", 2*x, 2*y, cb[x], cr[x])
			}
		}
	}
	return nil
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

// checkVP8Black builds a VP8 black key frame and checks its decoded size
// and pixels.
func checkVP8Black(t testing.TB, w, h int) {
	t.Helper()
	frame, err := BlackKeyFrame(MimeTypeVP8, w, h)
	if err != nil {
		t.Fatalf("BlackKeyFrame(%d×%d): %v", w, h, err)
	}
	if gw, gh, ok := VP8FrameSize(frame); !ok || gw != w || gh != h {
		t.Fatalf("VP8FrameSize = %d×%d %v, want %d×%d", gw, gh, ok, w, h)
	}
	img := decodeVP8(t, frame)
	if img.Rect.Dx() != w || img.Rect.Dy() != h {
		t.Fatalf("decoded %v, want %d×%d", img.Rect, w, h)
	}
	if err := checkBlackYCbCr(img); err != nil {
		t.Fatalf("%d×%d: %v", w, h, err)
	}
	// Exactly black, not just within the tolerance.
	if img.Y[0] != 16 || img.Cb[0] != 128 || img.Cr[0] != 128 {
		t.Fatalf("%d×%d: top-left pixel %d,%d,%d, want 16,128,128", w, h, img.Y[0], img.Cb[0], img.Cr[0])
	}
}

var vp8Sizes = [][2]int{
	{16, 16}, {17, 17}, {18, 18}, {32, 16}, {16, 32}, {31, 47}, {176, 144},
	{320, 180}, {321, 241}, {640, 360}, {1280, 720}, {1920, 1080},
	{1080, 1920}, {4096, 2304}, {2304, 4096}, {4096, 16}, {16, 4096},
	{4095, 2303},
}

func TestBlackKeyFrameVP8(t *testing.T) {
	for _, s := range vp8Sizes {
		t.Run(fmt.Sprintf("%dx%d", s[0], s[1]), func(t *testing.T) {
			checkVP8Black(t, s[0], s[1])
		})
	}
}

func TestBlackKeyFrameVP8AllSmallSizes(t *testing.T) {
	for w := 16; w <= 64; w++ {
		for h := 16; h <= 64; h += 3 {
			checkVP8Black(t, w, h)
		}
	}
}

func TestVP8FrameSizeRejects(t *testing.T) {
	key, _ := BlackKeyFrame(MimeTypeVP8, 64, 48)
	rep, _ := RepeatFrame(MimeTypeVP8, 64, 48)
	for name, f := range map[string][]byte{
		"nil":    nil,
		"short":  key[:9],
		"inter":  rep,
		"nosync": append([]byte{key[0], key[1], key[2], 0, 0, 0}, key[6:]...),
	} {
		if w, h, ok := VP8FrameSize(f); ok {
			t.Errorf("%s: VP8FrameSize = %d×%d, true", name, w, h)
		}
	}
}

func TestVideoErrors(t *testing.T) {
	cases := []struct {
		mime string
		w, h int
		want error
	}{
		{MimeTypeVP8, 15, 16, ErrInvalidSize},
		{MimeTypeVP8, 16, 15, ErrInvalidSize},
		{MimeTypeVP8, 4097, 2304, ErrInvalidSize},
		{MimeTypeVP8, 4096, 2305, ErrInvalidSize},
		{MimeTypeVP8, 2305, 4096, ErrInvalidSize},
		{MimeTypeVP8, 0, 0, ErrInvalidSize},
		{MimeTypeVP8, -16, 16, ErrInvalidSize},
		{MimeTypeH264, 17, 16, ErrInvalidSize},
		{MimeTypeH264, 16, 17, ErrInvalidSize},
		{MimeTypeH264, 14, 16, ErrInvalidSize},
		{MimeTypeH264, 4098, 2304, ErrInvalidSize},
		{"video/VP9", 320, 180, ErrUnsupportedCodec},
		{"video/AV1", 320, 180, ErrUnsupportedCodec},
		{"audio/opus", 320, 180, ErrUnsupportedCodec},
		{"", 320, 180, ErrUnsupportedCodec},
	}
	for _, c := range cases {
		if _, err := BlackKeyFrame(c.mime, c.w, c.h); !errors.Is(err, c.want) {
			t.Errorf("BlackKeyFrame(%q, %d, %d) = %v, want %v", c.mime, c.w, c.h, err, c.want)
		}
		if _, err := RepeatFrame(c.mime, c.w, c.h); !errors.Is(err, c.want) {
			t.Errorf("RepeatFrame(%q, %d, %d) = %v, want %v", c.mime, c.w, c.h, err, c.want)
		}
	}
}

func TestMimeTypeCaseInsensitive(t *testing.T) {
	for _, m := range []string{"video/vp8", "VIDEO/VP8", "video/h264", "Video/H264"} {
		if _, err := BlackKeyFrame(m, 64, 64); err != nil {
			t.Errorf("BlackKeyFrame(%q): %v", m, err)
		}
		if _, err := RepeatFrame(m, 64, 64); err != nil {
			t.Errorf("RepeatFrame(%q): %v", m, err)
		}
	}
}
