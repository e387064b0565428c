package link

import (
	"testing"
	"time"

	"github.com/callcore/callcore/forward"
	"github.com/callcore/callcore/internal/testcert"
)

// TestLinkTLS runs a link whose control channel is mutual TLS, the
// listener's certificate checked against the host dialed, and shows that
// a peer without TLS, without a certificate, or expecting another name
// gets no session.
func TestLinkTLS(t *testing.T) {
	srv, cli := testcert.Mutual(t)
	cli.ServerName = "" // the certificate names 127.0.0.1, the host dialed
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
	other := cli.Clone()
	other.ServerName = "other-node"
	misnamed, err := New(Config{Dial: a.Addr().String(), TLS: other, Timeout: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the plain, anonymous and misnamed dialers refused", func() bool { return a.Stats().SessionErrors >= base+3 })
	plain.Close()
	anon.Close()
	misnamed.Close()
	if plain.Stats().Sessions != 0 || anon.Stats().Sessions != 0 || misnamed.Stats().Sessions != 0 {
		t.Fatal("a session without mutual TLS")
	}
	n0, _, _ := rec.counts()
	waitFor(t, "the TLS link still delivering", func() bool { n, _, _ := rec.counts(); return n > n0+50 })
}
