package webrtc

import (
	"net"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"

	"github.com/callcore/callcore/forward"
)

// TestTrackBatch: SRTP datagrams wait for Flush (at most maxBatch of
// them: a full batch is sent at once), they decrypt to the packets
// written, and the batch path allocates nothing once its slots exist.
func TestTrackBatch(t *testing.T) {
	lo := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)}
	sock, err := net.ListenUDP("udp4", lo)
	if err != nil {
		t.Fatal(err)
	}
	defer sock.Close()
	rcv, err := net.ListenUDP("udp4", lo)
	if err != nil {
		t.Fatal(err)
	}
	defer rcv.Close()
	_ = rcv.SetReadBuffer(1 << 20)
	ss := newSendSock(sock, sendClock{epoch: time.Now()})
	track := newTrack(t, forward.Audio, "audio/opus", 48000, 111)
	b := ss.acquire(track)
	if ss.acquire(track) != b {
		t.Fatal("two batches for one track")
	}
	key, salt := make([]byte, 16), make([]byte, 12)
	enc, err := srtp.CreateContext(key, salt, srtp.ProtectionProfileAeadAes128Gcm)
	if err != nil {
		t.Fatal(err)
	}
	dec, err := srtp.CreateContext(key, salt, srtp.ProtectionProfileAeadAes128Gcm)
	if err != nil {
		t.Fatal(err)
	}
	to := rcv.LocalAddr().(*net.UDPAddr).AddrPort()
	seq := uint16(0)
	var hdr rtp.Header
	write := func(mark byte) {
		t.Helper()
		h := []byte{0x80, 111, byte(seq >> 8), byte(seq), 0, 0, 0, 0, 0, 0, 0, 7}
		seq++
		p := make([]byte, 88)
		p[0] = mark
		if _, err := b.write(enc, &hdr, h, p, to); err != nil {
			t.Fatal(err)
		}
	}
	read := func(want byte) {
		t.Helper()
		buf := make([]byte, 2048)
		_ = rcv.SetReadDeadline(time.Now().Add(deadline))
		n, err := rcv.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		plain, err := dec.DecryptRTP(nil, buf[:n], nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(plain) != 100 || plain[12] != want {
			t.Fatalf("read %d bytes, mark %d; want 100 bytes, mark %d", len(plain), plain[12], want)
		}
	}
	for i := range byte(3) {
		write(i)
	}
	if b.n != 3 {
		t.Fatalf("%d datagrams queued, want 3", b.n)
	}
	if err := b.Flush(); err != nil {
		t.Fatal(err)
	}
	for i := range byte(3) {
		read(i)
	}
	for i := range maxBatch + 1 {
		write(byte(i))
	}
	if b.n != 1 {
		t.Fatalf("%d datagrams queued after a full batch, want 1", b.n)
	}
	if err := b.Flush(); err != nil {
		t.Fatal(err)
	}
	for i := range maxBatch + 1 {
		read(byte(i))
	}
	h := []byte{0x80, 111, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7}
	p := make([]byte, 88)
	allocs := testing.AllocsPerRun(100, func() {
		h[3]++
		_, _ = b.write(enc, &hdr, h, p, to)
		_ = b.Flush()
	})
	if allocs != 0 && !raceEnabled {
		t.Fatalf("%v allocations per batched datagram and flush, want 0", allocs)
	}
	ss.release(track, b)
	ss.release(track, b)
	if len(ss.batches) != 0 {
		t.Fatal("the batch outlived its subscriptions")
	}
}
