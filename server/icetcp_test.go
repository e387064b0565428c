package server

import (
	"net"
	"strings"
	"testing"
	"time"

	"github.com/pion/interceptor"
	pion "github.com/pion/webrtc/v4"
	"go.uber.org/goleak"

	"github.com/callcore/callcore/internal/pionloop"
	"github.com/callcore/callcore/transport/webrtc"
)

// clientAPI is a plain pion client on loopback whose ICE uses only the
// given network types.
func clientAPI(t testing.TB, types ...pion.NetworkType) *pion.API {
	t.Helper()
	me := &pion.MediaEngine{}
	if err := me.RegisterDefaultCodecs(); err != nil {
		t.Fatal(err)
	}
	ir := &interceptor.Registry{}
	if err := pion.RegisterDefaultInterceptors(me, ir); err != nil {
		t.Fatal(err)
	}
	se := pion.SettingEngine{}
	pionloop.Restrict(&se)
	se.SetNetworkTypes(types)
	return pion.NewAPI(pion.WithMediaEngine(me), pion.WithInterceptorRegistry(ir), pion.WithSettingEngine(se))
}

// selectedPair is the client's selected ICE candidate pair, nil before
// there is one.
func selectedPair(p *peer) *pion.ICECandidatePair {
	pair, err := p.pc.SCTP().Transport().ICETransport().GetSelectedCandidatePair()
	if err != nil {
		return nil
	}
	return pair
}

// TestMediaOverICETCP: a server with an ICE-TCP port offers passive TCP
// candidates beside its UDP ones; a client that may use TCP only joins and
// receives the publisher's video over a TCP pair to that port.
func TestMediaOverICETCP(t *testing.T) {
	leaks := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, leaks) })
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ts := newTestServer(t, func(c *Config) { c.WebRTC = webrtc.Config{LoopbackOnly: true, TCPListener: l} })
	port := ts.engine.TCPAddr().(*net.TCPAddr).Port
	stop := make(chan struct{})
	defer close(stop)

	alice := login(t, ts, "alice", true)
	alice.must("create", createData{ChannelID: "c", Tracks: []trackData{{Name: "cam", Kind: "video", TrackID: "alice-cam"}}})
	pa := newPeer(t, alice) // UDP
	pa.sendVP8("alice-cam", stop)
	pa.offer()

	bob := login(t, ts, "bob", false)
	bob.must("join", joinData{ChannelID: "c"})
	pb := newPeerWith(t, bob, clientAPI(t, pion.NetworkTypeTCP4), pion.Configuration{})
	start := time.Now()
	sdp := pb.answer()
	if !containsAll(sdp, " tcp ", "tcptype passive", " udp ") {
		t.Errorf("the server's offer lacks a passive TCP or a UDP candidate:\n%s", sdp)
	}
	waitFor(t, "alice's video at bob over TCP", func() bool { return pb.received.Load() >= 20 })
	t.Logf("time to 20 packets over ICE-TCP: %v", time.Since(start))
	pair := selectedPair(pb)
	if pair == nil || pair.Local.Protocol != pion.ICEProtocolTCP || pair.Remote.Protocol != pion.ICEProtocolTCP ||
		pair.Remote.Port != uint16(port) || pair.Remote.TCPType != "passive" {
		t.Fatalf("bob's selected pair %v, want TCP to the server's passive candidate on port %d", pair, port)
	}
	if p := selectedPair(pa); p == nil || p.Local.Protocol != pion.ICEProtocolUDP {
		t.Errorf("alice's selected pair %v, want UDP (her only network type)", p)
	}
}

// containsAll reports whether s contains every one of subs.
func containsAll(s string, subs ...string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}
