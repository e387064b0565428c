package mute

import (
	"bytes"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/callcore/callcore/internal/e2e"
)

// checkAllBlack fails t unless every frame is black and there are n.
func checkAllBlack(t testing.TB, frames [][]byte, n, w, h int) {
	t.Helper()
	if len(frames) != n {
		t.Fatalf("decoded %d frames, want %d", len(frames), n)
	}
	for i, f := range frames {
		if off := checkBlackYUV(f, w, h); off >= 0 {
			t.Fatalf("frame %d of %d×%d: byte %d is %d, not black", i, w, h, off, f[off])
		}
		// Closer than the tolerance: the frames are exactly 16, 128, 128.
		if bytes.Count(f[:w*h], []byte{16}) != w*h || bytes.Count(f[w*h:], []byte{128}) != len(f)-w*h {
			t.Fatalf("frame %d of %d×%d is black but not exactly Y=16, Cb=Cr=128", i, w, h)
		}
	}
}

// repeats returns key followed by n copies of rep.
func repeats(key, rep []byte, n int) [][]byte {
	frames := [][]byte{key}
	for i := 0; i < n; i++ {
		frames = append(frames, rep)
	}
	return frames
}

// emptyFrames is a black key frame and repeat frames of mime at w×h: three
// of them, one above 1920×1080 (decoding is slow there).
func emptyFrames(t *testing.T, mime string, w, h int) [][]byte {
	t.Helper()
	key, err := BlackKeyFrame(mime, w, h)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := RepeatFrame(mime, w, h)
	if err != nil {
		t.Fatal(err)
	}
	n := 3
	if w*h > 1920*1080 {
		n = 1
	}
	return repeats(key, rep, n)
}

func TestH264DecodesBlackFFmpeg(t *testing.T) {
	e2e.LookPath(t, "ffmpeg")
	for _, s := range h264Sizes {
		w, h := s[0], s[1]
		t.Run(fmt.Sprintf("%dx%d", w, h), func(t *testing.T) {
			t.Parallel()
			frames := emptyFrames(t, MimeTypeH264, w, h)
			dir := t.TempDir()
			in := writeFile(t, dir, "in.h264", bytes.Join(frames, nil))
			checkAllBlack(t, decodeVideo(t, dir, in, "h264", "", w, h), len(frames), w, h)
		})
	}
}

func TestVP8DecodesBlackFFmpeg(t *testing.T) {
	e2e.LookPath(t, "ffmpeg")
	sizes := [][2]int{{16, 16}, {17, 17}, {33, 18}, {320, 180}, {321, 241}, {1920, 1080}, {1080, 1920}, {4096, 2304}}
	for _, s := range sizes {
		w, h := s[0], s[1]
		for _, dec := range []string{"vp8", "libvpx"} {
			t.Run(fmt.Sprintf("%s-%dx%d", dec, w, h), func(t *testing.T) {
				t.Parallel()
				frames := emptyFrames(t, MimeTypeVP8, w, h)
				dir := t.TempDir()
				in := writeFile(t, dir, "in.ivf", ivf(w, h, frames...))
				checkAllBlack(t, decodeVideo(t, dir, in, "ivf", dec, w, h), len(frames), w, h)
			})
		}
	}
}

// TestH264MuteUnmuteFFmpeg plays a publisher's stream (x264, parameter set
// id 0, Constrained Baseline or High with CABAC), then the black frames,
// then the publisher's next IDR without its SPS and PPS: the black frames
// must not have replaced the publisher's parameter sets.
func TestH264MuteUnmuteFFmpeg(t *testing.T) {
	e2e.LookPath(t, "ffmpeg")
	for _, profile := range []string{"baseline", "high"} {
		t.Run(profile, func(t *testing.T) {
			t.Parallel()
			testH264MuteUnmute(t, profile)
		})
	}
}

func testH264MuteUnmute(t *testing.T, profile string) {
	const w, h = 320, 180
	dir := t.TempDir()
	pub := filepath.Join(dir, "pub.h264")
	ffmpeg(t, "-f", "lavfi", "-i", fmt.Sprintf("testsrc=size=%dx%d:rate=30", w, h),
		"-frames:v", "1", "-c:v", "libx264", "-profile:v", profile, "-pix_fmt", "yuv420p",
		"-bsf:v", "filter_units=remove_types=6", "-f", "h264", pub)
	pubAU := readFile(t, pub)
	var idr []byte
	for _, nal := range splitAnnexB(pubAU) {
		if nal[0]&0x1f == 5 {
			idr = append(append(idr, 0, 0, 0, 1), nal...)
		}
		if nal[0]&0x1f == 7 {
			if gw, gh, ok := H264SPSSize(nal); !ok || gw != w || gh != h {
				t.Fatalf("H264SPSSize(x264 SPS) = %d×%d %v", gw, gh, ok)
			}
		}
	}
	if idr == nil {
		t.Fatal("no IDR from x264")
	}
	key, _ := BlackKeyFrame(MimeTypeH264, w, h)
	rep, _ := RepeatFrame(MimeTypeH264, w, h)
	stream := bytes.Join([][]byte{pubAU, key, rep, rep, idr}, nil)
	frames := decodeVideo(t, dir, writeFile(t, dir, "in.h264", stream), "h264", "", w, h)
	if len(frames) != 5 {
		t.Fatalf("decoded %d frames, want 5", len(frames))
	}
	checkAllBlack(t, frames[1:4], 3, w, h)
	if checkBlackYUV(frames[0], w, h) < 0 || !bytes.Equal(frames[0], frames[4]) {
		t.Fatal("publisher's frames before and after the black ones differ")
	}
}

// TestVP8MuteFFmpeg plays a publisher's VP8 stream (libvpx) and then the
// black frames: the key frame resets the decoder to black.
func TestVP8MuteFFmpeg(t *testing.T) {
	e2e.LookPath(t, "ffmpeg")
	const w, h = 320, 180
	dir := t.TempDir()
	pub := filepath.Join(dir, "pub.ivf")
	ffmpeg(t, "-f", "lavfi", "-i", fmt.Sprintf("testsrc=size=%dx%d:rate=30", w, h),
		"-frames:v", "5", "-c:v", "libvpx", "-f", "ivf", pub)
	frames := readIVF(t, readFile(t, pub))
	if gw, gh, ok := VP8FrameSize(frames[0]); !ok || gw != w || gh != h {
		t.Fatalf("VP8FrameSize(libvpx key frame) = %d×%d %v", gw, gh, ok)
	}
	key, _ := BlackKeyFrame(MimeTypeVP8, w, h)
	rep, _ := RepeatFrame(MimeTypeVP8, w, h)
	frames = append(frames, repeats(key, rep, 3)...)
	for _, dec := range []string{"vp8", "libvpx"} {
		out := decodeVideo(t, dir, writeFile(t, dir, "in.ivf", ivf(w, h, frames...)), "ivf", dec, w, h)
		if len(out) != 9 {
			t.Fatalf("%s: decoded %d frames, want 9", dec, len(out))
		}
		checkAllBlack(t, out[5:], 4, w, h)
	}
}
