package rtp_test

import (
	"bytes"
	"errors"
	"net"
	"net/netip"
	"strconv"
	"testing"
	"time"

	"github.com/pion/srtp/v3"

	"github.com/callcore/callcore/transport/rtp"
)

func send(t *testing.T, c *net.UDPConn, to interface{ String() string }, b []byte) {
	t.Helper()
	a, err := net.ResolveUDPAddr("udp", to.String())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.WriteToUDP(b, a); err != nil {
		t.Fatal(err)
	}
}

// waitStats polls until cond holds for the ingest's counters.
func waitStats(t *testing.T, in *rtp.Ingest, what string, cond func(rtp.Stats) bool) {
	t.Helper()
	end := time.Now().Add(10 * time.Second)
	for s := in.Stats(); !cond(s); s = in.Stats() {
		if time.Now().After(end) {
			t.Fatalf("timed out waiting for %s: %+v", what, s)
		}
		time.Sleep(time.Millisecond) // polling a condition against a deadline
	}
}

var pli = []byte{0x81, 206, 0, 2, 0, 0, 0, 1, 0, 0, 0, 7}

func TestIngestBadInput(t *testing.T) {
	var h handler
	in := newIngest(t, rtp.IngestConfig{RTP: &h, RTCP: &h})
	a, b := udp(t, "127.0.0.1:0"), udp(t, "127.0.0.1:0")
	send(t, a, in.Addr(), rtpPacket(1, 5, []byte("one")))
	eventually(t, "the first packet", func() bool { return h.n.Load() == 1 })
	if s, ok := in.Sender(); !ok || s != addrOf(a) {
		t.Fatalf("sender %v %v, want %v", s, ok, addrOf(a))
	}
	send(t, b, in.Addr(), rtpPacket(2, 5, []byte("intruder")))
	send(t, a, in.Addr(), []byte{0x00, 96, 0, 3})              // not RTP
	send(t, a, in.Addr(), rtpPacket(4, 5, make([]byte, 1600))) // oversized
	send(t, a, in.RTCPAddr(), []byte{0x80, 200, 0, 9, 1, 2})   // RTCP garbage
	send(t, a, in.RTCPAddr(), []byte{0x80, 96, 0, 1, 1, 2, 3, 4})
	send(t, b, in.RTCPAddr(), pli) // RTCP from another IP would be refused; same IP is taken
	waitStats(t, in, "bad input counted", func(s rtp.Stats) bool {
		return s.UnknownSource == 1 && s.Malformed == 3 && s.Oversized == 1
	})
	send(t, a, in.Addr(), rtpPacket(5, 5, []byte("five")))
	eventually(t, "the read goroutine to go on", func() bool { return h.n.Load() == 2 })
	got, _ := h.packets()
	if !bytes.Equal(got[1], rtpPacket(5, 5, []byte("five"))) {
		t.Fatalf("got %x", got[1])
	}
	if s := in.Stats(); s.RTPIn != 2 || s.Dropped() != 5 {
		t.Fatalf("stats %+v", s)
	}
	// The sender restarts from b.
	in.ForgetSender()
	send(t, b, in.Addr(), rtpPacket(6, 5, []byte("six")))
	eventually(t, "the new sender's packet", func() bool { return h.n.Load() == 3 })
	if s, _ := in.Sender(); s != addrOf(b) {
		t.Fatalf("sender %v, want %v", s, addrOf(b))
	}
}

func TestIngestFilters(t *testing.T) {
	a, b := udp(t, "127.0.0.1:0"), udp(t, "127.0.0.1:0")
	var h handler
	in := newIngest(t, rtp.IngestConfig{RTP: &h, Source: addrOf(b), SSRC: 9})
	send(t, a, in.Addr(), rtpPacket(1, 9, nil)) // not the configured source
	send(t, b, in.Addr(), rtpPacket(2, 8, nil)) // not the configured SSRC
	send(t, b, in.Addr(), rtpPacket(3, 9, nil))
	eventually(t, "the packet that passes", func() bool { return h.n.Load() == 1 })
	waitStats(t, in, "refusals", func(s rtp.Stats) bool { return s.UnknownSource == 1 && s.UnknownSSRC == 1 })
}

// TestIngestDualStack checks that an ingest on a dual-stack socket takes
// an IPv4 Source as the same address the kernel reports as ::ffff:a.b.c.d.
func TestIngestDualStack(t *testing.T) {
	a := udp(t, "127.0.0.1:0")
	var h handler
	in, err := rtp.NewIngest(rtp.IngestConfig{Addr: "[::]:0", RTP: &h, Source: addrOf(a)})
	if err != nil {
		t.Skipf("no dual-stack socket here: %v", err)
	}
	defer in.Close()
	send(t, a, netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), in.Addr().Port()), rtpPacket(1, 5, nil))
	eventually(t, "the packet", func() bool { return h.n.Load() == 1 })
	if err := in.WriteRTCP(pli); err != nil {
		t.Fatalf("RTCP back to an IPv4 sender from a dual-stack socket: %v", err)
	}
}

// srtpContext returns a pion SRTP context for the test's side of a link.
func srtpContext(t *testing.T, k *rtp.Keys) *srtp.Context {
	t.Helper()
	c, err := srtp.CreateContext(k.Key, k.Salt, srtp.ProtectionProfile(k.Profile))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestIngestSRTPBadInput(t *testing.T) {
	for _, p := range []rtp.Profile{rtp.ProfileAESCM128SHA1_80, rtp.ProfileAEADAES128GCM} {
		t.Run(p.String(), func(t *testing.T) { testSRTPBadInput(t, p) })
	}
}

func testSRTPBadInput(t *testing.T, p rtp.Profile) {
	k, wrong := keys(t, p), keys(t, p)
	enc, bad := srtpContext(t, k), srtpContext(t, wrong)
	var h handler
	in := newIngest(t, rtp.IngestConfig{RTP: &h, RTCP: &h, SRTP: k})
	a, b := udp(t, "127.0.0.1:0"), udp(t, "127.0.0.1:0")
	protect := func(c *srtp.Context, seq uint16) []byte {
		out, err := c.EncryptRTP(nil, rtpPacket(seq, 5, []byte("media")), nil)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	send(t, b, in.Addr(), protect(bad, 1)) // fails authentication: must not lock onto b
	one := protect(enc, 1)
	send(t, a, in.Addr(), one)
	eventually(t, "the first packet", func() bool { return h.n.Load() == 1 })
	if s, _ := in.Sender(); s != addrOf(a) {
		t.Fatalf("locked onto %v, want %v", s, addrOf(a))
	}
	send(t, a, in.Addr(), one) // replay
	tampered := protect(enc, 2)
	tampered[len(tampered)-20] ^= 1
	send(t, a, in.Addr(), tampered)
	send(t, a, in.Addr(), protect(enc, 3))
	eventually(t, "the next good packet", func() bool { return h.n.Load() == 2 })
	got, _ := h.packets()
	if !bytes.Equal(got[1], rtpPacket(3, 5, []byte("media"))) {
		t.Fatalf("unprotected %x", got[1])
	}
	sr, err := enc.EncryptRTCP(nil, pli, nil)
	if err != nil {
		t.Fatal(err)
	}
	send(t, a, in.RTCPAddr(), sr)
	send(t, a, in.RTCPAddr(), sr)  // replay
	send(t, a, in.RTCPAddr(), pli) // unprotected: too short for SRTCP
	eventually(t, "SRTCP", func() bool { return h.nrtcp.Load() == 1 })
	waitStats(t, in, "refusals", func(s rtp.Stats) bool { return s.AuthFailed == 2 && s.Replayed == 2 && s.Malformed == 1 })
	if _, rtcp := h.packets(); !bytes.Equal(rtcp[0], pli) {
		t.Fatalf("unprotected RTCP %x", rtcp[0])
	}
}

func TestIngestWriteRTCP(t *testing.T) {
	for _, k := range []*rtp.Keys{nil, keys(t, rtp.ProfileAESCM128SHA1_80), keys(t, rtp.ProfileAEADAES128GCM)} {
		name := "plain"
		if k != nil {
			name = k.Profile.String()
		}
		t.Run(name, func(t *testing.T) { testWriteRTCP(t, k) })
	}
}

func testWriteRTCP(t *testing.T, k *rtp.Keys) {
	var h handler
	in := newIngest(t, rtp.IngestConfig{RTP: &h, SRTP: k})
	if err := in.WriteRTCP(pli); !errors.Is(err, rtp.ErrNoPeer) {
		t.Fatalf("write before a sender: %v, want ErrNoPeer", err)
	}
	p := freePair(t)
	a := udp(t, "127.0.0.1:"+strconv.Itoa(p))
	rtcpSock := udp(t, "127.0.0.1:"+strconv.Itoa(p+1))
	pkt := rtpPacket(1, 5, nil)
	if k != nil {
		var err error
		if pkt, err = srtpContext(t, k).EncryptRTP(nil, pkt, nil); err != nil {
			t.Fatal(err)
		}
	}
	send(t, a, in.Addr(), pkt)
	eventually(t, "the sender to be known", func() bool { return h.n.Load() == 1 })
	if err := in.WriteRTCP(pli); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1500)
	n, from, err := rtcpSock.ReadFromUDPAddrPort(buf)
	if err != nil {
		t.Fatal(err)
	}
	if from != in.RTCPAddr() {
		t.Errorf("RTCP from %v, want %v", from, in.RTCPAddr())
	}
	got := buf[:n]
	if k != nil {
		if got, err = srtpContext(t, k).DecryptRTCP(nil, got, nil); err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(got, pli) {
		t.Fatalf("sender got %x, want %x", got, pli)
	}
	if err := in.WriteRTCP([]byte{1, 2, 3}); !errors.Is(err, rtp.ErrMalformed) {
		t.Fatalf("garbage RTCP: %v, want ErrMalformed", err)
	}
	if s := in.Stats(); s.RTCPOut != 1 || s.Malformed != 1 {
		t.Fatalf("stats %+v", s)
	}
}
