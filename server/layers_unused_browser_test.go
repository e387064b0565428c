package server

import (
	"fmt"
	"testing"
	"time"

	"github.com/callcore/callcore/internal/browser"
)

// quietBytes is the most bytes per second a layer that is not encoded may
// show (none measured).
const quietBytes = 200

// waitQuiet polls the publisher's layers over 250 ms windows until those
// named have sent at most quietBytes a second, and returns the time from
// since to the end of that window; it fails after limit.
func waitQuiet(t *testing.T, u *user, since time.Time, limit time.Duration, rids ...string) time.Duration {
	t.Helper()
	for {
		r := u.rates(250)
		quiet := true
		for _, rid := range rids {
			quiet = quiet && r[rid] <= quietBytes
		}
		took := time.Since(since)
		if quiet {
			return took
		}
		if took > limit {
			t.Fatalf("%s's layers %v still send %v bytes/s %v after", u.name, rids, r, took.Round(time.Millisecond))
		}
	}
}

// total sums a publisher's layers' rates.
func total(r map[string]float64) float64 {
	n := 0.0
	for _, v := range r {
		n += v
	}
	return n
}

// TestBrowserUnwatchedLayersAreNotEncoded: alice publishes a 1280x720
// fake camera from Chromium as three layers; bob, her only receiver,
// prefers 180 lines. With the layers push ignored (every layer encoded)
// and then honoured, alice's sent video bitrate is measured: honoured, her
// h and f layers send nothing. When bob then asks for 720 lines, f is
// encoded again and bob decodes 1280x720 within switchWait; back at 180,
// f sends nothing within 2 s (6 s under -race) of his switch.
func TestBrowserUnwatchedLayersAreNotEncoded(t *testing.T) {
	b := browser.Start(t)
	ts := newTestServer(t, func(c *Config) { c.Static = e2eFS(t) })
	alice := newLayeredPublisher(t, b, ts, "alice")
	// Every layer encoded, whatever the server says.
	alice.must(`(async () => {
	  t.honour = false;
	  const s = t.calls.pc.getSenders()[0], p = s.getParameters();
	  p.encodings.forEach((e) => { e.active = true; });
	  await s.setParameters(p);
	  return true;
	})()`)
	bob := newE2EUser(t, b, ts, "bob")
	bob.must("t.calls.join('room', {})")
	bob.waitFor("alice's video", "!!t.els['alice/cam']")
	height := "document.getElementById(t.els['alice/cam']).videoHeight"
	width := "document.getElementById(t.els['alice/cam']).videoWidth"
	bob.must("t.calls.setPreference('alice', 'cam', { maxHeight: 180 })")
	bob.tab.WaitFor(t, "bob's video at 180 lines", height+" > 0 && "+height+" <= 180", e2eWait)
	alice.waitFor("every layer sent", "t.rates(250).then((r) => r.q > 0 && r.h > 0 && r.f > 0)")
	without := alice.rates(3000)
	var told []string
	alice.eval("t.lastLayers[1]", &told)
	if fmt.Sprint(told) != "[q]" {
		t.Fatalf("alice was last told to send %v, want [q]", told)
	}

	alice.must("(t.honour = true, t.apply().then(() => true))")
	waitQuiet(t, alice, time.Now(), e2eWait, "h", "f")
	with := alice.rates(3000)
	t.Logf("alice's video bytes/s with bob at 180 lines: every layer encoded %.0f (q %.0f, h %.0f, f %.0f); h and f not encoded %.0f (q %.0f, h %.0f, f %.0f): %.0f%% saved",
		total(without), without["q"], without["h"], without["f"], total(with), with["q"], with["h"], with["f"], 100*(1-total(with)/total(without)))
	if with["h"] > quietBytes || with["f"] > quietBytes || with["q"] == 0 {
		t.Fatalf("alice's layers send %v bytes/s, want q alone", with)
	}

	start := time.Now()
	bob.must("t.calls.setPreference('alice', 'cam', { maxHeight: 720 })")
	bob.tab.WaitFor(t, "bob's video at 720 lines", height+" === 720", switchWait)
	var w int
	bob.eval(width, &w)
	if w != 1280 {
		t.Fatalf("bob decodes %dx720, want 1280x720", w)
	}
	t.Logf("720 lines: f encoded again and decoded by bob %v after his preference", time.Since(start).Round(time.Millisecond))
	bob.rising("alice/cam", "framesDecoded", 10)

	// Back at 180 lines: this switch may take seconds (bob's Chromium
	// drops the first frames of q at times, with every layer sent too),
	// so the 2 s are counted from the switch seen by bob.
	start = time.Now()
	bob.must("t.calls.setPreference('alice', 'cam', { maxHeight: 180 })")
	bob.waitFor("his video at 180 lines again", height+" > 0 && "+height+" <= 180")
	switched := time.Now()
	took := waitQuiet(t, alice, switched, raceSlowdown*2*time.Second, "h", "f")
	t.Logf("180 lines again: bob switched %v after his preference, alice's f sent nothing %v after that",
		switched.Sub(start).Round(time.Millisecond), took.Round(time.Millisecond))
}
