//go:build !race

package webrtc

import (
	"testing"
	"time"

	"github.com/callcore/callcore/forward"
	"github.com/callcore/callcore/pace"
)

// TestPacedWriterAllocs: with pacing on, a video writer allocates nothing
// per packet, on pion's path and on the direct path: before the peer's
// first feedback (one atomic load), and paced, its packets queued and
// sent by the scheduler's goroutine (whose allocations AllocsPerRun
// counts too). Nothing is dropped and every packet is sent.
func TestPacedWriterAllocs(t *testing.T) {
	payload := make([]byte, 1000)
	pout, cw := newOut()
	dout, _, done := newDirectOut(t)
	defer done()
	sc := &paceScratch{batch: newTrackBatch(dout.sock, false)}
	sched, err := pace.New(pace.Config{OnRound: sc.flush})
	if err != nil {
		t.Fatal(err)
	}
	defer sched.Close()
	for name, out := range map[string]*rtpOut{"pion's path": pout, "direct path": dout} {
		down, err := newDownlink(time.Now(), true)
		if err != nil {
			t.Fatal(err)
		}
		out.twccID, out.down = 3, down
		out.ssrc.Store(3)
		out.po = &paceOut{sched: sched, q: sched.NewQueue(paceSlots, batchSlot, out), pp: &down.pace,
			sc: sc, keyStart: forward.KeyFrameStart("video/VP8"), askKey: func() {}}
		_ = out.WriteRTP(testHeader, payload) // the writer's scratch, once
		if n := testing.AllocsPerRun(500, func() {
			if err := out.WriteRTP(testHeader, payload); err != nil {
				t.Fatal(err)
			}
		}); n != 0 || down.pace.queued.Load() != 0 {
			t.Fatalf("%s, no feedback yet: %v allocations per packet, %d queued", name, n, down.pace.queued.Load())
		}
		down.pace.bucket.SetRate(20e6, 0) // 20 MB/s, no depth: a packet each 52 µs, the rest queued
		_ = out.WriteRTP(testHeader, payload)
		waitFor(t, "the ring's first packet sent", func() bool { return !out.po.q.Busy() })
		if n := testing.AllocsPerRun(1000, func() {
			if err := out.WriteRTP(testHeader, payload); err != nil {
				t.Fatal(err)
			}
			for out.po.q.Len() > paceSlots/2 { // bounded by the rate: the scheduler sends one each 52 µs
				time.Sleep(100 * time.Microsecond)
			}
		}); n != 0 {
			t.Fatalf("%s, paced: %v allocations per packet", name, n)
		}
		waitFor(t, "the ring sent", func() bool { return !out.po.q.Busy() })
		st := &down.pace
		if st.queued.Load() < 500 || st.dropped.Load() != 0 {
			t.Fatalf("%s: %d queued, %d dropped", name, st.queued.Load(), st.dropped.Load())
		}
		if seq := down.hist.Next(); seq != 1+501+1+1001 {
			t.Fatalf("%s: %d transport-wide numbers taken, want one per packet sent (1504)", name, seq)
		}
	}
	if cw.n != 1504 {
		t.Fatalf("pion's path wrote %d packets, want 1504", cw.n)
	}
}
