package relay

import (
	"bytes"
	"crypto/tls"
	"errors"
	"net"
	"net/netip"
	"testing"
	"time"

	pionturn "github.com/pion/turn/v5"
	"go.uber.org/goleak"

	"github.com/callcore/callcore/internal/poll"
	"github.com/callcore/callcore/internal/testcert"
)

const deadline = 10 * time.Second

var secret = []byte("relay-test-secret-0123456789abcdef")

// fixture is a relay on loopback (UDP, TCP and TLS), a "media server"
// that echoes what it gets, and another loopback socket the relay must
// never reach.
type fixture struct {
	relay        *Server
	media, other *net.UDPConn
	cert         testcert.Cert
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	f := &fixture{cert: testcert.New(t)}
	f.media = listenUDP(t)
	f.other = listenUDP(t)
	go func() { // the echoing media server
		buf := make([]byte, 1500)
		for {
			n, from, err := f.media.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			_, _ = f.media.WriteToUDPAddrPort(buf[:n], from)
		}
	}()
	udp := listenUDP(t)
	tcp, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tl, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r, err := New(Config{Secret: secret, UDP: udp, TCP: tcp, TLS: tls.NewListener(tl, f.cert.Server),
		Media: f.media.LocalAddr().(*net.UDPAddr).AddrPort()})
	if err != nil {
		t.Fatal(err)
	}
	f.relay = r
	t.Cleanup(func() {
		_ = r.Close()
		_ = f.media.Close()
		_ = f.other.Close()
	})
	return f
}

func listenUDP(t testing.TB) *net.UDPConn {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// client is a pion TURN client of the relay over transport ("udp",
// "tcp" or "tls").
func (f *fixture) client(t testing.TB, transport, username, password string) *pionturn.Client {
	t.Helper()
	var conn net.PacketConn
	var addr net.Addr
	switch transport {
	case "udp":
		addr = f.relayAddr("udp")
		c := listenUDP(t)
		conn = c
	case "tcp":
		addr = f.relayAddr("tcp")
		c, err := net.Dial("tcp", addr.String())
		if err != nil {
			t.Fatal(err)
		}
		conn = pionturn.NewSTUNConn(c)
	case "tls":
		addr = f.relayAddr("tls")
		c, err := tls.Dial("tcp", addr.String(), f.cert.Client)
		if err != nil {
			t.Fatal(err)
		}
		conn = pionturn.NewSTUNConn(c)
	}
	c, err := pionturn.NewClient(&pionturn.ClientConfig{TURNServerAddr: addr.String(), STUNServerAddr: addr.String(),
		Conn: conn, Username: username, Password: password, Realm: "callcore", RTO: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Listen(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c.Close()
		_ = conn.Close()
	})
	return c
}

func (f *fixture) relayAddr(transport string) net.Addr {
	for _, a := range f.relay.Addrs() {
		if a.Transport == transport {
			return a.Addr
		}
	}
	panic("no " + transport)
}

// echo sends msg through the relay to the media server and waits for its
// echo, from the media server's address.
func echo(t testing.TB, relayed net.PacketConn, media net.Addr, msg []byte) {
	t.Helper()
	if _, err := relayed.WriteTo(msg, media); err != nil {
		t.Fatal(err)
	}
	_ = relayed.SetReadDeadline(time.Now().Add(deadline))
	buf := make([]byte, 1500)
	n, from, err := relayed.ReadFrom(buf)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf[:n], msg) || from.String() != media.String() {
		t.Fatalf("got %q from %v, want %q from %v", buf[:n], from, msg, media)
	}
}

// TestRelayToMediaServer: over UDP, TCP and TLS, a client with valid
// credentials allocates and exchanges datagrams with the media server
// through the relay.
func TestRelayToMediaServer(t *testing.T) {
	leaks := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, leaks) })
	f := newFixture(t)
	for _, tr := range []string{"udp", "tcp", "tls"} {
		t.Run(tr, func(t *testing.T) {
			u, p := f.relay.Credentials("alice", time.Now().Add(time.Minute))
			relayed, err := f.client(t, tr, u, p).Allocate()
			if err != nil {
				t.Fatal(err)
			}
			defer relayed.Close()
			echo(t, relayed, f.media.LocalAddr(), []byte("hello over "+tr))
		})
	}
	if st := f.relay.Stats(); st.UDPAllocations != 1 || st.TCPAllocations != 1 || st.TLSAllocations != 1 ||
		st.RefusedPeers != 0 || st.Forged+st.Expired+st.Malformed != 0 {
		t.Fatalf("stats %+v, want one allocation over each transport and no refusals", st)
	}
}

// TestRelayRefusesOtherPeers: the relay sends only to the media port of
// the media server's IPs: a datagram to another port on the same loopback
// IP never leaves it, a permission for another IP is refused, and both
// are counted; the media server stays reachable.
func TestRelayRefusesOtherPeers(t *testing.T) {
	leaks := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, leaks) })
	f := newFixture(t)
	u, p := f.relay.Credentials("mallory", time.Now().Add(time.Minute))
	relayed, err := f.client(t, "udp", u, p).Allocate()
	if err != nil {
		t.Fatal(err)
	}
	defer relayed.Close()

	// Same IP, another port: the permission (by IP) is granted, the
	// datagram is refused at the relay socket.
	if _, err := relayed.WriteTo([]byte("to another port"), f.other.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the datagram to another port to be refused", func() bool { return f.relay.Stats().RefusedPeers == 1 })
	_ = f.other.SetReadDeadline(time.Now()) // refused before it was sent: nothing can be on its way
	var ne net.Error
	if n, _, err := f.other.ReadFrom(make([]byte, 100)); !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("the other socket got %d bytes (err %v)", n, err)
	}

	// Another IP: the permission itself is refused.
	other2 := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 2), Port: int(f.media.LocalAddr().(*net.UDPAddr).Port)}
	_, _ = relayed.WriteTo([]byte("to another IP"), other2)
	waitFor(t, "the permission for another IP to be refused", func() bool { return f.relay.Stats().RefusedPeers >= 2 })

	echo(t, relayed, f.media.LocalAddr(), []byte("still fine"))
}

// TestRelayRefusesBadCredentials: an expired username, a password not
// made with the secret and a username without an expiry are refused
// (no allocation) and counted.
func TestRelayRefusesBadCredentials(t *testing.T) {
	leaks := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, leaks) })
	f := newFixture(t)
	expiredU, expiredP := f.relay.Credentials("alice", time.Now().Add(-time.Second))
	forgedU, forgedP := Credentials([]byte("not-the-relay-secret-0123456789"), "alice", time.Now().Add(time.Minute))
	for _, c := range []struct{ name, u, p string }{
		{"expired", expiredU, expiredP},
		{"forged", forgedU, forgedP},
		{"malformed", "alice", "x"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if relayed, err := f.client(t, "udp", c.u, c.p).Allocate(); err == nil {
				relayed.Close()
				t.Fatal("allocated")
			}
		})
	}
	st := f.relay.Stats()
	if st.Expired == 0 || st.Forged == 0 || st.Malformed == 0 || st.UDPAllocations != 0 {
		t.Fatalf("stats %+v, want expired, forged and malformed counted and no allocation", st)
	}
}

func TestConfigValidate(t *testing.T) {
	udp := listenUDP(t)
	defer udp.Close()
	media := netip.MustParseAddrPort("127.0.0.1:5000")
	for _, c := range []Config{
		{Secret: []byte("short"), UDP: udp, Media: media},
		{Secret: secret, Media: media},
		{Secret: secret, UDP: udp},
		{Secret: secret, UDP: udp, Media: netip.MustParseAddrPort("0.0.0.0:5000")},
		{Secret: secret, UDP: udp, Media: media, MediaIPs: []netip.Addr{netip.IPv4Unspecified()}},
	} {
		if err := c.Validate(); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("%+v: %v, want ErrInvalidConfig", c, err)
		}
	}
	if err := (Config{Secret: secret, UDP: udp, Media: media}).Validate(); err != nil {
		t.Error(err)
	}
}

// waitFor polls cond against the deadline.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	poll.Until(t, deadline, what, cond)
}
