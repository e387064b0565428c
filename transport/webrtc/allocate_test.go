package webrtc

import (
	"testing"
	"time"

	"github.com/pion/rtcp"
	"go.uber.org/goleak"

	"github.com/callcore/callcore/forward"
)

// TestAllocationFollowsTheEstimate: a pion publisher sends three layers
// (padded to about 110, 220 and 350 kbit/s); a pion subscriber of them
// sends transport-wide feedback (pion's default interceptors) and the
// REMB the test sets, between the layers' measured rates. The peer's allocation follows the estimate: the
// highest layer that fits, the subscription paused when not even the
// lowest does, and back on the top layer (after the hold) when the
// estimate rises; BandwidthLimit says so, and OnBandwidthLimit is called.
func TestAllocationFollowsTheEstimate(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	engine := newTestEngine(t, Config{})
	defer engine.Close()
	layers, p, server := publishLayers(t, engine, func(p *layerPublisher) { p.Pad = [3]byte{60, 150, 255} })
	defer server.Close()
	defer layers.Close()

	subPeer, err := NewPeer(PeerConfig{Engine: engine})
	if err != nil {
		t.Fatal(err)
	}
	defer subPeer.Close()
	r := newLayerReceiver(t)
	sub, err := subPeer.SubscribeLayers(layers, forward.LayerF, PublishInfo{TrackID: "cam", StreamID: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	told := make(chan struct{}, 16)
	sub.OnBandwidthLimit(func() {
		select {
		case told <- struct{}{}:
		default:
		}
	})
	negotiate(t, subPeer, r.client)
	waitFor(t, "the first packet", func() bool { return r.rec.SSRC() != 0 })
	remb := func(bps float32) {
		t.Helper()
		if err := r.pc.WriteRTCP([]rtcp.Packet{&rtcp.ReceiverEstimatedMaximumBitrate{Bitrate: bps, SSRCs: []uint32{r.rec.SSRC()}}}); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "the top layer", func() bool { return r.lastLayer(t) == 2 })
	rates := allocRates(t, subPeer, sub)
	t.Logf("layer rates %.0f", rates)
	for _, step := range []struct {
		remb   float32
		layer  int // -1: paused
		limits bool
	}{
		{float32(rates[1]+rates[2]) / 2, 1, true},
		{float32(rates[0]+rates[1]) / 2, 0, true},
		{float32(rates[0]) / 2, -1, true},
		{5e6, 2, false},
	} {
		remb(step.remb)
		start := time.Now()
		waitFor(t, "the allocation", func() bool {
			l, paused, limited := sub.BandwidthLimit()
			if limited != step.limits || paused != (step.layer < 0) || (step.layer >= 0 && limited && int(l) != step.layer) {
				return false
			}
			if step.layer < 0 {
				return true
			}
			return r.lastLayer(t) == step.layer
		})
		if open := sub.Subscriber().Open(); open != (step.layer >= 0) {
			t.Fatalf("the core's gate open %v with layer %d", open, step.layer)
		}
		st := subPeer.Estimator().Stats()
		t.Logf("REMB %.0f kbit/s: layer %d (limited %v) after %v; estimate %.0f, acked %.0f",
			step.remb/1000, step.layer, step.limits, time.Since(start).Round(10*time.Millisecond), st.Estimate, st.Acked)
	}
	select {
	case <-told:
	default:
		t.Fatal("OnBandwidthLimit was not called")
	}
	close(p.stop)
	if err := sub.Close(); err != nil {
		t.Fatal(err)
	}
	r.close(t)
	p.close(t)
}

// allocRates returns the layer rates the peer's allocation measured for
// s, once it measured all three.
func allocRates(t *testing.T, p *Peer, s *Subscription) [3]float64 {
	var r [3]float64
	waitFor(t, "the layers' rates measured", func() bool {
		p.alloc.mu.Lock()
		defer p.alloc.mu.Unlock()
		st := p.alloc.streams[s]
		if st == nil {
			return false
		}
		r = st.Rates
		return r[0] > 0 && r[1] > 0 && r[2] > 0
	})
	return r
}
