package webrtc

import (
	"testing"
	"time"

	"github.com/pion/rtcp"
	pion "github.com/pion/webrtc/v4"
	"go.uber.org/goleak"

	"github.com/callcore/callcore/forward"
	"github.com/callcore/callcore/internal/layertest"
	"github.com/callcore/callcore/internal/piontest"
)

// simulcastClientAPI is clientAPI with the mid and rid header extensions a
// pion client needs to send layers.
func simulcastClientAPI(t *testing.T) *pion.API { return piontest.API(t, piontest.Simulcast) }

// layerPublisher is the three-layer pion publisher (piontest) as user
// alice's track cam, with the stop these tests close.
type layerPublisher struct {
	*piontest.LayerPublisher
	client *client
	stop   chan struct{}
}

var rids = piontest.Rids

func newLayerPublisher(t *testing.T) *layerPublisher {
	c := newClient(t, simulcastClientAPI(t))
	return &layerPublisher{LayerPublisher: piontest.NewLayerPublisher(c.Client, "cam", "alice"), client: c, stop: make(chan struct{})}
}

func (p *layerPublisher) run(*testing.T) { p.Run(p.stop) }

func (p *layerPublisher) close(testing.TB) { p.client.Close() }

// layerReceiver records the video packets a pion subscriber reads.
type layerReceiver struct {
	*client
	rec *piontest.Recorder
}

func newLayerReceiver(t *testing.T) *layerReceiver {
	c := newClient(t, clientAPI(t))
	return &layerReceiver{client: c, rec: piontest.Record(c.Client, piontest.RecordConfig{Keep: true})}
}

// received returns the packets so far, in sequence order, once each.
func (r *layerReceiver) received(t *testing.T) []layertest.Out {
	out, err := r.rec.Layers()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func (r *layerReceiver) lastLayer(t *testing.T) int {
	out := r.received(t)
	if len(out) == 0 {
		return -1
	}
	return out[len(out)-1].Layer
}

// publishLayers runs a pion layer publisher, set up by set when given,
// and has a server peer of engine take its layers as one forward.Layers.
func publishLayers(t *testing.T, engine *Engine, set func(*layerPublisher)) (*forward.Layers, *layerPublisher, *Peer) {
	t.Helper()
	type pub struct {
		tr   *forward.Track
		info PublishInfo
	}
	published := make(chan pub, 8)
	server, err := NewPeer(PeerConfig{Engine: engine, OnPublish: func(tr *forward.Track, info PublishInfo) {
		published <- pub{tr, info}
	}})
	if err != nil {
		t.Fatal(err)
	}
	p := newLayerPublisher(t)
	if set != nil {
		set(p)
	}
	publish(t, server, p.client)
	p.run(t)
	var cfg forward.LayersConfig
	for got := 0; got < 3; got++ {
		select {
		case x := <-published:
			found := false
			for i, rid := range rids {
				if x.info.RID == rid {
					cfg.Tracks[i], found = x.tr, true
				}
			}
			if !found {
				t.Fatalf("published a track with rid %q", x.info.RID)
			}
		case <-time.After(deadline):
			t.Fatal("the three layers were not published")
		}
	}
	layers, err := forward.NewLayers(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return layers, p, server
}

// TestLayersFromPionPublisherToPionSubscriber: a pion client publishes
// three rid layers through the WebRTC transport; they become one
// forward.Layers; a pion subscriber gets one layer at a time, and changes
// of its highest layer switch it (q → f → h) with every packet there,
// numbering, picture IDs and TL0PICIDX continuous and the first frame of
// each layer decoding at that layer's size.
func TestLayersFromPionPublisherToPionSubscriber(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	engine := newTestEngine(t, Config{})
	defer engine.Close()
	layers, p, server := publishLayers(t, engine, nil)
	defer server.Close()
	defer layers.Close()

	subPeer, err := NewPeer(PeerConfig{Engine: engine})
	if err != nil {
		t.Fatal(err)
	}
	defer subPeer.Close()
	r := newLayerReceiver(t)
	sub, err := subPeer.SubscribeLayers(layers, forward.LayerQ, PublishInfo{TrackID: "cam", StreamID: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	negotiate(t, subPeer, r.client)
	// The first packets went out before the subscriber's transport was up
	// and were lost: once one arrived, it asks for a key frame, as a
	// browser that cannot decode does.
	waitFor(t, "the first packet", func() bool { return r.rec.SSRC() != 0 })
	if err := r.pc.WriteRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: r.rec.SSRC()}}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a key frame of q and more", func() bool {
		out := r.received(t)
		for i, o := range out {
			if o.Key {
				return o.Layer == 0 && len(out)-i > 30
			}
		}
		return false
	})
	for _, to := range []forward.Layer{forward.LayerF, forward.LayerH} {
		asked := time.Now()
		if err := sub.SetMaxLayer(to); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "layer "+to.String(), func() bool { return r.lastLayer(t) == int(to) })
		t.Logf("switch to %v seen by the subscriber %v after it was asked", to, time.Since(asked).Round(time.Millisecond))
		n := len(r.received(t))
		waitFor(t, "more of "+to.String(), func() bool { return len(r.received(t)) > n+30 })
	}
	close(p.stop)
	out := r.received(t)
	// From the first key frame received (the one asked for above, or
	// the first if it came whole).
	for len(out) > 0 && !out[0].Key {
		out = out[1:]
	}
	for i := 1; i < len(out); i++ {
		if out[i].Seq != out[i-1].Seq+1 {
			t.Fatalf("packet %d missing: %d after %d", i, out[i].Seq, out[i-1].Seq)
		}
	}
	sw, err := layertest.Continuity(out)
	if err != nil {
		t.Fatal(err)
	}
	var trace []byte
	for _, o := range out {
		c := byte('0' + o.Layer)
		if o.Key {
			c = 'K'
		}
		trace = append(trace, c)
	}
	t.Logf("trace %s", trace)
	if len(sw) != 2 || out[sw[0]].Layer != 2 || out[sw[1]].Layer != 1 {
		t.Fatalf("splices at %v, want one to f then one to h", sw)
	}
	for _, at := range append([]int{0}, sw...) {
		w, h, err := layertest.Decode(out, at)
		if err != nil {
			t.Fatalf("the first frame of layer %d: %v", out[at].Layer, err)
		}
		if want := layertest.Sizes[out[at].Layer]; w != want[0] || h != want[1] {
			t.Fatalf("the first frame of layer %d is %dx%d", out[at].Layer, w, h)
		}
	}
	t.Logf("%d packets, switches at %v, %d switches made", len(out), sw, layers.Switches())
	if err := sub.Close(); err != nil {
		t.Fatal(err)
	}
	r.close(t)
	p.close(t)
}
