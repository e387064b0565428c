package forward_test

import (
	"encoding/binary"
	"errors"
	"testing"

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
