package forward_test

import (
	"encoding/binary"
	"sync"
	"testing"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"

	"github.com/callcore/callcore/forward"
	"github.com/callcore/callcore/internal/clocktest"
	"github.com/callcore/callcore/transport/memory"
)

// nackPeer is a subscriber's receiving end: it unwraps RTX, notices gaps
// and NACKs them, as a browser does. NACKs go out after HandleRTP returns.
type nackPeer struct {
	mu       sync.Mutex // guards the fields below
	ssrc     uint32
	rtx      forward.RTX
	got      map[uint16][]byte // by output sequence number: the payload
	first    int
	high     uint16
	rtxSeen  int
	asked    map[uint16]int
	received int
}

func newNackPeer(ssrc uint32, rtx forward.RTX) *nackPeer {
	return &nackPeer{ssrc: ssrc, rtx: rtx, got: map[uint16][]byte{}, asked: map[uint16]int{}, first: -1}
}

func (n *nackPeer) WriteRTP(h, payload []byte) error {
	var p rtp.Header
	if _, err := p.Unmarshal(h); err != nil {
		return err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	seq := p.SequenceNumber
	body := payload
	if p.SSRC == n.rtx.SSRC {
		if p.PayloadType != n.rtx.PayloadType {
			panic("RTX with the wrong payload type")
		}
		seq, body = binary.BigEndian.Uint16(payload), payload[2:]
		n.rtxSeen++
	} else if p.SSRC != n.ssrc {
		panic("unknown SSRC")
	}
	n.received++
	if n.first < 0 {
		n.first, n.high = int(seq), seq
	}
	if int16(seq-n.high) > 0 {
		n.high = seq
	}
	n.got[seq] = append([]byte(nil), body...)
	return nil
}

// missing returns the numbers between the first and the highest not yet
// received.
func (n *nackPeer) missing() []uint16 {
	n.mu.Lock()
	defer n.mu.Unlock()
	var m []uint16
	if n.first < 0 {
		return nil
	}
	for s := uint16(n.first); s != n.high; s++ {
		if _, ok := n.got[s]; !ok {
			m = append(m, s)
		}
	}
	return m
}

// nack sends one NACK for every missing number asked fewer than 12 times.
func (n *nackPeer) nack(t testing.TB, sub *forward.Subscriber) {
	var pairs []rtcp.NackPair
	for _, s := range n.missing() {
		if n.asked[s] < 12 {
			n.asked[s]++
			pairs = append(pairs, rtcp.NackPair{PacketID: s})
		}
	}
	if len(pairs) == 0 {
		return
	}
	b, err := rtcp.Marshal([]rtcp.Packet{&rtcp.TransportLayerNack{SenderSSRC: 9, MediaSSRC: n.ssrc, Nacks: pairs}})
	if err != nil {
		t.Fatal(err)
	}
	if err := sub.HandleRTCP(b); err != nil {
		t.Fatal(err)
	}
}

func testLossRepair(t *testing.T, rate float64, first uint16) {
	tr := vp8Track(t, nil, nil)
	rtx := forward.RTX{SSRC: 0x7777, PayloadType: 97}
	peer := newNackPeer(0x5555, rtx)
	pipe, err := memory.NewPipe(memory.PipeConfig{RTP: peer, Hook: memory.Loss(rate, 42)})
	if err != nil {
		t.Fatal(err)
	}
	sub, err := tr.Subscribe(forward.SubscriberConfig{Writer: pipe, SSRC: 0x5555, PayloadType: 100, RTX: &rtx, FirstSeq: 65000})
	if err != nil {
		t.Fatal(err)
	}
	src := &vp8{seq: first, keyEvery: 1000}
	sent := map[uint16][]byte{}
	for range 450 {
		pkt, _ := src.next(t)
		sent[binary.BigEndian.Uint16(pkt[2:])] = pkt[12:]
		if err := tr.HandleRTP(pkt); err != nil {
			t.Fatal(err)
		}
		peer.nack(t, sub)
	}
	for range 20 { // the tail: NACK rounds with no new packets
		peer.nack(t, sub)
	}
	if m := peer.missing(); len(m) != 0 {
		t.Fatalf("%d packets never repaired: %v", len(m), m)
	}
	for out, body := range peer.got {
		if want, ok := sent[origSeq(body)]; !ok || string(want) != string(body) {
			t.Fatalf("output %d carries the wrong payload", out)
		}
		if origSeq(body)-first != out-65000 {
			t.Fatalf("output %d carries input %d", out, origSeq(body))
		}
	}
	st := sub.Stats()
	if st.Retransmits == 0 || peer.rtxSeen == 0 || st.CacheMiss != 0 {
		t.Fatalf("retransmissions not made from the cache on RTX: %+v", st)
	}
	t.Logf("loss %.0f%%: %d NACKed, %d retransmitted, %d arrived on RTX", rate*100, st.NACKs, st.Retransmits, peer.rtxSeen)
}

func TestNACKRepairsLoss5(t *testing.T)  { testLossRepair(t, 0.05, 1000) }
func TestNACKRepairsLoss20(t *testing.T) { testLossRepair(t, 0.20, 1000) }

// The publisher's and the subscriber's numbers both wrap during the run.
func TestNACKAcrossWrap(t *testing.T) { testLossRepair(t, 0.10, 65300) }

// NACKs for what the subscriber never had its numbers for (before the key
// frame it started on, packets withheld while its gate was closed, numbers
// not sent yet) are answered with nothing and counted.
func TestNACKForWithheldIsAnsweredWithNothing(t *testing.T) {
	clk := &clocktest.Clock{}
	tr := vp8Track(t, clk, nil)
	src := &vp8{seq: 100, keyEvery: 10, clk: clk}
	var sink memory.Sink
	s := subscribe(t, tr, &sink, 1, 0)
	for range 30 {
		pkt, _ := src.next(t)
		send(t, tr, pkt)
	}
	s.SetOpen(false)
	for range 30 {
		pkt, _ := src.next(t)
		send(t, tr, pkt)
	}
	s.SetOpen(true)
	for range 15 { // waits for the next key frame, then 15 - 0 packets
		pkt, _ := src.next(t)
		send(t, tr, pkt)
	}
	before := sink.Len()
	last := parse(t, sink.Packets()[before-1]).SequenceNumber
	// 29 is the last number before the gate closed (the resumed segment
	// starts after it); last+1 is not sent yet.
	if err := s.HandleRTCP(nackFor(t, 1, 29, last+1, last+500)); err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(); sink.Len() != before || st.NACKTooOld != 3 || st.Retransmits != 0 {
		t.Fatalf("answered: %d new packets, stats %+v", sink.Len()-before, st)
	}
	// A NACK inside the current segment is answered.
	if err := s.HandleRTCP(nackFor(t, 1, last)); err != nil {
		t.Fatal(err)
	}
	if sink.Len() != before+1 || parse(t, sink.Packets()[before]).SequenceNumber != last {
		t.Fatal("a NACK in the segment was not answered with the same number")
	}
}
