package server

import (
	"fmt"
	"testing"
	"time"

	"github.com/pion/rtp"
	pion "github.com/pion/webrtc/v4"

	"github.com/callcore/callcore/internal/browser"
)

// crossOffers makes the page's WebSockets cross the SDK's offer requests
// with the server's offer pushes, as when each side offers before the
// other's offer has reached it. With holdPushes, an offer push that
// arrives before the first offer request was sent is held until it is
// sent. Each of the first holdOffers offer requests is held until the next
// offer push arrives. A held push is delivered right after the request.
// window.__held counts the pushes held, window.__heldOffers the requests
// held, window.__waiting whether a request is held now.
const crossOffers = `((holdPushes, holdOffers) => {
  const WS = globalThis.WebSocket;
  window.__held = 0;
  window.__heldOffers = 0;
  window.__waiting = false;
  globalThis.WebSocket = class extends WS {
    set onmessage(f) {
      this.__pushes = [];
      super.onmessage = (ev) => {
        let m = null;
        try { m = JSON.parse(ev.data); } catch (e) {}
        if (m && m.type === 'offer' && m.id === undefined && (this.__request || holdPushes && !this.__sent)) {
          window.__held++;
          this.__pushes.push(() => f(ev));
          if (this.__request) this.__request();
          return;
        }
        f(ev);
      };
    }
    get onmessage() { return super.onmessage; }
    send(d) {
      let m = null;
      try { m = JSON.parse(d); } catch (e) {}
      if (!m || m.type !== 'offer') return super.send(d);
      const release = () => {
        this.__request = null;
        window.__waiting = false;
        this.__sent = true;
        super.send(d);
        const held = this.__pushes || [];
        this.__pushes = [];
        setTimeout(() => held.forEach((deliver) => deliver()), 0);
      };
      if (window.__heldOffers < holdOffers && !(this.__pushes || []).length) {
        window.__heldOffers++;
        window.__waiting = true;
        this.__request = release;
        return;
      }
      release();
    }
  };
  return true;
})(%v, %d)`

// newCrossingUser is newE2EUser whose first offer crosses the server's
// first offer (crossOffers).
func newCrossingUser(t *testing.T, b *browser.Browser, ts *testServer, name string, holdPushes bool, holdOffers int) *user {
	t.Helper()
	u := &user{t: t, tab: b.NewUser(t, name), name: name}
	u.tab.Navigate(t, ts.http.URL+"/e2e.html")
	u.tab.InstallProbe(t)
	var ok bool
	u.eval(fmt.Sprintf(crossOffers, holdPushes, holdOffers), &ok)
	u.eval(fmt.Sprintf(e2eSetup, name), &ok)
	return u
}

// held is how many offer pushes and requests crossOffers held in the
// user's page.
func (u *user) held() (pushes, requests int) {
	u.t.Helper()
	var n struct{ Pushes, Requests int }
	u.eval("({pushes: window.__held, requests: window.__heldOffers})", &n)
	return n.Pushes, n.Requests
}

// TestBrowserJoinOfferCrossesServerOffer: a Chromium user joins, with its
// own tracks, a call where a pion user already publishes video, so the
// server offers that video from the join on; the server's offer and the
// SDK's first offer cross (the server replies Glare, the SDK rolls back
// and answers the server's offer, then offers its tracks again). The user
// decodes the video and is connected.
func TestBrowserJoinOfferCrossesServerOffer(t *testing.T) {
	b := browser.Start(t)
	ts := newTestServer(t, func(c *Config) { c.Static = e2eFS(t) })
	videoCall(t, ts) // alice publishes on channel c, bob receives
	carol := newCrossingUser(t, b, ts, "carol", true, 0)
	start := time.Now()
	carol.must("t.calls.join('c', t.tracks())")
	d := carol.timeToVideo("alice", start)
	carol.waitFor("her media connected", "t.calls.status === 'connected'")
	if pushes, _ := carol.held(); pushes == 0 {
		t.Fatal("the offers did not cross: no server offer arrived before carol's")
	}
	t.Logf("carol decoded alice's video %v after her join", d.Round(time.Millisecond))
}

// TestBrowserCreateOfferCrossesServerOffer: a Chromium user creates a
// call with its tracks and its first offer is held in the page until the
// server's first offer arrives: a pion member joins and publishes video
// meanwhile, so the server offers it to the creator, and the two offers
// cross (Glare, rollback, the server's offer answered, the creator's
// tracks offered again). The creator decodes the member's video, and the
// member receives the creator's camera.
func TestBrowserCreateOfferCrossesServerOffer(t *testing.T) {
	b := browser.Start(t)
	ts := newTestServer(t, func(c *Config) { c.Static = e2eFS(t) })
	carol := newCrossingUser(t, b, ts, "carol", false, 1)
	start := time.Now()
	carol.must("t.calls.create('room', t.tracks())")

	alice := login(t, ts, "alice", false)
	alice.must("join", joinData{ChannelID: "room", Tracks: []trackData{{Name: "cam", Kind: "video", TrackID: "alice-cam"}}})
	pa := newPeer(t, alice)
	stop := make(chan struct{})
	t.Cleanup(func() { close(stop) }) // before pa's close, which waits for the sender
	pa.sendVP8("alice-cam", stop)
	pa.offer()

	d := carol.timeToVideo("alice", start)
	carol.waitFor("her media connected", "t.calls.status === 'connected'")
	if pushes, requests := carol.held(); pushes == 0 || requests == 0 {
		t.Fatalf("%d server offers and %d of carol's held, want both", pushes, requests)
	}
	pa.answer()
	waitFor(t, "carol's media at alice", func() bool { return pa.received.Load() >= 5 })
	t.Logf("carol decoded alice's video %v after her create", d.Round(time.Millisecond))
}

// TestBrowserSecondOfferCrossesServerOffer: a Chromium user's first two
// offers each cross one of the server's. carol creates a call with her
// tracks; a pion member publishes video, then audio only once carol's
// second offer is out. The server's offer of the video crosses carol's
// first offer (Glare: she rolls back and answers it), and its offer of
// the audio, its first audio section, crosses her second offer, rolled
// back in turn. Chromium keeps the header extension ids of that rolled-
// back offer (toffset at 1 in its video section), so a server offer that
// proposed an id of its own for the audio level (pion's 1) would be
// refused and carol's peer would stay broken. carol decodes the member's
// video, receives its audio, and her media connection is connected.
func TestBrowserSecondOfferCrossesServerOffer(t *testing.T) {
	b := browser.Start(t)
	ts := newTestServer(t, func(c *Config) { c.Static = e2eFS(t) })
	carol := newCrossingUser(t, b, ts, "carol", false, 2)
	start := time.Now()
	carol.must("t.calls.create('room', t.tracks())")

	alice := login(t, ts, "alice", false)
	alice.must("join", joinData{ChannelID: "room", Tracks: []trackData{
		{Name: "cam", Kind: "video", TrackID: "alice-cam"}, {Name: "mic", Kind: "audio", TrackID: "alice-mic"}}})
	pa := newPeer(t, alice)
	stop, audio := make(chan struct{}), make(chan struct{})
	t.Cleanup(func() { close(stop) }) // before pa's close, which waits for the senders
	pa.sendVP8("alice-cam", stop)
	pa.sendOpusAfter("alice-mic", audio, stop)
	pa.offer()

	carol.waitFor("her second offer held", "window.__heldOffers === 2 && window.__waiting")
	close(audio)
	d := carol.timeToVideo("alice", start)
	carol.waitFor("alice's audio", "!!t.remote['alice/mic']")
	carol.rising("alice/mic", "packetsReceived", 10)
	carol.waitFor("her media connected", "t.calls.status === 'connected'")
	if pushes, requests := carol.held(); pushes < 2 || requests < 2 {
		t.Fatalf("%d server offers and %d of carol's held, want 2 and 2", pushes, requests)
	}
	t.Logf("carol decoded alice's video %v after her create", d.Round(time.Millisecond))
}

// sendOpusAfter adds an Opus track with media id id and, once start is
// closed, sends a silent Opus frame every 20 ms until stop is closed.
func (p *peer) sendOpusAfter(id string, start, stop chan struct{}) {
	p.t.Helper()
	tr, err := pion.NewTrackLocalStaticRTP(pion.RTPCodecCapability{MimeType: pion.MimeTypeOpus, ClockRate: 48000, Channels: 2}, id, "stream")
	if err != nil {
		p.t.Fatal(err)
	}
	if _, err := p.pc.AddTransceiverFromTrack(tr, pion.RTPTransceiverInit{Direction: pion.RTPTransceiverDirectionSendonly}); err != nil {
		p.t.Fatal(err)
	}
	silence := []byte{0xf8, 0xff, 0xfe} // an Opus frame of silence (TOC 20 ms CELT, DTX)
	p.Go(func() {
		select {
		case <-stop:
			return
		case <-start:
		}
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for i := uint32(0); ; i++ {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			pkt := &rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: uint16(i), Timestamp: i * 960}, Payload: silence}
			if err := tr.WriteRTP(pkt); err != nil {
				return
			}
		}
	})
}
