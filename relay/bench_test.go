package relay

import (
	"net"
	"syscall"
	"testing"
	"time"
)

// The cost of relaying: media-server-to-client datagrams of 1,200 bytes
// (a video packet's size), in bursts of 16, received in full before the
// next burst, through the relay (TURN over UDP: relay socket, pion's
// server, a Data indication or ChannelData to the client, pion's client)
// against straight from socket to socket. cpu-ns/pkt is the process's
// CPU time (user and system, every goroutine: sender, relay, receiver)
// per delivered packet.
const burst = 16

func BenchmarkDeliverDirect(b *testing.B) {
	media := listenUDP(b)
	defer media.Close()
	client := listenUDP(b)
	defer client.Close()
	to := client.LocalAddr()
	deliver(b, func(p []byte) error { _, err := media.WriteTo(p, to); return err }, client)
}

func BenchmarkDeliverThroughTURN(b *testing.B) {
	f := newFixture(b)
	u, p := f.relay.Credentials("bench", time.Now().Add(time.Hour))
	relayed, err := f.client(b, "udp", u, p).Allocate()
	if err != nil {
		b.Fatal(err)
	}
	defer relayed.Close()
	echo(b, relayed, f.media.LocalAddr(), []byte("permission")) // also the echo server's last use of media
	to := relayed.LocalAddr()
	deliver(b, func(p []byte) error { _, err := f.media.WriteTo(p, to); return err }, relayed)
}

func deliver(b *testing.B, send func([]byte) error, recv net.PacketConn) {
	pkt := make([]byte, 1200)
	buf := make([]byte, 1500)
	var before syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &before)
	b.ResetTimer()
	start := time.Now()
	for n := 0; n < b.N; n += burst {
		k := min(burst, b.N-n)
		for range k {
			if err := send(pkt); err != nil {
				b.Fatal(err)
			}
		}
		_ = recv.SetReadDeadline(time.Now().Add(deadline))
		for range k {
			if _, _, err := recv.ReadFrom(buf); err != nil {
				b.Fatalf("after %d packets: %v", n, err)
			}
		}
	}
	elapsed := time.Since(start)
	b.StopTimer()
	var after syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &after)
	cpu := time.Duration(after.Utime.Nano() - before.Utime.Nano() + after.Stime.Nano() - before.Stime.Nano())
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/pkt")
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "pkts/s")
}
