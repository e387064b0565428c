package server

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/callcore/callcore/internal/browser"
	"github.com/callcore/callcore/internal/testcert"
	"github.com/callcore/callcore/transport/webrtc"
)

// newE2EUserOpts is newE2EUser with the SDK's connect options (a JS
// object literal); the setup also records the 'path' events.
func newE2EUserOpts(t *testing.T, b *browser.Browser, ts *testServer, name, opts string) *user {
	t.Helper()
	setup := strings.Replace(e2eSetup, "Calls.connect(location.origin, token)", "Calls.connect(location.origin, token, "+opts+")", 1)
	setup = strings.Replace(setup, "'status', 'disconnected'", "'status', 'path', 'disconnected'", 1)
	if setup == e2eSetup {
		t.Fatal("the e2e setup changed: its connect call or event list is not where newE2EUserOpts looks")
	}
	u := &user{t: t, tab: b.NewUser(t, name), name: name}
	u.tab.Navigate(t, ts.http.URL+"/e2e.html")
	u.tab.InstallProbe(t)
	var ok bool
	u.eval(fmt.Sprintf(setup, name), &ok)
	return u
}

// path waits for the user's 'path' event and returns it.
func (u *user) path() (path, relayProtocol, stage string, ms float64) {
	u.t.Helper()
	u.saw("path", "true")
	var p struct {
		Path, RelayProtocol, Stage string
		MS                         float64
	}
	u.eval("(({path, relayProtocol, stage, ms}) => ({path, relayProtocol: relayProtocol || '', stage, ms}))(t.events.findLast((e) => e.name === 'path'))", &p)
	return p.Path, p.RelayProtocol, p.Stage, p.MS
}

// timeToVideo waits until the user has decoded video from from, and
// returns how long that took since start.
func (u *user) timeToVideo(from string, start time.Time) time.Duration {
	u.t.Helper()
	u.waitFor("a track from "+from, fmt.Sprintf("!!t.remote[%q]", from+"/cam"))
	u.waitFor(from+"'s first frames", fmt.Sprintf("t.stats(%q).then((s) => s.framesDecoded > 0)", from+"/cam"))
	return time.Since(start)
}

// turnBrowserServer is a test server for browsers on one UDP media port
// (and ICE over TCP with iceTCP), with the embedded TURN server over UDP
// and TCP on loopback. Its relayed clients' sockets are on 127.0.0.3.
// With blockUDP, the media port takes UDP from nothing but 127.0.0.3:
// every datagram a browser sends it from its own sockets is dropped, as
// by a firewall, and the returned counter counts them.
//
// With both UDP and TCP candidates on loopback, Chromium selects the TCP
// pair: its TCP socket comes from the Ethernet interface's candidate
// (peer-reflexive 127.0.0.1, network type ethernet) and its UDP one from
// loopback (network type unknown), and Chromium ranks network cost
// before candidate priority. On a real network both share an interface
// and UDP wins; the tests that want UDP leave ICE over TCP off.
func turnBrowserServer(t *testing.T, iceTCP, blockUDP bool) (*testServer, *atomic.Int64) {
	t.Helper()
	var media net.PacketConn = listenUDP(t)
	relayIP := netip.AddrFrom4([4]byte{127, 0, 0, 3})
	fw := &udpFirewall{PacketConn: media, allow: relayIP}
	if blockUDP {
		media = fw
	}
	turnUDP, turnTCP := listenUDP(t), listenTCP(t)
	ts := newTestServer(t, func(c *Config) {
		c.Static = e2eFS(t)
		c.WebRTC = webrtc.Config{LoopbackOnly: true, PacketConn: media}
		if iceTCP {
			c.WebRTC.TCPListener = listenTCP(t)
		}
		c.TURN = TURNConfig{UDP: turnUDP, TCPListener: turnTCP, Host: "127.0.0.1", RelayIP: relayIP.String()}
	})
	return ts, &fw.dropped
}

// udpFirewall is a media socket that exchanges datagrams with one IP only.
type udpFirewall struct {
	net.PacketConn
	allow   netip.Addr
	dropped atomic.Int64
}

func (c *udpFirewall) allowed(a net.Addr) bool {
	u, ok := a.(*net.UDPAddr)
	return ok && u.AddrPort().Addr().Unmap() == c.allow
}

func (c *udpFirewall) ReadFrom(b []byte) (int, net.Addr, error) {
	for {
		n, addr, err := c.PacketConn.ReadFrom(b)
		if err != nil || c.allowed(addr) {
			return n, addr, err
		}
		c.dropped.Add(1)
	}
}

func (c *udpFirewall) WriteTo(b []byte, addr net.Addr) (int, error) {
	if !c.allowed(addr) {
		c.dropped.Add(1)
		return len(b), nil
	}
	return c.PacketConn.WriteTo(b, addr)
}

// TestBrowserRelayOverTURN: a Chromium user whose SDK starts at the relay
// stage (iceTransportPolicy 'relay') reaches the server only through the
// embedded TURN server, over UDP, and sees and hears a user connected
// directly over UDP, who sees and hears it. The time to the first decoded
// video is logged for both paths.
func TestBrowserRelayOverTURN(t *testing.T) {
	b := browser.Start(t)
	ts, _ := turnBrowserServer(t, false, false)
	alice := newE2EUserOpts(t, b, ts, "alice", "{iceStart: 'relay'}")
	bob := newE2EUserOpts(t, b, ts, "bob", "{}")
	start := time.Now()
	alice.must("t.calls.create('room', t.tracks())")
	bob.must("t.calls.join('room', t.tracks())")
	tb := bob.timeToVideo("alice", start)
	ta := alice.timeToVideo("bob", start)
	alice.sees("bob")
	bob.sees("alice")
	if p, rp, stage, ms := alice.path(); p != "relay" || rp != "udp" || stage != "relay" {
		t.Fatalf("alice's path %s (relay protocol %q, stage %s, %v ms), want relay over UDP", p, rp, stage, ms)
	} else {
		t.Logf("alice: connected through TURN over UDP in %v ms; bob's video decoded %v after the create", ms, ta)
	}
	if p, _, stage, ms := bob.path(); p != "udp" || stage != "direct" {
		t.Fatalf("bob's path %s (stage %s), want udp", p, stage)
	} else {
		t.Logf("bob: connected over UDP in %v ms; alice's video decoded %v after the create", ms, tb)
	}
	if st := ts.turn.Stats(); st.UDPAllocations == 0 || st.RefusedPeers != 0 {
		t.Fatalf("TURN stats %+v: want a UDP allocation and no refused peer", st)
	}
}

// TestBrowserFallbackWithoutUDP: the server's media port takes no UDP
// from the browsers (udpFirewall: only the TURN server's relayed sockets
// get through). alice's SDK starts direct. With ICE over TCP on the
// server, she connects at once over TCP. Without, she finds no connection
// within her fallback time, restarts ICE with the TURN servers and
// connects through the embedded TURN server. bob starts relayed; media
// flows both ways. The time to the first decoded video is logged.
func TestBrowserFallbackWithoutUDP(t *testing.T) {
	b := browser.Start(t)
	for _, c := range []struct {
		name               string
		iceTCP             bool
		path, proto, stage string
	}{
		{"ICE over TCP", true, "tcp", "", "direct"},
		{"TURN", false, "relay", "udp", "turn"},
	} {
		t.Run(c.name, func(t *testing.T) {
			ts, dropped := turnBrowserServer(t, c.iceTCP, true)
			alice := newE2EUserOpts(t, b, ts, "alice", "{iceFallbackMs: 3000}")
			bob := newE2EUserOpts(t, b, ts, "bob", "{iceStart: 'relay'}")
			start := time.Now()
			alice.must("t.calls.create('room', t.tracks())")
			bob.must("t.calls.join('room', t.tracks())")
			ta := alice.timeToVideo("bob", start)
			alice.sees("bob")
			bob.sees("alice")
			p, rp, stage, ms := alice.path()
			t.Logf("alice (UDP blocked): connected over %s (relay protocol %q) at stage %s in %v ms; bob's video decoded %v after the create; %d datagrams dropped",
				p, rp, stage, ms, ta, dropped.Load())
			if p != c.path || rp != c.proto || stage != c.stage {
				t.Fatalf("alice's path %s over %q at stage %s, want %s over %q at stage %s", p, rp, stage, c.path, c.proto, c.stage)
			}
			if c.path == "relay" && dropped.Load() == 0 {
				t.Fatal("the firewall dropped nothing: alice never tried UDP")
			}
		})
	}
}

// TestBrowserRelayOverTURNTCPAndTLS: as TestBrowserRelayOverTURN, with
// the embedded TURN server reachable over TCP only, then over TLS only
// (a self-signed certificate for localhost, which this Chromium is told
// to accept).
func TestBrowserRelayOverTURNTCPAndTLS(t *testing.T) {
	b := browser.Start(t, "ignore-certificate-errors")
	for _, tr := range []string{"tcp", "tls"} {
		t.Run(tr, func(t *testing.T) {
			cert := testcert.New(t)
			media := listenUDP(t)
			ts := newTestServer(t, func(c *Config) {
				c.Static = e2eFS(t)
				c.WebRTC = webrtc.Config{LoopbackOnly: true, PacketConn: media}
				c.TURN = TURNConfig{Host: "localhost"}
				if tr == "tcp" {
					c.TURN.TCPListener = listenTCP(t)
				} else {
					c.TURN.TLSListener, c.TURN.TLS = listenTCP(t), cert.Server
				}
			})
			alice := newE2EUserOpts(t, b, ts, "alice", "{iceStart: 'relay'}")
			bob := newE2EUserOpts(t, b, ts, "bob", "{}")
			start := time.Now()
			alice.must("t.calls.create('room', t.tracks())")
			bob.must("t.calls.join('room', t.tracks())")
			ta := alice.timeToVideo("bob", start)
			alice.sees("bob")
			bob.sees("alice")
			p, rp, stage, ms := alice.path()
			t.Logf("alice: connected through TURN over %s in %v ms; bob's video decoded %v after the create", rp, ms, ta)
			if p != "relay" || rp != tr || stage != "relay" {
				t.Fatalf("alice's path %s (relay protocol %q, stage %s), want relay over %s", p, rp, stage, tr)
			}
			st := ts.turn.Stats()
			if n := map[string]uint64{"tcp": st.TCPAllocations, "tls": st.TLSAllocations}[tr]; n == 0 {
				t.Fatalf("TURN stats %+v: no allocation over %s", st, tr)
			}
		})
	}
}
