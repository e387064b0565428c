package forward_test

import (
	"testing"
	"time"

	"github.com/callcore/callcore/forward"
	"github.com/callcore/callcore/internal/clocktest"
	"github.com/callcore/callcore/transport"
	"github.com/callcore/callcore/transport/memory"
)

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
