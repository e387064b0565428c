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
	la, lb, remotes := linkPair(t)
	defer la.Close()
	defer lb.Close()

	a.join(t, "pub", cam)
	a.join(t, "nodeB")
	if err := a.pl.Attach("c", "nodeB", linkplane.Endpoint{Link: la}); err != nil {
		t.Fatal(err)
	}
	streams, tracks := planetest.LayerStreams(t, 30, a.pl.NewTrack)
	for i, tr := range tracks {
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
	layers, err := layertest.Segments(out)
	if err != nil {
		t.Fatal(err)
	}
	if last := layers[len(layers)-1]; last != 1 || !slices.Contains(layers, 2) {
		t.Fatalf("layers %v: want the full layer, then the half one last", layers)
	}
}
