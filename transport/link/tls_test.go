package link

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"testing"
	"time"

	"github.com/callcore/callcore/forward"
)

// testTLS makes a self-signed certificate for "callcore-node" and returns
// the server and client configs of mutual TLS with it.
func testTLS(t testing.TB) (server, client *tls.Config) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "callcore-node"},
		DNSNames: []string{"callcore-node"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		IsCA:        true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	cert := tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
	server = &tls.Config{Certificates: []tls.Certificate{cert}, ClientCAs: pool,
		ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS13}
	client = &tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: pool, ServerName: "callcore-node",
		MinVersion: tls.VersionTLS13}
	return server, client
}

// TestLinkTLS runs a link whose control channel is mutual TLS, and shows
// that a peer without TLS, or without a certificate, gets no session.
func TestLinkTLS(t *testing.T) {
	srv, cli := testTLS(t)
	a, b := pair(t, Config{TLS: srv}, Config{TLS: cli})
	track, _ := newOrigin(t)
	if err := a.Offer("cam", track); err != nil {
		t.Fatal(err)
	}
	rt := remoteOf(t, b, "cam")
	rec := newRecorder(0x77)
	if _, err := rt.Subscribe(forward.SubscriberConfig{Writer: rec, SSRC: 0x77, PayloadType: 100}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "packets over the TLS-keyed link", func() bool { n, _, _ := rec.counts(); return n > 50 })

	base := a.Stats().SessionErrors
	plain, err := New(Config{Dial: a.Addr().String(), Timeout: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	noCert := cli.Clone()
	noCert.Certificates = nil
	anon, err := New(Config{Dial: a.Addr().String(), TLS: noCert, Timeout: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the plain and anonymous dialers refused", func() bool { return a.Stats().SessionErrors >= base+2 })
	plain.Close()
	anon.Close()
	if plain.Stats().Sessions != 0 || anon.Stats().Sessions != 0 {
		t.Fatal("a session without mutual TLS")
	}
	n0, _, _ := rec.counts()
	waitFor(t, "the TLS link still delivering", func() bool { n, _, _ := rec.counts(); return n > n0+50 })
}
