//go:build !race

package webrtc

import (
	"testing"
	"time"
)

// TestTWCCWriterAllocs: writing the transport-wide sequence number and
// recording the send allocates nothing, on pion's path and on the direct
// path (batched and at once).
func TestTWCCWriterAllocs(t *testing.T) {
	down, err := newDownlink(time.Now(), true)
	if err != nil {
		t.Fatal(err)
	}
	payload := make([]byte, 1000)
	out, cw := newOut()
	out.twccID, out.down = 3, down
	_ = out.WriteRTP(testHeader, payload) // pion's header keeps its extension slice
	if n := testing.AllocsPerRun(1000, func() {
		if err := out.WriteRTP(testHeader, payload); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Fatalf("pion's path: %v allocations per packet", n)
	}
	if cw.bytes/cw.n != len(testHeader)+4+len(payload) {
		t.Fatalf("wrote %d bytes a packet, want %d", cw.bytes/cw.n, len(testHeader)+4+len(payload))
	}
	dout, bc, done := newDirectOut(t)
	defer done()
	dout.twccID, dout.down = 3, down
	_ = dout.WriteRTP(testHeader, payload) // the header scratch, once
	i := 0
	if n := testing.AllocsPerRun(1000, func() {
		if err := dout.WriteRTP(testHeader, payload); err != nil {
			t.Fatal(err)
		}
		if i++; i%10 == 0 {
			_ = bc.Flush()
		}
	}); n != 0 {
		t.Fatalf("direct path: %v allocations per packet", n)
	}
	dout.immediate.Store(true)
	_ = dout.WriteRTP(testHeader, payload)
	if n := testing.AllocsPerRun(1000, func() {
		if err := dout.WriteRTP(testHeader, payload); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Fatalf("direct path at once: %v allocations per packet", n)
	}
	pad := make([]byte, 200)
	pad[199] = 200
	padHdr := []byte{0xa0, 97, 0, 9, 0, 0, 0, 2, 0, 0, 0, 4}
	down.probeID.Store(7)
	if n := testing.AllocsPerRun(1000, func() {
		if err := out.WriteRTP(padHdr, pad); err != nil {
			t.Fatal(err)
		}
		if err := dout.WriteRTP(padHdr, pad); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Fatalf("padding: %v allocations per packet", n)
	}
	if seq := down.hist.Next(); seq < 3000 {
		t.Fatalf("%d transport-wide numbers taken, want over 3000", seq)
	}
}
