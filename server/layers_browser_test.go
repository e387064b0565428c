package server

import (
	"encoding/json"
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

// publisherProbe adds to a publisher's page: t.out(), its video's
// outbound-rtp by rid (bytes sent, PLIs received, frame size); t.rates(ms),
// the bytes per second each rid sent over the next ms milliseconds; and,
// before the SDK's Media applies a layers push, t.honour (true by
// default: false leaves the encodings as they are), t.lastLayers (the
// last push's track name and layers) and t.lastMedia (the Media it came
// to, whose state the SDK keeps private: t.apply applies the last push
// through its public setActiveLayers).
const publisherProbe = `(async () => {
  const { Media } = await import('/sdk/media.js');
  const apply = Media.prototype.setActiveLayers;
  t.honour = true;
  Media.prototype.setActiveLayers = function (name, active) {
    t.lastLayers = [name, active];
    t.lastMedia = this;
    return t.honour ? apply.call(this, name, active) : Promise.resolve();
  };
  t.apply = () => apply.call(t.lastMedia, ...t.lastLayers);
  t.out = async () => {
    const o = {};
    (await t.calls.pc.getStats()).forEach((s) => {
      if (s.type === 'outbound-rtp' && s.kind === 'video' && s.rid)
        o[s.rid] = { bytes: s.bytesSent, pli: s.pliCount, frames: s.framesSent, w: s.frameWidth || 0, h: s.frameHeight || 0, at: s.timestamp };
    });
    return o;
  };
  t.rates = async (ms) => {
    const a = await t.out();
    await new Promise((r) => setTimeout(r, ms)); // the measuring window
    const b = await t.out(), r = {};
    for (const rid of Object.keys(b)) r[rid] = a[rid] ? (b[rid].bytes - a[rid].bytes) * 1000 / (b[rid].at - a[rid].at) : 0;
    return r;
  };
  t.plis = async () => Object.values(await t.out()).reduce((n, s) => n + (s.pli || 0), 0);
  return true;
})()`

// newLayeredPublisher opens a Chromium user whose 1280x720 fake camera
// the SDK sends as three layers, in a channel it created ("room"), with
// publisherProbe installed. Low bitrates for the layers, so that Chromium
// encodes all three from its first bandwidth estimate: its full layer
// otherwise waits for the estimate to grow (0.4 to 23 s measured, longer
// under -race), which is the publisher's matter, not the switch's.
func newLayeredPublisher(t *testing.T, b *browser.Browser, ts *testServer, name string) *user {
	t.Helper()
	// The fake camera at 1280x720 from the start: once opened at 320x240
	// (e2eSetup's), it keeps that size in the tab.
	hd := strings.Replace(e2eSetup, "width: 320, height: 240, frameRate: 15", "width: 1280, height: 720", 1)
	if hd == e2eSetup {
		t.Fatal("e2eSetup no longer opens the camera at 320x240")
	}
	u := &user{t: t, tab: b.NewUser(t, name), name: name}
	u.tab.Navigate(t, ts.http.URL+"/e2e.html")
	u.tab.InstallProbe(t)
	var ok bool
	u.eval(fmt.Sprintf(hd, name), &ok)
	u.eval(publisherProbe, &ok)
	var size string
	u.eval("(({ width, height }) => width + 'x' + height)(t.media.getVideoTracks()[0].getSettings())", &size)
	if size != "1280x720" {
		t.Fatalf("%s's fake camera is %s", name, size)
	}
	u.must("t.calls.create('room', { cam: t.tracks().cam })")
	var rids int
	u.eval("t.calls.pc.getSenders()[0].getParameters().encodings.filter((e) => e.rid).length", &rids)
	if rids != 3 {
		var dbg string
		u.eval("JSON.stringify(t.calls.pc.getSenders().map((s) => s.getParameters().encodings))", &dbg)
		t.Log(dbg)
		t.Fatalf("%s's camera is sent as %d layers", name, rids)
	}
	u.must(`(async () => {
	  const s = t.calls.pc.getSenders()[0], p = s.getParameters();
	  p.encodings.forEach((e, i) => { e.maxBitrate = [60000, 120000, 250000][i]; });
	  await s.setParameters(p);
	  return true;
	})()`)
	return u
}

// rates returns the bytes per second each of the publisher's layers sent
// over the next ms milliseconds.
func (u *user) rates(ms int) map[string]float64 {
	u.t.Helper()
	r := map[string]float64{}
	u.eval(fmt.Sprintf("t.rates(%d)", ms), &r)
	return r
}

// frameSampler adds to a subscriber's page: t.sample(key) starts logging
// the frames the remote track's <video> presents (requestVideoFrameCallback:
// when, and the picture's height); t.stall(from, to) is the longest time
// in ms, between from and to (performance.now()), with no new frame.
const frameSampler = `(() => {
  t.frameLog = [];
  t.sample = (key) => {
    const v = document.getElementById(t.els[key]);
    const f = (now, m) => {
      t.frameLog.push([now, m.presentedFrames, m.height]);
      v.requestVideoFrameCallback(f);
    };
    v.requestVideoFrameCallback(f);
    return true;
  };
  t.stall = (from, to) => {
    let last = from, longest = 0;
    for (const [at] of t.frameLog) {
      if (at < from || at > to) continue;
      longest = Math.max(longest, at - last);
      last = at;
    }
    return Math.max(longest, to - last);
  };
  return true;
})()`

// TestBrowserLayersFollowThePreference: alice publishes a 1280x720 fake
// camera from Chromium through the SDK, which sends it as three layers;
// bob, in Chromium too, decodes the full one, then sets max heights of
// 180, 720 and 360, pauses, and 720 again: his video's height follows
// within switchWait each time, track:layer tells him, and his frames
// decoded keep rising across the switches, never standing still for more
// than 1 s (3 s under -race) around one; paused, no packet reaches him.
// alice's Chromium receives at most 3 PLIs a switch (the resume after the
// pause, her layers stopped for having no receiver, at most 4).
func TestBrowserLayersFollowThePreference(t *testing.T) {
	b := browser.Start(t)
	ts := newTestServer(t, func(c *Config) { c.Static = e2eFS(t) })
	alice := newLayeredPublisher(t, b, ts, "alice")
	bob := newE2EUser(t, b, ts, "bob")
	bob.must("(t.calls.on('track:layer', (e) => t.events.push({ name: 'track:layer', at: performance.now(), ...e })), true)")
	var ok bool
	bob.eval(frameSampler, &ok)
	bob.must("t.calls.join('room', {})")
	bob.waitFor("alice's video", "!!t.els['alice/cam']")
	height := "document.getElementById(t.els['alice/cam']).videoHeight"
	width := "document.getElementById(t.els['alice/cam']).videoWidth"
	start := time.Now()
	if err := bob.tab.WaitForErr("alice's full layer", height+" === 720", e2eWait); err != nil {
		var dbg string
		alice.eval("t.out().then((o) => JSON.stringify([t.lastLayers, t.calls.pc.getSenders()[0].getParameters().encodings, o]))", &dbg)
		var h int
		bob.eval(height, &h)
		t.Fatalf("%v; bob's video %d high; alice: %s", err, h, dbg)
	}
	t.Logf("bob decodes 720 lines %v after his join", time.Since(start).Round(time.Millisecond))
	bob.eval("t.sample('alice/cam')", &ok)
	bob.rising("alice/cam", "framesDecoded", 10)
	// The longest stall of the full layer with no switch, for comparison.
	var from, to, steady float64
	bob.eval("performance.now()", &from)
	bob.rising("alice/cam", "framesDecoded", 60)
	bob.eval("performance.now()", &to)
	bob.eval(fmt.Sprintf("t.stall(%f, %f)", from, to), &steady)
	t.Logf("with no switch, bob's longest stall over %.1f s is %.0f ms", (to-from)/1000, steady)

	// The longest stall allowed around a switch: 1 s (3 s under -race).
	// Measured without -race: 80 to 170 ms with no switch; 170 to 750 ms
	// around a switch (the old layer flows until the new one's key frame,
	// but the publisher's Chromium, its full layer capped at 250 kbps,
	// sends that layer's frames sparsely around a key-frame request or a
	// layer resumed).
	maxStall := 1000.0
	if raceSlowdown > 1 {
		maxStall = 3000
	}
	steps := []struct {
		pref, until, layer string
		w, h               int
		paused             bool
	}{
		{"{ maxHeight: 180 }", height + " > 0 && " + height + " <= 180", "q", 320, 180, false},
		{"{ maxHeight: 720 }", height + " === 720", "f", 1280, 720, false},
		{"{ maxHeight: 360 }", height + " === 360", "h", 640, 360, false},
		{"{ paused: true }", "", "", 0, 0, true},
		{"{ maxHeight: 720 }", height + " === 720", "f", 1280, 720, false},
	}
	var report []string
	resumed := false
	for _, s := range steps {
		frames := bob.stat("alice/cam", "framesDecoded")
		var plis, from float64
		alice.eval("t.plis()", &plis)
		bob.eval("performance.now()", &from)
		start := time.Now()
		bob.must(fmt.Sprintf("t.calls.setPreference('alice', 'cam', %s)", s.pref))
		if s.paused {
			bob.saw("track:layer", "e.userId === 'alice' && e.trackName === 'cam' && e.layer === null && e.limitedBy === 'preference'")
			bob.still("alice/cam", "packetsReceived", 0)
			bob.still("alice/cam", "framesDecoded", 0)
			t.Logf("paused: no packet for bob from %v after the preference", time.Since(start).Round(time.Millisecond))
			report = append(report, "paused")
			resumed = true
			continue
		}
		bob.tab.WaitFor(t, "bob's video height after "+s.pref, s.until, switchWait)
		took := time.Since(start)
		var w, h int
		bob.eval(width, &w)
		bob.eval(height, &h)
		if w != s.w || h != s.h {
			t.Errorf("preference %s: bob decodes %dx%d, want %dx%d", s.pref, w, h, s.w, s.h)
		}
		bob.saw("track:layer", fmt.Sprintf("e.userId === 'alice' && e.trackName === 'cam' && e.layer === %q && e.width === %d && e.height === %d",
			s.layer, s.w, s.h))
		if now := bob.stat("alice/cam", "framesDecoded"); now <= frames {
			t.Fatalf("frames decoded did not rise across the switch: %g then %g", frames, now)
		}
		bob.rising("alice/cam", "framesDecoded", 15) // a second of frames after it
		var to, stall, plisAfter float64
		bob.eval("performance.now()", &to)
		bob.eval(fmt.Sprintf("t.stall(%f, %f)", from, to), &stall)
		alice.eval("t.plis()", &plisAfter)
		n := plisAfter - plis
		line := fmt.Sprintf("%s → %dx%d in %v, %g PLIs at alice, longest stall %.0f ms",
			s.pref, w, h, took.Round(time.Millisecond), n, stall)
		t.Log(line)

		report = append(report, line)
		limit := 3.0
		if resumed {
			limit = 4 // her encoders were stopped: the restart adds one
		}
		if n > limit {
			t.Errorf("preference %s: %g PLIs at alice for one switch, want at most %g", s.pref, n, limit)
		}
		if !resumed && stall > maxStall {
			t.Errorf("preference %s: bob's frames decoded stood still for %.0f ms around the switch, want at most %.0f", s.pref, stall, maxStall)
		}
		resumed = false
	}
	out, _ := json.Marshal(report)
	t.Logf("switches: %s", out)
}
