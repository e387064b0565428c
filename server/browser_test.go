package server

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"testing/fstest"
	"time"

	"github.com/callcore/callcore/internal/browser"
	"github.com/callcore/callcore/web"
)

// remoteUfrag is the ICE username fragment of the server's current
// description, in the SDK's peer connection.
const remoteUfrag = "t.calls.pc.currentRemoteDescription.sdp.match(/a=ice-ufrag:(\\S+)/)[1]"

// e2eWait bounds each wait for something a browser shows.
const e2eWait = 30 * time.Second

// e2ePage is the blank page the browser tests load: the SDK is imported
// from the server like any app would.
const e2ePage = `<!doctype html><meta charset="utf-8"><title>callcore e2e</title><body></body>`

// e2eSetup loads the SDK, takes the fake camera and microphone at
// 320×240, connects as the tab's user and records every event. Remote
// tracks are rendered (video muted, audio played) as they arrive.
const e2eSetup = `(async () => {
  const { Calls } = await import('/sdk/calls.js');
  const media = await navigator.mediaDevices.getUserMedia({
    video: { width: 320, height: 240, frameRate: 15 }, audio: true });
  const res = await fetch('/dev/token?user=%s&create=1');
  const { token } = await res.json();
  const calls = await Calls.connect(location.origin, token);
  const t = window.t = { Calls, calls, media, token, events: [], remote: {}, els: {}, samples: {} };
  t.tracks = () => ({ cam: media.getVideoTracks()[0], mic: media.getAudioTracks()[0] });
  for (const name of ['track:add', 'track:mute', 'track:del', 'cnl:create', 'cnl:config',
      'cnl:delete', 'cnl:req', 'user:join', 'user:left', 'user:add', 'user:del', 'user:mod',
      'newcall', 'bye', 'status', 'disconnected', 'reconnected']) {
    calls.on(name, (e) => {
      const { track, ...rest } = e || {};
      t.events.push({ name, ...rest });
      if (name === 'track:add' && track) {
        const key = e.userId + '/' + e.trackName;
        t.remote[key] = track;
        t.els[key] = __probe.attach(track);
      }
    });
  }
  // stats of one remote track, by "user/track"
  t.stats = (key) => __probe.trackStats(calls.pc, t.remote[key]);
  // stable reports whether the stat has not grown by more than eps over
  // the last ms milliseconds of calls (a condition to poll).
  t.stable = async (key, field, ms, eps) => {
    const v = (await t.stats(key))[field], now = performance.now();
    const s = (t.samples[key + field] ||= []);
    s.push([now, v]);
    while (s.length > 1 && now - s[1][0] >= ms) s.shift();
    return now - s[0][0] >= ms && v - s[0][1] <= eps;
  };
  t.forget = (key, field) => { delete t.samples[key + field]; return true; };
  t.saw = (name, pred) => t.events.some((e) => e.name === name && pred(e));
  t.call = async (f) => { try { return { ok: await f() }; } catch (e) { return { code: e.code || String(e) }; } };
  return true;
})()`

// user is one browser user of the e2e test.
type user struct {
	t    *testing.T
	tab  *browser.Tab
	name string
}

func (u *user) eval(js string, out any) { u.t.Helper(); u.tab.Eval(u.t, js, out) }

func (u *user) waitFor(desc, js string) {
	u.t.Helper()
	u.tab.WaitFor(u.t, u.name+": "+desc, js, e2eWait)
}

// do runs an SDK call (an expression using t.calls) and returns the error
// code it rejected with, "" when it resolved with {status: true} or
// anything else.
func (u *user) do(js string) string {
	u.t.Helper()
	var r struct {
		OK   json.RawMessage `json:"ok"`
		Code string          `json:"code"`
	}
	u.eval(fmt.Sprintf("t.call(() => %s)", js), &r)
	return r.Code
}

func (u *user) must(js string) {
	u.t.Helper()
	if code := u.do(js); code != "" {
		u.t.Fatalf("%s: %s failed with %s", u.name, js, code)
	}
}

func (u *user) want(code, js string) {
	u.t.Helper()
	if got := u.do(js); got != code {
		u.t.Fatalf("%s: %s: got %q, want %q", u.name, js, got, code)
	}
}

// stat reads one field of a remote track's stats, once the track is
// received on the current connection.
func (u *user) stat(key, field string) float64 {
	u.t.Helper()
	u.waitFor(key+" on the current connection",
		fmt.Sprintf("!!t.calls.pc && t.calls.pc.getReceivers().some((r) => r.track === t.remote[%q])", key))
	var v float64
	u.eval(fmt.Sprintf("t.stats(%q).then((s) => s[%q])", key, field), &v)
	return v
}

// rising waits for a remote track's stat to grow by more than by.
func (u *user) rising(key, field string, by float64) {
	u.t.Helper()
	v := u.stat(key, field)
	u.waitFor(fmt.Sprintf("%s %s rising past %g", key, field, v+by),
		fmt.Sprintf("t.stats(%q).then((s) => s[%q] > %g)", key, field, v+by))
}

// still waits until a remote track's stat has stopped growing (by at most
// eps over a second).
func (u *user) still(key, field string, eps float64) {
	u.t.Helper()
	u.eval(fmt.Sprintf("t.forget(%q, %q)", key, field), nil)
	u.waitFor(fmt.Sprintf("%s %s to stop", key, field), fmt.Sprintf("t.stable(%q, %q, 1000, %g)", key, field, eps))
}

// sees waits until the user receives key's video (frames decoded rising,
// pixels not black) and, for audio, energy rising.
func (u *user) sees(from string) {
	u.t.Helper()
	u.waitFor("a track from "+from, fmt.Sprintf("!!t.remote[%q] && !!t.remote[%q]", from+"/cam", from+"/mic"))
	u.rising(from+"/cam", "framesDecoded", 10)
	u.waitFor(from+"'s video not black", fmt.Sprintf("__probe.isNotBlack(t.els[%q])", from+"/cam"))
	u.rising(from+"/mic", "totalAudioEnergy", 0.001)
}

func (u *user) saw(name, pred string) {
	u.t.Helper()
	u.waitFor("event "+name+" where "+pred, fmt.Sprintf("t.saw(%q, (e) => %s)", name, pred))
}

// e2eFS is the SDK and the demo from package web, plus the blank test page.
func e2eFS(t *testing.T) fs.FS {
	m := fstest.MapFS{"e2e.html": {Data: []byte(e2ePage)}}
	err := fs.WalkDir(web.FS, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(web.FS, p)
		m[p] = &fstest.MapFile{Data: b}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// newE2EUser opens a browser context for name on the test page, with the
// SDK connected (e2eSetup).
func newE2EUser(t *testing.T, b *browser.Browser, ts *testServer, name string) *user {
	t.Helper()
	u := &user{t: t, tab: b.NewUser(t, name), name: name}
	u.tab.Navigate(t, ts.http.URL+"/e2e.html")
	u.tab.InstallProbe(t)
	var ok bool
	u.eval(fmt.Sprintf(e2eSetup, name), &ok)
	return u
}

// TestBrowserCall: two users in headless Chromium, through the SDK only,
// in one call on the reference server: media both ways, self mute (black
// video, silent audio), admin mute (not forwarded, mutedBy and reason, no
// self unmute), recv cleared and restored, a lost connection recovered,
// removal and re-admission, and deletion.
func TestBrowserCall(t *testing.T) {
	b := browser.Start(t)
	ts := newTestServer(t, func(c *Config) {
		c.Static = e2eFS(t)
		c.WebRTC.UDPPort = freeUDPPort(t) // single-port mode: the batched, direct send path
		c.ResumeGrace = 10 * time.Second  // the lost connection below is resumed
	})
	if code, _ := ts.get(t, "/sdk/calls.js"); code != http.StatusOK {
		t.Fatalf("GET /sdk/calls.js: %d", code)
	}
	alice, bob := newE2EUser(t, b, ts, "alice"), newE2EUser(t, b, ts, "bob")

	// Both in the call; each sees and hears the other.
	alice.must("t.calls.create('room', t.tracks())")
	bob.must("t.calls.join('room', t.tracks())")
	alice.saw("user:join", "e.userId === 'bob'")
	alice.sees("bob")
	bob.sees("alice")
	var status string
	bob.eval("t.calls.status", &status)
	if status != "connected" {
		t.Errorf("bob's status %q", status)
	}

	t.Log("getStats: the server's view of bob's tracks, through the SDK")
	var st struct {
		OK   statsResult `json:"ok"`
		Code string      `json:"code"`
	}
	bob.eval("t.call(() => t.calls.getStats())", &st)
	if st.Code != "" || st.OK.Status != "connected" || len(st.OK.Sent) != 2 || len(st.OK.Received) != 2 {
		t.Errorf("bob's getStats: %+v", st)
	}
	for _, r := range st.OK.Received {
		// Only a layered track (the SDK layers a camera of 640x360 or
		// more) has a layer.
		if r.UserID != "alice" || r.Packets == 0 || (r.Layer != nil && (r.Kind != "video" || *r.Layer < 0 || *r.Layer > 2)) {
			t.Errorf("bob receives: %+v", r)
		}
	}

	t.Log("muteTracks: alice's video turns black and her audio silent at bob's, then both come back")
	alice.must("t.calls.muteTracks(['cam', 'mic'], true)")
	bob.saw("track:mute", "e.userId === 'alice' && e.trackName === 'cam' && e.value === true")
	bob.waitFor("alice's video black", "__probe.isBlack(t.els['alice/cam'])")
	bob.rising("alice/cam", "framesDecoded", 3) // empty frames keep coming
	bob.still("alice/mic", "totalAudioEnergy", 1e-6)
	alice.must("t.calls.muteTracks(['cam', 'mic'], false)")
	bob.waitFor("alice's video back", "__probe.isNotBlack(t.els['alice/cam'])")
	bob.rising("alice/mic", "totalAudioEnergy", 0.001)

	t.Log("muteUser: alice mutes bob's video and audio; they stop reaching her; bob cannot unmute")
	alice.must("t.calls.muteUser('bob', 'video', true, 'too bright')")
	alice.must("t.calls.muteUser('bob', 'audio', true, 'too loud')")
	for _, u := range []*user{alice, bob} {
		u.saw("track:mute", "e.userId === 'bob' && e.trackName === 'cam' && e.value === true && e.mutedBy === 'alice' && e.muteReason === 'too bright'")
	}
	alice.still("bob/cam", "framesDecoded", 0)
	alice.waitFor("bob's video black", "__probe.isBlack(t.els['bob/cam'])")
	alice.still("bob/mic", "totalAudioEnergy", 1e-6)
	bob.want("UnAuthorized", "t.calls.muteTracks('cam', false)")
	alice.must("t.calls.muteUser('bob', 'video', false)")
	alice.must("t.calls.muteUser('bob', 'audio', false)")
	alice.sees("bob")

	t.Log("modUsers: bob's recv cleared: he stops receiving but stays connected; restored: resumes")
	alice.must("t.calls.modUsers([{id: 'bob', mode: 2}])")
	bob.saw("user:mod", "e.users.some((u) => u.id === 'bob' && u.mode === 2)")
	bob.still("alice/cam", "framesDecoded", 0)
	bob.eval("t.calls.status", &status)
	if status != "connected" {
		t.Errorf("bob's status with recv cleared: %q", status)
	}
	alice.rising("bob/cam", "framesDecoded", 5) // bob still sends
	alice.must("t.calls.modUsers([{id: 'bob', mode: 6}])")
	bob.rising("alice/cam", "framesDecoded", 10)

	t.Log("a lost connection: bob's WebSocket is cut; the SDK reconnects and resumes the stay: nobody sees him leave, media goes on")
	bob.eval("(t.pcBeforeCut = t.calls.pc, true)", nil)
	var mark int
	alice.eval("t.events.length", &mark)
	aliceSeen := alice.stat("bob/cam", "framesDecoded")
	bobSeen := bob.stat("alice/cam", "framesDecoded")
	ts.cut("bob")
	alice.rising("bob/cam", "framesDecoded", 5) // while bob reconnects
	bob.rising("alice/cam", "framesDecoded", 5)
	bob.saw("reconnected", "e.resumed === true")
	bob.waitFor("bob still in the room on the same peer connection", "t.calls.channel === 'room' && t.calls.pc === t.pcBeforeCut")
	alice.rising("bob/cam", "framesDecoded", 10)
	bob.rising("alice/cam", "framesDecoded", 10)
	if v := alice.stat("bob/cam", "framesDecoded"); v <= aliceSeen+15 {
		t.Errorf("alice's framesDecoded of bob/cam: %g, was %g before the cut", v, aliceSeen)
	}
	if v := bob.stat("alice/cam", "framesDecoded"); v <= bobSeen+15 {
		t.Errorf("bob's framesDecoded of alice/cam: %g, was %g before the cut", v, bobSeen)
	}
	var left bool
	alice.eval(fmt.Sprintf("t.events.slice(%d).some((e) => (e.name === 'user:left' && e.userId === 'bob') || (e.name === 'track:del' && e.userId === 'bob'))", mark), &left)
	if left {
		t.Error("alice saw bob leave (or his tracks go) after the cut")
	}
	var same bool
	bob.eval("t.calls.pc === t.pcBeforeCut && !t.events.some((e) => e.name === 'track:del' && e.userId === 'alice')", &same)
	if !same {
		t.Error("bob's peer connection or remote tracks changed across the resume")
	}

	t.Log("a server-initiated ICE restart on the direct send path: bob's browser answers with new candidates, and media follows the new pair")
	const localPort = `t.calls.pc.getStats().then((r) => { let pair; r.forEach((s) => { if (s.type === 'transport') pair = r.get(s.selectedCandidatePairId); });
		return pair && pair.state === 'succeeded' ? r.get(pair.localCandidateId).port : 0; })`
	var port0 int
	bob.eval(localPort, &port0)
	if port0 == 0 {
		t.Fatal("bob has no selected candidate pair before the restart")
	}
	bob.eval("(t.ufragBefore = "+remoteUfrag+", true)", nil)
	if err := ts.holder("room", "bob").peer.RestartICE(); err != nil {
		t.Fatal(err)
	}
	bob.waitFor("new server credentials", remoteUfrag+" !== t.ufragBefore")
	bob.waitFor("a pair on a new local port", fmt.Sprintf("%s.then((p) => p !== 0 && p !== %d)", localPort, port0))
	alice.rising("bob/cam", "framesDecoded", 10)
	bob.rising("alice/cam", "framesDecoded", 10)
	bob.rising("alice/mic", "totalAudioEnergy", 0.001)

	t.Log("delUsers: bob is disconnected and cannot join; addUsers lets him back")
	alice.must("t.calls.delUsers(['bob'])")
	bob.saw("user:del", "e.users.includes('bob')")
	bob.waitFor("bob out of the call", "t.calls.channel === null && t.calls.pc === null")
	bob.want("NotMember", "t.calls.join('room', t.tracks())")
	alice.must("t.calls.addUsers(['bob'])")
	bob.saw("newcall", "e.channelId === 'room' && e.senderId === 'alice'")
	bob.must("t.calls.join('room', t.tracks())")
	bob.rising("alice/cam", "framesDecoded", 5)

	t.Log("delete: only the owner; bob gets cnl:delete and is disconnected")
	bob.want("UnAuthorized", "t.calls.delete('mine')")
	alice.must("t.calls.delete('the end')")
	bob.saw("cnl:delete", "e.senderId === 'alice' && e.reason === 'the end'")
	bob.waitFor("bob disconnected", "t.calls.channel === null && t.calls.pc === null")
	alice.waitFor("alice disconnected", "t.calls.channel === null")
	if n := ts.Registry().Len(); n != 0 {
		t.Errorf("%d channels left", n)
	}
}

// cut drops every WebSocket of user at once, as a network failure would.
func (ts *testServer) cut(user string) {
	ts.mu.Lock()
	var victims []*session
	for ss := range ts.byUser[user] {
		victims = append(victims, ss)
	}
	ts.mu.Unlock()
	for _, ss := range victims {
		ss.kill()
	}
}

// freeUDPPort returns a UDP port free on 127.0.0.1 a moment ago.
func freeUDPPort(t *testing.T) int {
	t.Helper()
	c, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port
}

// TestBrowserICERestart: the network between the browsers and the
// server's UDP port fails for a while, the WebSocket stays up. Each SDK
// sees ICE go down and restarts it (new credentials through the
// server); once the network is back, media flows again on the same peer
// connections, and nobody has left the call.
func TestBrowserICERestart(t *testing.T) {
	b := browser.Start(t)
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	lossy := &lossyConn{PacketConn: conn}
	ts := newTestServer(t, func(c *Config) {
		c.Static = e2eFS(t)
		c.WebRTC.PacketConn = lossy
	})
	alice, bob := newE2EUser(t, b, ts, "alice"), newE2EUser(t, b, ts, "bob")
	alice.must("t.calls.create('room', t.tracks())")
	bob.must("t.calls.join('room', t.tracks())")
	alice.sees("bob")
	bob.sees("alice")
	var mark int
	alice.eval("t.events.length", &mark)
	for _, u := range []*user{alice, bob} {
		u.eval("(t.pc0 = t.calls.pc, t.ufrag0 = "+remoteUfrag+", true)", nil)
	}

	t.Log("the network fails: every datagram to and from the server's port is dropped")
	lossy.cut.Store(true)
	for _, u := range []*user{alice, bob} {
		u.waitFor("ICE down", "['disconnected', 'failed'].includes(t.calls.pc.iceConnectionState)")
	}
	for _, u := range []*user{alice, bob} {
		u.waitFor("an ICE restart: new server credentials", remoteUfrag+" !== t.ufrag0")
	}
	t.Log("the network is back")
	lossy.cut.Store(false)
	for _, u := range []*user{alice, bob} {
		u.waitFor("ICE up", "['connected', 'completed'].includes(t.calls.pc.iceConnectionState)")
	}
	// Video from bob to alice crosses the server both ways (media in,
	// alice's PLIs out to bob): when it does not come back, both sides'
	// RTP statistics say where it stopped.
	v0 := alice.stat("bob/cam", "framesDecoded")
	if err := alice.tab.WaitForErr("bob's video at alice", fmt.Sprintf("t.stats('bob/cam').then((s) => s.framesDecoded > %g)", v0+10), e2eWait); err != nil {
		alice.logRTP()
		bob.logRTP()
		t.Fatal(err)
	}
	bob.rising("alice/cam", "framesDecoded", 10)
	alice.rising("bob/mic", "totalAudioEnergy", 0.001)
	for _, u := range []*user{alice, bob} {
		var same bool
		u.eval("t.calls.pc === t.pc0 && t.calls.channel === 'room' && t.calls.status === 'connected'", &same)
		if !same {
			t.Errorf("%s: a new peer connection, out of the room or not connected after the restart", u.name)
		}
	}
	var left bool
	alice.eval(fmt.Sprintf("t.events.slice(%d).some((e) => ['user:left', 'track:del', 'disconnected'].includes(e.name))", mark), &left)
	if left {
		t.Error("alice saw bob leave, a track go, or was disconnected across the ICE restart")
	}
	if n := lossy.dropped.Load(); n == 0 {
		t.Error("nothing was dropped")
	}
}

// lossyConn is the server's UDP socket with a switch that drops every
// datagram both ways: the network failing between the clients and the
// server while the WebSocket stays up.
type lossyConn struct {
	net.PacketConn
	cut     atomic.Bool
	dropped atomic.Int64
}

func (c *lossyConn) ReadFrom(b []byte) (int, net.Addr, error) {
	for {
		n, addr, err := c.PacketConn.ReadFrom(b)
		if err != nil || !c.cut.Load() {
			return n, addr, err
		}
		c.dropped.Add(1)
	}
}

func (c *lossyConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	if c.cut.Load() {
		c.dropped.Add(1)
		return len(b), nil
	}
	return c.PacketConn.WriteTo(b, addr)
}

// logRTP logs the user's RTP statistics and selected candidate pair.
func (u *user) logRTP() {
	var out any
	u.eval(`t.calls.pc.getStats().then((r) => { const o = []; r.forEach((s) => {
		if (s.type === 'inbound-rtp' || s.type === 'outbound-rtp') o.push({type: s.type, kind: s.kind, ssrc: s.ssrc,
			packets: s.packetsReceived ?? s.packetsSent, lost: s.packetsLost, nack: s.nackCount, pli: s.pliCount, fir: s.firCount,
			framesReceived: s.framesReceived, framesDecoded: s.framesDecoded, keyDec: s.keyFramesDecoded, dropped: s.framesDropped,
			framesEncoded: s.framesEncoded, keyEnc: s.keyFramesEncoded, ql: s.qualityLimitationReason, active: s.active, target: s.targetBitrate});
		if (s.type === 'candidate-pair' && s.nominated) o.push({type: 'pair', state: s.state, bytesSent: s.bytesSent, bytesReceived: s.bytesReceived, rtt: s.currentRoundTripTime, out: s.availableOutgoingBitrate});
	}); return o; })`, &out)
	u.t.Logf("%s stats: %v", u.name, out)
}

// TestBrowserJoinRequest: in a call with joinRequest on, an outsider's join
// through the SDK waits while the owner sees cnl:req; addUsers approves it
// (the join resolves and media arrives); once removed, the user's join is
// refused at once (NotMember). (A request withdrawn by leave is tested
// with pion clients: TestJoinRequestWithdrawn.)
func TestBrowserJoinRequest(t *testing.T) {
	b := browser.Start(t)
	ts := newTestServer(t, func(c *Config) { c.Static = e2eFS(t) })
	alice, carol := newE2EUser(t, b, ts, "alice"), newE2EUser(t, b, ts, "carol")
	alice.must("t.calls.create('room', t.tracks(), {joinRequest: true})")

	t.Log("carol asks; alice approves with addUsers; carol is in and sees alice")
	carol.eval("(t.pending = t.call(() => t.calls.join('room')), true)", nil)
	alice.saw("cnl:req", "e.userId === 'carol'")
	var settled bool
	carol.eval("Promise.race([t.pending.then(() => true), new Promise((r) => setTimeout(() => r(false), 300))])", &settled)
	if settled {
		t.Fatal("carol's join settled before anyone answered her request")
	}
	alice.must("t.calls.addUsers(['carol'])")
	var r struct {
		Code string `json:"code"`
	}
	carol.eval("t.pending", &r)
	if r.Code != "" {
		t.Fatalf("carol's approved join: %s", r.Code)
	}
	alice.saw("user:join", "e.userId === 'carol'")
	carol.waitFor("alice's camera", "!!t.remote['alice/cam']")
	carol.rising("alice/cam", "framesDecoded", 10)

	t.Log("carol leaves and alice removes her: her next join is refused at once, not a request")
	carol.must("t.calls.leave()")
	alice.must("t.calls.delUsers(['carol'])")
	var code string
	carol.eval("t.call(() => t.calls.join('room')).then((r) => r.code || '')", &code)
	if code != "NotMember" {
		t.Fatalf("a removed user's join: %q, want NotMember", code)
	}
}
