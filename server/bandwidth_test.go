package server

import (
	"encoding/json"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/rtcp"
	pion "github.com/pion/webrtc/v4"
	"go.uber.org/goleak"
)

// TestBandwidthLimitThroughServer: alice publishes three layers; bob
// receives the full one, then his client's REMB caps his downlink. Under
// the full layer's rate he is pushed a lower layer limited by bandwidth
// and his packets follow; under the lowest he is pushed a pause limited
// by bandwidth; with room again, the full layer and no limit. The admin
// metrics count his subscription as lowered, then paused, then neither,
// and his estimate in the histogram's bucket under the cap.
func TestBandwidthLimitThroughServer(t *testing.T) {
	leaks := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, leaks) })
	ts := newTestServer(t, nil)
	alice := login(t, ts, "alice", true)
	alice.must("create", createData{ChannelID: "c", Tracks: []trackData{{Name: "cam", Kind: "video", TrackID: "alice-cam"}}})
	pa := newLayerPublisher(t, alice, "alice-cam")
	// At 50 frames a second, f is at least 1,200 bytes a frame
	// (480 kbit/s), q and h at least 100 and 300 bytes.
	pa.Fill = [3]int{100, 300, 1200}
	pa.offer()
	stop := make(chan struct{})
	t.Cleanup(func() { close(stop) }) // before pa's close, which waits for the sender
	pa.run(stop)

	bob := login(t, ts, "bob", false)
	bob.must("join", joinData{ChannelID: "c"})
	pb := newLayerSubscriber(t, bob)
	pb.answer()
	waitFor(t, "the full layer at bob", func() bool { return pb.lastLayer(t) == 2 })
	var ssrc atomic.Uint32
	for _, r := range pb.pc.GetReceivers() {
		if tr := r.Track(); tr != nil && tr.Kind() == pion.RTPCodecTypeVideo {
			ssrc.Store(uint32(tr.SSRC()))
		}
	}
	if ssrc.Load() == 0 {
		t.Fatal("bob has no video track")
	}
	for drained := false; !drained; {
		select {
		case <-bob.pushes:
		default:
			drained = true
		}
	}
	metric := func(name string, labels ...string) float64 { return scrapeOf(t, ts.Server).value(name, labels...) }
	// remb caps bob's downlink at bps until the next cap: sent every
	// 100 ms, as a receiver sends it.
	var capped atomic.Uint64
	go func() {
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			remb := &rtcp.ReceiverEstimatedMaximumBitrate{Bitrate: float32(capped.Load()), SSRCs: []uint32{ssrc.Load()}}
			if err := pb.pc.WriteRTCP([]rtcp.Packet{remb}); err != nil {
				return
			}
		}
	}()

	for _, step := range []struct {
		bps              uint64
		layers           []string // acceptable layers; none: paused
		limitedBy        string
		lowered, paused  float64
		estimateUnderBkt float64 // a histogram bucket the estimate is under, bytes a second
	}{
		{250e3, []string{"q", "h"}, "bandwidth", 1, 0, 37.5e3},
		{10e3, nil, "bandwidth", 0, 1, 12.5e3},
		{50e6, []string{"f"}, "null", 0, 0, 0},
	} {
		for drained := false; !drained; { // what the last step pushed
			select {
			case <-bob.pushes:
			default:
				drained = true
			}
		}
		start := time.Now()
		capped.Store(step.bps)
		var d layerPush
		for {
			d = layerOf(t, bob)
			if str(d.LimitedBy) == step.limitedBy && (d.Layer == nil) == (len(step.layers) == 0) {
				break
			}
			if time.Since(start) > 10*time.Second {
				t.Fatalf("cap %d bit/s: last push %+v (layer %s, limited by %s)", step.bps, d, str(d.Layer), str(d.LimitedBy))
			}
		}
		ok := len(step.layers) == 0
		for _, l := range step.layers {
			ok = ok || str(d.Layer) == l
		}
		if !ok {
			t.Fatalf("cap %d bit/s: layer %s, want one of %v", step.bps, str(d.Layer), step.layers)
		}
		t.Logf("cap %d kbit/s: pushed layer %s limited by %s after %v", step.bps/1000, str(d.Layer), str(d.LimitedBy),
			time.Since(start).Round(time.Millisecond))
		if l := str(d.Layer); l != "null" {
			want := map[string]int{"q": 0, "h": 1, "f": 2}[l]
			waitFor(t, "bob's packets from layer "+l, func() bool { return pb.lastLayer(t) == want })
			// getStats tells bob the layer he receives, and his estimate.
			var st statsResult
			if err := json.Unmarshal(bob.must("getStats", struct{}{}), &st); err != nil {
				t.Fatal(err)
			}
			if len(st.Received) != 1 || st.Received[0].Layer == nil || *st.Received[0].Layer != want {
				t.Errorf("cap %d bit/s: bob's getStats received %+v, want layer %d", step.bps, st.Received, want)
			}
			if st.Downlink == nil || (step.limitedBy == "bandwidth" && *st.Downlink > float64(step.bps)) {
				t.Errorf("cap %d bit/s: bob's getStats downlink %v", step.bps, st.Downlink)
			}
		}
		var sc scrape
		var lowered, paused float64
		waitFor(t, "the metrics to count the limit", func() bool {
			sc = scrapeOf(t, ts.Server)
			lowered = sc.value("callcore_bandwidth_limited_subscriptions", "state", "lowered")
			paused = sc.value("callcore_bandwidth_limited_subscriptions", "state", "paused")
			return lowered == step.lowered && paused == step.paused
		})
		h := sc["callcore_downlink_estimate_bytes_per_second"].GetMetric()[0].GetHistogram()
		if h.GetSampleCount() != 1 {
			t.Errorf("cap %d bit/s: %d estimates in the histogram, want bob's", step.bps, h.GetSampleCount())
		}
		if step.estimateUnderBkt > 0 {
			for _, b := range h.GetBucket() {
				if b.GetUpperBound() == step.estimateUnderBkt && b.GetCumulativeCount() != 1 {
					t.Errorf("cap %d bit/s: estimate %v B/s over the %v bucket", step.bps, h.GetSampleSum(), step.estimateUnderBkt)
				}
			}
		}
	}
	if v := metric("callcore_bandwidth_limited_subscriptions", "state", "lowered"); v != 0 {
		t.Errorf("%v lowered after the cap lifted", v)
	}
}
