package forward_test

import (
	"encoding/binary"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/callcore/callcore/forward"
	"github.com/callcore/callcore/transport"
)

// Pad writes padding-only packets on the RTX stream: the padding bit, the
// RTX SSRC and payload type, consecutive RTX sequence numbers, the last
// media timestamp, a payload that is all padding; and refuses, counted
// and with ErrPadding, a size out of range, a subscriber with no RTX
// stream, and one not attached.
func TestPadSendsPaddingOnlyRTXAndRefusesBadRequests(t *testing.T) {
	tr := vp8Track(t, nil, nil)
	rtx := forward.RTX{SSRC: 0x7777, PayloadType: 97}
	type pkt struct {
		hdr, payload []byte
	}
	var got []pkt
	w := transport.RTPWriterFunc(func(h, p []byte) error {
		got = append(got, pkt{append([]byte(nil), h...), append([]byte(nil), p...)})
		return nil
	})
	detached, err := forward.NewSubscriber(forward.SubscriberConfig{Writer: w, SSRC: 0x5555, PayloadType: 100, RTX: &rtx})
	if err != nil {
		t.Fatal(err)
	}
	if err := detached.Pad(3, 200); !errors.Is(err, forward.ErrPadding) {
		t.Fatalf("detached: %v", err)
	}
	sub, err := tr.Subscribe(forward.SubscriberConfig{Writer: w, SSRC: 0x5555, PayloadType: 100, RTX: &rtx})
	if err != nil {
		t.Fatal(err)
	}
	noRTX, err := tr.Subscribe(forward.SubscriberConfig{Writer: w, SSRC: 0x6666, PayloadType: 100})
	if err != nil {
		t.Fatal(err)
	}
	src := &vp8{seq: 1, keyEvery: 1000}
	var lastTS uint32
	for range 5 {
		p, _ := src.next(t)
		if err := tr.HandleRTP(p); err != nil {
			t.Fatal(err)
		}
	}
	for _, g := range got {
		if binary.BigEndian.Uint32(g.hdr[8:]) == 0x5555 {
			lastTS = binary.BigEndian.Uint32(g.hdr[4:])
		}
	}
	for _, bad := range []struct{ n, size int }{{1, 0}, {1, 256}, {0, 10}} {
		if err := sub.Pad(bad.n, bad.size); !errors.Is(err, forward.ErrPadding) {
			t.Fatalf("Pad(%d, %d): %v", bad.n, bad.size, err)
		}
	}
	if err := noRTX.Pad(1, 100); !errors.Is(err, forward.ErrPadding) {
		t.Fatalf("no RTX: %v", err)
	}
	got = got[:0]
	if err := sub.Pad(4, 200); err != nil {
		t.Fatal(err)
	}
	if len(got) != 4 {
		t.Fatalf("%d packets written, want 4", len(got))
	}
	for i, g := range got {
		h := g.hdr
		if len(h) != 12 || h[0] != 0xa0 || h[1]&0x7f != 97 || binary.BigEndian.Uint32(h[8:]) != 0x7777 ||
			binary.BigEndian.Uint32(h[4:]) != lastTS {
			t.Fatalf("packet %d: header % x (last media timestamp %d)", i, h, lastTS)
		}
		if i > 0 && binary.BigEndian.Uint16(h[2:]) != binary.BigEndian.Uint16(got[i-1].hdr[2:])+1 {
			t.Fatalf("RTX sequence numbers not consecutive")
		}
		if len(g.payload) != 200 || g.payload[199] != 200 {
			t.Fatalf("packet %d: %d bytes of payload, last %d", i, len(g.payload), g.payload[len(g.payload)-1])
		}
	}
	st := sub.Stats()
	if st.Padding != 4 || st.PaddingBytes != 800 || st.PaddingRefused != 3 {
		t.Fatalf("stats %+v", st)
	}
	if st := noRTX.Stats(); st.PaddingRefused != 1 {
		t.Fatalf("no RTX: stats %+v", st)
	}
}

// guardWriter records whether two goroutines were ever in WriteRTP at
// once; its first call with hold set waits there until released.
type guardWriter struct {
	in       atomic.Int32
	overlap  atomic.Bool
	hold     atomic.Bool
	entered  chan struct{}
	release  chan struct{}
	paddings atomic.Int32
	rtxSSRC  uint32
}

func (g *guardWriter) WriteRTP(header, payload []byte) error {
	if g.in.Add(1) > 1 {
		g.overlap.Store(true)
	}
	defer g.in.Add(-1)
	if binary.BigEndian.Uint32(header[8:]) == g.rtxSSRC {
		g.paddings.Add(1)
	}
	if g.hold.CompareAndSwap(true, false) {
		g.entered <- struct{}{}
		<-g.release
	}
	return nil
}

// Padding waits out a layer switch's handoff as media does: while the old
// layer's fan-out is still in the subscriber's writer (held there), the
// new layer has taken the subscriber over on its key frame, and Pad,
// run at once in the new layer's free section, writes nothing then: the
// writer is never entered by two goroutines.
func TestPadWaitsOutALayerSwitchsHandoff(t *testing.T) {
	c := newLayered(t, 1000)
	g := &guardWriter{entered: make(chan struct{}), release: make(chan struct{}), rtxSSRC: 0x7777}
	s, err := c.l.Subscribe(forward.SubscriberConfig{Writer: g, SSRC: 0x5151, PayloadType: 100, FirstSeq: 65530,
		Extensions: []forward.Extension{tagExt}, RTX: &forward.RTX{SSRC: 0x7777, PayloadType: 97}}, forward.LayerF)
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		c.tick(t)
	}
	if cur, _, _, _ := c.l.Layer(s); cur != forward.LayerF {
		t.Fatalf("on layer %d, want f", cur)
	}
	if err := c.l.SetMax(s, forward.LayerH); err != nil { // asks h for a key frame
		t.Fatal(err)
	}
	c.clk.Advance(33 * time.Millisecond)
	fPkts, _ := c.streams[2].Frame()
	hPkts, _ := c.streams[1].Frame()
	g.hold.Store(true)
	done := make(chan error, 1)
	go func() { done <- c.tracks[2].HandleRTP(fPkts[0]) }() // held in the writer, in f's section
	<-g.entered
	for _, p := range hPkts { // h's key frame: the switch, the subscriber left alone while f's section lasts
		if err := c.tracks[1].HandleRTP(p); err != nil {
			t.Fatal(err)
		}
	}
	if cur, _, _, _ := c.l.Layer(s); cur != forward.LayerH {
		t.Fatalf("on layer %d after h's key frame, want h", cur)
	}
	before := g.paddings.Load()
	_ = s.Pad(3, 100) // h's section is free: run now, by this goroutine
	close(g.release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if g.overlap.Load() {
		t.Fatal("padding was written while f's fan-out was in the writer")
	}
	if n := g.paddings.Load() - before; n != 0 {
		t.Fatalf("%d padding packets written during the handoff", n)
	}
	// Once f's section is left, padding is written again.
	c.tick(t)
	if err := s.Pad(2, 100); err != nil {
		t.Fatal(err)
	}
	if n := g.paddings.Load() - before; n != 2 {
		t.Fatalf("%d padding packets after the handoff, want 2", n)
	}
}
