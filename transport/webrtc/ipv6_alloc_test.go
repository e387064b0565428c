//go:build !race

package webrtc

import (
	"net"
	"testing"

	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"

	"github.com/callcore/callcore/forward"
)

// TestDirectPathIPv6Allocs: a batch on an IPv6 socket, to an IPv6 and an
// IPv4 peer, encrypts and sends without allocating.
func TestDirectPathIPv6Allocs(t *testing.T) {
	listenIPv6Loopback(t).Close()
	dual, err := net.ListenUDP("udp", &net.UDPAddr{})
	if err != nil {
		t.Fatal(err)
	}
	defer dual.Close()
	recv4, recv6 := listenUDP4(t), listenIPv6Loopback(t)
	defer recv4.Close()
	defer recv6.Close()
	_ = recv4.SetReadBuffer(4 << 20)
	_ = recv6.SetReadBuffer(4 << 20)
	track, err := forward.NewTrack(forward.TrackConfig{Kind: forward.Audio, MimeType: "audio/opus", ClockRate: 48000, PayloadType: 111})
	if err != nil {
		t.Fatal(err)
	}
	defer track.Close()
	ctx, err := srtp.CreateContext(make([]byte, 16), make([]byte, 14), srtp.ProtectionProfileAes128CmHmacSha1_80)
	if err != nil {
		t.Fatal(err)
	}
	s := newSendSock(dual, sendClock{})
	b := s.acquire(track)
	defer s.release(track, b)
	header := []byte{0x80, 111, 0, 1, 0, 0, 0, 1, 0, 0, 0x12, 0x34}
	var hdr rtp.Header
	if _, err := hdr.Unmarshal(header); err != nil {
		t.Fatal(err)
	}
	payload := make([]byte, 160)
	to4, to6 := recv4.LocalAddr().(*net.UDPAddr).AddrPort(), recv6.LocalAddr().(*net.UDPAddr).AddrPort()
	send := func() {
		hdr.SequenceNumber++
		if _, err := b.write(ctx, &hdr, header, payload, to4); err != nil {
			t.Fatal(err)
		}
		if _, err := b.write(ctx, &hdr, header, payload, to6); err != nil {
			t.Fatal(err)
		}
		if err := b.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	send() // the slots are allocated on first use
	if n := testing.AllocsPerRun(200, send); n != 0 {
		t.Fatalf("%v allocations per batch", n)
	}
}
