package bench

import (
	"encoding/binary"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/pion/rtp"

	"github.com/callcore/callcore/forward"
	"github.com/callcore/callcore/internal/clocktest"
	"github.com/callcore/callcore/mute"
	"github.com/callcore/callcore/transport/memory"
)

var subCounts = []int{1, 10, 100, 1000}

const (
	payloadSize = 1150
	pubPT       = 96
	subPT       = 100
	firstSeq    = 65000 // the run wraps the 16-bit sequence number
	firstTS     = 4294000000
	uriAbs      = "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time"
)

var pubExts = []forward.Extension{{ID: 3, URI: forward.URITransportCC}, {ID: 2, URI: uriAbs}}
var subExts = []forward.Extension{{ID: 5, URI: uriAbs}}

// source makes the publisher's packets: a WebRTC-like header with
// transport-cc and abs-send-time extensions and a 1150-byte payload.
type source struct {
	pkt []byte
}

func newSource(b *testing.B) *source {
	p := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: pubPT, SSRC: 0x1234}, Payload: make([]byte, payloadSize)}
	for i := range p.Payload {
		p.Payload[i] = byte(i)
	}
	// A VP8 payload descriptor with S set, then a key-frame tag: every
	// packet could start a subscriber (payload[0] is overwritten per packet
	// with values that keep S set and PID 0).
	if err := p.SetExtension(3, []byte{0, 0}); err != nil {
		b.Fatal(err)
	}
	if err := p.SetExtension(2, []byte{1, 2, 3}); err != nil {
		b.Fatal(err)
	}
	pkt, err := p.Marshal()
	if err != nil {
		b.Fatal(err)
	}
	return &source{pkt: pkt}
}

// next returns packet i: sequence numbers and timestamps advance, and the
// first and last payload bytes vary so the checksum sees the payload.
func (s *source) next(i int) []byte {
	binary.BigEndian.PutUint16(s.pkt[2:], uint16(firstSeq+i))
	binary.BigEndian.PutUint32(s.pkt[4:], uint32(firstTS+3000*i))
	s.pkt[len(s.pkt)-payloadSize] = byte(i)&0xE8 | 0x10 // VP8 descriptor: S=1, PID=0
	s.pkt[len(s.pkt)-payloadSize+1] = 0                 // key-frame tag
	s.pkt[len(s.pkt)-1] = byte(i >> 8)
	return s.pkt
}

// expect is the checksum a subscriber's Counter must hold after n packets:
// output sequence numbers from 0, timestamps from 0, 3000 apart.
func expect(n int, ssrc uint32, hdrLen int) uint64 {
	hdr := make([]byte, hdrLen)
	payload := make([]byte, payloadSize)
	var sum uint64
	for i := range n {
		binary.BigEndian.PutUint16(hdr[2:], uint16(i))
		binary.BigEndian.PutUint32(hdr[4:], uint32(3000*i))
		binary.BigEndian.PutUint32(hdr[8:], ssrc)
		payload[0], payload[payloadSize-1] = byte(i)&0xE8|0x10, byte(i>>8)
		sum += memory.Fold(hdr, payload)
	}
	return sum
}

// check verifies that every sink got every packet intact.
func check(b *testing.B, sinks []*memory.Counter, n, hdrLen int) {
	b.Helper()
	want := map[uint32]uint64{}
	for i, s := range sinks {
		ssrc := uint32(i + 1)
		if s.Packets != uint64(n) {
			b.Fatalf("subscriber %d got %d packets, want %d", i, s.Packets, n)
		}
		if _, ok := want[ssrc]; !ok {
			want[ssrc] = expect(n, ssrc, hdrLen)
		}
		if s.Checksum != want[ssrc] {
			b.Fatalf("subscriber %d: checksum %x, want %x", i, s.Checksum, want[ssrc])
		}
	}
}

func report(b *testing.B, subs int) {
	b.ReportMetric(float64(b.N)*float64(subs)/b.Elapsed().Seconds(), "pkts/s")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(subs), "ns/delivery")
}

// newTrack makes the benchmarks' video track. With parallel set and more
// than one CPU (-cpu), its deliveries are spread over a pool of
// GOMAXPROCS-1 workers plus the publisher's goroutine.
func newTrack(b *testing.B, parallel bool) *forward.Track {
	cfg := forward.TrackConfig{Kind: forward.Video, ClockRate: 90000, PayloadType: pubPT, Extensions: pubExts, MimeType: "video/VP8"}
	if w := runtime.GOMAXPROCS(0) - 1; w > 0 && parallel {
		pool, err := forward.NewPool(w)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { pool.Close() })
		cfg.Pool, cfg.ParallelThreshold = pool, 1
	}
	tr, err := forward.NewTrack(cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { tr.Close() })
	return tr
}

// BenchmarkFanout sends packets through the real forward path to subscribers
// on the memory transport, on the publisher's goroutine. One op is one
// packet to every subscriber.
func BenchmarkFanout(b *testing.B) {
	for _, n := range subCounts {
		b.Run(fmt.Sprintf("subs=%d", n), func(b *testing.B) { fanout(b, n, false) })
	}
}

// BenchmarkFanoutParallel is BenchmarkFanout at 1,000 subscribers with the
// deliveries spread over a worker pool: run it with -cpu 1,2 to see the
// scaling (one CPU has no pool).
func BenchmarkFanoutParallel(b *testing.B) {
	b.Run("subs=1000", func(b *testing.B) { fanout(b, 1000, true) })
}

func fanout(b *testing.B, n int, parallel bool) {
	tr := newTrack(b, parallel)
	sinks := make([]*memory.Counter, n)
	for i := range sinks {
		sinks[i] = &memory.Counter{}
		pipe, err := memory.NewPipe(memory.PipeConfig{RTP: sinks[i]})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := tr.Subscribe(forward.SubscriberConfig{Writer: pipe, SSRC: uint32(i + 1), PayloadType: subPT, Extensions: subExts}); err != nil {
			b.Fatal(err)
		}
	}
	src := newSource(b)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if err := tr.HandleRTP(src.next(i)); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	report(b, n)
	check(b, sinks, b.N, 12+8) // abs-send-time: 4-byte extension header + 4 bytes
}

// BenchmarkNaiveFanout is the baseline a Go user writes by default: parse
// each packet with pion/rtp, then for every subscriber clone it, rewrite
// it and marshal it into a new buffer.
func BenchmarkNaiveFanout(b *testing.B) {
	for _, n := range subCounts {
		b.Run(fmt.Sprintf("subs=%d", n), func(b *testing.B) {
			sinks := make([]*memory.Counter, n)
			for i := range sinks {
				sinks[i] = &memory.Counter{}
			}
			src := newSource(b)
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				var p rtp.Packet
				if err := p.Unmarshal(src.next(i)); err != nil {
					b.Fatal(err)
				}
				for j, sink := range sinks {
					q := p.Clone()
					q.SSRC = uint32(j + 1)
					q.PayloadType = subPT
					q.SequenceNumber = p.SequenceNumber - firstSeq
					q.Timestamp = p.Timestamp - firstTS
					abs := q.GetExtension(2)
					q.Extensions = nil
					q.Extension = false
					if err := q.SetExtension(5, abs); err != nil {
						b.Fatal(err)
					}
					buf, err := q.Marshal()
					if err != nil {
						b.Fatal(err)
					}
					hl := q.Header.MarshalSize()
					_ = sink.WriteRTP(buf[:hl], buf[hl:])
				}
			}
			b.StopTimer()
			report(b, n)
			check(b, sinks, b.N, 12+8)
		})
	}
}

// BenchmarkFanoutMuted is the muted case beside BenchmarkFanout: a
// self-muted Opus track whose publisher keeps sending (never forwarded),
// while the muter's silent frames go to every subscriber. One op is one
// publisher packet refused and one 20 ms silent frame to every subscriber;
// the sinks check every silent frame arrived, numbered from 0.
func BenchmarkFanoutMuted(b *testing.B) {
	for _, n := range []int{10, 100, 1000} {
		b.Run(fmt.Sprintf("subs=%d", n), func(b *testing.B) {
			clk := &clocktest.Clock{}
			tr, err := forward.NewTrack(forward.TrackConfig{Kind: forward.Audio, ClockRate: 48000, PayloadType: 111, MimeType: "audio/opus", Clock: clk})
			if err != nil {
				b.Fatal(err)
			}
			defer tr.Close()
			sinks := make([]*memory.Counter, n)
			for i := range sinks {
				sinks[i] = &memory.Counter{}
				if _, err := tr.Subscribe(forward.SubscriberConfig{Writer: sinks[i], SSRC: uint32(i + 1), PayloadType: 111}); err != nil {
					b.Fatal(err)
				}
			}
			tr.SetMute(forward.SourceSelf, true) // sends the first silent frame
			pkt := []byte{0x80, 111, 0, 0, 0, 0, 0, 0, 0, 0, 0x12, 0x34, 0xfc, 1, 2, 3}
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				binary.BigEndian.PutUint16(pkt[2:], uint16(i))
				binary.BigEndian.PutUint32(pkt[4:], uint32(960*i))
				clk.Advance(20 * time.Millisecond)
				if err := tr.HandleRTP(pkt); err != nil { // refused while muted, and pumps
					b.Fatal(err)
				}
			}
			b.StopTimer()
			report(b, n)
			silence, err := mute.SilentFrame(mute.MimeTypeOpus, 20*time.Millisecond)
			if err != nil {
				b.Fatal(err)
			}
			hdr := make([]byte, 12)
			for i, s := range sinks {
				var want uint64
				binary.BigEndian.PutUint32(hdr[8:], uint32(i+1))
				for k := range b.N + 1 {
					binary.BigEndian.PutUint16(hdr[2:], uint16(k))
					binary.BigEndian.PutUint32(hdr[4:], uint32(960*k))
					want += memory.Fold(hdr, silence)
				}
				if s.Packets != uint64(b.N+1) || s.Checksum != want {
					b.Fatalf("subscriber %d: %d silent frames, want %d; checksum ok %v", i, s.Packets, b.N+1, s.Checksum == want)
				}
			}
		})
	}
}
