package forward_test

// The test kit of the forward tests: a VP8 stream, the track it feeds,
// and RTCP builders and readers.

import (
	"encoding/binary"
	"testing"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"

	"github.com/callcore/callcore/forward"
	"github.com/callcore/callcore/internal/clocktest"
	"github.com/callcore/callcore/transport"
	"github.com/callcore/callcore/transport/memory"
)

// vp8 makes a VP8 stream: three packets a frame (RFC 7741 descriptor with
// S set on the first), a key frame every keyEvery frames, the marker on
// each frame's last packet, 20 ms of clock a frame.
type vp8 struct {
	seq      uint16
	frame    int
	part     int
	keyEvery int
	clk      *clocktest.Clock
}

func (v *vp8) next(t testing.TB) (pkt []byte, key bool) {
	key = v.part == 0 && v.frame%v.keyEvery == 0
	desc := byte(0x00)
	if v.part == 0 {
		desc = 0x10
	}
	tag := byte(0x01) // inter frame
	if v.frame%v.keyEvery == 0 {
		tag = 0x00
	}
	payload := []byte{desc, tag, byte(v.seq), byte(v.seq >> 8), 0xAB}
	p := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: pubPT, SequenceNumber: v.seq, Timestamp: uint32(v.frame * 1800),
		SSRC: pubSSRC, Marker: v.part == 2}, Payload: payload}
	b, err := p.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	v.seq++
	if v.part++; v.part == 3 {
		v.part = 0
		v.frame++
		if v.clk != nil {
			v.clk.Advance(20 * time.Millisecond)
		}
	}
	return b, key
}

func vp8Track(t testing.TB, clk forward.Clock, fb transport.RTCPWriter) *forward.Track {
	t.Helper()
	tr, err := forward.NewTrack(forward.TrackConfig{Kind: forward.Video, ClockRate: 90000, PayloadType: pubPT, MimeType: "video/vp8",
		Clock: clk, Feedback: fb})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Close() })
	return tr
}

// origSeq is the publisher's sequence number, which the test streams carry
// in payload bytes 2 and 3.
func origSeq(payload []byte) uint16 { return binary.LittleEndian.Uint16(payload[2:]) }

func pli(t testing.TB, media uint32) []byte {
	b, err := rtcp.Marshal([]rtcp.Packet{&rtcp.PictureLossIndication{SenderSSRC: 9, MediaSSRC: media}})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func nackFor(t testing.TB, media uint32, seqs ...uint16) []byte {
	var pairs []rtcp.NackPair
	for _, s := range seqs {
		pairs = append(pairs, rtcp.NackPair{PacketID: s})
	}
	b, err := rtcp.Marshal([]rtcp.Packet{&rtcp.TransportLayerNack{SenderSSRC: 9, MediaSSRC: media, Nacks: pairs}})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func plis(t testing.TB, s *memory.Sink) int {
	n := 0
	for _, b := range s.RTCP() {
		ps, err := rtcp.Unmarshal(b)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range ps {
			if q, ok := p.(*rtcp.PictureLossIndication); ok && q.MediaSSRC == pubSSRC {
				n++
			}
		}
	}
	return n
}

func send(t testing.TB, tr *forward.Track, pkt []byte) {
	t.Helper()
	if err := tr.HandleRTP(pkt); err != nil {
		t.Fatal(err)
	}
}
