package webrtc

import (
	"bytes"
	"net"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"
	pion "github.com/pion/webrtc/v4"

	"github.com/callcore/callcore/transport"
)

// countWriter stands in for pion's write stream; it keeps the last packet.
type countWriter struct {
	n, bytes int
	last     []byte
}

func (w *countWriter) WriteRTP(h *rtp.Header, p []byte) (int, error) {
	w.n++
	w.bytes += h.MarshalSize() + len(p)
	w.last = append(w.last[:0], p...)
	return len(p), nil
}

func (w *countWriter) Write(b []byte) (int, error) { return len(b), nil }

func newOut() (*rtpOut, *countWriter) {
	cw := &countWriter{}
	var ws pion.TrackLocalWriter = cw
	out := &rtpOut{batch: noFlush{}}
	out.ws.Store(&ws)
	return out, cw
}

// A header with a one-byte extension element (RFC 8285).
var testHeader = []byte{0x90, 96, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0xBE, 0xDE, 0, 1, 0x10, 0x7f, 0, 0}

// TestWriterAllocs: callcore's part of the subscriber's packet path (the
// writer adapter) allocates nothing; pion's SRTP writer behind it does.
func TestWriterAllocs(t *testing.T) {
	out, cw := newOut()
	payload := make([]byte, 1000)
	allocs := testing.AllocsPerRun(1000, func() {
		if err := out.WriteRTP(testHeader, payload); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per packet, want 0", allocs)
	}
	if cw.bytes/cw.n != len(testHeader)+len(payload) {
		t.Fatalf("wrote %d bytes a packet, want %d", cw.bytes/cw.n, len(testHeader)+len(payload))
	}
	// The split may fall inside the payload (a rewritten VP8 descriptor
	// ends header): the writer joins the two without allocating.
	desc := append(append([]byte(nil), testHeader...), 0x90, 0x80, 0x81, 0x23)
	allocs = testing.AllocsPerRun(1000, func() {
		if err := out.WriteRTP(desc, payload); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per packet with a split payload, want 0", allocs)
	}
	if want := append([]byte{0x90, 0x80, 0x81, 0x23}, payload...); !bytes.Equal(cw.last, want) {
		t.Fatal("the payload prefix carried in header was lost")
	}
	out.closed.Store(true)
	if err := out.WriteRTP(testHeader, payload); err != transport.ErrClosed {
		t.Fatalf("write after close: %v", err)
	}
}

func BenchmarkWriter(b *testing.B) {
	out, _ := newOut()
	payload := make([]byte, 1188)
	b.ReportAllocs()
	for b.Loop() {
		_ = out.WriteRTP(testHeader, payload)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "pkts/s")
}

// BenchmarkDirectWriterTWCC is BenchmarkDirectWriter with the
// transport-wide sequence number written and the send recorded.
func BenchmarkDirectWriterTWCC(b *testing.B) {
	out, bc, done := newDirectOut(b)
	defer done()
	down, err := newDownlink(time.Now(), true)
	if err != nil {
		b.Fatal(err)
	}
	out.twccID, out.down = 3, down
	payload := make([]byte, 1188)
	b.ReportAllocs()
	for b.Loop() {
		_ = out.WriteRTP(testHeader, payload)
		if bc.n == maxBatch {
			bc.n = 0
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "pkts/s")
}

// newDirectOut is a writer on the direct path: SRTP (AES-128-GCM) into a
// trackBatch on a loopback socket, addressed to a second socket.
func newDirectOut(t testing.TB) (*rtpOut, *trackBatch, func()) {
	t.Helper()
	lo := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)}
	sock, err := net.ListenUDP("udp4", lo)
	if err != nil {
		t.Fatal(err)
	}
	sink, err := net.ListenUDP("udp4", lo)
	if err != nil {
		t.Fatal(err)
	}
	ss := newSendSock(sock, sendClock{epoch: time.Now()})
	tb := newTrackBatch(ss, false)
	ctx, err := srtp.CreateContext(make([]byte, 16), make([]byte, 12), srtp.ProtectionProfileAeadAes128Gcm)
	if err != nil {
		t.Fatal(err)
	}
	out, _ := newOut()
	out.sock, out.tb, out.batch = ss, tb, tb
	var to atomic.Pointer[netip.AddrPort]
	addr := sink.LocalAddr().(*net.UDPAddr).AddrPort()
	to.Store(&addr)
	out.fast.Store(&fastOut{ctx: ctx, to: &to})
	return out, tb, func() { sock.Close(); sink.Close() }
}

// TestDirectWriterAllocs: the direct path (parse, copy into the batch
// slot, SRTP in place, sender-report counters) allocates nothing, batched
// or sent at once (the RTCP loop's retransmissions).
func TestDirectWriterAllocs(t *testing.T) {
	out, bc, done := newDirectOut(t)
	defer done()
	payload := make([]byte, 1000)
	i := 0
	allocs := testing.AllocsPerRun(1000, func() {
		if err := out.WriteRTP(testHeader, payload); err != nil {
			t.Fatal(err)
		}
		if i++; i%10 == 0 {
			_ = bc.Flush()
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per packet, want 0", allocs)
	}
	out.immediate.Store(true)
	_ = out.WriteRTP(testHeader, payload) // its scratch buffer, once
	allocs = testing.AllocsPerRun(1000, func() {
		if err := out.WriteRTP(testHeader, payload); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per immediate packet, want 0", allocs)
	}
}

// BenchmarkDirectWriter: callcore's whole per-delivery user-space work on
// the direct path, without the system call (the batch is reset, not sent).
func BenchmarkDirectWriter(b *testing.B) {
	out, bc, done := newDirectOut(b)
	defer done()
	payload := make([]byte, 1188)
	b.ReportAllocs()
	for b.Loop() {
		_ = out.WriteRTP(testHeader, payload)
		if bc.n == maxBatch {
			bc.n = 0
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "pkts/s")
}
