package forward_test

import (
	"testing"
	"time"

	"github.com/callcore/callcore/forward"
	"github.com/callcore/callcore/internal/clocktest"
	"github.com/callcore/callcore/transport/memory"
)

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

// Video in a format the core does not parse passes a subscriber's
// key-frame request upstream (its decoder knows it needs one); audio never
// asks.
func TestKeyFrameRequestsOfUnparsedVideoGoUpstreamAudioNever(t *testing.T) {
	for _, c := range []struct {
		kind forward.Kind
		mime string
		want int
	}{{forward.Video, "video/x-unparsed", 1}, {forward.Audio, "audio/opus", 0}} {
		clk := &clocktest.Clock{}
		clk.Advance(time.Second) // past the first request's interval
		var upstream memory.Sink
		tr, err := forward.NewTrack(forward.TrackConfig{Kind: c.kind, ClockRate: 90000, PayloadType: pubPT,
			MimeType: c.mime, SSRC: pubSSRC, Feedback: &upstream, Clock: clk})
		if err != nil {
			t.Fatal(err)
		}
		s := subscribe(t, tr, &memory.Sink{}, 1, 0)
		src := &vp8{seq: 1, keyEvery: 1000, clk: clk}
		pkt, _ := src.next(t)
		send(t, tr, pkt)
		if err := s.HandleRTCP(pli(t, 1)); err != nil {
			t.Fatal(err)
		}
		pkt, _ = src.next(t)
		send(t, tr, pkt)
		if n := plis(t, &upstream); n != c.want {
			t.Errorf("%s: %d requests upstream, want %d", c.mime, n, c.want)
		}
		tr.Close()
	}
}
