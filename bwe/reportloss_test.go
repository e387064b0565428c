package bwe_test

import (
	"testing"

	"github.com/callcore/callcore/bwe"
)

// TestReceiverReportLoss: a receiver that sends only receiver reports
// (HandleLoss) has feedback; its loss over 10 % lowers the estimate, at
// most once a second; the same loss, when it was all inherited from
// upstream, changes nothing, and what is left after taking the inherited
// part out is what counts.
func TestReceiverReportLoss(t *testing.T) {
	const s = int64(1e9)
	newEst := func() *bwe.Estimator {
		e, err := bwe.New(bwe.Config{}, bwe.NewHistory(&manualClock{}))
		if err != nil {
			t.Fatal(err)
		}
		return e
	}

	inherited := newEst()
	for i := range int64(10) {
		inherited.HandleLoss(100, 30, 30, (i+1)*s) // 30 % lost, all upstream
	}
	st := inherited.Stats()
	if !inherited.HasFeedback() || st.Estimate != 5e6 || st.LossCuts != 0 || st.ReportExpected != 700 || st.ReportLost != 0 {
		t.Fatalf("inherited loss only: feedback %v, %+v", inherited.HasFeedback(), st)
	}

	link := newEst()
	if link.HasFeedback() {
		t.Fatal("feedback before any report")
	}
	var last float64 = 5e6
	for i := range int64(10) {
		link.HandleLoss(100, 40, 10, (i+1)*s) // 30 of 90 sent lost on the link
		est := link.Estimate()
		if est >= last {
			t.Fatalf("report %d: estimate %.0f, was %.0f", i, est, last)
		}
		last = est
	}
	st = link.Stats()
	if st.LossCuts != 10 || st.ReportExpected != 900 || st.ReportLost != 300 {
		t.Fatalf("link loss: %+v", st)
	}
	// Two reports within a second: one cut.
	twice := newEst()
	twice.HandleLoss(100, 50, 0, s)
	twice.HandleLoss(100, 50, 0, s+s/2)
	if st := twice.Stats(); st.LossCuts != 1 {
		t.Fatalf("two reports 0.5 s apart: %d cuts", st.LossCuts)
	}
	// Nothing expected once the inherited part is out: nothing counted.
	none := newEst()
	none.HandleLoss(10, 10, 10, s)
	none.HandleLoss(0, 0, 0, s)
	if none.HasFeedback() || none.Stats().ReportExpected != 0 {
		t.Fatalf("nothing sent: %+v", none.Stats())
	}
	t.Logf("30 %% link loss, 10 reports a second apart: estimate %.0f (%+v)", last, st)
}

// TestReceiverReportLossCutsFromSent: given what was sent over the
// report's interval, a cut starts from what got through of it, not from
// the estimate nothing tried, and stays above half of that.
func TestReceiverReportLossCutsFromSent(t *testing.T) {
	const s = int64(1e9)
	e, err := bwe.New(bwe.Config{}, bwe.NewHistory(&manualClock{}))
	if err != nil {
		t.Fatal(err)
	}
	e.HandleReport(100, 50, 0, 700e3, s) // half of 700 kbit/s lost: 350 got through
	if est := e.Estimate(); est != 350e3*0.75 {
		t.Fatalf("after 50 %% loss of 700 kbit/s sent: estimate %.0f, want %.0f (cut from what got through)", est, 350e3*0.75)
	}
	// Low loss compares the bound with the estimate, not with what was
	// sent: the bound stays a bound, rising slowly.
	before := e.Estimate()
	e.HandleReport(100, 0, 0, 100e3, 2*s)
	if est := e.Estimate(); est <= before || est > before*1.1 {
		t.Fatalf("after a clean report: estimate %.0f, was %.0f", est, before)
	}
	// Without what was sent, the cut starts from the estimate.
	f, err := bwe.New(bwe.Config{}, bwe.NewHistory(&manualClock{}))
	if err != nil {
		t.Fatal(err)
	}
	f.HandleReport(100, 50, 0, 0, s)
	if est := f.Estimate(); est != 5e6*0.75 {
		t.Fatalf("after 50 %% loss, nothing known sent: estimate %.0f", est)
	}
}
