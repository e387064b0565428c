package link

import (
	"sync/atomic"
	"testing"
	"time"

	pionrtp "github.com/pion/rtp"

	"github.com/callcore/callcore/forward"
)

// countWriter counts what a subscriber gets.
type countWriter struct{ n *atomic.Int64 }

func (w countWriter) WriteRTP(h, p []byte) error { w.n.Add(1); return nil }

// BenchmarkLinkFanout relays one audio track from A to B over a link on
// loopback (SRTP AEAD_AES_128_GCM) to 100 subscribers on B. It reports
// deliveries per second at B's subscribers and link packets per published
// packet (1: the track crosses once). Publishing keeps at most 128
// packets in flight so the UDP socket does not overflow.
func BenchmarkLinkFanout(b *testing.B) {
	const subs = 100
	la, lb := pair(b, Config{}, Config{})
	tr, err := forward.NewTrack(forward.TrackConfig{Kind: forward.Audio, ClockRate: 48000, PayloadType: 111,
		MimeType: "audio/opus", SSRC: pubSSRC})
	if err != nil {
		b.Fatal(err)
	}
	defer tr.Close()
	if err := la.Offer("mic", tr); err != nil {
		b.Fatal(err)
	}
	rt := remoteOf(b, lb, "mic")
	var got atomic.Int64
	for i := range subs {
		if _, err := rt.Subscribe(forward.SubscriberConfig{Writer: countWriter{&got}, SSRC: uint32(0x100 + i), PayloadType: 111}); err != nil {
			b.Fatal(err)
		}
	}
	pkt := &pionrtp.Packet{Header: pionrtp.Header{Version: 2, PayloadType: 111, SSRC: pubSSRC}, Payload: make([]byte, 160)}
	var seq uint16
	buf := make([]byte, 1500)
	publish := func() {
		pkt.SequenceNumber, pkt.Timestamp = seq, uint32(seq)*960
		seq++
		n, _ := pkt.MarshalTo(buf)
		_ = tr.HandleRTP(buf[:n])
	}
	waitFor(b, "the link to carry packets", func() bool { publish(); return got.Load() >= subs })
	inTrack := func() int64 { return int64(rt.Track().Stats().PacketsIn) }
	out0, in0, got0 := la.Stats().RTPOut, inTrack(), got.Load()
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for i := range b.N {
		publish()
		if i%32 == 31 {
			stall := time.Now()
			for int64(i+1)-(inTrack()-in0) > 128 && time.Since(stall) < 50*time.Millisecond {
				time.Sleep(20 * time.Microsecond)
			}
		}
	}
	deadline := time.Now().Add(2 * time.Second)
	for inTrack()-in0 < int64(b.N) && time.Now().Before(deadline) {
		time.Sleep(100 * time.Microsecond)
	}
	el := time.Since(start)
	b.StopTimer()
	delivered := got.Load() - got0
	b.ReportMetric(float64(delivered)/el.Seconds(), "pkts/s")
	b.ReportMetric(float64(la.Stats().RTPOut-out0)/float64(b.N), "link-pkts/pub")
	b.ReportMetric(float64(inTrack()-in0)/float64(b.N), "arrived/pub")
}
