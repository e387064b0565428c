package linkplane_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/callcore/callcore/channel"
	"github.com/callcore/callcore/forward"
	"github.com/callcore/callcore/internal/planetest"
	"github.com/callcore/callcore/internal/poll"
	"github.com/callcore/callcore/internal/rtptest"
	"github.com/callcore/callcore/permission"
	"github.com/callcore/callcore/plane"
	"github.com/callcore/callcore/plane/linkplane"
	"github.com/callcore/callcore/transport/link"
)

const deadline = 20 * time.Second

// waitFor polls cond against the deadline.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	poll.Until(t, deadline, what, cond)
}

// mark ends every payload the publisher sends: the core's empty media
// lacks it.
var mark = []byte{0xC5, 0xC5, 0xC5}

func fromPublisher(pkts [][]byte) (n int) {
	for _, p := range pkts {
		if bytes.HasSuffix(p, mark) {
			n++
		}
	}
	return n
}

// node is one callcore node's plane, registry and channel "c".
type node struct {
	pl   *plane.Plane
	reg  *channel.Registry
	call *channel.Channel
}

func newNode(t *testing.T) *node {
	pl, err := plane.New(plane.Config{})
	if err != nil {
		t.Fatal(err)
	}
	reg, err := channel.NewRegistry(channel.Config{Media: pl})
	if err != nil {
		t.Fatal(err)
	}
	call, _, err := reg.Create("host", "c", channel.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return &node{pl: pl, reg: reg, call: call}
}

func (n *node) close() { n.reg.Close(); n.pl.Close() }

// linkPair is a link from node A (la, listening) to node B (lb,
// dialing); the tracks A offers reach B on remotes. The caller closes
// both before its leak check.
func linkPair(t *testing.T) (la, lb *link.Link, remotes chan *link.RemoteTrack) {
	t.Helper()
	remotes = make(chan *link.RemoteTrack, 1)
	la, err := link.New(link.Config{Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	lb, err = link.New(link.Config{Dial: la.Addr().String(), OnTrack: func(rt *link.RemoteTrack) { remotes <- rt }})
	if err != nil {
		la.Close()
		t.Fatal(err)
	}
	return la, lb, remotes
}

func (n *node) join(t *testing.T, id string, tracks ...channel.TrackInfo) {
	if _, err := n.call.Join(context.Background(), id, tracks); err != nil {
		t.Fatal(err)
	}
}

// TestLinkCarriesAChannelTrackToAnotherPlane: user pub's camera on node A
// is offered over a link by the far node's Endpoint (a user of A's
// channel) and published on node B's plane as pub's camera in B's
// channel, where a member receives the publisher's packets. A cleared
// receive permission of the far node on A stops the packets at A's link;
// restored, they flow again. B's owner muting pub's video on B gives B's
// member no publisher packet. Removing B's user closes the far track.
func TestLinkCarriesAChannelTrackToAnotherPlane(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	a, b := newNode(t), newNode(t)
	defer a.close()
	defer b.close()
	cam := channel.TrackInfo{Name: "cam", Kind: channel.Video}

	la, lb, remotes := linkPair(t)
	defer la.Close()
	defer lb.Close()

	// Node A: pub publishes, node B is a user that receives.
	a.join(t, "pub", cam)
	a.join(t, "nodeB")
	if err := a.pl.Attach("c", "nodeB", linkplane.Endpoint{Link: la}); err != nil {
		t.Fatal(err)
	}
	track, err := a.pl.NewTrack(forward.TrackConfig{Kind: forward.Video, MimeType: "video/VP8", ClockRate: 90000, PayloadType: 96})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.pl.Published("c", "pub", "cam", track); err != nil {
		t.Fatal(err)
	}
	stream := rtptest.Stream{PayloadType: 96, SSRC: 0x1234}
	frame := 0
	send := func(frames int) {
		for range frames {
			var pays [][]byte
			for _, p := range rtptest.VP8(frame%10 == 0, 320, 240, 1500, 1000) {
				pays = append(pays, append(p, mark...))
			}
			for _, p := range stream.Frame(pays, 3000) {
				if err := track.HandleRTP(p); err != nil {
					t.Fatal(err)
				}
			}
			frame++
		}
	}

	// Node B: the offered track is pub's camera in B's channel.
	var rt *link.RemoteTrack
	waitFor(t, "the offer to reach node B", func() bool {
		send(1)
		select {
		case rt = <-remotes:
			return true
		default:
			return false
		}
	})
	if rt.ID() != "pub/cam" {
		t.Fatalf("offered as %q, want pub/cam", rt.ID())
	}
	b.join(t, "pub", cam)
	b.join(t, "member")
	member := planetest.NewEndpoint(100)
	if err := b.pl.Attach("c", "member", member); err != nil {
		t.Fatal(err)
	}
	pub, err := linkplane.Publish(b.pl, "c", "pub", "cam", rt)
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	sink := member.Sink("pub/cam")
	if sink == nil {
		t.Fatal("B's member was not subscribed to pub/cam")
	}
	waitFor(t, "pub's camera at B's member", func() bool { send(1); return fromPublisher(sink.Packets()) >= 30 })

	// A clears node B's receive permission: nothing more crosses.
	if err := a.call.ModUsers("host", []channel.UserMode{{ID: "nodeB", Mode: permission.Send}}); err != nil {
		t.Fatal(err)
	}
	out := la.Stats().RTPOut
	send(30)
	if got := la.Stats().RTPOut; got != out {
		t.Fatalf("recv cleared: %d packets crossed the link", got-out)
	}
	if err := a.call.ModUsers("host", []channel.UserMode{{ID: "nodeB", Mode: permission.Default}}); err != nil {
		t.Fatal(err)
	}
	at := fromPublisher(sink.Packets())
	waitFor(t, "the camera again after recv restored", func() bool { send(1); return fromPublisher(sink.Packets()) >= at+30 })

	// B's owner mutes pub's video on B: B's member gets no publisher
	// packet. One goroutine (the link's receive loop) feeds the track:
	// once it dropped a muted packet, every later packet is muted too.
	if err := b.call.MuteUser("host", "pub", channel.Video, channel.Mute, ""); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a muted packet", func() bool { send(1); return pub.Track().Stats().MutedDrop > 0 })
	mark := len(sink.Packets())
	drop := pub.Track().Stats().MutedDrop
	waitFor(t, "30 more muted packets", func() bool { send(1); return pub.Track().Stats().MutedDrop >= drop+30 })
	if n := fromPublisher(sink.Packets()[mark:]); n != 0 {
		t.Fatalf("muted on B: B's member got %d publisher packets", n)
	}

	// pub leaves B's channel: the plane closes the published track.
	if err := b.call.Leave("pub"); err != nil {
		t.Fatal(err)
	}
	if rc := member.Reception("pub/cam"); rc == nil || !rc.Closed() {
		t.Fatal("B's member's reception was not closed when pub left")
	}
}
