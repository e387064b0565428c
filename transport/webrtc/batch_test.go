package webrtc

import (
	"net"
	"testing"
	"time"
)

// TestBatchConn: RTP datagrams wait for Flush (at most maxBatch of them),
// anything else goes out at once, and the batch path allocates nothing.
func TestBatchConn(t *testing.T) {
	lo := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)}
	sock, err := net.ListenUDP("udp4", lo)
	if err != nil {
		t.Fatal(err)
	}
	c := newBatchConn(sock, sendClock{epoch: time.Now()})
	defer c.Close()
	rcv, err := net.ListenUDP("udp4", lo)
	if err != nil {
		t.Fatal(err)
	}
	defer rcv.Close()
	_ = rcv.SetReadBuffer(1 << 20)
	to := rcv.LocalAddr().(*net.UDPAddr).AddrPort()
	read := func(want byte) {
		t.Helper()
		buf := make([]byte, 2048)
		_ = rcv.SetReadDeadline(time.Now().Add(deadline))
		n, err := rcv.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		if n != 100 || buf[12] != want {
			t.Fatalf("read %d bytes, mark %d; want 100 bytes, mark %d", n, buf[12], want)
		}
	}
	pkt := func(mark byte) []byte {
		b := make([]byte, 100)
		b[0], b[1], b[12] = 0x80, 111, mark
		return b
	}
	rtcp := pkt(9)
	rtcp[1] = 200
	for i := range byte(3) {
		if _, err := c.WriteToAddrPort(pkt(i), to); err != nil {
			t.Fatal(err)
		}
	}
	if c.n != 3 {
		t.Fatalf("%d datagrams queued, want 3", c.n)
	}
	if _, err := c.WriteTo(rtcp, net.UDPAddrFromAddrPort(to)); err != nil {
		t.Fatal(err)
	}
	read(9) // RTCP went straight out, ahead of the batch
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	for i := range byte(3) {
		read(i)
	}
	for i := range maxBatch + 1 {
		if _, err := c.WriteToAddrPort(pkt(byte(i)), to); err != nil {
			t.Fatal(err)
		}
	}
	if c.n != 1 {
		t.Fatalf("%d datagrams queued after a full batch, want 1", c.n)
	}
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	for i := range maxBatch + 1 {
		read(byte(i))
	}
	p := pkt(1)
	allocs := testing.AllocsPerRun(100, func() {
		_, _ = c.WriteToAddrPort(p, to)
		_ = c.Flush()
	})
	if allocs != 0 && !raceEnabled {
		t.Fatalf("%v allocations per batched datagram and flush, want 0", allocs)
	}
}
