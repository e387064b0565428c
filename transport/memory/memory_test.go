package memory_test

import (
	"errors"
	"testing"
	"time"

	"github.com/callcore/callcore/internal/clocktest"
	"github.com/callcore/callcore/internal/rtptest"
	"github.com/callcore/callcore/transport"
	"github.com/callcore/callcore/transport/memory"
	"github.com/callcore/callcore/transport/transporttest"
)

func TestConformance(t *testing.T) {
	transporttest.Run(t, func(t *testing.T, rtp transport.RTPWriter, rtcp transport.RTCPWriter) transporttest.Endpoints {
		p, err := memory.NewPipe(memory.PipeConfig{RTP: rtp, RTCP: rtcp})
		if err != nil {
			t.Fatal(err)
		}
		return transporttest.Endpoints{RTP: p, RTCP: p, Close: p.Close}
	})
}

func TestConformanceConditioned(t *testing.T) {
	// Every packet delayed behind the next one and then released by the
	// flush of a shared batch: order within the pipe still holds.
	transporttest.Run(t, func(t *testing.T, rtp transport.RTPWriter, rtcp transport.RTCPWriter) transporttest.Endpoints {
		p, err := memory.NewPipe(memory.PipeConfig{RTP: rtp, RTCP: rtcp, Batch: &memory.Batch{},
			Hook: func(uint64, []byte) memory.Action { return memory.Action{} }})
		if err != nil {
			t.Fatal(err)
		}
		return transporttest.Endpoints{RTP: p, RTCP: p, Close: p.Close}
	})
}

func TestConformanceQueued(t *testing.T) {
	transporttest.Run(t, func(t *testing.T, rtp transport.RTPWriter, rtcp transport.RTCPWriter) transporttest.Endpoints {
		p, err := memory.NewPipe(memory.PipeConfig{RTP: rtp, RTCP: rtcp, Queue: 512})
		if err != nil {
			t.Fatal(err)
		}
		return transporttest.Endpoints{RTP: p, RTCP: p, Close: p.Close}
	})
}

// A queue whose far end is stuck fills up and then refuses packets at
// once, without blocking the writer.
func TestQueueFullRefuses(t *testing.T) {
	release, entered := make(chan struct{}), make(chan struct{}, 1)
	stuck := transport.RTPWriterFunc(func(_, _ []byte) error {
		select {
		case entered <- struct{}{}:
		default:
		}
		<-release
		return nil
	})
	p, err := memory.NewPipe(memory.PipeConfig{RTP: stuck, Queue: 4})
	if err != nil {
		t.Fatal(err)
	}
	write(t, p, 0)
	<-entered // the first packet is with the stuck far end
	full := 0
	for i := 1; i < 20; i++ {
		if err := p.WriteRTP(header(byte(i)), nil); errors.Is(err, transport.ErrBufferFull) {
			full++
		}
	}
	// The queue holds four: the one being delivered and three waiting.
	if full != 16 {
		t.Fatalf("%d of 19 refused, want 16", full)
	}
	close(release)
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
}

func seqs(s *memory.Sink) []byte {
	var out []byte
	for _, p := range s.Packets() {
		out = append(out, p[3])
	}
	return out
}

// header is the RTP header of packet seq (payload type 96, SSRC 1).
func header(seq byte) []byte {
	return rtptest.Packet{PayloadType: 96, Seq: uint16(seq), SSRC: 1}.Header()
}

func write(t *testing.T, p *memory.Pipe, seq byte) {
	t.Helper()
	if err := p.WriteRTP(header(seq), []byte{seq}); err != nil {
		t.Fatal(err)
	}
}

func TestHooks(t *testing.T) {
	clk := &clocktest.Clock{}
	var sink memory.Sink
	p, err := memory.NewPipe(memory.PipeConfig{RTP: &sink, Now: clk.Now, Hook: func(n uint64, _ []byte) memory.Action {
		switch n {
		case 1:
			return memory.Action{Drop: true}
		case 2:
			return memory.Action{Extra: 1}
		case 3:
			return memory.Action{After: 2}
		case 4:
			return memory.Action{Delay: 50 * time.Millisecond}
		}
		return memory.Action{}
	}})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 7 {
		write(t, p, byte(i))
	}
	// 0; 1 dropped; 2 twice; 3 after two later ones (4 and 5); 4 held
	// until the clock moves.
	if got, want := string(seqs(&sink)), string([]byte{0, 2, 2, 5, 3, 6}); got != want {
		t.Fatalf("got %v, want %v", []byte(got), []byte(want))
	}
	if p.Held() != 1 {
		t.Fatalf("held %d, want 1", p.Held())
	}
	clk.Advance(50 * time.Millisecond)
	if err := p.Pump(); err != nil {
		t.Fatal(err)
	}
	if got := seqs(&sink); len(got) != 7 || got[6] != 4 {
		t.Fatalf("after the delay got %v", got)
	}
}

func TestBatchDeliversAtFlush(t *testing.T) {
	var a, b memory.Sink
	batch := &memory.Batch{}
	pa, _ := memory.NewPipe(memory.PipeConfig{RTP: &a, Batch: batch})
	pb, _ := memory.NewPipe(memory.PipeConfig{RTP: &b, Batch: batch})
	if pa.Batch() != pb.Batch() {
		t.Fatal("pipes sharing a batch must share a flush point")
	}
	write(t, pa, 1)
	write(t, pb, 2)
	if a.Len()+b.Len() != 0 {
		t.Fatal("delivered before the flush")
	}
	if err := batch.Flush(); err != nil {
		t.Fatal(err)
	}
	if a.Len() != 1 || b.Len() != 1 || batch.Flushes() != 1 {
		t.Fatalf("after flush: %d, %d", a.Len(), b.Len())
	}
}
