package server

import (
	"fmt"
	"testing"

	"github.com/callcore/callcore/internal/browser"
	"github.com/callcore/callcore/web"
)

// TestDemoPage: the demo page as people use it, in headless Chromium,
// through its form and buttons only: alice creates a call, bob joins it;
// each sees the other's tile with live video; alice's "Mute cam" turns her
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

	clickIn(alice, "alice", "Mute cam")
	bob.WaitFor(t, "alice's video black", fmt.Sprintf("__probe.isBlack(%s)", video("alice")), e2eWait)
	clickIn(alice, "alice", "Unmute cam")
	bob.WaitFor(t, "alice's video back", fmt.Sprintf("__probe.isNotBlack(%s)", video("alice")), e2eWait)

	clickIn(alice, "bob", "Mute video")
	bob.WaitFor(t, "bob's tile says alice muted his cam", `document.querySelector('.tile.me').textContent.includes('muted by alice')`, e2eWait)
	bob.WaitFor(t, "bob's unmute disabled", `[...document.querySelectorAll('.tile.me button')].some((b) => b.textContent === 'Unmute cam' && b.disabled)`, e2eWait)
	alice.WaitFor(t, "the log line", `[...document.querySelectorAll('#log li')].some((li) => li.textContent.includes("bob's cam muted by you"))`, e2eWait)
}
