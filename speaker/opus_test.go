package speaker

import (
	"encoding/binary"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/callcore/callcore/internal/e2e"
)

// opusLevels encodes the lavfi source src (48 kHz mono) to Opus with
// ffmpeg (20 ms frames), decodes it back to PCM and returns the RFC 6464
// level of each 20 ms frame of the decoded audio: the RMS in -dBov,
// 0..127.
func opusLevels(t *testing.T, ffmpeg, src string) []int {
	t.Helper()
	dir := t.TempDir()
	ogg, raw := filepath.Join(dir, "a.ogg"), filepath.Join(dir, "a.raw")
	for _, args := range [][]string{
		{"-f", "lavfi", "-i", src, "-c:a", "libopus", "-b:a", "32k", "-frame_duration", "20", "-application", "voip", ogg},
		{"-i", ogg, "-f", "s16le", "-ac", "1", "-ar", "48000", raw},
	} {
		out, err := exec.Command(ffmpeg, append([]string{"-hide_banner", "-loglevel", "error", "-y"}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("ffmpeg %v: %v\n%s", args, err, out)
		}
	}
	pcm, err := os.ReadFile(raw)
	if err != nil {
		t.Fatal(err)
	}
	const samples = 960 // 20 ms at 48 kHz
	var levels []int
	for off := 0; off+2*samples <= len(pcm); off += 2 * samples {
		var sum float64
		for i := range samples {
			v := float64(int16(binary.LittleEndian.Uint16(pcm[off+2*i:]))) / 32768
			sum += v * v
		}
		levels = append(levels, rfc6464Level(math.Sqrt(sum/samples)))
	}
	return levels
}

// rfc6464Level converts an RMS (full scale 1) to -dBov, clamped to 0..127.
func rfc6464Level(rms float64) int {
	if rms <= 0 {
		return 127
	}
	return int(min(127, max(0, math.Round(-20*math.Log10(rms)))))
}

func TestRealOpusLevelsMakeTheTalkerDominant(t *testing.T) {
	ffmpeg := e2e.LookPath(t, "ffmpeg")
	const secs = "6"
	levels := map[string][]int{
		// A 440 Hz tone for 3 s, then silence.
		"tone": opusLevels(t, ffmpeg, "aevalsrc=if(lt(t\\,3)\\,0.1*sin(2*PI*440*t)\\,0):s=48000:d="+secs),
		// Pink noise in syllable-like bursts (180 ms loud, 70 ms quiet)
		// from 3 s on: speech-like.
		"speech": opusLevels(t, ffmpeg, "anoisesrc=c=pink:r=48000:a=0.3:d="+secs+
			",volume=volume='if(gte(t\\,3)\\,if(lt(mod(t\\,0.25)\\,0.18)\\,1\\,0.03)\\,0)':eval=frame"),
		// A quiet room throughout.
		"room": opusLevels(t, ffmpeg, "anoisesrc=c=brown:r=48000:a=0.002:d="+secs),
	}
	for k, l := range levels {
		if len(l) < 290 {
			t.Fatalf("%s: %d frames decoded, want 300", k, len(l))
		}
		t.Logf("%s: levels at 1 s %v, at 4 s %v", k, l[50:55], l[200:205])
	}
	s := newSim(t, "tone", "speech", "room")
	s.run(6000, func(key string, ms int64) int {
		if f := int(ms / frameMs); f < len(levels[key]) {
			return levels[key][f]
		}
		return silent
	})
	tone, speech := s.firstDominant("tone", 0), s.firstDominant("speech", 3000)
	t.Logf("tone dominant %d ms after it starts, speech %d ms after it starts; changes %v", tone, speech-3000, s.changes)
	if tone < 0 || tone > 1000 || speech < 0 || speech-3000 > 1000 {
		t.Fatalf("tone dominant at %d ms (starts at 0), speech at %d ms (starts at 3000)", tone, speech)
	}
	for _, c := range s.changes {
		if hasKey(c.order, "room") {
			t.Fatalf("at %d ms the quiet room is a speaker: %v", c.ms, c.order)
		}
	}
}
