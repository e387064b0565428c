package forward_test

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/callcore/callcore/forward"
	"github.com/callcore/callcore/internal/clocktest"
	"github.com/callcore/callcore/transport"
	"github.com/callcore/callcore/transport/memory"
)

// seqWriter is a subscriber's receiving end that notes the highest
// sequence number and counts packets at or below it (retransmissions).
// The core calls it from whichever goroutine holds the track's section.
type seqWriter struct {
	high    atomic.Int32 // -1 until a packet came
	packets atomic.Int64
	again   atomic.Int64
}

func (w *seqWriter) WriteRTP(h, _ []byte) error {
	seq := int32(binary.BigEndian.Uint16(h[2:]))
	w.packets.Add(1)
	if seq <= w.high.Load() {
		w.again.Add(1)
	} else {
		w.high.Store(seq)
	}
	return nil
}

// holder is a subscriber's writer that, once armed, holds the fan-out
// that reaches it (and with it the track's section) until told to go on:
// feedback sent meanwhile finds the section held, whatever the scheduler
// does.
type holder struct {
	memory.Counter
	armed   atomic.Bool
	inside  chan struct{} // told when an armed write holds the section
	proceed chan struct{}
	done    chan struct{}
}

func (h *holder) WriteRTP(hd, p []byte) error {
	if h.armed.CompareAndSwap(true, false) {
		h.inside <- struct{}{}
		select {
		case <-h.proceed:
		case <-h.done:
		}
	}
	return h.Counter.WriteRTP(hd, p)
}

// TestFeedbackDuringFanoutIsHandedOver: a publisher goroutine fans a VP8
// stream out to 100 subscribers while one of them sends 1,000 NACKs (one
// number each, about 1,000 a second) and 100 PLIs from its own goroutine,
// and a third goroutine pumps the track and asks for key frames. With the
// budgets out of the way, every NACK is answered and every PLI reaches the
// track; the others get every packet. Requests that found the section
// held were run by its holder (Delegated), without their goroutine
// waiting.
func TestFeedbackDuringFanoutIsHandedOver(t *testing.T) {
	clk := &clocktest.Clock{}
	var upstream memory.Sink
	tr := vp8Track(t, clk, &upstream)
	w := &seqWriter{}
	w.high.Store(-1)
	nacker, err := tr.Subscribe(forward.SubscriberConfig{Writer: w, SSRC: 0x5555,
		KeyFrameRequests: forward.Budget{Rate: 1_000_000, Burst: 1_000_000}, NACKs: forward.Budget{Rate: 1_000_000, Burst: 1_000_000},
		RetransmitPercent: 1000, RetransmitBurst: 1_000_000})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	hold := &holder{inside: make(chan struct{}, 1), proceed: make(chan struct{}), done: done}
	sinks := make([]*memory.Counter, 99)
	for i := range sinks {
		var w transport.RTPWriter
		if i == 0 {
			sinks[i], w = &hold.Counter, hold
		} else {
			sinks[i] = &memory.Counter{}
			w = sinks[i]
		}
		if _, err := tr.Subscribe(forward.SubscriberConfig{Writer: w, SSRC: uint32(i + 1)}); err != nil {
			t.Fatal(err)
		}
	}
	src := &vp8{seq: 0, keyEvery: 30, clk: clk}
	first, _ := src.next(t)
	send(t, tr, first)

	const nacks = 1000
	deadline := time.Now().Add(20 * time.Second)
	var stop atomic.Bool
	var sent atomic.Int64
	sent.Store(1)
	// The publisher runs on credits the NACKer hands out, 20 a NACK: it
	// keeps the section busy without running so far ahead of a descheduled
	// NACKer that the numbers it NACKs leave the cache.
	credits := make(chan struct{}, 64)
	for range 64 {
		credits <- struct{}{}
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { // the publisher, until the feedback is done or its numbers would wrap
		defer wg.Done()
		for n := 0; n < 60_000 && time.Now().Before(deadline); n++ {
			select {
			case <-credits:
			case <-done:
				return
			}
			pkt, _ := src.next(t)
			if err := tr.HandleRTP(pkt); err != nil {
				t.Error(err)
				return
			}
			sent.Add(1)
		}
	}()
	go func() { // the pulse and the channel layer
		defer wg.Done()
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for i := 0; !stop.Load() && time.Now().Before(deadline); i++ {
			<-tick.C
			tr.Pump()
			if i%50 == 0 {
				tr.RequestKeyFrame()
			}
		}
	}()
	for w.high.Load() < 8 { // the first NACK names a packet that was sent
		if time.Now().After(deadline) {
			t.Fatal("the publisher sent nothing")
		}
		time.Sleep(time.Millisecond) // polling a condition against a deadline
	}
	tick := time.NewTicker(time.Millisecond)
	for i := range nacks {
		<-tick.C
		if time.Now().After(deadline) {
			t.Fatal("deadline passed")
		}
		for range 20 {
			select {
			case credits <- struct{}{}:
			default:
			}
		}
		held := i%100 == 50 // this NACK and PLI go while a fan-out holds the section
		if held {
			hold.armed.Store(true)
			select {
			case <-hold.inside:
			case <-time.After(time.Until(deadline)):
				t.Fatal("no fan-out reached the holding subscriber")
			}
		}
		if err := nacker.HandleRTCP(nackFor(t, 0x5555, uint16(w.high.Load()-3))); err != nil {
			t.Fatal(err)
		}
		if i%10 == 0 {
			if err := nacker.HandleRTCP(pli(t, 0x5555)); err != nil {
				t.Fatal(err)
			}
		}
		if held {
			hold.proceed <- struct{}{}
		}
	}
	tick.Stop()
	stop.Store(true)
	close(done)
	wg.Wait()

	st, ts := nacker.Stats(), tr.Stats()
	t.Logf("%d packets to 100 subscribers; track stats: delegated %d, handoffs %d", sent.Load(), ts.Delegated, ts.Handoffs)
	if st.NACKs != nacks || st.Retransmits != nacks || w.again.Load() != nacks {
		t.Fatalf("%d NACKs: %d handled, %d retransmitted, %d received again (%+v)", nacks, st.NACKs, st.Retransmits, w.again.Load(), st)
	}
	if st.KeyFrameRequests != nacks/10 || ts.KeyFrameRequestsIn != nacks/10 {
		t.Fatalf("%d PLIs sent, %d counted, %d reached the track", nacks/10, st.KeyFrameRequests, ts.KeyFrameRequestsIn)
	}
	if got := w.packets.Load() - w.again.Load(); got != sent.Load() {
		t.Fatalf("the NACKing subscriber got %d of %d packets", got, sent.Load())
	}
	for i, c := range sinks {
		if c.Packets != uint64(sent.Load()) {
			t.Fatalf("subscriber %d got %d of %d packets", i, c.Packets, sent.Load())
		}
	}
	// Ten NACKs went while a fan-out held the section: each was handed to
	// the holder, more where the scheduler made contention of its own.
	if ts.Delegated < 10 {
		t.Fatalf("%d requests handed over, want at least the 10 sent while the section was held", ts.Delegated)
	}
}

// TestNothingYieldsInALoop: the package waits for nothing by yielding; a
// goroutine that needs the section hands its work over or sleeps until
// the section is handed to it.
func TestNothingYieldsInALoop(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(b), "runtime.Gosched") {
			t.Errorf("%s calls runtime.Gosched", f)
		}
	}
}

// TestRequestsNeverWaitForTheSection: while a packet's fan-out holds the
// section (its subscriber's writer is blocked), a key-frame request, a
// pump and a subscriber's PLI return at once; the goroutine holding the
// section runs them before it leaves, so the request goes upstream then.
func TestRequestsNeverWaitForTheSection(t *testing.T) {
	clk := &clocktest.Clock{}
	var upstream memory.Sink
	tr := vp8Track(t, clk, &upstream)
	entered, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	blocking := transport.RTPWriterFunc(func(_, _ []byte) error {
		once.Do(func() { close(entered); <-release })
		return nil
	})
	s, err := tr.Subscribe(forward.SubscriberConfig{Writer: blocking, SSRC: 7})
	if err != nil {
		t.Fatal(err)
	}
	src := &vp8{seq: 0, keyEvery: 30, clk: clk}
	pkt, _ := src.next(t)
	done := make(chan struct{})
	go func() {
		defer close(done)
		send(t, tr, pkt)
	}()
	<-entered // the publisher's goroutine holds the section
	tr.RequestKeyFrame()
	tr.Pump()
	if err := s.HandleRTCP(pli(t, 7)); err != nil {
		t.Fatal(err)
	}
	if n := plis(t, &upstream); n != 0 {
		t.Fatalf("%d requests went upstream while the section was held", n)
	}
	if st := tr.Stats(); st.Delegated != 3 {
		t.Fatalf("%d requests handed over, want 3", st.Delegated)
	}
	close(release)
	<-done
	if n := plis(t, &upstream); n != 1 {
		t.Fatalf("%d requests upstream after the holder left, want 1 (merged)", n)
	}
	if st := tr.Stats(); st.KeyFrameRequestsIn != 1 {
		t.Fatalf("the PLI did not reach the track: %+v", st)
	}
}
