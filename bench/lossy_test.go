package bench

import (
	"encoding/binary"
	"fmt"
	"testing"

	"github.com/callcore/callcore/forward"
	"github.com/callcore/callcore/internal/rtcpx"
	"github.com/callcore/callcore/transport/memory"
)

// lossyPeer is a subscriber's receiving end behind a lossy link: it notes
// the gaps it sees and NACKs them, like a browser, and counts and folds each
// packet once, retransmissions included.
type lossyPeer struct {
	sub     *forward.Subscriber
	ssrc    uint32
	got     []uint64 // bitset by output index (output sequence numbers start at 0)
	high    int
	missing []int
	unique  int
	sum     uint64
	nacks   []rtcpx.NACK
	rtcp    []byte
}

func (r *lossyPeer) WriteRTP(h, p []byte) error {
	seq := binary.BigEndian.Uint16(h[2:])
	idx := r.high + int(int16(seq-uint16(r.high)))
	if idx < 0 || idx/64 >= len(r.got) {
		return fmt.Errorf("output index %d out of range", idx)
	}
	for i := r.high + 1; i < idx; i++ {
		r.missing = append(r.missing, i)
	}
	r.high = max(r.high, idx)
	if r.got[idx/64]&(1<<(idx%64)) == 0 {
		r.got[idx/64] |= 1 << (idx % 64)
		r.unique++
		r.sum += memory.Fold(h, p)
	}
	return nil
}

// nack asks for every packet still missing; it reports whether it asked.
func (r *lossyPeer) nack(b *testing.B) bool {
	r.nacks = r.nacks[:0]
	keep := r.missing[:0]
	for _, i := range r.missing {
		if r.got[i/64]&(1<<(i%64)) == 0 {
			keep = append(keep, i)
			if len(r.nacks) < 64 {
				r.nacks = append(r.nacks, rtcpx.NACK{PID: uint16(i)})
			}
		}
	}
	r.missing = keep
	if len(r.nacks) == 0 {
		return false
	}
	r.rtcp = rtcpx.AppendNACK(r.rtcp[:0], 9, r.ssrc, r.nacks)
	if err := r.sub.HandleRTCP(r.rtcp); err != nil {
		b.Fatal(err)
	}
	return true
}

// BenchmarkFanoutLossy is BenchmarkFanout with 5 % loss on every
// subscriber's link (retransmissions included), repaired by NACKs answered
// from the shared cache. Each subscriber must end with every packet.
func BenchmarkFanoutLossy(b *testing.B) {
	for _, n := range []int{10, 100} {
		b.Run(fmt.Sprintf("subs=%d", n), func(b *testing.B) {
			tr := newTrack(b, false)
			peers := make([]*lossyPeer, n)
			for i := range peers {
				r := &lossyPeer{ssrc: uint32(i + 1), got: make([]uint64, b.N/64+2), high: -1}
				pipe, err := memory.NewPipe(memory.PipeConfig{RTP: r, Hook: memory.Loss(0.05, uint64(i+1))})
				if err != nil {
					b.Fatal(err)
				}
				if r.sub, err = tr.Subscribe(forward.SubscriberConfig{Writer: pipe, SSRC: r.ssrc, PayloadType: subPT, Extensions: subExts}); err != nil {
					b.Fatal(err)
				}
				peers[i] = r
			}
			src := newSource(b)
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				if err := tr.HandleRTP(src.next(i)); err != nil {
					b.Fatal(err)
				}
				for _, r := range peers {
					if len(r.missing) > 0 {
						r.nack(b)
					}
				}
			}
			for _, r := range peers { // what a later packet would show: the lost tail
				for i := r.high + 1; i < b.N; i++ {
					r.missing = append(r.missing, i)
				}
				r.high = b.N - 1
			}
			for more := true; more; { // the tail: NACK rounds until whole
				more = false
				for _, r := range peers {
					more = r.nack(b) || more
				}
			}
			b.StopTimer()
			report(b, n)
			var rtx uint64
			for i, r := range peers {
				if r.unique != b.N || r.sum != expect(b.N, r.ssrc, 20) {
					b.Fatalf("subscriber %d: %d of %d packets, checksum ok %v", i, r.unique, b.N, r.sum == expect(b.N, r.ssrc, 20))
				}
				rtx += r.sub.Stats().Retransmits
			}
			b.ReportMetric(float64(rtx)/float64(b.N)/float64(n), "rtx/delivery")
		})
	}
}
