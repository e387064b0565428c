package mute

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/callcore/callcore/internal/e2e"
)

func TestSilentFrameBytes(t *testing.T) {
	cases := []struct {
		mime string
		d    time.Duration
		want []byte
	}{
		{MimeTypeOpus, 10 * time.Millisecond, []byte{0xf0, 0xff, 0xfe}},
		{MimeTypeOpus, 20 * time.Millisecond, []byte{0xf8, 0xff, 0xfe}},
		{MimeTypeOpus, 40 * time.Millisecond, []byte{0xf9, 0xff, 0xfe, 0xff, 0xfe}},
		{MimeTypeOpus, 60 * time.Millisecond, []byte{0xfb, 0x03, 0xff, 0xfe, 0xff, 0xfe, 0xff, 0xfe}},
		{"audio/OPUS", 20 * time.Millisecond, []byte{0xf8, 0xff, 0xfe}},
		{MimeTypePCMU, 20 * time.Millisecond, bytes.Repeat([]byte{0xff}, 160)},
		{MimeTypePCMU, 125 * time.Microsecond, []byte{0xff}},
		{MimeTypePCMA, 10 * time.Millisecond, bytes.Repeat([]byte{0xd5}, 80)},
		{"audio/pcma", 120 * time.Millisecond, bytes.Repeat([]byte{0xd5}, 960)},
	}
	for _, c := range cases {
		got, err := SilentFrame(c.mime, c.d)
		if err != nil || !bytes.Equal(got, c.want) {
			t.Errorf("SilentFrame(%q, %v) = % x, %v; want % x", c.mime, c.d, got, err, c.want)
		}
	}
}

func TestSilentFrameErrors(t *testing.T) {
	cases := []struct {
		mime string
		d    time.Duration
		want error
	}{
		{MimeTypeOpus, 0, ErrInvalidDuration},
		{MimeTypeOpus, 5 * time.Millisecond, ErrInvalidDuration},
		{MimeTypeOpus, 2500 * time.Microsecond, ErrInvalidDuration},
		{MimeTypeOpus, 30 * time.Millisecond, ErrInvalidDuration},
		{MimeTypeOpus, 120 * time.Millisecond, ErrInvalidDuration},
		{MimeTypePCMU, 0, ErrInvalidDuration},
		{MimeTypePCMU, -20 * time.Millisecond, ErrInvalidDuration},
		{MimeTypePCMU, 100 * time.Microsecond, ErrInvalidDuration},
		{MimeTypePCMA, 121 * time.Millisecond, ErrInvalidDuration},
		{"audio/G722", 20 * time.Millisecond, ErrUnsupportedCodec},
		{"video/VP8", 20 * time.Millisecond, ErrUnsupportedCodec},
	}
	for _, c := range cases {
		if _, err := SilentFrame(c.mime, c.d); !errors.Is(err, c.want) {
			t.Errorf("SilentFrame(%q, %v) = %v, want %v", c.mime, c.d, err, c.want)
		}
	}
}

// decodeOpus decodes Opus packets with ffmpeg's decoder dec to 48 kHz s16
// samples, interleaved when channels is 2.
func decodeOpus(t testing.TB, dir, dec string, channels int, packets [][]byte, samples []int) []int16 {
	t.Helper()
	in := writeFile(t, dir, "in.ogg", oggOpus(packets, samples))
	out := filepath.Join(dir, "out.pcm")
	ffmpeg(t, "-c:a", dec, "-i", in, "-f", "s16le", "-ac", fmt.Sprint(channels), "-ar", "48000", out)
	raw := readFile(t, out)
	pcm := make([]int16, len(raw)/2)
	for i := range pcm {
		pcm[i] = int16(binary.LittleEndian.Uint16(raw[2*i:]))
	}
	return pcm
}

// firstNonZero returns the index of the first non-zero sample at or after
// from, or -1.
func firstNonZero(pcm []int16, from int) int {
	for i := from; i < len(pcm); i++ {
		if pcm[i] != 0 {
			return i
		}
	}
	return -1
}

func TestOpusSilenceDecodesToZeroFFmpeg(t *testing.T) {
	e2e.LookPath(t, "ffmpeg")
	for _, d := range []time.Duration{10, 20, 40, 60} {
		d *= time.Millisecond
		for _, dec := range []string{"opus", "libopus"} {
			t.Run(fmt.Sprintf("%s-%v", dec, d), func(t *testing.T) {
				t.Parallel()
				frame, err := SilentFrame(MimeTypeOpus, d)
				if err != nil {
					t.Fatal(err)
				}
				const n = 25
				per := int(d / (time.Second / 48000))
				packets, samples := make([][]byte, n), make([]int, n)
				for i := range packets {
					packets[i], samples[i] = frame, per
				}
				// Stereo output, as a subscriber's decoder would use.
				pcm := decodeOpus(t, t.TempDir(), dec, 2, packets, samples)
				if len(pcm) != 2*n*per {
					t.Fatalf("decoded %d samples, want %d", len(pcm), 2*n*per)
				}
				if i := firstNonZero(pcm, 0); i >= 0 {
					t.Fatalf("sample %d is %d, want 0", i, pcm[i])
				}
			})
		}
	}
}

// TestOpusSilenceAfterSpeechFFmpeg mutes a publisher mid-stream: after
// libopus-encoded tone, the silent frames decode to exact zeros once the
// tone's tail has died out, within one frame.
func TestOpusSilenceAfterSpeechFFmpeg(t *testing.T) {
	e2e.LookPath(t, "ffmpeg")
	dir := t.TempDir()
	tone := filepath.Join(dir, "tone.ogg")
	ffmpeg(t, "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=0.5",
		"-c:a", "libopus", "-b:a", "32k", "-frame_duration", "20", "-ac", "1", tone)
	packets := oggPackets(t, readFile(t, tone))[2:] // skip OpusHead, OpusTags
	samples := make([]int, len(packets))
	for i := range samples {
		samples[i] = 960
	}
	toneSamples := 960 * len(packets)
	silent, _ := SilentFrame(MimeTypeOpus, 20*time.Millisecond)
	for i := 0; i < 25; i++ {
		packets, samples = append(packets, silent), append(samples, 960)
	}
	for _, dec := range []string{"opus", "libopus"} {
		pcm := decodeOpus(t, dir, dec, 1, packets, samples)
		if firstNonZero(pcm, 0) < 0 {
			t.Fatalf("%s: the tone decoded to silence", dec)
		}
		if i := firstNonZero(pcm, toneSamples+960); i >= 0 {
			t.Fatalf("%s: sample %d (%d into the silence) is %d, want 0",
				dec, i, i-toneSamples, pcm[i])
		}
		last := toneSamples - 1
		for i := toneSamples; i < len(pcm); i++ {
			if pcm[i] != 0 {
				last = i
			}
		}
		t.Logf("%s: last non-zero sample %d into the silence", dec, last-toneSamples)
	}
}

func ExampleSilentFrame() {
	opus, _ := SilentFrame("audio/opus", 20*time.Millisecond)
	pcmu, _ := SilentFrame("audio/PCMU", 20*time.Millisecond)
	fmt.Printf("% x\n%d bytes of %#x\n", opus, len(pcmu), pcmu[0])
	// Output:
	// f8 ff fe
	// 160 bytes of 0xff
}

// TestG711SilenceFFmpeg decodes the G.711 frames with FFmpeg: μ-law
// silence is exactly 0, A-law silence the smallest magnitude, +8.
func TestG711SilenceFFmpeg(t *testing.T) {
	e2e.LookPath(t, "ffmpeg")
	dir := t.TempDir()
	for _, c := range []struct {
		mime, format string
		want         int16
	}{{MimeTypePCMU, "mulaw", 0}, {MimeTypePCMA, "alaw", 8}} {
		frame, err := SilentFrame(c.mime, 20*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		in := writeFile(t, dir, c.format+".raw", bytes.Repeat(frame, 5))
		out := filepath.Join(dir, c.format+".pcm")
		ffmpeg(t, "-f", c.format, "-ar", "8000", "-ac", "1", "-i", in, "-f", "s16le", out)
		raw := readFile(t, out)
		if len(raw) != 2*5*160 {
			t.Fatalf("%s: decoded %d bytes, want %d", c.mime, len(raw), 2*5*160)
		}
		for i := 0; i < len(raw); i += 2 {
			if v := int16(binary.LittleEndian.Uint16(raw[i:])); v != c.want {
				t.Fatalf("%s: sample %d is %d, want %d", c.mime, i/2, v, c.want)
			}
		}
	}
}
