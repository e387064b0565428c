package forward_test

import (
	"testing"
	"time"

	"github.com/pion/rtp"

	"github.com/callcore/callcore/forward"
	"github.com/callcore/callcore/internal/clocktest"
	"github.com/callcore/callcore/transport/memory"
)

// picID reads the 15-bit picture ID of an RFC 7741 descriptor, and the
// offset of the VP8 frame after the descriptor.
func picID(t *testing.T, p []byte) (id uint16, frame int) {
	t.Helper()
	if p[0]&0x80 == 0 || p[1]&0x80 == 0 || p[2]&0x80 == 0 {
		t.Fatalf("no 15-bit picture ID in %x", p[:min(len(p), 4)])
	}
	return uint16(p[2]&0x7f)<<8 | uint16(p[3]), 4
}

// A Chrome-like publisher numbers its frames with 15-bit picture IDs. Across
// a self mute and unmute, a subscriber sees one picture ID per frame, each
// one more than the last, while the publisher's own IDs moved on.
func TestPictureIDsContinuousAcrossMute(t *testing.T) {
	var theSub *forward.Subscriber
	clk := &clocktest.Clock{}
	tr := vp8Track(t, clk, nil)
	var sink memory.Sink
	theSub = subscribe(t, tr, &sink, 1, 0)
	seq, frame := uint16(1), 0
	sendFrame := func() {
		id := uint16(32700 + frame) // wraps at 32768
		for part := range 2 {
			desc := []byte{0x80, 0x80, 0x80 | byte(id>>8&0x7f), byte(id)}
			if part == 0 {
				desc[0] |= 0x10
			}
			tag := byte(1)
			if frame%20 == 0 {
				tag = 0
			}
			p := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: pubPT, SequenceNumber: seq, Timestamp: uint32(frame * 3000),
				SSRC: pubSSRC, Marker: part == 1}, Payload: append(desc, tag, 0xAA)}
			b, _ := p.Marshal()
			send(t, tr, b)
			seq++
		}
		frame++
		clk.Advance(33 * time.Millisecond)
	}
	for range 30 {
		sendFrame()
	}
	tr.SetMute(forward.SourceSelf, true)
	sendFrame() // the frame boundary: empty media takes over
	for range 6 {
		clk.Advance(200 * time.Millisecond)
		tr.Pump()
		sendFrame()
	}
	tr.SetMute(forward.SourceSelf, false)
	for frame%20 != 0 {
		sendFrame()
	}
	for range 25 {
		sendFrame()
	}
	var last uint16
	frames := 0
	for i, b := range sink.Packets() {
		var p rtp.Packet
		if err := p.Unmarshal(b); err != nil {
			t.Fatal(err)
		}
		id, _ := picID(t, p.Payload)
		if p.Payload[0]&0x10 != 0 { // a frame starts
			if frames > 0 && id != (last+1)&0x7fff {
				t.Fatalf("packet %d: picture ID %d after %d", i, id, last)
			}
			frames++
		} else if id != last {
			t.Fatalf("packet %d: picture ID %d inside frame %d", i, id, last)
		}
		last = id
	}
	if st := tr.Stats(); st.Generated == 0 || frames < 60 {
		t.Fatalf("%d frames, stats %+v", frames, st)
	}
	// A retransmission carries the picture ID the packet was first sent with.
	pkts := sink.Packets()
	lastPkt := parse(t, pkts[len(pkts)-1])
	if err := theSub.HandleRTCP(nackFor(t, 1, lastPkt.SequenceNumber)); err != nil {
		t.Fatal(err)
	}
	again := sink.Packets()
	if len(again) != len(pkts)+1 || string(again[len(again)-1]) != string(pkts[len(pkts)-1]) {
		t.Fatal("the retransmission differs from the packet first sent")
	}
}
