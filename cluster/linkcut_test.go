package cluster

import (
	"encoding/binary"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/callcore/callcore/channel"
	"github.com/callcore/callcore/internal/planetest"
	"github.com/callcore/callcore/internal/testcert"
)

// cutter is a TCP proxy on loopback in front of a link's control
// address: cut closes its connections and refuses new ones until mend.
type cutter struct {
	ln     net.Listener
	target string
	wg     sync.WaitGroup

	mu    sync.Mutex // guards cut, conns
	cut   bool
	conns []net.Conn
}

func newCutter(t *testing.T, target string) *cutter {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c := &cutter{ln: ln, target: target}
	c.wg.Add(1)
	go c.accept()
	t.Cleanup(func() { ln.Close(); c.sever(); c.wg.Wait() })
	return c
}

func (c *cutter) accept() {
	defer c.wg.Done()
	for {
		in, err := c.ln.Accept()
		if err != nil {
			return
		}
		c.mu.Lock()
		if c.cut {
			c.mu.Unlock()
			in.Close()
			continue
		}
		out, err := net.Dial("tcp", c.target)
		if err != nil {
			c.mu.Unlock()
			in.Close()
			continue
		}
		c.conns = append(c.conns, in, out)
		c.mu.Unlock()
		c.wg.Add(2)
		go func() { defer c.wg.Done(); io.Copy(out, in); out.Close() }()
		go func() { defer c.wg.Done(); io.Copy(in, out); in.Close() }()
	}
}

// sever closes every connection through the proxy.
func (c *cutter) sever() {
	c.mu.Lock()
	conns := c.conns
	c.conns = nil
	c.mu.Unlock()
	for _, conn := range conns {
		conn.Close()
	}
}

func (c *cutter) setCut(on bool) {
	c.mu.Lock()
	c.cut = on
	c.mu.Unlock()
	if on {
		c.sever()
	}
}

// A link between two nodes cut for 3 s (its control connection closed
// and refused, which ends its session and its media): nobody leaves the
// channel, the camera reaches the far subscriber again once the link
// redials, on a new session, and the subscriber's sequence numbers run
// on without a jump across the cut.
func TestMediaResumesAfterALinkCut(t *testing.T) {
	eng := startEngine(t, 1)
	a := startMediaNode(t, "a", eng[0].ClientURL())
	var cut *cutter
	var cutOnce sync.Once
	ready := make(chan struct{})
	b := startMediaNodeVia(t, "b", eng[0].ClientURL(), func(addr string) string {
		cutOnce.Do(func() { cut = newCutter(t, addr); close(ready) })
		<-ready
		return cut.ln.Addr().String()
	})
	ctx := ctxFor(t, 60*time.Second)
	if _, err := a.Create(ctx, "host", "r", channel.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Join(ctx, "pub", "r", []channel.TrackInfo{{Name: "cam", Kind: channel.Video}}); err != nil {
		t.Fatal(err)
	}
	pub := publish(t, a, "r", "pub", "cam", 0x2000)
	if _, err := b.Join(ctx, "sub", "r", nil); err != nil {
		t.Fatal(err)
	}
	ep := planetest.NewEndpoint(300)
	if err := b.pl.Attach("r", "sub", ep); err != nil {
		t.Fatal(err)
	}
	got := func() int {
		if s := ep.Sink("pub/cam"); s != nil {
			return fromPublisher(s.Packets())
		}
		return 0
	}
	eventually(t, 20*time.Second, "the camera at b", func() bool { pub.send(t, 1); return got() >= 30 })
	_, in := b.Links()
	sessions := in["a"].Sessions

	cut.setCut(true)
	start := time.Now()
	before := got()
	for time.Since(start) < 3*time.Second { // the publisher goes on sending while the link is cut
		pub.send(t, 1)
		select {
		case <-time.After(33 * time.Millisecond):
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		}
	}
	t.Logf("during the 3 s cut b's subscriber got %d publisher packets", got()-before)
	cut.setCut(false)
	at := got()
	eventually(t, 20*time.Second, "the camera at b after the cut", func() bool { pub.send(t, 1); return got() >= at+30 })
	t.Logf("camera back at b %v after the cut ended", time.Since(start)-3*time.Second)
	_, in = b.Links()
	if in["a"].Sessions <= sessions {
		t.Errorf("the link has had %d sessions, %d before the cut: it was not cut", in["a"].Sessions, sessions)
	}
	snap, err := b.GetUsers(ctx, "sub", "r")
	if err != nil {
		t.Fatal(err)
	}
	if len(snap.Users) != 3 {
		t.Errorf("after the cut the channel has %d users, want host, pub and sub", len(snap.Users))
	}
	// The subscriber's numbering runs on: each packet's sequence number
	// follows the one before.
	pkts := ep.Sink("pub/cam").Packets()
	for i := 1; i < len(pkts); i++ {
		if d := binary.BigEndian.Uint16(pkts[i][2:]) - binary.BigEndian.Uint16(pkts[i-1][2:]); d != 1 {
			t.Fatalf("packet %d of %d: sequence number jumps by %d", i, len(pkts), d)
		}
	}
	t.Logf("%d packets at b's subscriber, numbered without a jump", len(pkts))
}

func startMediaNodeVia(t *testing.T, id, url string, via func(string) string) mediaNode {
	t.Helper()
	return startMediaNodeWith(t, id, url, func(n *Node) { n.linkVia = via })
}

// A far node that dies (its membership expires) costs the origin nothing
// it keeps: the origin detaches it and closes its link.
func TestOriginClosesTheLinkOfADeadNode(t *testing.T) {
	eng := startEngine(t, 1)
	a := startMediaNode(t, "a", eng[0].ClientURL())
	b := startMediaNode(t, "b", eng[0].ClientURL())
	ctx := ctxFor(t, 30*time.Second)
	if _, err := a.Create(ctx, "host", "r", channel.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Join(ctx, "pub", "r", []channel.TrackInfo{{Name: "cam", Kind: channel.Video}}); err != nil {
		t.Fatal(err)
	}
	pub := publish(t, a, "r", "pub", "cam", 0x3000)
	if _, err := b.Join(ctx, "sub", "r", nil); err != nil {
		t.Fatal(err)
	}
	ep := planetest.NewEndpoint(400)
	if err := b.pl.Attach("r", "sub", ep); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, "the camera at b", func() bool {
		pub.send(t, 1)
		s := ep.Sink("pub/cam")
		return s != nil && fromPublisher(s.Packets()) >= 10
	})
	if ms := a.MediaStats(); ms.LinksOut != 1 {
		t.Fatalf("a offers on %d links, want 1", ms.LinksOut)
	}
	b.Kill()
	// The link leaves the open ones, then is closed and counted.
	eventually(t, 15*time.Second, "a to close b's link", func() bool {
		pub.send(t, 1)
		ms := a.MediaStats()
		return ms.LinksOut == 0 && ms.LinksClosed >= 1
	})
	if ms := a.MediaStats(); ms.LinksClosed != 1 {
		t.Errorf("a: %+v, want one link closed", ms)
	}
}

// Links with mutual TLS: the camera crosses, over a link whose control
// channel (which carries the SRTP keys) is TLS 1.3 with both nodes'
// certificates verified; a node without the certificate gets nothing.
func TestMediaCrossesOverMutualTLS(t *testing.T) {
	eng := startEngine(t, 1)
	srv, cli := testcert.Mutual(t)
	withTLS := func(n *Node) { n.cfg.LinkTLS = &LinkTLS{Server: srv, Client: cli} }
	a := startMediaNodeWith(t, "a", eng[0].ClientURL(), withTLS)
	b := startMediaNodeWith(t, "b", eng[0].ClientURL(), withTLS)
	ctx := ctxFor(t, 30*time.Second)
	if _, err := a.Create(ctx, "host", "r", channel.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Join(ctx, "pub", "r", []channel.TrackInfo{{Name: "cam", Kind: channel.Video}}); err != nil {
		t.Fatal(err)
	}
	pub := publish(t, a, "r", "pub", "cam", 0x4000)
	if _, err := b.Join(ctx, "sub", "r", nil); err != nil {
		t.Fatal(err)
	}
	ep := planetest.NewEndpoint(500)
	if err := b.pl.Attach("r", "sub", ep); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, "the camera at b over TLS", func() bool {
		pub.send(t, 1)
		s := ep.Sink("pub/cam")
		return s != nil && fromPublisher(s.Packets()) >= 30
	})
	if _, in := b.Links(); in["a"].Sessions == 0 || in["a"].SessionErrors != 0 {
		t.Errorf("b's link from a: %+v", in["a"])
	}
	// A node without the certificate gets no session and no media.
	c := startMediaNode(t, "c", eng[0].ClientURL())
	if _, err := c.Join(ctx, "eve", "r", nil); err != nil {
		t.Fatal(err)
	}
	eve := planetest.NewEndpoint(600)
	if err := c.pl.Attach("r", "eve", eve); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, "c to try a's link", func() bool {
		pub.send(t, 1)
		_, in := c.Links()
		return in["a"].Dials+in["a"].DialErrors >= 2
	})
	_, in := c.Links()
	if s := eve.Sink("pub/cam"); in["a"].Sessions != 0 || (s != nil && fromPublisher(s.Packets()) != 0) {
		t.Errorf("a plain node got a session (%+v) or media", in["a"])
	}
}
