package browser

import (
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// TestMain checks that no goroutine is left once every test's cleanup
// (closing the tabs, the browser and the chromedp allocator) has run.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// waitTimeout bounds each awaited condition. The conditions normally hold
// within 0.1..1 s; the margin is for 2 busy cores and -race.
const waitTimeout = 15 * time.Second

// Thresholds of the media checks, measured with Chromium 156 (fake camera
// at 320x240, 15 fps): rendered frames have a mean luma of 83..96 (max
// about 175); with the sending track disabled they are exactly 0. The fake
// microphone beeps: totalAudioEnergy grows by about 0.12..0.35 per second
// of received audio (0.008..0.05 on a starved CPU); with the track disabled,
// once the audio in flight has played (1..2 s), by 1e-9..1e-5 per second
// (up to 7e-4 in the first quiet window, which can hold the tail of a beep).
const (
	blackMaxLuma = 20   // isBlack: no pixel brighter
	notBlackMean = 30   // isNotBlack: mean luma above
	energyRise   = 0.02 // an enabled track soon adds this much energy
	silentEnergy = 1e-3 // a disabled track adds less energy per second (48000 samples)
)

// serve serves testdata and /cookie (the request's Cookie header) on
// 127.0.0.1.
func serve(t *testing.T) *httptest.Server {
	mux := http.NewServeMux()
	mux.Handle("/", http.FileServer(http.Dir("testdata")))
	mux.HandleFunc("/cookie", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		fmt.Fprint(w, r.Header.Get("Cookie"))
	})
	srv := httptest.NewServer(mux) // listens on 127.0.0.1
	t.Cleanup(srv.Close)
	if err := checkURL(srv.URL); err != nil {
		t.Fatalf("test server: %v", err)
	}
	return srv
}

// TestLoopbackMedia sends the fake camera and microphone from pc1 to pc2
// inside one tab and checks the probe: frames are decoded and rendered
// bright, audio energy grows; a disabled video track renders black and
// comes back; a disabled audio track adds (almost) no energy.
func TestLoopbackMedia(t *testing.T) {
	t.Parallel()
	srv := serve(t)
	b := Start(t)
	tab := b.NewUser(t, "alice")
	tab.Navigate(t, srv.URL+"/loopback.html")
	tab.Eval(t, "ready", nil)

	video, audio := tab.Attach(t, "remote.video"), tab.Attach(t, "remote.audio")
	if !strings.HasPrefix(video, "__probe-video-") || !strings.HasPrefix(audio, "__probe-audio-") {
		t.Fatalf("attach: ids %q, %q", video, audio)
	}
	tab.Eval(t, fmt.Sprintf("window.vid = %q", video), nil)
	var playing struct{ Video, Audio bool }
	tab.WaitFor(t, "both elements playing", fmt.Sprintf(
		"!__probe.playback(%q).paused && !__probe.playback(%q).paused && __probe.playback(%q).totalVideoFrames > 0", video, audio, video), waitTimeout)
	tab.Eval(t, fmt.Sprintf(`({video: document.getElementById(%q) instanceof HTMLVideoElement && document.getElementById(%[1]q).muted,
		audio: document.getElementById(%q) instanceof HTMLAudioElement && !document.getElementById(%[2]q).muted})`, video, audio), &playing)
	if !playing.Video || !playing.Audio {
		t.Errorf("attach: a muted <video> and an unmuted <audio>? %+v", playing)
	}

	// Video is decoded, per peer connection and per track.
	tab.WaitFor(t, "10 video frames decoded at 320x240",
		`__probe.videoStats(pc2).then(s => s.framesDecoded >= 10 && s.frameWidth === 320 && s.frameHeight === 240)`, waitTimeout)
	vs := tab.VideoStats(t, "pc2")
	if len(vs.Tracks) != 1 || vs.Tracks[0].FramesDecoded != vs.FramesDecoded || vs.PacketsReceived == 0 {
		t.Errorf("videoStats: %+v", vs)
	}
	var videoID string
	tab.Eval(t, "remote.video.id", &videoID)
	ts := tab.TrackStats(t, "pc2", "remote.video")
	if ts.Kind != "video" || ts.TrackIdentifier != videoID || ts.FramesDecoded < 10 || ts.Mid == nil {
		t.Errorf("trackStats(remote.video) = %+v, want kind video, track %s, >= 10 frames, a mid", ts, videoID)
	}
	if err := tab.EvalErr(`__probe.trackStats(pc2, "no-such-track")`, nil); err == nil || !strings.Contains(err.Error(), "no receiver for track no-such-track") {
		t.Errorf("trackStats of an unknown track: err = %v", err)
	}
	var tracks []struct{ ID, Kind, ReadyState string }
	tab.Eval(t, "__probe.remoteTracks(pc2)", &tracks)
	if len(tracks) != 2 {
		t.Errorf("remoteTracks = %+v, want audio and video", tracks)
	}

	// Rendered video is bright.
	tab.WaitFor(t, "rendered video not black", fmt.Sprintf("__probe.isNotBlack(vid, %d)", notBlackMean), waitTimeout)
	t.Logf("enabled video: %+v", *tab.Brightness(t, "vid"))

	// Audio plays: the energy of the one audio track grows.
	a0 := tab.TrackStats(t, "pc2", "remote.audio")
	tab.WaitFor(t, "audio energy rises", fmt.Sprintf(
		"__probe.trackStats(pc2, remote.audio).then(s => s.totalAudioEnergy > %v)", a0.TotalAudioEnergy+energyRise), waitTimeout)
	// For the log: about 0.12..0.25 per second, less on a starved CPU
	// (concealed samples); the condition above is what the test asserts.
	enabledEnergy := energyPerSecond(t, tab)

	// Disabled video renders black, then bright again.
	tab.Eval(t, "stream.getVideoTracks()[0].enabled = false", nil)
	tab.WaitFor(t, "rendered video black", fmt.Sprintf("__probe.isBlack(vid, %d)", blackMaxLuma), waitTimeout)
	t.Logf("disabled video: %+v", *tab.Brightness(t, "vid"))
	tab.Eval(t, "stream.getVideoTracks()[0].enabled = true", nil)
	tab.WaitFor(t, "rendered video not black again", fmt.Sprintf("__probe.isNotBlack(vid, %d)", notBlackMean), waitTimeout)

	// Disabled audio sends silence: after what was in flight and in the
	// jitter buffer has played (more under load), whole seconds of received
	// audio add (almost) no energy, twice in a row.
	tab.Eval(t, "stream.getAudioTracks()[0].enabled = false", nil)
	disabledAt := time.Now()
	quiet := energyPerSecond(t, tab)
	for quiet >= silentEnergy && time.Since(disabledAt) < waitTimeout {
		quiet = energyPerSecond(t, tab)
	}
	if quiet >= silentEnergy {
		t.Fatalf("disabled audio: still +%.3g energy per second after %v, want < %v", quiet, waitTimeout, silentEnergy)
	}
	quietAfter := time.Since(disabledAt)
	again := energyPerSecond(t, tab)
	if again >= silentEnergy {
		t.Errorf("disabled audio: +%.3g energy per second in the next half second, want < %v", again, silentEnergy)
	}
	t.Logf("audio energy per second: enabled %.3g; disabled: %.3g in the first quiet half second (within %v of disabling), %.3g in the next",
		enabledEnergy, quiet, quietAfter.Round(time.Millisecond), again)
	tab.Eval(t, "stream.getAudioTracks()[0].enabled = true", nil)
	a1 := tab.AudioStats(t, "pc2")
	tab.WaitFor(t, "audio energy rises again", fmt.Sprintf(
		"__probe.audioStats(pc2).then(s => s.totalAudioEnergy > %v)", a1.TotalAudioEnergy+energyRise), waitTimeout)

	// Loss is not expected on loopback, but a starved CPU can drop
	// packets: log it, do not fail.
	if vs, as := tab.VideoStats(t, "pc2"), tab.AudioStats(t, "pc2"); vs.PacketsLost != 0 || as.PacketsLost != 0 {
		t.Logf("packets lost: video %d, audio %d", vs.PacketsLost, as.PacketsLost)
	}
}

// energyPerSecond measures how much totalAudioEnergy pc2 gains over the
// next half second of received audio (24000 samples at 48 kHz), and returns
// it per second (per 48000 samples).
func energyPerSecond(t *testing.T, tab *Tab) float64 {
	t.Helper()
	a := tab.AudioStats(t, "pc2")
	tab.WaitFor(t, "half a second of audio", fmt.Sprintf(
		"__probe.audioStats(pc2).then(s => s.totalSamplesReceived >= %d)", a.TotalSamplesReceived+24000), waitTimeout)
	b := tab.AudioStats(t, "pc2")
	return (b.TotalAudioEnergy - a.TotalAudioEnergy) * 48000 / float64(b.TotalSamplesReceived-a.TotalSamplesReceived)
}

// TestUsersIsolated checks that two users of one browser share neither
// storage nor cookies, and that the browser's cleanup leaves no process.
func TestUsersIsolated(t *testing.T) {
	t.Parallel()
	srv := serve(t)
	var pid int
	var dataDir string
	t.Run("users", func(t *testing.T) {
		b := Start(t)
		pid, dataDir = b.PID(), b.UserDataDir()
		alice := b.NewUser(t, "alice")
		bob := b.NewUser(t, "bob")
		alice.Navigate(t, srv.URL+"/blank.html")
		bob.Navigate(t, srv.URL+"/blank.html")

		alice.Eval(t, `localStorage.setItem("who", "alice"); document.cookie = "who=alice; path=/"; true`, nil)

		type seen struct {
			Storage *string
			Cookie  string
			Server  string
		}
		look := `fetch("/cookie").then(r => r.text()).then(server => ({storage: localStorage.getItem("who"), cookie: document.cookie, server}))`
		var a, o seen
		alice.Eval(t, look, &a)
		bob.Eval(t, look, &o)
		if a.Storage == nil || *a.Storage != "alice" || a.Cookie != "who=alice" || a.Server != "who=alice" {
			t.Errorf("alice sees %+v, want her own storage and cookie", a)
		}
		if o.Storage != nil || o.Cookie != "" || o.Server != "" {
			t.Errorf("bob sees %+v, want nothing of alice's", o)
		}
		if alice.Name() != "alice" || bob.Name() != "bob" {
			t.Errorf("names %q, %q", alice.Name(), bob.Name())
		}
		if runtime.GOOS == "linux" {
			if procs := alive(pid, dataDir); len(procs) < 3 {
				t.Errorf("the browser runs as %v, want the browser and its children", procs)
			}
		}
	})
	if dataDir == "" {
		t.Skip("no browser started")
	}
	// The subtest's cleanup closed the browser and waited for its processes.
	if procs := alive(0, dataDir); len(procs) > 0 { // not by pid: it can be reused
		t.Errorf("processes left after the cleanup: %v", procs)
	}
	if _, err := os.Stat(dataDir); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("user data directory %s: %v, want it removed", dataDir, err)
	}
}

// logRecorder is a testing.TB that also records its Logf lines.
type logRecorder struct {
	testing.TB
	mu    sync.Mutex
	lines []string
}

func (r *logRecorder) Logf(format string, args ...any) {
	r.TB.Helper()
	r.mu.Lock()
	r.lines = append(r.lines, fmt.Sprintf(format, args...))
	r.mu.Unlock()
	r.TB.Logf(format, args...)
}

func (r *logRecorder) has(s string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, l := range r.lines {
		if strings.Contains(l, s) {
			return true
		}
	}
	return false
}

// TestEval checks Eval's decoding, EvalErr's JavaScript errors, WaitFor,
// the loopback-only Navigate and the console log.
func TestEval(t *testing.T) {
	t.Parallel()
	srv := serve(t)
	b := Start(t, "--window-size=640,480") // an extra flag replaces a default one
	rec := &logRecorder{TB: t}
	tab := b.NewUser(rec, "carol")
	tab.Navigate(t, srv.URL+"/blank.html")

	var v struct {
		A int
		B string
	}
	tab.Eval(t, `new Promise(r => setTimeout(() => r({a: 1, b: "x"}), 10))`, &v)
	if v.A != 1 || v.B != "x" {
		t.Errorf("Eval: %+v", v)
	}
	var np *int
	if err := tab.EvalErr("null", &np); err != nil || np != nil {
		t.Errorf("EvalErr(null) = %v, %v", np, err)
	}
	if err := tab.EvalErr("undefined", &v); err == nil || !strings.Contains(err.Error(), "undefined") {
		t.Errorf("EvalErr(undefined) into a value: err = %v", err)
	}
	if err := tab.EvalErr("NaN", &v); err == nil || !strings.Contains(err.Error(), "NaN") {
		t.Errorf("EvalErr(NaN): err = %v", err)
	}
	if err := tab.EvalErr("undefined", nil); err != nil {
		t.Errorf("EvalErr(undefined, nil) = %v", err)
	}
	var width int
	tab.Eval(t, "innerWidth", &width)
	if width != 640 {
		t.Errorf("innerWidth = %d, want 640 (--window-size=640,480)", width)
	}
	var probe bool
	tab.Eval(t, `typeof __probe.brightness === "function" && Object.isFrozen(__probe)`, &probe)
	if !probe {
		t.Errorf("no __probe in the page")
	}

	for _, c := range []struct{ js, want string }{
		{`Promise.reject(new Error("boom"))`, "Error: boom"},
		{`new Promise((_, reject) => setTimeout(() => reject(new RangeError("later")), 10))`, "RangeError: later"},
		{`(() => { throw new TypeError("sync boom") })()`, "TypeError: sync boom"},
		{`Promise.reject("plain")`, `"plain"`},
		{`noSuchVariable`, "ReferenceError: noSuchVariable is not defined"},
		{`(`, "SyntaxError"},
	} {
		err := tab.EvalErr(c.js, nil)
		var je *JSError
		if !errors.As(err, &je) {
			t.Errorf("EvalErr(%s) = %v, want a *JSError", c.js, err)
			continue
		}
		if !strings.Contains(je.Message(), c.want) || !strings.Contains(err.Error(), c.want) || je.Expr != c.js {
			t.Errorf("EvalErr(%s): message %q, error %q, want %q", c.js, je.Message(), err, c.want)
		}
	}

	tab.WaitFor(t, "a timer", `new Promise(r => setTimeout(() => r(42), 100))`, waitTimeout)
	tab.Eval(t, `setTimeout(() => window.later = true, 200)`, nil)
	tab.WaitFor(t, "a variable defined later", `later`, waitTimeout) // ReferenceError until then
	start := time.Now()
	err := tab.WaitForErr("never", `false`, 300*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "waiting for never: not true after") || time.Since(start) > 5*time.Second {
		t.Errorf("WaitForErr(false) = %v after %v", err, time.Since(start))
	}
	err = tab.WaitForErr("broken", `noSuchThing`, 300*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "ReferenceError") {
		t.Errorf("WaitForErr(noSuchThing) = %v, want the last ReferenceError", err)
	}

	// The page's console and uncaught errors reach t.Logf.
	tab.Eval(t, `console.error("console-check", 42);
		setTimeout(() => { throw new Error("uncaught-check") });
		Promise.reject(new Error("rejection-check")); true`, nil)
	for _, want := range []string{"[carol] error: console-check 42", "uncaught-check", "rejection-check"} {
		eventually(t, "a log line with "+want, waitTimeout, func() bool { return rec.has(want) })
	}
}

// eventually polls cond every 20 ms until it is true, and fails t when it
// is still false after timeout.
func eventually(t *testing.T, desc string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-deadline.C:
			t.Errorf("no %s after %v", desc, timeout)
			return
		case <-tick.C:
		}
	}
}

func TestCheckURL(t *testing.T) {
	for _, u := range []string{"http://127.0.0.1:8080/x", "http://[::1]/", "https://localhost:1/", "ws://127.0.0.5/", "about:blank", "data:text/html,hi"} {
		if err := checkURL(u); err != nil {
			t.Errorf("checkURL(%s) = %v, want nil", u, err)
		}
	}
	for _, u := range []string{"http://192.0.2.2/", "https://example.com/", "http://[fd00::2]/", "ftp://127.0.0.1/", "chrome://settings"} {
		if err := checkURL(u); err == nil {
			t.Errorf("checkURL(%s) = nil, want an error", u)
		}
	}
}
