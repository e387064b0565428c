package rtpplane_test

import (
	"context"
	"slices"
	"testing"

	"go.uber.org/goleak"

	"github.com/callcore/callcore/channel"
	"github.com/callcore/callcore/forward"
	"github.com/callcore/callcore/internal/layertest"
	"github.com/callcore/callcore/internal/planetest"
	"github.com/callcore/callcore/plane"
	"github.com/callcore/callcore/plane/rtpplane"
	"github.com/callcore/callcore/transport/rtp"
)

// TestRTPReceiverFollowsLayers: an RTP receiver attached with Endpoint
// gets a track published as three layers as one stream: the full layer,
// then the quarter one once its preference limits it to 90 lines; every
// splice is continuous and starts on a key frame that decodes at its
// layer's size.
func TestRTPReceiverFollowsLayers(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	pl, err := plane.New(plane.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer pl.Close()
	reg, err := channel.NewRegistry(channel.Config{Media: pl})
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	call, _, err := reg.Create("host", "c", channel.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for id, tracks := range map[string][]channel.TrackInfo{"pub": {{Name: "cam", Kind: channel.Video}}, "rec": nil} {
		if _, err := call.Join(context.Background(), id, tracks); err != nil {
			t.Fatal(err)
		}
	}
	recv := newUDPReceiver(t)
	defer recv.close()
	rec := &rtpplane.Endpoint{Route: func(string, channel.TrackInfo, forward.TrackConfig) (rtpplane.Output, error) {
		return rtpplane.Output{Egress: rtp.EgressConfig{Remote: recv.addr(), Addr: "127.0.0.1:0"}, SSRC: 0xABCD}, nil
	}}
	if err := pl.Attach("c", "rec", rec); err != nil {
		t.Fatal(err)
	}
	streams, tracks := planetest.LayerStreams(t, 30, pl.NewTrack)
	for i, tr := range tracks {
		if err := pl.PublishedLayer("c", "pub", "cam", forward.Layer(i), tr); err != nil {
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
	count := func() (n [3]int, out []layertest.Out) {
		out, err := layertest.Ordered(recv.packets())
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range out {
			n[o.Layer]++
		}
		return n, out
	}
	waitFor(t, "the full layer at the receiver", func() bool { tick(); n, _ := count(); return n[2] >= 20 })
	if err := pl.SetPreference("c", "rec", "pub", "cam", plane.Preference{MaxHeight: 90}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the quarter layer at the receiver", func() bool { tick(); n, _ := count(); return n[0] >= 20 })
	_, out := count()
	layers, err := layertest.Segments(out)
	if err != nil {
		t.Fatal(err)
	}
	if layers[len(layers)-1] != 0 || !slices.Contains(layers, 2) {
		t.Fatalf("layers %v: want the full layer, then the quarter one last", layers)
	}
	for _, p := range recv.packets() {
		if ssrc := uint32(p[8])<<24 | uint32(p[9])<<16 | uint32(p[10])<<8 | uint32(p[11]); ssrc != 0xABCD || p[1]&0x7f != layertest.PT {
			t.Fatalf("SSRC %#x payload type %d, want 0xabcd and the publisher's %d", ssrc, p[1]&0x7f, layertest.PT)
		}
	}
}
