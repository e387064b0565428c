package server

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/callcore/callcore/internal/browser"
)

// switchWait bounds a layer switch as a subscriber's player sees it: 3 s,
// three times that under the race detector. Most of a switch is the
// publisher's Chromium answering the key-frame request: it lets one that
// comes right after a key frame pass, and answers the next (the track asks
// again every KeyFrameInterval, 500 ms); measured 0.1 to 0.9 s, once
// 3.1 s, on the loaded 2-core test machine. The server moves the
// subscriber on the first key frame of the new layer.
const switchWait = raceSlowdown * 3 * time.Second

// TestBrowserLayersFollowThePreference: alice publishes a 1280x720 fake
// camera from Chromium through the SDK, which sends it as three layers;
// bob, in Chromium too, decodes the full one, then sets a max height of
// 180: his video's height follows (at most 180) within switchWait, and
// back to 720 with no limit, while his frames decoded keep rising across
// the switches. track:layer tells him each time.
func TestBrowserLayersFollowThePreference(t *testing.T) {
	b := browser.Start(t)
	ts := newTestServer(t, func(c *Config) { c.Static = e2eFS(t) })
	// alice's fake camera at 1280x720 from the start: once opened at
	// 320x240 (e2eSetup's), it keeps that size in the tab.
	hd := strings.Replace(e2eSetup, "width: 320, height: 240, frameRate: 15", "width: 1280, height: 720", 1)
	if hd == e2eSetup {
		t.Fatal("e2eSetup no longer opens the camera at 320x240")
	}
	alice := &user{t: t, tab: b.NewUser(t, "alice"), name: "alice"}
	alice.tab.Navigate(t, ts.http.URL+"/e2e.html")
	alice.tab.InstallProbe(t)
	var ok bool
	alice.eval(fmt.Sprintf(hd, "alice"), &ok)
	bob := newE2EUser(t, b, ts, "bob")
	var size string
	alice.eval("(({ width, height }) => width + 'x' + height)(t.media.getVideoTracks()[0].getSettings())", &size)
	if size != "1280x720" {
		t.Fatalf("alice's fake camera is %s", size)
	}
	alice.must("t.calls.create('room', { cam: t.tracks().cam })")
	var rids int
	alice.eval("t.calls.pc.getSenders()[0].getParameters().encodings.filter((e) => e.rid).length", &rids)
	if rids != 3 {
		var dbg string
		alice.eval("JSON.stringify([t.hd.getSettings(), t.calls.pc.getSenders().map((s) => s.getParameters().encodings)])", &dbg)
		t.Log(dbg)
		t.Fatalf("alice's camera is sent as %d layers", rids)
	}
	// Low bitrates for the layers, so that Chromium encodes all three
	// from its first bandwidth estimate: its full layer otherwise waits for
	// the estimate to grow (0.4 to 23 s measured, longer under -race),
	// which is the publisher's matter, not the switch's.
	alice.must(`(async () => {
	  const s = t.calls.pc.getSenders()[0], p = s.getParameters();
	  p.encodings.forEach((e, i) => { e.maxBitrate = [60000, 120000, 250000][i]; });
	  await s.setParameters(p);
	  return true;
	})()`)
	bob.must("(t.calls.on('track:layer', (e) => t.events.push({ name: 'track:layer', at: performance.now(), ...e })), true)")
	bob.must("t.calls.join('room', {})")
	bob.waitFor("alice's video", "!!t.els['alice/cam']")
	height := "document.getElementById(t.els['alice/cam']).videoHeight"
	start := time.Now()
	bob.waitFor("alice's full layer", height+" === 720")
	t.Logf("bob decodes 720 lines %v after his join", time.Since(start).Round(time.Millisecond))

	steps := []struct {
		pref, until, layer string
	}{
		{"{ maxHeight: 180 }", height + " > 0 && " + height + " <= 180", "q"},
		{"{}", height + " === 720", "f"},
	}
	for _, s := range steps {
		frames := bob.stat("alice/cam", "framesDecoded")
		start := time.Now()
		bob.must(fmt.Sprintf("t.calls.setPreference('alice', 'cam', %s)", s.pref))
		bob.tab.WaitFor(t, "bob's video height after "+s.pref, s.until, switchWait)
		took := time.Since(start)
		var h int
		bob.eval(height, &h)
		t.Logf("preference %s: bob's video %d lines high %v after it was set", s.pref, h, took.Round(time.Millisecond))
		bob.saw("track:layer", fmt.Sprintf("e.userId === 'alice' && e.trackName === 'cam' && e.layer === %q", s.layer))
		if now := bob.stat("alice/cam", "framesDecoded"); now <= frames {
			t.Fatalf("frames decoded did not rise across the switch: %g then %g", frames, now)
		}
		bob.rising("alice/cam", "framesDecoded", 10)
	}
}
