//go:build !race

package bwe_test

import (
	"testing"

	"github.com/callcore/callcore/bwe"
)

func TestRecordAndFeedbackAllocateNothing(t *testing.T) {
	clock := &manualClock{now: 1e9}
	h := bwe.NewHistory(clock)
	est, err := bwe.New(bwe.Config{}, h)
	if err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(1000, func() { clock.now += 1e6; h.Record(1200) }); n != 0 {
		t.Fatalf("Record: %v allocations", n)
	}
	if n := testing.AllocsPerRun(1000, func() { clock.now += 1e6; h.RecordProbe(1000, 7) }); n != 0 {
		t.Fatalf("RecordProbe: %v allocations", n)
	}
	var arrivals []int64
	for i := range 50 {
		h.Put(uint16(100+i), 1200, clock.now+int64(i)*1e6)
		arrivals = append(arrivals, int64(i)*1000)
	}
	pkt := feedbackBytes(t, arrivals)
	// Every run's feedback is a duplicate after the first, so the count
	// changes: that walks the whole feedback each time.
	if n := testing.AllocsPerRun(1000, func() {
		clock.now += 50e6
		pkt[19]++ // the feedback packet count
		if err := est.HandleRTCP(pkt, clock.now); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Fatalf("HandleRTCP: %v allocations", n)
	}
	if st := est.Stats(); st.Feedback < 1000 || st.Received < 1000*50 {
		t.Fatalf("feedback not applied: %+v", st)
	}
}
