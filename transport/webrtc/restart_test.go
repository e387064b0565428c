package webrtc

import (
	"errors"
	"net"
	"strings"
	"sync/atomic"
	"testing"

	pion "github.com/pion/webrtc/v4"
	"go.uber.org/goleak"
)

// newMuxEngine returns an engine in single-port mode on a socket of its
// own on 127.0.0.1 (Config.PacketConn) and the socket's port.
func newMuxEngine(t testing.TB) (*Engine, int) {
	t.Helper()
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	engine, err := New(Config{PacketConn: conn, LoopbackOnly: true})
	if err != nil {
		conn.Close()
		t.Fatal(err)
	}
	return engine, conn.LocalAddr().(*net.UDPAddr).Port
}

// newSmallCall starts the loopback call of TestPublishSubscribeLoopback
// with n video subscribers, each receiving video.
func newSmallCall(t *testing.T, n int) *call {
	t.Helper()
	return newSmallCallOn(t, newTestEngine(t, Config{}), n)
}

// newSmallCallOn is newSmallCall on the given engine.
func newSmallCallOn(t *testing.T, engine *Engine, n int) *call {
	t.Helper()
	c := &call{engine: engine, api: clientAPI(t), needed: make(chan struct{}, 64)}
	c.startPublisher(t)
	for i := range n {
		c.addVideoSubscriber(t, i == 0)
	}
	for _, s := range c.subs {
		waitFor(t, "video at every subscriber", func() bool { v, _ := s.counts(); return v >= 30 })
	}
	for len(c.needed) > 0 {
		<-c.needed
	}
	return c
}

// iceUfrag returns the first a=ice-ufrag of an SDP.
func iceUfrag(t *testing.T, sdp string) string {
	t.Helper()
	for _, l := range strings.Split(sdp, "\n") {
		if u, ok := strings.CutPrefix(strings.TrimSpace(l), "a=ice-ufrag:"); ok {
			return u
		}
	}
	t.Fatal("no a=ice-ufrag in the SDP")
	return ""
}

// TestICERestart: a server-initiated ICE restart (RestartICE, through the
// negotiation queue) and a client-initiated one (answered by Answer) give
// new credentials on both sides, the connection comes back to connected,
// and media keeps flowing to the subscriber over the new ICE session
// (pion drops the old candidate pair on restart).
// It runs with a port per peer and in single-port mode, where the mux
// must route the new ufrags.
func TestICERestart(t *testing.T) {
	t.Run("ports", func(t *testing.T) { testICERestart(t, newTestEngine(t, Config{})) })
	t.Run("mux", func(t *testing.T) {
		e, _ := newMuxEngine(t)
		testICERestart(t, e)
	})
}

func testICERestart(t *testing.T, engine *Engine) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	defer engine.Close()
	c := newSmallCallOn(t, engine, 1)
	p, s := c.peers[0], c.subs[0]

	var clientConnected atomic.Int64
	s.pc.OnICEConnectionStateChange(func(st pion.ICEConnectionState) {
		if st == pion.ICEConnectionStateConnected {
			clientConnected.Add(1)
		}
	})

	// Server-initiated.
	oldServer := iceUfrag(t, p.pc.LocalDescription().SDP)
	oldClient := iceUfrag(t, s.pc.LocalDescription().SDP)
	conn0 := clientConnected.Load()
	before, _ := s.counts()
	if err := p.RestartICE(); err != nil {
		t.Fatal(err)
	}
	c.wantNegotiation(t, "RestartICE")
	offer, err := p.Offer()
	if err != nil {
		t.Fatal(err)
	}
	if u := iceUfrag(t, offer); u == oldServer {
		t.Fatalf("the restart offer kept the ICE ufrag %q", u)
	}
	if err := s.pc.SetRemoteDescription(pion.SessionDescription{Type: pion.SDPTypeOffer, SDP: offer}); err != nil {
		t.Fatal(err)
	}
	ans, err := s.pc.CreateAnswer(nil)
	if err != nil {
		t.Fatal(err)
	}
	ansSDP := setLocal(t, s.pc, ans)
	if u := iceUfrag(t, ansSDP); u == oldClient {
		t.Fatalf("the client's answer kept the ICE ufrag %q", u)
	}
	if err := p.SetAnswer(ansSDP); err != nil {
		t.Fatal(err)
	}
	select {
	case <-c.needed:
		t.Fatal("a negotiation was asked for after the restart's answer")
	default:
	}
	waitFor(t, "the client's ICE to reconnect", func() bool { return clientConnected.Load() > conn0 })
	waitFor(t, "the server to be connected", func() bool {
		st := p.pc.ICEConnectionState()
		return p.Status() == StatusConnected &&
			(st == pion.ICEConnectionStateConnected || st == pion.ICEConnectionStateCompleted)
	})
	mark, _ := s.counts()
	if mark < before {
		t.Fatalf("video count went back: %d < %d", mark, before)
	}
	waitFor(t, "video after the server's ICE restart", func() bool { v, _ := s.counts(); return v >= mark+30 })

	// A restart asked for while an offer is outstanding waits for its
	// answer, then asks for a negotiation of its own.
	oldServer = iceUfrag(t, p.pc.LocalDescription().SDP)
	if err := p.RestartICE(); err != nil {
		t.Fatal(err)
	}
	c.wantNegotiation(t, "RestartICE")
	offer1, err := p.Offer()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.RestartICE(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-c.needed:
		t.Fatal("a negotiation was asked for while an offer was outstanding")
	default:
	}
	if err := s.pc.SetRemoteDescription(pion.SessionDescription{Type: pion.SDPTypeOffer, SDP: offer1}); err != nil {
		t.Fatal(err)
	}
	ans1, err := s.pc.CreateAnswer(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.SetAnswer(setLocal(t, s.pc, ans1)); err != nil {
		t.Fatal(err)
	}
	c.wantNegotiation(t, "the answer, with a restart pending")
	offer2, err := p.Offer()
	if err != nil {
		t.Fatal(err)
	}
	u1, u2 := iceUfrag(t, offer1), iceUfrag(t, offer2)
	if u1 == oldServer || u2 == u1 {
		t.Fatalf("ufrags %q, %q, %q: want three different", oldServer, u1, u2)
	}
	if err := s.pc.SetRemoteDescription(pion.SessionDescription{Type: pion.SDPTypeOffer, SDP: offer2}); err != nil {
		t.Fatal(err)
	}
	ans2, err := s.pc.CreateAnswer(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.SetAnswer(setLocal(t, s.pc, ans2)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the server to be connected", func() bool {
		st := p.pc.ICEConnectionState()
		return p.Status() == StatusConnected &&
			(st == pion.ICEConnectionStateConnected || st == pion.ICEConnectionStateCompleted)
	})
	mark, _ = s.counts()
	waitFor(t, "video after two more restarts", func() bool { v, _ := s.counts(); return v >= mark+30 })

	// Client-initiated, from the publisher (the side that offers first).
	pub := c.pub
	var pubConnected atomic.Int64
	pub.pc.OnICEConnectionStateChange(func(st pion.ICEConnectionState) {
		if st == pion.ICEConnectionStateConnected {
			pubConnected.Add(1)
		}
	})
	pconn0 := pubConnected.Load()
	oldServer = iceUfrag(t, c.server.pc.LocalDescription().SDP)
	in0 := c.video.Stats().PacketsIn
	roffer, err := pub.pc.CreateOffer(&pion.OfferOptions{ICERestart: true})
	if err != nil {
		t.Fatal(err)
	}
	rans, err := c.server.Answer(setLocal(t, pub.pc, roffer))
	if err != nil {
		t.Fatal(err)
	}
	if u := iceUfrag(t, rans); u == oldServer {
		t.Fatalf("the server's answer to a restart kept the ICE ufrag %q", u)
	}
	if err := pub.pc.SetRemoteDescription(pion.SessionDescription{Type: pion.SDPTypeAnswer, SDP: rans}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the publisher's ICE to reconnect", func() bool { return pubConnected.Load() > pconn0 })
	waitFor(t, "the publisher's side to be connected", func() bool {
		st := c.server.pc.ICEConnectionState()
		return c.server.Status() == StatusConnected &&
			(st == pion.ICEConnectionStateConnected || st == pion.ICEConnectionStateCompleted)
	})
	in1 := c.video.Stats().PacketsIn
	if in1 < in0 {
		t.Fatalf("packets in went back: %d < %d", in1, in0)
	}
	mark, _ = s.counts()
	waitFor(t, "the publisher's media after its ICE restart", func() bool { return c.video.Stats().PacketsIn >= in1+30 })
	waitFor(t, "video at the subscriber after the publisher's restart", func() bool { v, _ := s.counts(); return v >= mark+30 })

	if err := p.RestartICE(); err != nil {
		t.Fatal(err)
	}
	c.close(t)
	if err := p.RestartICE(); !errors.Is(err, ErrClosed) {
		t.Errorf("RestartICE after Close: %v, want ErrClosed", err)
	}
}
