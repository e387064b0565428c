package webrtc

import (
	"errors"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	pion "github.com/pion/webrtc/v4"
	"go.uber.org/goleak"

	"github.com/callcore/callcore/forward"
)

func newTrack(t *testing.T, kind forward.Kind, mime string, clock uint32, pt uint8) *forward.Track {
	t.Helper()
	tr, err := forward.NewTrack(forward.TrackConfig{Kind: kind, MimeType: mime, ClockRate: clock, PayloadType: pt})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tr.Close() })
	return tr
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		ok   bool
	}{
		{"zero", Config{}, true},
		{"mux", Config{UDPPort: 3478}, true},
		{"range", Config{PortMin: 50000, PortMax: 50100}, true},
		{"mux and range", Config{UDPPort: 3478, PortMin: 1, PortMax: 2}, false},
		{"half range", Config{PortMin: 50000}, false},
		{"inverted range", Config{PortMin: 2, PortMax: 1}, false},
		{"port", Config{UDPPort: 70000}, false},
		{"nat ip", Config{NAT1To1IPs: []string{"203.0.113.7"}}, true},
		{"bad nat ip", Config{NAT1To1IPs: []string{"example.com"}}, false},
		{"ice server", Config{ICEServers: []ICEServer{{URLs: []string{"turn:turn.example.com:3478"}}}}, true},
		{"bad ice server", Config{ICEServers: []ICEServer{{URLs: []string{"http://x"}}}}, false},
		{"no urls", Config{ICEServers: []ICEServer{{}}}, false},
		{"negative", Config{ICEFailedTimeout: -1}, false},
		{"listen ip", Config{ListenIP: "nope"}, false},
		{"ice-tcp", Config{UDPPort: 3478, TCPPort: 7881}, true},
		{"ice-tcp port", Config{TCPPort: 70000}, false},
		{"ice-tcp port and listener", Config{TCPPort: 7881, TCPListener: &net.TCPListener{}}, false},
	} {
		err := tc.cfg.Validate()
		if (err == nil) != tc.ok || (err != nil && !errors.Is(err, ErrInvalidConfig)) {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
	if err := (PeerConfig{}).Validate(); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("peer without engine: %v", err)
	}
	if _, err := NewPeer(PeerConfig{}); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("NewPeer without engine: %v", err)
	}
}

// answerOffer has the client answer a server offer and returns the answer.
func answerOffer(t *testing.T, c *client, offer string) string {
	t.Helper()
	if err := c.pc.SetRemoteDescription(pion.SessionDescription{Type: pion.SDPTypeOffer, SDP: offer}); err != nil {
		t.Fatal(err)
	}
	ans, err := c.pc.CreateAnswer(nil)
	if err != nil {
		t.Fatal(err)
	}
	return setLocal(t, c.pc, ans)
}

// TestRenegotiationQueue checks the server side of perfect negotiation:
// changes made while an offer is outstanding wait for its answer, none is
// lost or applied twice, and a crossing client offer gets ErrGlare.
func TestRenegotiationQueue(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	engine := newTestEngine(t, Config{})
	defer engine.Close()
	var fired atomic.Int64
	server, err := NewPeer(PeerConfig{Engine: engine, OnNegotiationNeeded: func() { fired.Add(1) }})
	if err != nil {
		t.Fatal(err)
	}
	c := newClient(t, clientAPI(t))
	video := newTrack(t, forward.Video, pion.MimeTypeVP8, 90000, 96)
	audio := newTrack(t, forward.Audio, pion.MimeTypeOpus, 48000, 111)

	s1, err := server.Subscribe(video, PublishInfo{})
	if err != nil {
		t.Fatal(err)
	}
	if fired.Load() != 1 {
		t.Fatalf("negotiation needed fired %d times, want 1", fired.Load())
	}
	offer1, err := server.Offer()
	if err != nil {
		t.Fatal(err)
	}
	// While the offer is outstanding: queued, not applied.
	if _, err := server.Subscribe(audio, PublishInfo{}); err != nil {
		t.Fatal(err)
	}
	s3, err := server.Subscribe(video, PublishInfo{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s3.Close(); err != nil { // added and removed before any offer: nothing to negotiate
		t.Fatal(err)
	}
	if fired.Load() != 1 {
		t.Fatalf("negotiation needed fired during an outstanding offer")
	}
	if n := strings.Count(offer1, "\nm="); n != 1 {
		t.Fatalf("first offer has %d media sections, want 1", n)
	}
	if err := server.SetAnswer("not SDP"); err == nil {
		t.Fatal("a malformed answer was accepted")
	}
	if fired.Load() != 1 {
		t.Fatal("negotiation needed fired after a failed answer: the offer is still outstanding")
	}
	if err := server.SetAnswer(answerOffer(t, c, offer1)); err != nil {
		t.Fatal(err)
	}
	if fired.Load() != 2 {
		t.Fatalf("negotiation needed fired %d times after the answer, want 2", fired.Load())
	}
	if err := server.SetAnswer("v=0"); !errors.Is(err, ErrNoOffer) {
		t.Fatalf("answer without an offer: %v", err)
	}
	offer2, err := server.Offer()
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(offer2, "\nm="); n != 2 {
		t.Fatalf("second offer has %d media sections, want 2 (video, audio)", n)
	}
	if err := server.SetAnswer(answerOffer(t, c, offer2)); err != nil {
		t.Fatal(err)
	}
	if fired.Load() != 2 {
		t.Fatalf("negotiation needed fired %d times with nothing queued", fired.Load())
	}

	// Glare: the client offers while the server's offer is outstanding.
	if err := s1.Close(); err != nil {
		t.Fatal(err)
	}
	if fired.Load() != 3 {
		t.Fatalf("no negotiation needed after removing a subscription")
	}
	offer3, err := server.Offer()
	if err != nil {
		t.Fatal(err)
	}
	// The check comes before the offer is parsed: a pion client cannot roll
	// back a local offer, so any text stands in for the crossing offer.
	if _, err := server.Answer("v=0"); !errors.Is(err, ErrGlare) {
		t.Fatalf("crossing offers: %v, want ErrGlare", err)
	}
	if err := server.SetAnswer(answerOffer(t, c, offer3)); err != nil {
		t.Fatal(err)
	}
	if err := server.Close(); err != nil {
		t.Error(err)
	}
	if _, err := server.Offer(); !errors.Is(err, ErrClosed) {
		t.Errorf("offer after close: %v", err)
	}
	if _, err := server.Subscribe(audio, PublishInfo{}); !errors.Is(err, ErrClosed) {
		t.Errorf("subscribe after close: %v", err)
	}
	c.close(t)
}

// TestCodecMismatch: a codec the server does not negotiate, or one the
// client's description lacks, is refused with ErrCodecMismatch.
func TestCodecMismatch(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	engine := newTestEngine(t, Config{})
	defer engine.Close()
	server, err := NewPeer(PeerConfig{Engine: engine})
	if err != nil {
		t.Fatal(err)
	}
	vp9 := newTrack(t, forward.Video, pion.MimeTypeVP9, 90000, 98)
	if _, err := server.Subscribe(vp9, PublishInfo{}); !errors.Is(err, ErrCodecMismatch) {
		t.Fatalf("VP9: %v, want ErrCodecMismatch", err)
	}

	// A client that decodes VP8 and Opus only.
	me := &pion.MediaEngine{}
	for _, c := range []struct {
		p pion.RTPCodecParameters
		k pion.RTPCodecType
	}{
		{pion.RTPCodecParameters{PayloadType: 96, RTPCodecCapability: pion.RTPCodecCapability{MimeType: pion.MimeTypeVP8, ClockRate: 90000}}, pion.RTPCodecTypeVideo},
		{pion.RTPCodecParameters{PayloadType: 111, RTPCodecCapability: pion.RTPCodecCapability{MimeType: pion.MimeTypeOpus, ClockRate: 48000, Channels: 2}}, pion.RTPCodecTypeAudio},
	} {
		if err := me.RegisterCodec(c.p, c.k); err != nil {
			t.Fatal(err)
		}
	}
	se := pion.SettingEngine{}
	se.SetIncludeLoopbackCandidate(true)
	se.SetInterfaceFilter(func(n string) bool { return n == "lo" })
	se.SetNetworkTypes([]pion.NetworkType{pion.NetworkTypeUDP4})
	api := pion.NewAPI(pion.WithMediaEngine(me), pion.WithSettingEngine(se))
	c := newClient(t, api)
	if _, err := c.pc.AddTransceiverFromKind(pion.RTPCodecTypeVideo, pion.RTPTransceiverInit{Direction: pion.RTPTransceiverDirectionRecvonly}); err != nil {
		t.Fatal(err)
	}
	publish(t, server, c)
	h264 := newTrack(t, forward.Video, pion.MimeTypeH264, 90000, 102)
	if _, err := server.Subscribe(h264, PublishInfo{}); !errors.Is(err, ErrCodecMismatch) {
		t.Fatalf("H.264 to a VP8-only client: %v, want ErrCodecMismatch", err)
	}
	vp8 := newTrack(t, forward.Video, pion.MimeTypeVP8, 90000, 96)
	if _, err := server.Subscribe(vp8, PublishInfo{}); err != nil {
		t.Fatalf("VP8: %v", err)
	}
	if err := server.Close(); err != nil {
		t.Error(err)
	}
	c.close(t)
}

// TestUDPMux serves ICE on one UDP port: every server candidate uses it,
// and a publisher's packets reach the core through it.
func TestUDPMux(t *testing.T) {
	listen := func(t *testing.T) *net.UDPConn {
		conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		return conn
	}
	for _, tc := range []struct {
		name   string
		engine func(t *testing.T) (*Engine, int)
		direct bool // the engine has the direct send path
	}{
		{"UDPPort", func(t *testing.T) (*Engine, int) {
			for try := 0; ; try++ { // a port free a moment ago may be taken meanwhile
				conn := listen(t)
				port := conn.LocalAddr().(*net.UDPAddr).Port
				conn.Close()
				e, err := New(Config{UDPPort: port, LoopbackOnly: true})
				if err == nil || try == 4 {
					if err != nil {
						t.Fatal(err)
					}
					return e, port
				}
			}
		}, true},
		{"PacketConn", func(t *testing.T) (*Engine, int) { return newMuxEngine(t) }, true},
		{"PacketConn wrapped", func(t *testing.T) (*Engine, int) {
			conn := listen(t)
			return newTestEngine(t, Config{PacketConn: wrappedConn{conn}}), conn.LocalAddr().(*net.UDPAddr).Port
		}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			defer goleak.VerifyNone(t, goleak.IgnoreCurrent()) // the engine's goroutines included
			engine, port := tc.engine(t)
			defer engine.Close()
			if (engine.sock != nil) != tc.direct {
				t.Errorf("direct send path: %v, want %v", engine.sock != nil, tc.direct)
			}
			testUDPMux(t, engine, port)
		})
	}
	// Refused with a PacketConn: the socket is left open for its owner.
	conn := listen(t)
	defer conn.Close()
	for _, cfg := range []Config{{PacketConn: conn, UDPPort: 3478}, {PacketConn: conn, ListenIP: "127.0.0.1"}} {
		e, err := New(cfg)
		if err == nil {
			e.Close()
		}
		if !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("%+v: %v", cfg, err)
		}
	}
	if _, err := conn.WriteTo([]byte{0}, conn.LocalAddr()); err != nil {
		t.Errorf("the socket after a refused New: %v", err)
	}
}

// wrappedConn is a socket that is not a *net.UDPConn.
type wrappedConn struct{ net.PacketConn }

// testUDPMux: a publisher's media reaches the server through the engine's
// one port, every server candidate on it.
func testUDPMux(t *testing.T, engine *Engine, port int) {
	published := make(chan *forward.Track, 1)
	server, err := NewPeer(PeerConfig{Engine: engine, OnPublish: func(tr *forward.Track, _ PublishInfo) { published <- tr }})
	if err != nil {
		t.Fatal(err)
	}
	pub := newPubClient(t, clientAPI(t))
	offer, err := pub.pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	ans, err := server.Answer(setLocal(t, pub.pc, offer))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(ans, "\n") {
		if strings.HasPrefix(line, "a=candidate:") && !strings.Contains(line, " "+strconv.Itoa(port)+" typ ") {
			t.Errorf("candidate off the mux port %d: %s", port, line)
		}
	}
	if err := pub.pc.SetRemoteDescription(pion.SessionDescription{Type: pion.SDPTypeAnswer, SDP: ans}); err != nil {
		t.Fatal(err)
	}
	pub.goRun(pub.send)
	var tr *forward.Track
	select {
	case tr = <-published:
	case <-time.After(deadline):
		t.Fatal("nothing published through the mux")
	}
	waitFor(t, "packets through the mux", func() bool { return tr.Stats().PacketsIn >= 10 })
	pub.halt()
	if err := server.Close(); err != nil {
		t.Error(err)
	}
	pub.close(t)
}

// TestTrickleICE: with OnCandidate set, Offer returns at once and the
// server's candidates reach the client one by one.
func TestTrickleICE(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	engine := newTestEngine(t, Config{})
	defer engine.Close()
	cands := make(chan ICECandidate, 64)
	server, err := NewPeer(PeerConfig{Engine: engine, OnCandidate: func(c ICECandidate) {
		select {
		case cands <- c:
		default:
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	c := newClient(t, clientAPI(t))
	if _, err := server.Subscribe(newTrack(t, forward.Audio, pion.MimeTypeOpus, 48000, 111), PublishInfo{}); err != nil {
		t.Fatal(err)
	}
	offer, err := server.Offer()
	if err != nil {
		t.Fatal(err)
	}
	if err := server.SetAnswer(answerOffer(t, c, offer)); err != nil {
		t.Fatal(err)
	}
	trickled := 0
	waitFor(t, "connected through trickled candidates", func() bool {
		for {
			select {
			case cand := <-cands:
				if err := c.pc.AddICECandidate(cand); err != nil {
					t.Fatal(err)
				}
				trickled++
				continue
			default:
			}
			break
		}
		return server.Status() == StatusConnected
	})
	if trickled == 0 {
		t.Fatal("no candidate was trickled")
	}
	if err := server.Close(); err != nil {
		t.Error(err)
	}
	c.close(t)
}

// A client that vanishes is gone after the grace period: OnGone is called
// once and the peer is closed.
func TestGracePeriod(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	engine := newTestEngine(t, Config{ICEDisconnectedTimeout: time.Second, ICEFailedTimeout: 2 * time.Second})
	defer engine.Close()
	var gone atomic.Int32
	server, err := NewPeer(PeerConfig{Engine: engine, Grace: 300 * time.Millisecond, OnGone: func() { gone.Add(1) }})
	if err != nil {
		t.Fatal(err)
	}
	defer server.Close()
	c := newClient(t, clientAPI(t))
	if _, err := server.Subscribe(newTrack(t, forward.Audio, pion.MimeTypeOpus, 48000, 111), PublishInfo{}); err != nil {
		t.Fatal(err)
	}
	offer, err := server.Offer()
	if err != nil {
		t.Fatal(err)
	}
	if err := server.SetAnswer(answerOffer(t, c, offer)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "connected", func() bool { return server.Status() == StatusConnected })
	c.close(t) // the client vanishes
	waitFor(t, "the peer to be gone", func() bool { return gone.Load() == 1 })
	if _, err := server.Offer(); !errors.Is(err, ErrClosed) {
		t.Fatalf("after its grace period the peer must be closed: %v", err)
	}
	if gone.Load() != 1 {
		t.Fatalf("OnGone called %d times", gone.Load())
	}
}
