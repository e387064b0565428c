package server

import (
	"crypto/tls"
	"encoding/json"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/pion/interceptor"
	pionturn "github.com/pion/turn/v5"
	pion "github.com/pion/webrtc/v4"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/goleak"

	"github.com/callcore/callcore/internal/pionloop"
	"github.com/callcore/callcore/internal/testcert"
	"github.com/callcore/callcore/relay"
	"github.com/callcore/callcore/transport/webrtc"
)

// turnTestServer is a test server on one UDP media port with the
// embedded TURN server on loopback over UDP, TCP and TLS.
func turnTestServer(t *testing.T) (*testServer, testcert.Cert) {
	t.Helper()
	cert := testcert.New(t)
	media := listenUDP(t)
	turnUDP := listenUDP(t)
	tcp, tl := listenTCP(t), listenTCP(t)
	ts := newTestServer(t, func(c *Config) {
		c.WebRTC = webrtc.Config{LoopbackOnly: true, PacketConn: media}
		c.TURN = TURNConfig{UDP: turnUDP, TCPListener: tcp, TLSListener: tl, TLS: cert.Server, Host: "127.0.0.1"}
	})
	return ts, cert
}

func listenUDP(t *testing.T) *net.UDPConn {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func listenTCP(t *testing.T) net.Listener {
	t.Helper()
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// loginICE authenticates as user and returns the ICE servers the server
// handed out.
func loginICE(t *testing.T, ts *testServer, user string, create bool) (*client, []webrtc.ICEServer) {
	t.Helper()
	c := dial(t, ts)
	data, code := c.call("auth", authData{Token: token(t, user, create)})
	if code != "" {
		t.Fatalf("auth as %s: %s", user, code)
	}
	var a authResult
	if err := json.Unmarshal(data, &a); err != nil {
		t.Fatal(err)
	}
	return c, a.ICEServers
}

// turnURL picks the embedded TURN server's entry with only the URL of
// transport ("udp", "tcp" or "tls").
func turnURL(t *testing.T, servers []webrtc.ICEServer, transport string) pion.ICEServer {
	t.Helper()
	prefix := map[string]string{"udp": "turn:", "tcp": "turn:", "tls": "turns:"}[transport]
	suffix := map[string]string{"udp": "?transport=udp", "tcp": "?transport=tcp", "tls": "?transport=tcp"}[transport]
	for _, s := range servers {
		for _, u := range s.URLs {
			if strings.HasPrefix(u, prefix) && strings.HasSuffix(u, suffix) {
				return pion.ICEServer{URLs: []string{u}, Username: s.Username, Credential: s.Credential}
			}
		}
	}
	t.Fatalf("no %s TURN URL in %+v", transport, servers)
	return pion.ICEServer{}
}

// tlsDialer dials TURN over TLS for pion, trusting the test certificate
// (pion's own TURN-over-TLS dial trusts the system's roots only).
type tlsDialer struct{ conf *tls.Config }

func (d tlsDialer) Dial(network, addr string) (net.Conn, error) {
	return tls.Dial(network, addr, d.conf)
}

// relayAPI is a pion client on loopback for TURN over transport.
func relayAPI(t *testing.T, transport string, cert testcert.Cert) *pion.API {
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
	if transport == "tls" {
		se.SetICEProxyDialer(tlsDialer{cert.Client})
	}
	return pion.NewAPI(pion.WithMediaEngine(me), pion.WithInterceptorRegistry(ir), pion.WithSettingEngine(se))
}

// TestMediaThroughTURN: over UDP, TCP and TLS to the embedded TURN
// server, a client whose ICE may use relay candidates only publishes and
// subscribes: its video reaches a direct client and the direct client's
// reaches it, over a relayed pair.
func TestMediaThroughTURN(t *testing.T) {
	for _, tr := range []string{"udp", "tcp", "tls"} {
		t.Run(tr, func(t *testing.T) {
			leaks := goleak.IgnoreCurrent()
			t.Cleanup(func() { goleak.VerifyNone(t, leaks) })
			ts, cert := turnTestServer(t)
			stop := make(chan struct{})
			defer close(stop)

			alice, ice := loginICE(t, ts, "alice", true)
			alice.must("create", createData{ChannelID: "c", Tracks: []trackData{{Name: "cam", Kind: "video", TrackID: "alice-cam"}}})
			pa := newPeerWith(t, alice, relayAPI(t, tr, cert), pion.Configuration{
				ICEServers: []pion.ICEServer{turnURL(t, ice, tr)}, ICETransportPolicy: pion.ICETransportPolicyRelay})
			start := time.Now()
			pa.sendVP8("alice-cam", stop)
			pa.offer()

			bob := login(t, ts, "bob", false)
			bob.must("join", joinData{ChannelID: "c", Tracks: []trackData{{Name: "cam", Kind: "video", TrackID: "bob-cam"}}})
			pb := newPeer(t, bob)
			pb.answer() // alice's track
			pb.sendVP8("bob-cam", stop)
			pb.offer()
			pa.answer() // bob's track
			waitFor(t, "bob's video at alice through TURN", func() bool { return pa.received.Load() >= 20 })
			waitFor(t, "alice's video at bob", func() bool { return pb.received.Load() >= 20 })
			t.Logf("TURN over %s: 20 packets both ways %v after alice's offer", tr, time.Since(start))
			pair := selectedPair(pa)
			if pair == nil || pair.Local.Typ != pion.ICECandidateTypeRelay {
				t.Fatalf("alice's selected pair %v, want a relay candidate", pair)
			}
			st := ts.turn.Stats()
			got := map[string]uint64{"udp": st.UDPAllocations, "tcp": st.TCPAllocations, "tls": st.TLSAllocations}
			if got[tr] == 0 || st.RefusedPeers != 0 {
				t.Fatalf("TURN stats %+v: want allocations over %s and no refused peer", st, tr)
			}
			if v := scrapeOf(t, ts.Server).value("callcore_turn_allocations_total", "transport", tr); v < 1 {
				t.Fatalf("callcore_turn_allocations_total{transport=%q} = %v", tr, v)
			}
		})
	}
}

// TestTURNCredentials: the auth answer carries the embedded TURN server's
// URLs with credentials of the user's own, valid until the token expires
// (at most CredentialTTL); a renewed token gets fresh ones.
func TestTURNCredentials(t *testing.T) {
	ts, _ := turnTestServer(t)
	c, ice := loginICE(t, ts, "alice", true)
	s := turnURL(t, ice, "udp")
	exp, user, ok := strings.Cut(s.Username, ":")
	if !ok || user != "alice" {
		t.Fatalf("username %q, want <expiry>:alice", s.Username)
	}
	if u, p := relay.Credentials(turnSecret(ts.cfg), "alice", parseUnix(t, exp)); u != s.Username || p != s.Credential {
		t.Fatalf("credentials %q/%q are not the secret's (%q/%q)", s.Username, s.Credential, u, p)
	}
	if d := time.Until(parseUnix(t, exp)); d <= 0 || d > time.Hour+time.Second {
		t.Fatalf("credentials valid for %v, want at most the token's hour", d)
	}
	if string(turnSecret(ts.cfg)) == string(testSecret) {
		t.Fatal("the TURN secret is the token secret")
	}
	// Renewal: another auth on the same connection answers fresh ones.
	data, code := c.call("auth", authData{Token: token(t, "alice", true)})
	if code != "" {
		t.Fatal(code)
	}
	var a authResult
	if err := json.Unmarshal(data, &a); err != nil {
		t.Fatal(err)
	}
	if turnURL(t, a.ICEServers, "tls").Username == "" {
		t.Fatal("no credentials on renewal")
	}
}

func parseUnix(t *testing.T, s string) time.Time {
	t.Helper()
	var sec int64
	if err := json.Unmarshal([]byte(s), &sec); err != nil {
		t.Fatal(err)
	}
	return time.Unix(sec, 0)
}

// TestTURNConfigRefused: the embedded TURN server needs the single media
// port and a host for its URLs.
func TestTURNConfigRefused(t *testing.T) {
	for _, c := range []Config{
		{Secret: testSecret, TURN: TURNConfig{UDPPort: 3478, Host: "h"}},
		{Secret: testSecret, WebRTC: webrtc.Config{UDPPort: 5000}, TURN: TURNConfig{UDPPort: 3478}},
		{Secret: testSecret, WebRTC: webrtc.Config{UDPPort: 5000}, TURN: TURNConfig{TLSPort: 5349, Host: "h"}},
		{Secret: testSecret, WebRTC: webrtc.Config{UDPPort: 5000}, TURN: TURNConfig{UDPPort: 3478, Host: "h", Secret: []byte("short")}},
	} {
		if err := c.Validate(); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("%+v: %v, want ErrInvalidConfig", c.TURN, err)
		}
	}
}

// TestTURNRefusalsCounted: a client whose credentials were not made with
// the server's key (made with the token secret itself) gets no
// allocation, and the refusal shows in the metrics, which pass the
// client library's lint with the TURN server on.
func TestTURNRefusalsCounted(t *testing.T) {
	leaks := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, leaks) })
	ts, _ := turnTestServer(t)
	var addr string
	for _, a := range ts.turn.Addrs() {
		if a.Transport == "udp" {
			addr = a.Addr.String()
		}
	}
	conn := listenUDP(t)
	u, p := relay.Credentials(testSecret, "mallory", time.Now().Add(time.Hour))
	c, err := pionturn.NewClient(&pionturn.ClientConfig{TURNServerAddr: addr, STUNServerAddr: addr, Conn: conn,
		Username: u, Password: p, Realm: "callcore", RTO: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Listen(); err != nil {
		t.Fatal(err)
	}
	if relayed, err := c.Allocate(); err == nil {
		relayed.Close()
		t.Fatal("a forged credential got an allocation")
	}
	c.Close()
	_ = conn.Close()
	sc := scrapeOf(t, ts.Server)
	if v := sc.value("callcore_turn_refusals_total", "reason", "forged"); v < 1 {
		t.Fatalf("callcore_turn_refusals_total{reason=forged} = %v", v)
	}
	if v := sc.value("callcore_turn_allocations_total", "transport", "udp"); v != 0 {
		t.Fatalf("callcore_turn_allocations_total{transport=udp} = %v", v)
	}
	problems, err := testutil.CollectAndLint(ts.Collector())
	if err != nil || len(problems) > 0 {
		t.Fatalf("lint: %v %v", problems, err)
	}
}
