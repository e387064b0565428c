package link

import (
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/callcore/callcore/forward"
	"github.com/callcore/callcore/internal/rtptest"
)

// TestLinkBadInput sends B datagrams from strangers, forged and replayed
// SRTP, packets for unknown SSRCs and RTCP garbage, and makes one of B's
// two peers vanish: everything is dropped and counted and the other link
// keeps delivering.
func TestLinkBadInput(t *testing.T) {
	a, b := pair(t, Config{}, Config{})
	track, _ := newOrigin(t)
	if err := a.Offer("cam", track); err != nil {
		t.Fatal(err)
	}
	rt := remoteOf(t, b, "cam")
	rec := newRecorder(0x77)
	if _, err := rt.Subscribe(forward.SubscriberConfig{Writer: rec, SSRC: 0x77, PayloadType: 100}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "packets at B", func() bool { n, _, _ := rec.counts(); return n > 20 })

	// A second link on B, whose peer C vanishes.
	var ended atomic.Int64
	b2, c := pair(t, Config{Linger: 200 * time.Millisecond, OnTrackEnded: func(*RemoteTrack) { ended.Add(1) }}, Config{})
	track2, _ := newOrigin(t)
	if err := c.Offer("mic", track2); err != nil {
		t.Fatal(err)
	}
	remoteOf(t, b2, "mic")

	sb, sa := b.current(), a.current()
	dst := sb.conn.LocalAddr().(*net.UDPAddr).AddrPort()
	stranger, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer stranger.Close()
	send := func(conn *net.UDPConn, p []byte) {
		t.Helper()
		if _, err := conn.WriteToUDPAddrPort(p, dst); err != nil {
			t.Fatal(err)
		}
	}
	base := b.Stats()
	plain := rtptest.Packet{PayloadType: pubPT, Seq: 7, SSRC: 0xDEAD, Payload: make([]byte, 40)}.Marshal()

	send(stranger, plain)                                        // unknown source
	send(sa.conn, []byte{0x80, 1, 2})                            // malformed
	send(sa.conn, append(plain, make([]byte, 16)...))            // forged: authentication fails
	send(sa.conn, append([]byte{0x80, 200, 0, 1}, plain[4:]...)) // RTCP garbage
	ctx, err := newContext(sa.local)                             // the sender's real key, an SSRC nobody announced
	if err != nil {
		t.Fatal(err)
	}
	enc, err := ctx.EncryptRTP(nil, plain, nil)
	if err != nil {
		t.Fatal(err)
	}
	send(sa.conn, enc) // authentic, unknown SSRC
	send(sa.conn, enc) // replayed
	waitFor(t, "every bad datagram counted", func() bool {
		s := b.Stats()
		return s.UnknownSource > base.UnknownSource && s.Malformed > base.Malformed &&
			s.AuthFailed >= base.AuthFailed+2 && s.UnknownSSRC > base.UnknownSSRC && s.Replayed > base.Replayed
	})

	// C vanishes: B's link to it notices, its link to A goes on.
	c.Close()
	waitFor(t, "B to notice C gone", func() bool { return !b2.Connected() })
	waitFor(t, "C's track ended after Linger", func() bool { return b2.Remote("mic") == nil && ended.Load() == 1 })
	n0, _, _ := rec.counts()
	waitFor(t, "B still receiving from A", func() bool { n, _, _ := rec.counts(); return n > n0+100 })
}
