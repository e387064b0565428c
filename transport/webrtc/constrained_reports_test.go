package webrtc

import (
	"net"
	"testing"
	"time"

	"github.com/pion/rtcp"
	"go.uber.org/goleak"

	"github.com/callcore/callcore/forward"
)

// TestConstrainedLinkReportsOnly: a pion subscriber that sends receiver
// reports (every 500 ms) and NACKs but no transport-wide
// feedback, of a three-layer publisher, its port capped at 300 kbit/s:
// its estimate comes from the reports' loss alone. It leaves the top
// layer, and what it is sent comes down to the cap; the time to get below
// it, the layer and the loss are logged (see the bounds below for what is
// not met yet). (The subscriber that sends only transport-wide feedback
// is pion's default, TestConstrainedLink's.)
func TestConstrainedLinkReportsOnly(t *testing.T) {
	if !enterNetns(t) {
		return
	}
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	engine := newTestEngine(t, shapedConfig())
	defer engine.Close()
	layers, p, server := publishLayers(t, engine, func(p *layerPublisher) { p.Fill = [3]int{60, 230, 480} })
	defer server.Close()
	defer layers.Close()

	api, mux := reportsOnlyClientAPI(t, net.IPv4(127, 0, 0, 1), 500*time.Millisecond)
	port := mux.GetListenAddresses()[0].(*net.UDPAddr).Port
	shaper := newShaper(t, port)
	subPeer, err := NewPeer(PeerConfig{Engine: engine})
	if err != nil {
		t.Fatal(err)
	}
	r := newRecvClient(t, api)
	sub, err := subPeer.SubscribeLayers(layers, forward.LayerF, PublishInfo{TrackID: "cam", StreamID: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	negotiate(t, subPeer, r.client)
	waitFor(t, "the first packet", func() bool { return r.video.snap().distinct > 0 })
	if sub.out.twccID != 0 {
		t.Fatal("the transport-wide sequence number extension was negotiated")
	}
	if err := r.pc.WriteRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: sub.out.ssrc.Load()}}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the top layer", func() bool { l, _, _ := r.video.state(); return l == 2 })

	const capRate = 300e3
	shaper.Cap(t, capRate)
	start := time.Now()
	st0 := shaper.stats(t)
	r.video.reset()
	rate := &wireRate{subs: []*Subscription{sub}}
	var conv time.Duration = -1
	var stConv, stLast shapeStats
	var lastAt time.Time
	const phase = 20 * time.Second
	for time.Since(start) < phase {
		time.Sleep(100 * time.Millisecond) // the sampling period of the rate sent
		if x := rate.sample(); conv < 0 && x >= 0 && x < capRate {
			conv, stConv = time.Since(start), shaper.stats(t)
			r.video.reset()
		}
		if lastAt.IsZero() && time.Since(start) >= phase-5*time.Second {
			stLast, lastAt = shaper.stats(t), time.Now()
		}
	}
	end := shaper.stats(t)
	layer, _, _ := r.video.state()
	row := capRow{name: "300 kbit/s, reports only", layer: forward.Layer(layer).String(), converge: conv, toLayer: r.video.changedSince(start), loss: end.sub(st0).loss(),
		audioLoss: -1, probeBytes: subPeer.ProbeStats().Bytes}
	if conv >= 0 {
		row.lossConv = end.sub(stConv).loss()
	}
	row.freeze, row.delayMean, row.delayMax = r.video.reset()
	lossLast := end.sub(stLast).loss()
	lim, paused, limited := sub.BandwidthLimit()
	est := subPeer.Estimator().Stats()
	t.Logf("cap 300 kbit/s, receiver reports only: layer %v, limit %v paused %v limited %v; loss over the last 5 s %.2f %%; estimator %+v",
		forward.Layer(layer), lim, paused, limited, 100*lossLast, est)
	t.Logf("\n%s", capTable([]capRow{row}))
	if est.Feedback != 0 || est.REMBs != 0 || est.ReportExpected == 0 {
		t.Errorf("the estimate did not come from receiver reports alone: %+v", est)
	}
	// What the issue aims at is not met: without a delay signal the
	// loss bound climbs back over h (about 300 kbit/s) while q is sent
	// clean, and the peer goes up and down between q and h, losing 15 to
	// 27 % over the phase's last 5 s in the runs measured (the rate sent
	// was below the cap after 2.4 to 6.8 s). Bounded loosely here: the
	// top layer (about 680 kbit/s on the wire, over half of it lost on
	// this cap) is given up, and the rate sent over the last 10 s is
	// within a quarter of the cap.
	if !limited || (lim == forward.LayerF && !paused) {
		t.Errorf("still on the top layer: limit %v paused %v limited %v", lim, paused, limited)
	}
	if conv < 0 || conv > 15*time.Second {
		t.Errorf("the rate sent was not below the cap within 15 s (%v)", conv)
	}
	a, b := rate.hist[len(rate.hist)-100], rate.hist[len(rate.hist)-1]
	last10 := float64(b.bytes-a.bytes+(b.pkts-a.pkts)*(16+28)) * 8 / b.at.Sub(a.at).Seconds()
	t.Logf("sent over the last 10 s: %.0f bit/s", last10)
	if last10 > 1.25*capRate {
		t.Errorf("sent %.0f bit/s over the last 10 s of a %.0f bit/s cap", last10, capRate)
	}
	if lossLast >= 0.5 {
		t.Errorf("loss over the phase's last 5 s %.2f %%", 100*lossLast)
	}

	close(p.stop)
	if err := subPeer.Close(); err != nil {
		t.Error(err)
	}
	r.close(t)
	_ = mux.Close()
	p.close(t)
}
