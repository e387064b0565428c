package rtptest_test

import (
	"bytes"
	"slices"
	"testing"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"

	"github.com/callcore/callcore/internal/rtptest"
	"github.com/callcore/callcore/internal/rtpx"
	"github.com/callcore/callcore/mute"
)

// Packets read back by pion and by the core's own parser as built.
func TestPacketReadsBackAsBuilt(t *testing.T) {
	for _, tc := range []struct {
		name string
		p    rtptest.Packet
	}{
		{"plain", rtptest.Packet{PayloadType: 96, Seq: 65535, Timestamp: 1 << 31, SSRC: 0xdeadbeef, Payload: []byte("media")}},
		{"marker, CSRCs, padding", rtptest.Packet{PayloadType: 111, Seq: 7, SSRC: 1, Marker: true, CSRC: []uint32{2, 3}, Payload: []byte{1, 2, 3}, Padding: 5}},
		{"one-byte extensions", rtptest.Packet{PayloadType: 96, SSRC: 1, Extensions: []rtptest.Extension{{ID: 1, Data: []byte("a")}, {ID: 3, Data: []byte{0, 1}}, {ID: 14, Data: bytes.Repeat([]byte{9}, 16)}}, Payload: []byte{7}}},
		{"two-byte extensions", rtptest.Packet{PayloadType: 96, SSRC: 1, Extensions: []rtptest.Extension{{ID: 1, Data: bytes.Repeat([]byte{5}, 17)}, {ID: 200, Data: []byte{1}}}, Payload: []byte{7}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := tc.p.Marshal()
			var got rtp.Packet
			if err := got.Unmarshal(b); err != nil {
				t.Fatalf("pion: %v", err)
			}
			h := got.Header
			if h.Version != 2 || h.PayloadType != tc.p.PayloadType || h.SequenceNumber != tc.p.Seq || h.Timestamp != tc.p.Timestamp ||
				h.SSRC != tc.p.SSRC || h.Marker != tc.p.Marker || len(h.CSRC) != len(tc.p.CSRC) {
				t.Fatalf("header %+v, built from %+v", h, tc.p)
			}
			if !bytes.Equal(got.Payload, tc.p.Payload) {
				t.Fatalf("payload %x, want %x", got.Payload, tc.p.Payload)
			}
			if int(got.PaddingSize) != int(tc.p.Padding) {
				t.Fatalf("padding %d, want %d", got.PaddingSize, tc.p.Padding)
			}
			for _, e := range tc.p.Extensions {
				if d := got.GetExtension(e.ID); !bytes.Equal(d, e.Data) {
					t.Fatalf("extension %d: %x, want %x", e.ID, d, e.Data)
				}
			}
			var x rtpx.Header
			if err := rtpx.Parse(b, &x); err != nil {
				t.Fatalf("rtpx: %v", err)
			}
			if hl := len(tc.p.Header()); !bytes.Equal(b[:hl], tc.p.Header()) || len(b) != hl+len(tc.p.Payload)+int(tc.p.Padding) {
				t.Fatalf("Header is not the packet's first %d bytes", hl)
			}
		})
	}
}

// A stream numbers its packets across the wrap, marks each frame's last
// packet and moves the timestamp by the step after each frame.
func TestStreamNumbersFrames(t *testing.T) {
	s := rtptest.Stream{PayloadType: 96, SSRC: 9, Seq: 65534, Timestamp: 100}
	f1 := s.Frame(rtptest.VP8(true, 640, 360, 3000, 1200), rtptest.VideoStep)
	f2 := s.Frame(rtptest.VP8(false, 0, 0, 500, 1200), rtptest.VideoStep)
	if len(f1) != 3 || len(f2) != 1 {
		t.Fatalf("frames of %d and %d packets, want 3 and 1", len(f1), len(f2))
	}
	want := []struct {
		seq    uint16
		ts     uint32
		marker bool
	}{{65534, 100, false}, {65535, 100, false}, {0, 100, true}, {1, 3100, true}}
	for i, b := range append(f1, f2...) {
		var p rtp.Packet
		if err := p.Unmarshal(b); err != nil {
			t.Fatal(err)
		}
		if p.SequenceNumber != want[i].seq || p.Timestamp != want[i].ts || p.Marker != want[i].marker || p.SSRC != 9 {
			t.Fatalf("packet %d: seq %d ts %d marker %v, want %+v", i, p.SequenceNumber, p.Timestamp, p.Marker, want[i])
		}
	}
	if s.Seq != 2 || s.Timestamp != 6100 {
		t.Fatalf("stream left at seq %d ts %d, want 2 and 6100", s.Seq, s.Timestamp)
	}
}

// The VP8 payloads are RFC 7741 packets whose key frame the core's parser
// sizes, and that put the frame back together whole.
func TestVP8KeyFrameIsSized(t *testing.T) {
	pls := rtptest.VP8(true, 320, 240, 2500, 1000)
	var frame []byte
	for i, pl := range pls {
		if len(pl) > 1000 {
			t.Fatalf("payload %d is %d bytes, over 1000", i, len(pl))
		}
		if s := pl[0]&0x10 != 0; s != (i == 0) {
			t.Fatalf("payload %d: S bit %v", i, s)
		}
		frame = append(frame, pl[1:]...)
	}
	if len(frame) != 2500 {
		t.Fatalf("frame of %d bytes, want 2500", len(frame))
	}
	if w, h, ok := mute.VP8FrameSize(frame); !ok || w != 320 || h != 240 {
		t.Fatalf("VP8FrameSize: %dx%d %v, want 320x240", w, h, ok)
	}
	inter := rtptest.VP8(false, 0, 0, 100, 1000)
	if _, _, ok := mute.VP8FrameSize(inter[0][1:]); ok || inter[0][1]&1 != 1 {
		t.Fatal("an inter frame reads as a key frame")
	}
}

// H.264 key frames carry an SPS of the given size, a PPS and an IDR cut
// into FU-A fragments that rebuild the slice.
func TestH264KeyFrameHasSPSAndFragments(t *testing.T) {
	pls := rtptest.H264(true, 640, 480, 3000, 1200)
	if len(pls) < 4 || pls[0][0]&0x1f != 7 || pls[1][0]&0x1f != 8 {
		t.Fatalf("key frame starts with NAL types %d, %d, want SPS and PPS", pls[0][0]&0x1f, pls[1][0]&0x1f)
	}
	if w, h, ok := mute.H264SPSSize(pls[0]); !ok || w != 640 || h != 480 {
		t.Fatalf("SPS size %dx%d %v, want 640x480", w, h, ok)
	}
	var nal []byte
	for i, pl := range pls[2:] {
		if pl[0]&0x1f != 28 || pl[1]&0x1f != 5 {
			t.Fatalf("fragment %d is not an FU-A of an IDR", i)
		}
		if start, end := pl[1]&0x80 != 0, pl[1]&0x40 != 0; start != (i == 0) || end != (i == len(pls)-3) {
			t.Fatalf("fragment %d: start %v end %v", i, start, end)
		}
		if i == 0 {
			nal = append(nal, pl[0]&0xe0|pl[1]&0x1f)
		}
		nal = append(nal, pl[2:]...)
	}
	if len(nal) != 3000 || nal[0]&0x1f != 5 {
		t.Fatalf("rebuilt a NAL of %d bytes, type %d; want 3000, IDR", len(nal), nal[0]&0x1f)
	}
	if p := rtptest.H264(false, 0, 0, 100, 1200); len(p) != 1 || p[0][0]&0x1f != 1 {
		t.Fatal("an inter frame is not one non-IDR slice")
	}
}

func TestOpusIsOneCELTFrame(t *testing.T) {
	p := rtptest.Opus(80)
	if len(p) != 80 || p[0]>>3 != 31 || p[0]&0x3 != 0 {
		t.Fatalf("TOC %08b, %d bytes", p[0], len(p))
	}
}

// RTCP builders read back by pion as built.
func TestRTCPReadsBackAsBuilt(t *testing.T) {
	b := rtptest.Compound(
		rtptest.RR(1, rtptest.Report{SSRC: 2, FractionLost: 25, TotalLost: 300, HighestSeq: 70000, Jitter: 12, LastSR: 5, DelaySinceSR: 6}),
		rtptest.NACK(1, 2, 10, 11, 26, 27, 1000),
		rtptest.PLI(1, 2),
		rtptest.FIR(1, 2, 9),
	)
	pkts, err := rtcp.Unmarshal(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(pkts) != 4 {
		t.Fatalf("%d packets, want 4", len(pkts))
	}
	rr, ok := pkts[0].(*rtcp.ReceiverReport)
	if !ok || rr.SSRC != 1 || len(rr.Reports) != 1 {
		t.Fatalf("RR: %#v", pkts[0])
	}
	if r := rr.Reports[0]; r.SSRC != 2 || r.FractionLost != 25 || r.TotalLost != 300 || r.LastSequenceNumber != 70000 || r.Jitter != 12 || r.LastSenderReport != 5 || r.Delay != 6 {
		t.Fatalf("report block %+v", r)
	}
	nack, ok := pkts[1].(*rtcp.TransportLayerNack)
	if !ok || nack.SenderSSRC != 1 || nack.MediaSSRC != 2 {
		t.Fatalf("NACK: %#v", pkts[1])
	}
	var seqs []uint16
	for _, p := range nack.Nacks {
		seqs = append(seqs, p.PacketList()...)
	}
	if want := []uint16{10, 11, 26, 27, 1000}; !slices.Equal(seqs, want) {
		t.Fatalf("NACKed %v, want %v", seqs, want)
	}
	if pli, ok := pkts[2].(*rtcp.PictureLossIndication); !ok || pli.SenderSSRC != 1 || pli.MediaSSRC != 2 {
		t.Fatalf("PLI: %#v", pkts[2])
	}
	fir, ok := pkts[3].(*rtcp.FullIntraRequest)
	if !ok || fir.SenderSSRC != 1 || len(fir.FIR) != 1 || fir.FIR[0].SSRC != 2 || fir.FIR[0].SequenceNumber != 9 {
		t.Fatalf("FIR: %#v", pkts[3])
	}
}
