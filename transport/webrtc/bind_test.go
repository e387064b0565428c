package webrtc

import (
	"errors"
	"sync/atomic"
	"testing"

	pion "github.com/pion/webrtc/v4"
	"go.uber.org/goleak"

	"github.com/callcore/callcore/forward"
)

// TestBindCodecMismatch: a server-first offer of H.264 to a client that
// decodes VP8 only. The client's answer leaves the H.264 sender without a
// codec: that subscription fails with ErrCodecMismatch and is negotiated
// away, while the VP8 one in the same answer is bound.
func TestBindCodecMismatch(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	engine := newTestEngine(t, Config{})
	defer engine.Close()
	var fired atomic.Int64
	server, err := NewPeer(PeerConfig{Engine: engine, OnNegotiationNeeded: func() { fired.Add(1) }})
	if err != nil {
		t.Fatal(err)
	}
	me := &pion.MediaEngine{}
	if err := me.RegisterCodec(pion.RTPCodecParameters{PayloadType: 96,
		RTPCodecCapability: pion.RTPCodecCapability{MimeType: pion.MimeTypeVP8, ClockRate: 90000}}, pion.RTPCodecTypeVideo); err != nil {
		t.Fatal(err)
	}
	c := newClient(t, pion.NewAPI(pion.WithMediaEngine(me)))
	h264 := newTrack(t, forward.Video, pion.MimeTypeH264, 90000, 102)
	vp8 := newTrack(t, forward.Video, pion.MimeTypeVP8, 90000, 96)
	bad, err := server.Subscribe(h264, PublishInfo{}) // no client description yet: not known to fail
	if err != nil {
		t.Fatal(err)
	}
	good, err := server.Subscribe(vp8, PublishInfo{})
	if err != nil {
		t.Fatal(err)
	}
	f0 := fired.Load()
	negotiate(t, server, c)
	if !errors.Is(bad.Err(), ErrCodecMismatch) || bad.Subscriber() != nil {
		t.Fatalf("H.264 subscription: err %v, bound %v", bad.Err(), bad.Subscriber() != nil)
	}
	if good.Err() != nil || good.Subscriber() == nil {
		t.Fatalf("VP8 subscription: err %v, bound %v", good.Err(), good.Subscriber() != nil)
	}
	if fired.Load() != f0+1 {
		t.Fatalf("negotiation needed fired %d times after the answer, want 1 (removing H.264)", fired.Load()-f0)
	}
	negotiate(t, server, c)
	if vp8.Subscribers() != 1 || h264.Subscribers() != 0 {
		t.Fatalf("subscribers: VP8 %d, H.264 %d", vp8.Subscribers(), h264.Subscribers())
	}
	if err := server.Close(); err != nil {
		t.Error(err)
	}
	c.close(t)
}
