package bwe_test

import (
	"testing"

	"github.com/callcore/callcore/bwe"
)

// BenchmarkRecord is the packet path's cost: one sequence number taken and
// its send record stored.
func BenchmarkRecord(b *testing.B) {
	clock := &manualClock{now: 1}
	h := bwe.NewHistory(clock)
	b.ReportAllocs()
	for b.Loop() {
		clock.now += 1000
		h.Record(1200)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "pkts/s")
}

// BenchmarkHandleRTCP is the feedback's cost per packet reported: a
// feedback of 100 packets (50 ms at 2,000 packets a second) parsed and
// applied.
func BenchmarkHandleRTCP(b *testing.B) {
	clock := &manualClock{now: 1e9}
	h := bwe.NewHistory(clock)
	est, err := bwe.New(bwe.Config{}, h)
	if err != nil {
		b.Fatal(err)
	}
	var arrivals []int64
	for i := range 100 {
		h.Put(uint16(100+i), 1200, clock.now+int64(i)*500e3)
		arrivals = append(arrivals, int64(i)*510)
	}
	pkt := feedbackBytes(b, arrivals)
	b.ReportAllocs()
	for b.Loop() {
		clock.now += 50e6
		pkt[19]++ // the feedback packet count: not a duplicate
		if err := est.HandleRTCP(pkt, clock.now); err != nil {
			b.Fatal(err)
		}
	}
	if st := est.Stats(); st.Duplicates != 0 {
		b.Fatalf("%d duplicates", st.Duplicates)
	}
	b.ReportMetric(float64(b.N*100)/b.Elapsed().Seconds(), "pkts/s")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*100), "ns/pkt")
}
