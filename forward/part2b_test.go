package forward_test

import (
	"testing"
	"time"

	"github.com/pion/rtcp"

	"github.com/callcore/callcore/forward"
	"github.com/callcore/callcore/internal/clocktest"
	"github.com/callcore/callcore/transport"
	"github.com/callcore/callcore/transport/memory"
)

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

func TestKeyFrameRequestsMergeAndRepeat(t *testing.T) {
	clk := &clocktest.Clock{}
	var upstream memory.Sink
	tr := vp8Track(t, clk, &upstream)
	src := &vp8{seq: 1, keyEvery: 1000, clk: clk}
	var subs []*forward.Subscriber
	for i := range 100 {
		subs = append(subs, subscribe(t, tr, &memory.Sink{}, uint32(i+1), 0))
	}
	pkt, _ := src.next(t) // the key frame: everyone starts
	send(t, tr, pkt)
	for _, s := range subs {
		if err := s.HandleRTCP(pli(t, s.Config().SSRC)); err != nil {
			t.Fatal(err)
		}
	}
	if n := plis(t, &upstream); n != 1 {
		t.Fatalf("100 PLIs became %d requests upstream, want 1", n)
	}
	// No key frame comes: the request is repeated once the interval is
	// over, not before.
	for range 20 { // 20 packets, about 133 ms
		pkt, _ := src.next(t)
		send(t, tr, pkt)
	}
	if n := plis(t, &upstream); n != 1 {
		t.Fatalf("repeated within the interval: %d", n)
	}
	clk.Advance(500 * time.Millisecond)
	pkt, _ = src.next(t)
	send(t, tr, pkt)
	if n := plis(t, &upstream); n != 2 {
		t.Fatalf("not repeated after the interval: %d requests", n)
	}
	// A key frame arrives, and a new request right after it: it waits for
	// the interval since the last request, then goes (once).
	src.frame, src.part = 1000, 0
	pkt, key := src.next(t)
	if !key {
		t.Fatal("test stream: expected a key frame")
	}
	send(t, tr, pkt)
	if err := subs[0].HandleRTCP(pli(t, 1)); err != nil {
		t.Fatal(err)
	}
	if n := plis(t, &upstream); n != 2 {
		t.Fatalf("a request after a key frame went before the interval: %d", n)
	}
	clk.Advance(500 * time.Millisecond)
	pkt, _ = src.next(t)
	send(t, tr, pkt)
	pkt, _ = src.next(t)
	send(t, tr, pkt)
	if n := plis(t, &upstream); n != 3 {
		t.Fatalf("the merged request did not go at the end of the interval: %d", n)
	}
	if st := tr.Stats(); st.KeyFrameRequestsIn != 101 || st.KeyFrameRequestsOut != 3 {
		t.Fatalf("stats %+v", st)
	}
}

// firstIsKey checks that a subscriber's first packet starts a key frame and
// that its numbers are continuous.
func firstIsKey(t *testing.T, s *memory.Sink) {
	t.Helper()
	pkts := s.Packets()
	if len(pkts) == 0 {
		t.Fatal("nothing received")
	}
	for i, b := range pkts {
		p := parse(t, b)
		if i == 0 && (p.Payload[0]&0x10 == 0 || p.Payload[1]&1 != 0) {
			t.Fatalf("first packet is not a key-frame start: %x", p.Payload)
		}
		if want := uint16(i); p.SequenceNumber != want {
			t.Fatalf("packet %d has seq %d", i, p.SequenceNumber)
		}
	}
}

func TestJoinReplaysFromCachedKeyFrame(t *testing.T) {
	clk := &clocktest.Clock{}
	var upstream memory.Sink
	tr := vp8Track(t, clk, &upstream)
	src := &vp8{seq: 500, keyEvery: 30, clk: clk}
	for range 20 { // a key frame and six frames after it
		pkt, _ := src.next(t)
		send(t, tr, pkt)
	}
	var sink memory.Sink
	s := subscribe(t, tr, &sink, 1, 0)
	pkt, _ := src.next(t)
	send(t, tr, pkt)
	firstIsKey(t, &sink)
	if got, st := len(sink.Packets()), s.Stats(); got != 21 || st.Replayed != 20 {
		t.Fatalf("got %d packets (%d replayed), want the 20 cached and the new one", got, st.Replayed)
	}
	if n := plis(t, &upstream); n != 0 {
		t.Fatalf("a replay needs no key-frame request, %d sent", n)
	}
}

func TestJoinWaitsForRequestedKeyFrame(t *testing.T) {
	clk := &clocktest.Clock{}
	var upstream memory.Sink
	tr := vp8Track(t, clk, &upstream)
	src := &vp8{seq: 500, keyEvery: 40, clk: clk}
	for range 90 { // the key frame is 600 ms old
		pkt, _ := src.next(t)
		send(t, tr, pkt)
	}
	clk.Advance(time.Second) // and now too old to replay
	var sink memory.Sink
	s := subscribe(t, tr, &sink, 1, 0)
	for src.frame%40 != 0 { // 200 ms more: one request, no repeat yet
		pkt, _ := src.next(t)
		send(t, tr, pkt)
	}
	if sink.Len() != 0 {
		t.Fatalf("%d packets before the key frame", sink.Len())
	}
	if n := plis(t, &upstream); n != 1 {
		t.Fatalf("%d key-frame requests, want 1", n)
	}
	for range 6 {
		pkt, _ := src.next(t)
		send(t, tr, pkt)
	}
	firstIsKey(t, &sink)
	if st := s.Stats(); st.DropWaitKey == 0 || st.Replayed != 0 {
		t.Fatalf("stats %+v", st)
	}
}

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

// A subscriber whose transport is stuck forever never slows the others.
func TestStuckSubscriberDoesNotSlowOthers(t *testing.T) {
	clk := &clocktest.Clock{}
	var upstream memory.Sink
	tr := vp8Track(t, clk, &upstream)
	release := make(chan struct{})
	stuck := transport.RTPWriterFunc(func(_, _ []byte) error { <-release; return nil })
	pipe, err := memory.NewPipe(memory.PipeConfig{RTP: stuck, Queue: 8})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { close(release); pipe.Close() })
	slow, err := tr.Subscribe(forward.SubscriberConfig{Writer: pipe, SSRC: 1000})
	if err != nil {
		t.Fatal(err)
	}
	sinks := make([]*memory.Counter, 99)
	for i := range sinks {
		sinks[i] = &memory.Counter{}
		if _, err := tr.Subscribe(forward.SubscriberConfig{Writer: sinks[i], SSRC: uint32(i + 1)}); err != nil {
			t.Fatal(err)
		}
	}
	src := &vp8{seq: 1, keyEvery: 30, clk: clk}
	const n = 3000
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range n {
			pkt, _ := src.next(t)
			_ = tr.HandleRTP(pkt)
		}
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("the packet path blocked behind a stuck subscriber")
	}
	for i, c := range sinks {
		if c.Packets != n {
			t.Fatalf("subscriber %d got %d of %d", i, c.Packets, n)
		}
	}
	st := slow.Stats()
	if st.Packets > 8 || st.DropWrite == 0 || st.DropWaitKey == 0 {
		t.Fatalf("stuck subscriber stats %+v", st)
	}
	t.Logf("stuck subscriber: %+v", st)
}

func TestParallelFanoutKeepsOrder(t *testing.T) {
	pool, err := forward.NewPool(2)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	tr, err := forward.NewTrack(forward.TrackConfig{Kind: forward.Audio, ClockRate: 48000, PayloadType: pubPT, Pool: pool, ParallelThreshold: 8})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	sinks := make([]*memory.Sink, 50)
	for i := range sinks {
		sinks[i] = &memory.Sink{}
		if _, err := tr.Subscribe(forward.SubscriberConfig{Writer: sinks[i], SSRC: uint32(i + 1), FirstSeq: uint16(i)}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 200 {
		send(t, tr, packet(t, uint16(i), uint32(960*i), []byte{byte(i)}, nil))
	}
	for i, s := range sinks {
		pkts := s.Packets()
		if len(pkts) != 200 {
			t.Fatalf("subscriber %d got %d", i, len(pkts))
		}
		for j, b := range pkts {
			if p := parse(t, b); p.SequenceNumber != uint16(i+j) || p.Payload[0] != byte(j) || p.SSRC != uint32(i+1) {
				t.Fatalf("subscriber %d packet %d out of order: %v", i, j, p.Header)
			}
		}
	}
}
