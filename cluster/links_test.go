package cluster

import (
	"bytes"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/callcore/callcore/channel"
	"github.com/callcore/callcore/forward"
	"github.com/callcore/callcore/internal/planetest"
	"github.com/callcore/callcore/internal/rtptest"
	"github.com/callcore/callcore/plane"
)

// mark ends every payload a test publisher sends: the core's empty media
// (a muted track) lacks it.
var mark = []byte{0xC5, 0xC5, 0xC5}

func fromPublisher(pkts [][]byte) (n int) {
	for _, p := range pkts {
		if bytes.HasSuffix(p, mark) {
			n++
		}
	}
	return n
}

// mediaNode is a node with a plane of its own and media links on
// loopback.
type mediaNode struct {
	*Node
	pl *plane.Plane
}

func startMediaNode(t *testing.T, id, url string) mediaNode {
	t.Helper()
	return startMediaNodeWith(t, id, url, nil)
}

// startMediaNodeWith is startMediaNode with set run on the node before
// it is given its plane.
func startMediaNodeWith(t *testing.T, id, url string, set func(*Node)) mediaNode {
	t.Helper()
	pl, err := plane.New(plane.Config{})
	if err != nil {
		t.Fatal(err)
	}
	n, err := Start(Config{Node: id, URL: url, TTL: time.Second, OpTimeout: 15 * time.Second, LinkAddr: "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	if set != nil {
		set(n)
	}
	n.UseMedia(pl)
	t.Cleanup(func() { n.Close(); pl.Close() })
	return mediaNode{Node: n, pl: pl}
}

// publisher feeds a VP8 track published on a node's plane, as a
// transport would.
type publisher struct {
	mu     sync.Mutex // guards stream, frame, sent
	track  *forward.Track
	stream rtptest.Stream
	frame  int
	sent   int // packets handed to the track
}

func publish(t *testing.T, n mediaNode, ch, user, name string, ssrc uint32) *publisher {
	t.Helper()
	tr, err := n.pl.NewTrack(forward.TrackConfig{Kind: forward.Video, MimeType: "video/VP8", ClockRate: 90000, PayloadType: 96})
	if err != nil {
		t.Fatal(err)
	}
	// The plane learns of the track just after the join returns (the
	// node's media calls follow the replica): publish once it has.
	var err2 error
	eventually(t, 10*time.Second, "the plane to know "+user+"/"+name, func() bool {
		err2 = n.pl.Published(ch, user, name, tr)
		return !errors.Is(err2, plane.ErrUnknownTrack)
	})
	if err2 != nil {
		t.Fatal(err2)
	}
	return &publisher{track: tr, stream: rtptest.Stream{PayloadType: 96, SSRC: ssrc}}
}

// send sends frames, a key frame every tenth.
func (p *publisher) send(t *testing.T, frames int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for range frames {
		var pays [][]byte
		for _, b := range rtptest.VP8(p.frame%10 == 0, 320, 240, 1500, 1000) {
			pays = append(pays, append(b, mark...))
		}
		for _, pkt := range p.stream.Frame(pays, 3000) {
			if err := p.track.HandleRTP(pkt); err != nil {
				t.Fatal(err)
			}
			p.sent++
		}
		p.frame++
	}
}

func (p *publisher) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.sent
}

// Three nodes, one channel, a publisher and two subscribers on each node:
// every subscriber receives every other publisher's camera, each camera
// crosses to each other node once (one remote track per origin on each
// node, and each link carries about as many packets as its one track
// was sent, not one stream per subscriber), and an admin's mute on node
// a of the publisher on node c leaves a's subscribers no packet of it.
func TestMediaCrossesNodesOncePerTrack(t *testing.T) {
	eng := startEngine(t, 1)
	nodes := []mediaNode{startMediaNode(t, "a", eng[0].ClientURL()), startMediaNode(t, "b", eng[0].ClientURL()), startMediaNode(t, "c", eng[0].ClientURL())}
	ctx := ctxFor(t, 60*time.Second)
	cam := []channel.TrackInfo{{Name: "cam", Kind: channel.Video}}
	if _, err := nodes[0].Create(ctx, "host", "r", channel.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	type sub struct {
		node int
		id   string
		ep   *planetest.Endpoint
	}
	var subs []sub
	pubs := make([]*publisher, 3)
	for i, n := range nodes {
		pu := "pub-" + n.ID()
		if _, err := n.Join(ctx, pu, "r", cam); err != nil {
			t.Fatal(err)
		}
		pubs[i] = publish(t, n, "r", pu, "cam", uint32(0x1000+i))
		for j := range 2 {
			id := fmt.Sprintf("sub-%s%d", n.ID(), j)
			if _, err := n.Join(ctx, id, "r", nil); err != nil {
				t.Fatal(err)
			}
			ep := planetest.NewEndpoint(uint32(100 * (len(subs) + 1)))
			if err := n.pl.Attach("r", id, ep); err != nil {
				t.Fatal(err)
			}
			subs = append(subs, sub{i, id, ep})
		}
	}
	sendAll := func(frames int) {
		for _, p := range pubs {
			p.send(t, frames)
		}
	}
	got := func(s sub, from int) int {
		sink := s.ep.Sink("pub-" + nodes[from].ID() + "/cam")
		if sink == nil {
			return 0
		}
		return fromPublisher(sink.Packets())
	}
	eventually(t, 30*time.Second, "every camera at every subscriber", func() bool {
		sendAll(1)
		for _, s := range subs {
			for from := range nodes {
				if got(s, from) < 30 {
					return false
				}
			}
		}
		return true
	})

	// Once per track per node pair: each node publishes two remote
	// tracks (the two other nodes' cameras), whatever its subscribers;
	// each link from an origin carries one stream, about the packets its
	// publisher sent since the link came up, never twice them.
	before := make([]int, 3)
	outBefore := make([]map[string]uint64, 3)
	for i, n := range nodes {
		before[i] = pubs[i].count()
		out, _ := n.Links()
		outBefore[i] = map[string]uint64{}
		for far, st := range out {
			outBefore[i][far] = st.RTPOut
		}
	}
	sendAll(100)
	for i, n := range nodes {
		ms := n.MediaStats()
		if ms.RemoteTracks != 2 || ms.LinksOut != 2 || ms.LinksIn != 2 {
			t.Errorf("node %s: %+v, want 2 remote tracks, 2 links out, 2 in", n.ID(), ms)
		}
		sent := pubs[i].count() - before[i]
		out, _ := n.Links()
		for far, st := range out {
			crossed := int(st.RTPOut - outBefore[i][far])
			t.Logf("link %s→%s: %d packets for %d sent by its publisher", n.ID(), far, crossed, sent)
			if crossed < sent*9/10 || crossed > sent*11/10 {
				t.Errorf("link %s→%s carried %d packets for %d sent: not one stream", n.ID(), far, crossed, sent)
			}
		}
	}

	// The admin on node a mutes the publisher on node c: the mute is
	// applied on c (its track drops the publisher's packets) and a's
	// subscribers get no more of c's packets.
	if _, err := nodes[0].Do(ctx, Op{Name: OpMuteUser, Channel: "r", Actor: "host", Target: "pub-c", Kind: channel.Video, Mute: true}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "the mute applied at c", func() bool { sendAll(1); return pubs[2].track.Stats().MutedDrop > 0 })
	// The stream is ordered: once c drops, what crosses after is empty
	// media. Wait for what was in flight, then count.
	drop := pubs[2].track.Stats().MutedDrop
	eventually(t, 10*time.Second, "30 more muted packets", func() bool { sendAll(1); return pubs[2].track.Stats().MutedDrop >= drop+30 })
	at := []int{got(subs[0], 2), got(subs[1], 2)}
	otherAt := got(subs[0], 1)
	sendAll(60)
	eventually(t, 10*time.Second, "b's camera still at a", func() bool { sendAll(1); return got(subs[0], 1) >= otherAt+60 })
	for k := range 2 {
		if n := got(subs[k], 2) - at[k]; n != 0 {
			t.Errorf("%s got %d packets of the muted publisher on c", subs[k].id, n)
		}
	}
}
