package webrtc

import (
	"context"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/callcore/callcore/channel"
	"github.com/callcore/callcore/forward"
	"github.com/callcore/callcore/permission"
	"github.com/callcore/callcore/plane"
)

// onlySub returns the peer's one subscription, nil if it has none.
func onlySub(p *Peer) *Subscription {
	p.mu.Lock()
	defer p.mu.Unlock()
	for s := range p.subs {
		return s
	}
	return nil
}

// TestChannelEndpoint: real pion peers attached to a channel through the
// plane (webrtc.Endpoint). The publisher's track is handed over with
// plane.Published from OnPublish; the plane makes the viewer's peer
// subscribe (a server-initiated renegotiation). A cleared receive
// permission pauses the viewer, restoring it resumes on a key frame, and
// the owner's mute gives the viewer one black key frame and then nothing.
func TestChannelEndpoint(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	pl, err := plane.New(plane.Config{})
	if err != nil {
		t.Fatal(err)
	}
	reg, err := channel.NewRegistry(channel.Config{Media: pl})
	if err != nil {
		t.Fatal(err)
	}
	ch, _, err := reg.Create("host", "c", channel.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ch.Join(context.Background(), "pub", []channel.TrackInfo{{Name: "cam", Kind: channel.Video}}); err != nil {
		t.Fatal(err)
	}
	if _, err := ch.Join(context.Background(), "viewer", nil); err != nil {
		t.Fatal(err)
	}

	engine := newTestEngine(t, Config{})
	defer engine.Close()
	api := clientAPI(t)
	videoCh := make(chan *forward.Track, 1)
	publishedErr := make(chan error, 4)
	pubPeer, err := NewPeer(PeerConfig{
		Engine: engine,
		Track:  forward.TrackConfig{KeyFrameInterval: 5 * time.Second},
		OnPublish: func(tr *forward.Track, info PublishInfo) {
			if info.TrackID != "cam" { // the client's track ID names the channel's track
				return // its audio: not a track of the channel
			}
			publishedErr <- pl.Published("c", "pub", info.TrackID, tr)
			videoCh <- tr
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	needed := make(chan struct{}, 8)
	viewPeer, err := NewPeer(PeerConfig{Engine: engine, OnNegotiationNeeded: func() {
		select {
		case needed <- struct{}{}:
		default:
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	for id, p := range map[string]*Peer{"pub": pubPeer, "viewer": viewPeer} {
		if err := pl.Attach("c", id, Endpoint{Peer: p}); err != nil {
			t.Fatal(err)
		}
	}
	if onlySub(viewPeer) != nil {
		t.Fatal("the viewer subscribed before the publisher's track was published")
	}

	pub := newPubClient(t, api)
	view := newSubClient(t, api)
	publish(t, pubPeer, pub.client)
	pub.goRun(pub.send)
	var video *forward.Track
	select {
	case video = <-videoCh:
	case <-time.After(deadline):
		t.Fatal("the publisher's video did not arrive")
	}
	if err := <-publishedErr; err != nil {
		t.Fatal(err)
	}
	select {
	case <-needed:
	case <-time.After(deadline):
		t.Fatal("the plane did not make the viewer's peer subscribe")
	}
	sub := onlySub(viewPeer)
	if sub == nil {
		t.Fatal("no subscription on the viewer's peer")
	}
	negotiate(t, viewPeer, view.client)
	if id := sub.local.ID(); id != "pub/cam" {
		t.Errorf("the viewer's track ID %q, want pub/cam", id)
	}
	c := &call{pub: pub, video: video} // for pubPacket and waitPublisherSends
	countPub := func(from int) (n int, firstKey bool, maxIdx int) {
		view.mu.Lock()
		defer view.mu.Unlock()
		maxIdx = -1
		for _, p := range view.video[from:] {
			if idx, key, ok := c.pubPacket(p); ok {
				if n == 0 {
					firstKey = key
				}
				n++
				maxIdx = max(maxIdx, idx)
			}
		}
		return n, firstKey, maxIdx
	}
	waitFor(t, "the publisher's video at the viewer", func() bool { n, _, _ := countPub(0); return n >= 30 })

	// Send-only: the viewer's receive permission is cleared.
	waitFor(t, "the binding", func() bool { return sub.Subscriber() != nil })
	fs := sub.Subscriber()
	g0 := fs.Stats().DropGate
	if err := ch.ModUsers("host", []channel.UserMode{{ID: "viewer", Mode: permission.Send}}); err != nil {
		t.Fatal(err)
	}
	if sub.Open() {
		t.Fatal("the viewer's subscription is open after its recv was cleared")
	}
	waitFor(t, "the gate to drop packets", func() bool { return fs.Stats().DropGate >= g0+2 })
	atPause := int(pub.lastIdx.Load())
	sent := fs.Stats().Packets
	c.waitPublisherSends(t, 100)
	if got := fs.Stats().Packets; got != sent {
		t.Errorf("recv cleared: the viewer's writer took %d packets", got-sent)
	}
	if _, _, m := countPub(0); m > atPause {
		t.Errorf("recv cleared: the viewer received packet %d, sent after the pause (%d)", m, atPause)
	}
	mark, _ := view.counts()

	// Default again: media resumes on a key frame.
	if err := ch.ModUsers("host", []channel.UserMode{{ID: "viewer", Mode: permission.Default}}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "media after recv restored", func() bool {
		n, key, _ := countPub(mark)
		if n > 0 && !key {
			t.Fatal("recv restored: media resumed on a delta frame")
		}
		return n >= 20
	})

	// The owner mutes pub's video: one black key frame, its two repeat
	// frames (forward.MuteConfig.Flush), then nothing.
	if err := ch.MuteUser("host", "pub", channel.Video, channel.Mute, ""); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the mute's black key frame", func() bool { return view.blackKeys.Load() >= 1 })
	c.waitPublisherSends(t, 100)
	view.mu.Lock()
	if n := view.blackKeys.Load(); n != 1 {
		t.Errorf("%d black key frames while muted, want 1", n)
	}
	if extra := len(view.video) - view.blackEnd[0]; extra != 2 {
		t.Errorf("%d video packets after the black key frame while muted, want 2", extra)
	}
	view.mu.Unlock()

	// Leaving closes the viewer's subscription (renegotiated away).
	if err := ch.Leave("viewer"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the subscription to be closed", func() bool { return onlySub(viewPeer) == nil })

	close(pub.stop)
	reg.Close()
	if err := pl.Close(); err != nil {
		t.Error(err)
	}
	for _, p := range []*Peer{viewPeer, pubPeer} {
		if err := p.Close(); err != nil {
			t.Error(err)
		}
	}
	view.close(t)
	pub.close(t)
}
