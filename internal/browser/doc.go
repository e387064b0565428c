// Package browser drives a real headless Chromium from Go tests, for the
// end-to-end tests of the call server and its browser SDK.
//
// A test starts one browser process with [Start], opens one isolated
// browser context per simulated user with [Browser.NewUser] (own cookies,
// storage and permissions, one tab each), and drives the tab with
// [Tab.Navigate], [Tab.Eval], [Tab.EvalErr] and [Tab.WaitFor]:
//
//	b := browser.Start(t)
//	alice := b.NewUser(t, "alice")
//	alice.Navigate(t, srv.URL+"/call.html")
//	alice.WaitFor(t, "video decoded", `__probe.videoStats(pc).then(s => s.framesDecoded > 10)`, 10*time.Second)
//
// Everything is torn down by t.Cleanup: the tabs and their contexts, then
// the browser; the cleanup fails the test when a Chromium process of this
// browser is still alive afterwards. The page's console messages, uncaught
// exceptions and browser log entries are logged with t.Logf, prefixed by the
// user name, and Chromium's own output is logged when the test failed.
//
// # The probe
//
// Every document loaded in a [Tab] gets window.__probe (the embedded
// probe.js, see [ProbeJS]): getStats helpers (videoStats, audioStats,
// trackStats, remoteTracks), attach/detach to render a remote
// MediaStreamTrack in a <video> or a playing <audio>, and brightness,
// isBlack and isNotBlack to tell black video from Chrome's fake camera.
// Measured with Chromium 156, fake camera at 320x240 and 15 fps (see
// browser_test.go): rendered frames have a mean luma of about 83..96, a max
// of about 175 and a min of about 78; with the sending track disabled
// (track.enabled = false) they are exactly 0 (mean = max = 0), within 250 ms
// of the switch either way. So "black" is max <= 20 and "not black" is
// mean > 30. The fake microphone beeps about twice a second: a received and
// played track's totalAudioEnergy grows by 0.12..0.35 per second (48000
// samples; down to 0.008..0.05 on a starved CPU, as concealed samples carry
// little energy); a disabled track's by 1e-9..1e-5 once what was in flight
// and in the jitter buffer has played (1..2 s after the switch; up to 7e-4
// per second in the first quiet window, which can hold the tail of a beep),
// so "silent" is < 1e-3 per second.
//
// # Running
//
//	CALLCORE_E2E=require go test ./internal/browser/
//
// The browser is found as "chromium" on $PATH (Debian's launcher script is
// bypassed for the real binary /usr/lib/chromium/chromium; CALLCORE_CHROMIUM
// overrides the path). Without Chromium the tests skip with a hint to
// `apt-get install chromium`; with CALLCORE_E2E=require they fail instead
// (see internal/e2e).
//
// # Network
//
// The browser is started so that it talks only to loopback addresses:
// background networking, component updates, sync and QUIC are off, every
// host name except localhost fails to resolve, and Navigate refuses URLs
// whose host is not a loopback address. WebRTC host candidates on other
// interfaces still exist; pages that connect peer connections to each other
// should keep only the 127.0.0.1 candidates (as the test page does).
//
// # CPU and concurrency
//
// Tests run on 2 cores, often next to other packages' tests: one browser
// process serves all users of a test, renderer and timer throttling are off
// (so a tab that is not in front still renders and runs its timers),
// /dev/shm is not used, and pages should capture 320x240. Conditions are
// awaited by polling against deadlines (WaitFor), never by fixed sleeps;
// under load Chromium starts in 1..8 s and buffers more audio. Different
// Tabs may be used from different goroutines; one Tab's methods must not be
// called concurrently.
package browser
