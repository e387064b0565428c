package server

import (
	"fmt"
	"testing"

	"github.com/callcore/callcore/internal/browser"
	"github.com/callcore/callcore/web"
)

// TestDemoPage: the demo page as people use it, in headless Chromium,
// through its form and buttons only: alice creates a call, bob joins it;
// each sees the other's tile with live video; alice's tile at bob shows
// the layer he receives, below f while small, f (or limited by alice)
// once he enlarges it (a click), below f again after;
// alice's "Mute cam" turns her
// video black at bob's, and her "Mute video" on bob's tile (an admin mute)
// shows bob's tile as muted by her, with bob's own unmute button disabled.
func TestDemoPage(t *testing.T) {
	b := browser.Start(t)
	ts := newTestServer(t, func(c *Config) { c.Static = web.FS })
	enter := func(name, action string) *browser.Tab {
		tab := b.NewUser(t, name)
		tab.Navigate(t, ts.http.URL+"/")
		tab.InstallProbe(t)
		tab.Eval(t, fmt.Sprintf(`(() => {
			document.querySelector('#name').value = %q;
			document.querySelector('#channel').value = 'demo';
			document.querySelector('#%s-btn').click();
			return true; })()`, name, action), nil)
		tab.WaitFor(t, name+" in the call", "!document.querySelector('#call').hidden", e2eWait)
		return tab
	}
	// clickIn clicks the button labelled label in user's tile.
	clickIn := func(tab *browser.Tab, user, label string) {
		t.Helper()
		tab.WaitFor(t, "button "+label, fmt.Sprintf(`[...document.querySelectorAll('.tile[data-user=%q] button')].some((b) => b.textContent === %q && !b.disabled)`, user, label), e2eWait)
		tab.Eval(t, fmt.Sprintf(`(() => { [...document.querySelectorAll('.tile[data-user=%q] button')].find((b) => b.textContent === %q).click(); return true; })()`, user, label), nil)
	}
	video := func(user string) string {
		return fmt.Sprintf("document.querySelector('.tile[data-user=%q] video')", user)
	}
	alice := enter("alice", "create")
	bob := enter("bob", "join")
	for _, c := range []struct {
		tab   *browser.Tab
		other string
	}{{alice, "bob"}, {bob, "alice"}} {
		c.tab.WaitFor(t, c.other+"'s live video", fmt.Sprintf("__probe.isNotBlack(%s)", video(c.other)), e2eWait)
	}

	// Tiles follow their video's size (followElement) and show the layer
	// received (track:layer): alice's small tile at bob's (about 200 px
	// high; her camera is 640x360) gets a layer below f; enlarged (a
	// click), it asks for 360 lines or more (f): it gets f, or says the
	// publisher limits it
	// (alice's Chromium may not send f yet: its bandwidth estimate holds it
	// back at first); small again, a layer below f.
	layer := fmt.Sprintf("document.querySelector('.tile[data-user=%q] .layer')", "alice")
	below := layer + ".textContent.match(/^[qh] \\d+×\\d+$/)"
	if err := bob.WaitForErr("alice's small tile below f", below, e2eWait); err != nil {
		var dbg string
		bob.Eval(t, "JSON.stringify(["+layer+".textContent, "+layer+".title, "+video("alice")+".clientHeight])", &dbg)
		t.Fatalf("%v: %s", err, dbg)
	}
	var small, big string
	bob.Eval(t, layer+".textContent + ' (' + "+layer+".title + ')'", &small)
	// The preferences the tile's followElement sends, from now on.
	bob.Eval(t, `(() => { const sp = app.calls.setPreference.bind(app.calls); window.prefs = [];
		app.calls.setPreference = (u, n, p) => { window.prefs.push(p.maxHeight); return sp(u, n, p); }; return true; })()`, nil)
	bob.Eval(t, video("alice")+".click()", nil)
	bob.WaitFor(t, "alice's large tile asking for 360 lines or more", "window.prefs.some((h) => h >= 360)", e2eWait)
	bob.WaitFor(t, "alice's large tile at f or limited by her",
		layer+".textContent.startsWith('f ') || "+layer+".title.includes('publisher')", e2eWait)
	bob.Eval(t, fmt.Sprintf("%s.textContent + ' (' + %s.title + ') in a tile ' + %s.clientHeight + ' px high'", layer, layer, video("alice")), &big)
	t.Logf("alice's tile at bob: %s small; %s enlarged", small, big)
	bob.Eval(t, video("alice")+".click()", nil)
	bob.WaitFor(t, "alice's small tile asking for less than 360 lines", "window.prefs.length > 0 && window.prefs[window.prefs.length - 1] < 360", e2eWait)
	bob.WaitFor(t, "alice's small tile below f again", below, e2eWait)

	clickIn(alice, "alice", "Mute cam")
	bob.WaitFor(t, "alice's video black", fmt.Sprintf("__probe.isBlack(%s)", video("alice")), e2eWait)
	clickIn(alice, "alice", "Unmute cam")
	bob.WaitFor(t, "alice's video back", fmt.Sprintf("__probe.isNotBlack(%s)", video("alice")), e2eWait)

	clickIn(alice, "bob", "Mute video")
	bob.WaitFor(t, "bob's tile says alice muted his cam", `document.querySelector('.tile.me').textContent.includes('muted by alice')`, e2eWait)
	bob.WaitFor(t, "bob's unmute disabled", `[...document.querySelectorAll('.tile.me button')].some((b) => b.textContent === 'Unmute cam' && b.disabled)`, e2eWait)
	alice.WaitFor(t, "the log line", `[...document.querySelectorAll('#log li')].some((li) => li.textContent.includes("bob's cam muted by you"))`, e2eWait)
}
