package linkplane_test

import (
	"slices"
	"testing"

	"go.uber.org/goleak"

	"github.com/callcore/callcore/channel"
	"github.com/callcore/callcore/forward"
	"github.com/callcore/callcore/internal/layertest"
	"github.com/callcore/callcore/internal/planetest"
	"github.com/callcore/callcore/plane"
	"github.com/callcore/callcore/plane/linkplane"
	"github.com/callcore/callcore/transport/link"
)

// layersAt reads the member's packets in sequence order and returns the
// number of packets of each layer.
func layersAt(t *testing.T, pkts [][]byte) (n [3]int, out []layertest.Out) {
	t.Helper()
	out, err := layertest.Ordered(pkts)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range out {
		n[o.Layer]++
	}
	return n, out
}

// TestLinkCarriesALayeredTrack: pub's camera, published on node A as
// three layers, crosses the link as one stream: the far member receives
// the full layer, then the half one once A's preference for node B limits
// it to 180 lines; every splice is continuous and starts on a key frame
// that decodes at its layer's size.
func TestLinkCarriesALayeredTrack(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	a, b := newNode(t), newNode(t)
	defer a.close()
	defer b.close()
	cam := channel.TrackInfo{Name: "cam", Kind: channel.Video}
	remotes := make(chan *link.RemoteTrack, 1)
	la, err := link.New(link.Config{Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer la.Close()
	lb, err := link.New(link.Config{Dial: la.Addr().String(), OnTrack: func(rt *link.RemoteTrack) { remotes <- rt }})
	if err != nil {
		t.Fatal(err)
	}
	defer lb.Close()

	a.join(t, "pub", cam)
	a.join(t, "nodeB")
	if err := a.pl.Attach("c", "nodeB", linkplane.Endpoint{Link: la}); err != nil {
		t.Fatal(err)
	}
	var streams [3]*layertest.Stream
	var tracks [3]*forward.Track
	for i := range streams {
		s, err := layertest.NewStream(i, uint16(2000*i), uint32(i)<<30, uint16(3000*i), 30)
		if err != nil {
			t.Fatal(err)
		}
		tr, err := a.pl.NewTrack(forward.TrackConfig{Kind: forward.Video, ClockRate: 90000, PayloadType: layertest.PT,
			MimeType: "video/VP8", SSRC: s.SSRC, Feedback: s})
		if err != nil {
			t.Fatal(err)
		}
		streams[i], tracks[i] = s, tr
		if err := a.pl.PublishedLayer("c", "pub", "cam", forward.Layer(i), tr); err != nil {
			t.Fatal(err)
		}
	}
	tick := func() {
		for i := range streams {
			pkts, _ := streams[i].Frame()
			for _, p := range pkts {
				if err := tracks[i].HandleRTP(p); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	var rt *link.RemoteTrack
	waitFor(t, "the offer to reach node B", func() bool {
		tick()
		select {
		case rt = <-remotes:
			return true
		default:
			return false
		}
	})
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
	waitFor(t, "the full layer at B's member", func() bool { tick(); n, _ := layersAt(t, sink.Packets()); return n[2] >= 20 })
	if err := a.pl.SetPreference("c", "nodeB", "pub", "cam", plane.Preference{MaxHeight: 180}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the half layer at B's member", func() bool { tick(); n, _ := layersAt(t, sink.Packets()); return n[1] >= 20 })
	_, out := layersAt(t, sink.Packets())
	splices, err := layertest.Continuity(out)
	if err != nil {
		t.Fatal(err)
	}
	var layers []int
	for _, at := range append([]int{0}, splices...) {
		layers = append(layers, out[at].Layer)
		w, h, err := layertest.Decode(out, at)
		if err != nil {
			t.Fatal(err)
		}
		if want := layertest.Sizes[out[at].Layer]; w != want[0] || h != want[1] {
			t.Fatalf("layer %d's first frame is %dx%d", out[at].Layer, w, h)
		}
	}
	if last := layers[len(layers)-1]; last != 1 || !slices.Contains(layers, 2) {
		t.Fatalf("layers %v: want the full layer, then the half one last", layers)
	}
}
