package webrtcplane_test

import (
	"bytes"
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	pion "github.com/pion/webrtc/v4"
	"go.uber.org/goleak"

	"github.com/callcore/callcore/channel"
	"github.com/callcore/callcore/forward"
	"github.com/callcore/callcore/internal/piontest"
	"github.com/callcore/callcore/internal/poll"
	"github.com/callcore/callcore/permission"
	"github.com/callcore/callcore/plane"
	"github.com/callcore/callcore/plane/webrtcplane"
	"github.com/callcore/callcore/transport/webrtc"
)

// deadline bounds every wait in these tests.
const deadline = 20 * time.Second

// waitFor polls cond against the deadline.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	poll.Until(t, deadline, what, cond)
}

// client is a plain pion client: a publisher of one VP8 track (cam) whose
// packets carry their index, or a viewer that records what it receives.
type client struct {
	*piontest.Client
	pc   *pion.PeerConnection
	stop chan struct{}
	sent atomic.Int64 // packets the publisher sent
	key  atomic.Bool  // a PLI asked for a key frame

	mu       sync.Mutex // guards the fields below
	got      [][]byte   // the viewer's video payloads
	trackIDs []string
}

func newClient(t *testing.T) *client {
	c := piontest.New(t, nil)
	return &client{Client: c, pc: c.PC, stop: make(chan struct{})}
}

func (c *client) goRun(fn func()) { c.Go(fn) }

func (c *client) close(*testing.T) {
	select {
	case <-c.stop:
	default:
		close(c.stop)
	}
	c.Close()
}

// publishVP8 adds the cam track and sends one-packet VP8 frames every
// 5 ms, a key frame every 20 and on PLI, until stop.
func (c *client) publishVP8(t *testing.T) {
	tr, err := pion.NewTrackLocalStaticRTP(pion.RTPCodecCapability{MimeType: pion.MimeTypeVP8, ClockRate: 90000}, "cam", "pub")
	if err != nil {
		t.Fatal(err)
	}
	snd, err := c.pc.AddTrack(tr)
	if err != nil {
		t.Fatal(err)
	}
	c.goRun(func() {
		for {
			pkts, _, err := snd.ReadRTCP()
			if err != nil {
				return
			}
			for _, p := range pkts {
				if _, ok := p.(*rtcp.PictureLossIndication); ok {
					c.key.Store(true)
				}
			}
		}
	})
	c.goRun(func() {
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-c.stop:
				return
			case <-tick.C:
			}
			tag := byte(0x01)
			if i%20 == 0 || c.key.Swap(false) {
				tag = 0x00
			}
			payload := append([]byte{0x10, tag, byte(i >> 8), byte(i)}, bytes.Repeat([]byte{0xAB}, 40)...)
			_ = tr.WriteRTP(&rtp.Packet{Header: rtp.Header{Version: 2, Marker: true, SequenceNumber: uint16(i), Timestamp: uint32(i) * 450}, Payload: payload})
			c.sent.Add(1)
		}
	})
}

// view records the video it receives.
func (c *client) view() {
	c.pc.OnTrack(func(remote *pion.TrackRemote, _ *pion.RTPReceiver) {
		c.mu.Lock()
		c.trackIDs = append(c.trackIDs, remote.ID())
		c.mu.Unlock()
		c.goRun(func() {
			for {
				p, _, err := remote.ReadRTP()
				if err != nil {
					return
				}
				c.mu.Lock()
				c.got = append(c.got, append([]byte(nil), p.Payload...))
				c.mu.Unlock()
			}
		})
	})
}

// fromPublisher counts the received payloads after from that the
// publisher sent (not the core's empty media), and whether the first is
// a key frame.
func (c *client) fromPublisher(from int) (n int, firstKey bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, p := range c.got[min(from, len(c.got)):] {
		if len(p) == 44 && bytes.Equal(p[4:], bytes.Repeat([]byte{0xAB}, 40)) {
			if n == 0 {
				firstKey = p[1]&1 == 0
			}
			n++
		}
	}
	return n, firstKey
}

func (c *client) received() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.got)
}

// setLocal sets a local description and waits for gathering.
func setLocal(t *testing.T, pc *pion.PeerConnection, d pion.SessionDescription) string {
	return piontest.SetLocal(t, pc, d)
}

// TestPeersMeetThroughThePlane: real pion peers attached to a channel with
// Endpoint. The publisher's track is handed to the plane from OnPublish;
// the plane makes the viewer's peer subscribe (a server-initiated
// renegotiation) under the track ID pub/cam. A cleared receive permission
// stops the viewer's media, restoring it resumes it on a key frame, and
// leaving closes the viewer's subscription.
func TestPeersMeetThroughThePlane(t *testing.T) {
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
	engine, err := webrtc.New(webrtc.Config{LoopbackOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	published := make(chan error, 1)
	pubPeer, err := webrtc.NewPeer(webrtc.PeerConfig{Engine: engine, OnPublish: func(tr *forward.Track, info webrtc.PublishInfo) {
		published <- pl.Published("c", "pub", info.TrackID, tr)
	}})
	if err != nil {
		t.Fatal(err)
	}
	needed := make(chan struct{}, 8)
	viewPeer, err := webrtc.NewPeer(webrtc.PeerConfig{Engine: engine, OnNegotiationNeeded: func() {
		select {
		case needed <- struct{}{}:
		default:
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	for id, p := range map[string]*webrtc.Peer{"pub": pubPeer, "viewer": viewPeer} {
		if err := pl.Attach("c", id, webrtcplane.Endpoint{Peer: p}); err != nil {
			t.Fatal(err)
		}
	}
	pub, view := newClient(t), newClient(t)
	view.view()
	pub.publishVP8(t)
	offer, err := pub.pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	ans, err := pubPeer.Answer(setLocal(t, pub.pc, offer))
	if err != nil {
		t.Fatal(err)
	}
	if err := pub.pc.SetRemoteDescription(pion.SessionDescription{Type: pion.SDPTypeAnswer, SDP: ans}); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-published:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(deadline):
		t.Fatal("the publisher's video did not arrive")
	}
	select {
	case <-needed:
	case <-time.After(deadline):
		t.Fatal("the plane did not make the viewer's peer subscribe")
	}
	soffer, err := viewPeer.Offer()
	if err != nil {
		t.Fatal(err)
	}
	if err := view.pc.SetRemoteDescription(pion.SessionDescription{Type: pion.SDPTypeOffer, SDP: soffer}); err != nil {
		t.Fatal(err)
	}
	vans, err := view.pc.CreateAnswer(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := viewPeer.SetAnswer(setLocal(t, view.pc, vans)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the publisher's video at the viewer", func() bool { n, _ := view.fromPublisher(0); return n >= 30 })
	view.mu.Lock()
	ids := append([]string(nil), view.trackIDs...)
	view.mu.Unlock()
	if len(ids) != 1 || ids[0] != "pub/cam" {
		t.Errorf("the viewer's tracks %q, want [pub/cam]", ids)
	}
	subs := viewPeer.Subscriptions()
	if len(subs) != 1 {
		t.Fatalf("%d subscriptions on the viewer's peer, want 1", len(subs))
	}
	sub := subs[0]

	// Send-only: nothing more reaches the viewer's writer.
	if err := ch.ModUsers("host", []channel.UserMode{{ID: "viewer", Mode: permission.Send}}); err != nil {
		t.Fatal(err)
	}
	if sub.Open() {
		t.Fatal("the viewer's subscription is open after its recv was cleared")
	}
	fs := sub.Subscriber()
	g0 := fs.Stats().DropGate
	waitFor(t, "the gate to drop packets", func() bool { return fs.Stats().DropGate >= g0+2 })
	written := fs.Stats().Packets
	sent := pub.sent.Load()
	waitFor(t, "the publisher to send 100 more", func() bool { return pub.sent.Load() >= sent+100 })
	if got := fs.Stats().Packets; got != written {
		t.Errorf("recv cleared: the viewer's writer took %d packets", got-written)
	}
	mark := view.received()

	// Default again: media resumes on a key frame.
	if err := ch.ModUsers("host", []channel.UserMode{{ID: "viewer", Mode: permission.Default}}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "media after recv restored", func() bool { n, _ := view.fromPublisher(mark); return n >= 20 })
	if _, key := view.fromPublisher(mark); !key {
		t.Error("recv restored: media resumed on a delta frame")
	}

	// Leaving closes the viewer's subscription.
	if err := ch.Leave("viewer"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the subscription to be closed", func() bool { return len(viewPeer.Subscriptions()) == 0 })

	close(pub.stop)
	reg.Close()
	if err := pl.Close(); err != nil {
		t.Error(err)
	}
	for _, p := range []*webrtc.Peer{viewPeer, pubPeer} {
		if err := p.Close(); err != nil {
			t.Error(err)
		}
	}
	view.close(t)
	pub.close(t)
	if err := engine.Close(); err != nil {
		t.Error(err)
	}
}
