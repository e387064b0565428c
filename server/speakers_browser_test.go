package server

import (
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/callcore/callcore/internal/browser"
)

// TestBrowserSpeakers: two users in headless Chromium through the SDK.
// alice's fake microphone sends its beeps with Chromium's audio levels;
// bob's is disabled (silence). alice becomes the speaker and cnl:speakers
// reaches bob, dominant first, and the SDK keeps it.
func TestBrowserSpeakers(t *testing.T) {
	b := browser.Start(t)
	ts := newTestServer(t, func(c *Config) { c.Static = e2eFS(t) })
	alice, bob := newE2EUser(t, b, ts, "alice"), newE2EUser(t, b, ts, "bob")
	for _, u := range []*user{alice, bob} {
		u.must("(t.calls.on('cnl:speakers', (e) => t.events.push({ name: 'cnl:speakers', at: performance.now(), ...e })), true)")
	}
	bob.must("(t.tracks().mic.enabled = false, true)")
	alice.must("t.calls.create('room', t.tracks())")
	bob.must("t.calls.join('room', t.tracks())")
	alice.saw("user:join", "e.userId === 'bob'")
	start := time.Now()
	bob.saw("cnl:speakers", "e.speakers.length > 0 && e.speakers[0].userId === 'alice' && e.speakers[0].level < 127")
	t.Logf("alice named the speaker at bob's %v after the join", time.Since(start).Round(time.Millisecond))
	var dominant string
	bob.eval("t.calls.speakers[0].userId", &dominant)
	if dominant != "alice" {
		t.Fatalf("the SDK's speakers start with %q", dominant)
	}
	var bobSpeaks bool
	bob.eval("t.events.some((e) => e.name === 'cnl:speakers' && e.speakers.some((s) => s.userId === 'bob'))", &bobSpeaks)
	if bobSpeaks {
		t.Fatal("bob, whose microphone is disabled, was named a speaker")
	}
}

// framesJS defines t.frames(key): a remote video's frames decoded, 0 while
// none arrived; and t.framesStill(key, ms): whether they did not grow over
// the last ms of calls (a condition to poll).
const framesJS = `(() => {
  t.frames = async (key) => t.remote[key] ? ((await t.stats(key)).framesDecoded || 0) : 0;
  t.framesStill = async (key, ms) => {
    const v = await t.frames(key), now = performance.now();
    const s = (t.samples['frames' + key] ||= []);
    s.push([now, v]);
    while (s.length > 1 && now - s[1][0] >= ms) s.shift();
    return now - s[0][0] >= ms && v === s[0][1];
  };
  return true;
})()`

// toneWAV writes a WAV file of a steady 440 Hz tone (48 kHz, mono, 16
// bits, -12 dBFS, 5 s; Chromium loops it) and returns its path: a fake
// microphone that talks without pause. Chromium's own fake microphone
// beeps, and beeps are the short sounds the speaker detection is made to
// ignore: a takeover by beeps alone took from 3.7 s to over 30 s.
func toneWAV(t *testing.T) string {
	t.Helper()
	const rate, secs = 48000, 5
	pcm := make([]byte, 2*rate*secs)
	for i := range rate * secs {
		v := int16(0.25 * math.MaxInt16 * math.Sin(2*math.Pi*440*float64(i)/rate))
		binary.LittleEndian.PutUint16(pcm[2*i:], uint16(v))
	}
	var h []byte
	h = append(h, "RIFF"...)
	h = binary.LittleEndian.AppendUint32(h, uint32(36+len(pcm)))
	h = append(h, "WAVEfmt "...)
	h = binary.LittleEndian.AppendUint32(h, 16)
	h = binary.LittleEndian.AppendUint16(h, 1) // PCM
	h = binary.LittleEndian.AppendUint16(h, 1) // mono
	h = binary.LittleEndian.AppendUint32(h, rate)
	h = binary.LittleEndian.AppendUint32(h, 2*rate)
	h = binary.LittleEndian.AppendUint16(h, 2)
	h = binary.LittleEndian.AppendUint16(h, 16)
	h = append(h, "data"...)
	h = binary.LittleEndian.AppendUint32(h, uint32(len(pcm)))
	path := filepath.Join(t.TempDir(), "tone.wav")
	if err := os.WriteFile(path, append(h, pcm...), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestBrowserLastNFollowsTheSpeaker: three Chromium publishers (camera and
// a microphone playing a steady tone, only the talker's microphone
// enabled) and a Chromium viewer in a channel with lastN 1. The viewer
// decodes only the current speaker's video, and the switch follows the
// speaker.
func TestBrowserLastNFollowsTheSpeaker(t *testing.T) {
	b := browser.Start(t, "use-file-for-fake-audio-capture="+toneWAV(t))
	ts := newTestServer(t, func(c *Config) { c.Static = e2eFS(t) })
	users := map[string]*user{}
	for _, id := range []string{"ann", "ben", "cat", "vic"} {
		users[id] = newE2EUser(t, b, ts, id)
		users[id].must("(t.calls.on('cnl:speakers', (e) => t.events.push({ name: 'cnl:speakers', ...e })), true)")
		users[id].must(framesJS)
		users[id].must(fmt.Sprintf("(t.tracks().mic.enabled = %v, true)", id == "ben"))
	}
	vic := users["vic"]
	users["ann"].must("t.calls.create('room', t.tracks(), { lastN: 1 })")
	users["ben"].must("t.calls.join('room', t.tracks())")
	users["cat"].must("t.calls.join('room', t.tracks())")
	vic.must("t.calls.join('room', {})")

	only := func(who string) {
		t.Helper()
		for _, id := range []string{"ann", "ben", "cat"} {
			if id == who {
				vic.waitFor(who+"'s video decoding", fmt.Sprintf("t.frames(%q).then((n) => n > 0)", id+"/cam"))
				vic.rising(id+"/cam", "framesDecoded", 10)
				continue
			}
			vic.waitFor(id+"'s video paused", fmt.Sprintf("t.framesStill(%q, 1500)", id+"/cam"))
		}
	}
	start := time.Now()
	vic.saw("cnl:speakers", "e.speakers.length > 0 && e.speakers[0].userId === 'ben'")
	t.Logf("ben named dominant at vic's %v after vic's join", time.Since(start).Round(time.Millisecond))
	only("ben")

	users["ben"].must("(t.tracks().mic.enabled = false, true)")
	users["cat"].must("(t.tracks().mic.enabled = true, true)")
	start = time.Now()
	vic.saw("cnl:speakers", "e.speakers.length > 0 && e.speakers[0].userId === 'cat'")
	t.Logf("cat named dominant at vic's %v after her microphone was enabled", time.Since(start).Round(time.Millisecond))
	vic.waitFor("cat's video decoding", "t.frames('cat/cam').then((n) => n > 0)")
	t.Logf("cat's video decoded at vic's %v after her microphone was enabled", time.Since(start).Round(time.Millisecond))
	only("cat")
}
