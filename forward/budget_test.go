package forward_test

import (
	"errors"
	"testing"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"

	"github.com/callcore/callcore/forward"
	"github.com/callcore/callcore/internal/clocktest"
	"github.com/callcore/callcore/transport/memory"
)

// answeringPub is a VP8 publisher that answers every key-frame request, as
// browsers do: its next frame after a PLI is a key frame. Its feedback
// arrives in a memory sink. A frame is three packets.
type answeringPub struct {
	upstream memory.Sink
	answered int // PLIs answered so far
	keys     int // key frames sent
	seq      uint16
	frames   int
}

func (p *answeringPub) frame(t testing.TB, tr *forward.Track) {
	t.Helper()
	key := p.frames == 0
	if n := plis(t, &p.upstream); n > p.answered {
		p.answered, key = n, true
	}
	if key {
		p.keys++
	}
	for part := range 3 {
		desc, tag := byte(0), byte(1)
		if part == 0 {
			desc = 0x10
		}
		if key {
			tag = 0
		}
		pkt := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: pubPT, SequenceNumber: p.seq,
			Timestamp: uint32(p.frames * 3000), SSRC: pubSSRC, Marker: part == 2}, Payload: []byte{desc, tag, 0xAB, 0xCD}}
		b, err := pkt.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		send(t, tr, b)
		p.seq++
	}
	p.frames++
}

func budgetSub(t testing.TB, tr *forward.Track, w *memory.Sink, cfg forward.SubscriberConfig) *forward.Subscriber {
	t.Helper()
	cfg.Writer, cfg.SSRC, cfg.PayloadType = w, 0x5555, 100
	s, err := tr.Subscribe(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestPLIStormGetsTwoKeyFramesASecond: a subscriber sends 500 PLI/s (its
// own budget set out of the way) for 5 s to a publisher that answers every
// request with a key frame at 30 frames a second. Upstream gets at most
// one request per KeyFrameInterval (500 ms), and keeps getting them while
// the subscriber asks.
func TestPLIStormGetsTwoKeyFramesASecond(t *testing.T) {
	clk := &clocktest.Clock{}
	pub := &answeringPub{}
	tr := vp8Track(t, clk, &pub.upstream)
	var sink memory.Sink
	s := budgetSub(t, tr, &sink, forward.SubscriberConfig{KeyFrameRequests: forward.Budget{Rate: 1000, Burst: 1000}})
	const seconds = 5
	for step := range seconds * 500 { // 2 ms apart
		if step%16 == 0 { // 32 ms: about 30 frames a second
			pub.frame(t, tr)
		}
		if err := s.HandleRTCP(pli(t, 0x5555)); err != nil {
			t.Fatal(err)
		}
		clk.Advance(2 * time.Millisecond)
	}
	up := plis(t, &pub.upstream)
	if up > 2*seconds+1 || up < 2*seconds-1 {
		t.Fatalf("2500 PLIs in %d s became %d requests upstream, want about 2 a second (at most %d)", seconds, up, 2*seconds+1)
	}
	if pub.keys > 2*seconds+2 {
		t.Fatalf("the publisher sent %d key frames in %d s", pub.keys, seconds)
	}
	if st := s.Stats(); st.KeyFrameRequests != seconds*500 || st.KeyFrameRequestsDropped != 0 {
		t.Fatalf("subscriber stats %+v", st)
	}
	if st := tr.Stats(); st.KeyFrameRequestsIn != seconds*500 || st.KeyFrameRequestsOut != uint64(up) {
		t.Fatalf("track stats %+v", st)
	}
}

// TestSubscriberFeedbackBudgets: with the default budgets (5 key-frame
// requests a second, burst 5; 1000 NACKed numbers a second, burst 500), a
// subscriber sending 500 PLI/s and 500 NACKs of 170 numbers each a second
// for 2 s has the excess dropped and counted; nothing else reaches the
// track.
func TestSubscriberFeedbackBudgets(t *testing.T) {
	clk := &clocktest.Clock{}
	pub := &answeringPub{}
	tr := vp8Track(t, clk, &pub.upstream)
	var sink memory.Sink
	s := budgetSub(t, tr, &sink, forward.SubscriberConfig{})
	pub.frame(t, tr)
	var pairs []rtcp.NackPair
	for i := range 10 {
		pairs = append(pairs, rtcp.NackPair{PacketID: uint16(i * 17), LostPackets: 0xffff})
	}
	flood, err := rtcp.Marshal([]rtcp.Packet{&rtcp.TransportLayerNack{SenderSSRC: 9, MediaSSRC: 0x5555, Nacks: pairs}})
	if err != nil {
		t.Fatal(err)
	}
	const steps = 1000 // 2 s
	for range steps {
		if err := s.HandleRTCP(pli(t, 0x5555)); err != nil {
			t.Fatal(err)
		}
		if err := s.HandleRTCP(flood); err != nil {
			t.Fatal(err)
		}
		clk.Advance(2 * time.Millisecond)
	}
	st := s.Stats()
	// Key-frame requests: a burst of 5, then one per 200 ms.
	if kept := st.KeyFrameRequests - st.KeyFrameRequestsDropped; st.KeyFrameRequests != steps || kept < 14 || kept > 15 {
		t.Fatalf("%d key-frame requests, %d dropped: want 14 or 15 kept", st.KeyFrameRequests, st.KeyFrameRequestsDropped)
	}
	if in := tr.Stats().KeyFrameRequestsIn; in != st.KeyFrameRequests-st.KeyFrameRequestsDropped {
		t.Fatalf("the track saw %d key-frame requests, the budget kept %d", in, st.KeyFrameRequests-st.KeyFrameRequestsDropped)
	}
	// NACKs: a burst of 500, then 1000 a second.
	const sent = steps * 170
	if st.NACKs+st.NACKsDropped != sent || st.NACKs < 2490 || st.NACKs > 2510 {
		t.Fatalf("%d NACKed numbers handled and %d dropped of %d: want about 2500 handled", st.NACKs, st.NACKsDropped, sent)
	}
}

// TestNACKFloodRetransmitsBounded: a subscriber NACKs the 17 newest
// numbers it got every 2 ms (8,500 a second; its NACK budget set out of
// the way) while the stream runs at about 94 packets a second for 2 s. It
// gets at most half of what it is sent, plus a burst of 100, again; the
// rest is refused and counted.
func TestNACKFloodRetransmitsBounded(t *testing.T) {
	clk := &clocktest.Clock{}
	pub := &answeringPub{}
	tr := vp8Track(t, clk, &pub.upstream)
	var sink memory.Sink
	s := budgetSub(t, tr, &sink, forward.SubscriberConfig{NACKs: forward.Budget{Rate: 1_000_000, Burst: 1_000_000}})
	const steps = 1000
	var high uint16
	for step := range steps {
		if step%16 == 0 {
			pub.frame(t, tr)
			pkts := sink.Packets()
			high = parse(t, pkts[len(pkts)-1]).SequenceNumber
		}
		if err := s.HandleRTCP(nackFor(t, 0x5555, high-16)); err != nil { // PID only: 1 number
			t.Fatal(err)
		}
		b, err := rtcp.Marshal([]rtcp.Packet{&rtcp.TransportLayerNack{SenderSSRC: 9, MediaSSRC: 0x5555,
			Nacks: []rtcp.NackPair{{PacketID: high - 16, LostPackets: 0xffff}}}})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.HandleRTCP(b); err != nil {
			t.Fatal(err)
		}
		clk.Advance(2 * time.Millisecond)
	}
	st := s.Stats()
	bound := st.Packets/2 + 100
	if st.Retransmits > bound {
		t.Fatalf("%d retransmissions for %d packets sent: more than %d", st.Retransmits, st.Packets, bound)
	}
	if st.Retransmits < bound-2 || st.RetransmitsRefused == 0 {
		t.Fatalf("%d retransmissions, %d refused: the budget should be used up (%d), the rest refused", st.Retransmits, st.RetransmitsRefused, bound)
	}
	if st.NACKs != st.Retransmits+st.RetransmitsRefused+st.NACKTooOld+st.CacheMiss {
		t.Fatalf("NACKs not accounted for: %+v", st)
	}
	// Each retransmission counts its packet's bytes, header included
	// (what a transport's allocation takes off its budget).
	if st.RetransmitBytes < 13*st.Retransmits || st.RetransmitBytes > 1500*st.Retransmits {
		t.Fatalf("%d retransmissions counted as %d bytes", st.Retransmits, st.RetransmitBytes)
	}
}

func TestBudgetConfigValidate(t *testing.T) {
	for _, c := range []forward.SubscriberConfig{
		{KeyFrameRequests: forward.Budget{Rate: -1}},
		{NACKs: forward.Budget{Burst: -5}},
		{RetransmitPercent: -1},
		{RetransmitPercent: 1001},
		{RetransmitBurst: -1},
	} {
		c.Writer, c.SSRC = &memory.Sink{}, 1
		if err := c.Validate(); !errors.Is(err, forward.ErrInvalidConfig) {
			t.Errorf("%+v: %v, want ErrInvalidConfig", c, err)
		}
	}
}
