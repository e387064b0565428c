package webrtc

import (
	"bytes"
	"testing"

	"github.com/pion/rtp"
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
