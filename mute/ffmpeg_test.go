package mute

import (
	"bytes"
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/callcore/callcore/internal/e2e"
)

// ffmpeg runs ffmpeg with args (inputs and outputs are files in dir) and
// fails t if it exits non-zero or reports any error.
func ffmpeg(t testing.TB, args ...string) {
	t.Helper()
	bin := e2e.LookPath(t, "ffmpeg")
	cmd := exec.Command(bin, append([]string{"-nostdin", "-hide_banner", "-v", "error", "-y"}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil || stderr.Len() > 0 {
		t.Fatalf("ffmpeg %q: %v\n%s", args, err, stderr.Bytes())
	}
}

// writeFile writes b to name in dir and returns its path.
func writeFile(t testing.TB, dir, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func readFile(t testing.TB, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// decodeVideo decodes the input file with ffmpeg (decoder names the
// decoder; empty means the default) to raw yuv420p frames of w×h.
func decodeVideo(t testing.TB, dir, in, format, decoder string, w, h int) [][]byte {
	t.Helper()
	out := filepath.Join(dir, "out-"+decoder+".yuv")
	args := []string{"-f", format}
	if decoder != "" {
		args = append(args, "-c:v", decoder)
	}
	args = append(args, "-i", in, "-fps_mode", "passthrough", "-f", "rawvideo", "-pix_fmt", "yuv420p", out)
	ffmpeg(t, args...)
	raw := readFile(t, out)
	size := w*h + 2*((w+1)/2)*((h+1)/2)
	if len(raw)%size != 0 {
		t.Fatalf("decoded %d bytes, not a whole number of %d×%d frames", len(raw), w, h)
	}
	var frames [][]byte
	for ; len(raw) > 0; raw = raw[size:] {
		frames = append(frames, raw[:size])
	}
	return frames
}

// checkBlackYUV reports whether a yuv420p frame of w×h is all black: luma
// at most 16, chroma within 2 of 128. It returns the first offending
// offset, or -1.
func checkBlackYUV(frame []byte, w, h int) int {
	for i, v := range frame {
		if i < w*h {
			if v > 16 {
				return i
			}
		} else if v < 126 || v > 130 {
			return i
		}
	}
	return -1
}

// ivf wraps VP8 frames in an IVF file.
func ivf(w, h int, frames ...[]byte) []byte {
	var b bytes.Buffer
	b.WriteString("DKIF")
	le := binary.LittleEndian
	hdr := make([]byte, 28)
	le.PutUint16(hdr[0:], 0)  // version
	le.PutUint16(hdr[2:], 32) // header size
	copy(hdr[4:], "VP80")
	le.PutUint16(hdr[8:], uint16(w))
	le.PutUint16(hdr[10:], uint16(h))
	le.PutUint32(hdr[12:], 30) // time base denominator
	le.PutUint32(hdr[16:], 1)  // numerator
	le.PutUint32(hdr[20:], uint32(len(frames)))
	b.Write(hdr)
	for i, f := range frames {
		var fh [12]byte
		le.PutUint32(fh[0:], uint32(len(f)))
		le.PutUint64(fh[4:], uint64(i))
		b.Write(fh[:])
		b.Write(f)
	}
	return b.Bytes()
}

// readIVF returns the frames of an IVF file.
func readIVF(t testing.TB, b []byte) [][]byte {
	t.Helper()
	if len(b) < 32 || string(b[:4]) != "DKIF" {
		t.Fatal("not an IVF file")
	}
	hl := int(binary.LittleEndian.Uint16(b[6:]))
	b = b[hl:]
	var frames [][]byte
	for len(b) >= 12 {
		n := int(binary.LittleEndian.Uint32(b))
		if len(b) < 12+n {
			t.Fatal("truncated IVF frame")
		}
		frames = append(frames, b[12:12+n])
		b = b[12+n:]
	}
	return frames
}
