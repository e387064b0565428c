// Package transporttest is the conformance suite every callcore transport
// passes: packets arrive whole and in order, buffers are only lent, RTCP
// passes, flush points deliver, Close refuses further packets and leaves
// no goroutine behind.
//
// A transport's test calls Run with a Factory:
//
//	func TestConformance(t *testing.T) {
//		transporttest.Run(t, func(t *testing.T, rtp transport.RTPWriter, rtcp transport.RTCPWriter) transporttest.Endpoints {
//			// build a transport whose far end delivers into rtp and rtcp
//		})
//	}
package transporttest

import (
	"bytes"
	"errors"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/callcore/callcore/transport"
)

// Endpoints is the near end of a transport under test: where the core
// writes. Close must stop the transport and wait for its goroutines.
type Endpoints struct {
	RTP   transport.RTPWriter
	RTCP  transport.RTCPWriter
	Close func() error
}

// Factory builds a transport whose far end hands what it receives to rtp
// and rtcp, which are safe for concurrent use.
type Factory func(t *testing.T, rtp transport.RTPWriter, rtcp transport.RTCPWriter) Endpoints

// Deadline bounds every wait for packets to arrive.
var Deadline = 10 * time.Second

// Run runs the suite.
func Run(t *testing.T, f Factory) {
	t.Run("OrderAndIntegrity", func(t *testing.T) { testOrder(t, f) })
	t.Run("BuffersAreLent", func(t *testing.T) { testLent(t, f) })
	t.Run("RTCP", func(t *testing.T) { testRTCP(t, f) })
	t.Run("Close", func(t *testing.T) { testClose(t, f) })
}

// recorder is the far end: it keeps copies of what arrives.
type recorder struct {
	mu   sync.Mutex // guards rtp, rtcp
	rtp  [][]byte
	rtcp [][]byte
}

func (r *recorder) WriteRTP(h, p []byte) error {
	c := append(append([]byte(nil), h...), p...)
	r.mu.Lock()
	r.rtp = append(r.rtp, c)
	r.mu.Unlock()
	return nil
}

func (r *recorder) WriteRTCP(b []byte) error {
	c := append([]byte(nil), b...)
	r.mu.Lock()
	r.rtcp = append(r.rtcp, c)
	r.mu.Unlock()
	return nil
}

// wait polls until n RTP and m RTCP packets arrived, or the deadline.
func (r *recorder) wait(t *testing.T, n, m int) ([][]byte, [][]byte) {
	t.Helper()
	end := time.Now().Add(Deadline)
	for {
		r.mu.Lock()
		a, b := append([][]byte(nil), r.rtp...), append([][]byte(nil), r.rtcp...)
		r.mu.Unlock()
		if len(a) >= n && len(b) >= m {
			return a, b
		}
		if time.Now().After(end) {
			t.Fatalf("after %v: %d of %d RTP and %d of %d RTCP packets arrived", Deadline, len(a), n, len(b), m)
		}
		time.Sleep(time.Millisecond) // polling a condition against a deadline
	}
}

// packet returns RTP packet i: a valid header and a payload whose size and
// bytes depend on i.
func packet(i int) (header, payload []byte) {
	header = []byte{0x80, 96, byte(i >> 8), byte(i), 0, 0, byte(i >> 8), byte(i), 0, 0, 0, 7}
	payload = make([]byte, 1+(i*37)%1188)
	for j := range payload {
		payload[j] = byte(i + j)
	}
	return header, payload
}

func open(t *testing.T, f Factory) (Endpoints, *recorder) {
	t.Helper()
	r := &recorder{}
	e := f(t, r, r)
	if e.RTP == nil || e.Close == nil {
		t.Fatal("factory returned no RTP writer or no Close")
	}
	return e, r
}

func flush(t *testing.T, w transport.RTPWriter) {
	t.Helper()
	if b, ok := w.(transport.Batcher); ok {
		if err := b.Batch().Flush(); err != nil {
			t.Fatalf("flush: %v", err)
		}
	}
}

func testOrder(t *testing.T, f Factory) {
	e, r := open(t, f)
	defer e.Close()
	const n = 300
	for i := range n {
		h, p := packet(i)
		if err := e.RTP.WriteRTP(h, p); err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
		if i%10 == 9 {
			flush(t, e.RTP)
		}
	}
	flush(t, e.RTP)
	got, _ := r.wait(t, n, 0)
	if len(got) != n {
		t.Fatalf("got %d packets, want %d", len(got), n)
	}
	for i, g := range got {
		h, p := packet(i)
		if !bytes.Equal(g, append(h, p...)) {
			t.Fatalf("packet %d changed or out of order", i)
		}
	}
}

// start writes packet 0 and waits for it: the tests that do not write a
// numbered run begin with it, so a transport that numbers its output
// from the first packet it carries (a link, through a track) still
// delivers the suite's own numbers.
func start(t *testing.T, e Endpoints, r *recorder) {
	t.Helper()
	h, p := packet(0)
	if err := e.RTP.WriteRTP(h, p); err != nil {
		t.Fatal(err)
	}
	flush(t, e.RTP)
	r.wait(t, 1, 0)
}

func testLent(t *testing.T, f Factory) {
	e, r := open(t, f)
	defer e.Close()
	start(t, e, r)
	h, p := packet(5)
	want := append(append([]byte(nil), h...), p...)
	if err := e.RTP.WriteRTP(h, p); err != nil {
		t.Fatal(err)
	}
	for i := range h {
		h[i] = 0xAA
	}
	for i := range p {
		p[i] = 0xBB
	}
	flush(t, e.RTP)
	got, _ := r.wait(t, 2, 0)
	if !bytes.Equal(got[1], want) {
		t.Fatal("the transport kept a lent buffer: changes after WriteRTP reached the far end")
	}
}

func testRTCP(t *testing.T, f Factory) {
	e, r := open(t, f)
	defer e.Close()
	if e.RTCP == nil {
		t.Fatal("no RTCP writer")
	}
	start(t, e, r)
	pli := []byte{0x81, 206, 0, 2, 0, 0, 0, 1, 0, 0, 0, 7}
	if err := e.RTCP.WriteRTCP(pli); err != nil {
		t.Fatal(err)
	}
	_, got := r.wait(t, 0, 1)
	if !bytes.Equal(got[0], pli) {
		t.Fatalf("RTCP changed: %x", got[0])
	}
}

func testClose(t *testing.T, f Factory) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	e, _ := open(t, f)
	done := make(chan error, 1)
	go func() { // writes racing the close must fail cleanly, never panic
		for i := 0; ; i++ {
			h, p := packet(i)
			if err := e.RTP.WriteRTP(h, p); err != nil && !errors.Is(err, transport.ErrBufferFull) {
				done <- err
				return
			}
		}
	}()
	if err := e.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, transport.ErrClosed) {
			t.Fatalf("write after close: %v, want transport.ErrClosed", err)
		}
	case <-time.After(Deadline):
		t.Fatalf("writes still succeed %v after Close", Deadline)
	}
}
