package webrtc

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"
	pion "github.com/pion/webrtc/v4"
	"go.uber.org/goleak"

	"github.com/callcore/callcore/forward"
	"github.com/callcore/callcore/internal/layertest"
	"github.com/callcore/callcore/internal/pionloop"
)

// simulcastClientAPI is clientAPI with the mid and rid header extensions a
// pion client needs to send layers.
func simulcastClientAPI(t *testing.T) *pion.API {
	t.Helper()
	me := &pion.MediaEngine{}
	if err := me.RegisterDefaultCodecs(); err != nil {
		t.Fatal(err)
	}
	if err := pion.ConfigureSimulcastExtensionHeaders(me); err != nil {
		t.Fatal(err)
	}
	ir := &interceptor.Registry{}
	if err := pion.RegisterDefaultInterceptors(me, ir); err != nil {
		t.Fatal(err)
	}
	se := pion.SettingEngine{}
	pionloop.Restrict(&se)
	return pion.NewAPI(pion.WithMediaEngine(me), pion.WithInterceptorRegistry(ir), pion.WithSettingEngine(se))
}

// layerPublisher is a pion client sending three synthetic VP8 layers with
// rids q, h and f, as pion's simulcast sender does: one sender, three
// encodings, mid and rid in every packet; a PLI for a rid makes that
// layer's next frame a key frame.
type layerPublisher struct {
	*client
	streams [3]*layertest.Stream
	locals  [3]*pion.TrackLocalStaticRTP
	sender  *pion.RTPSender
	stop    chan struct{}
	pad     [3]byte // RTP padding added to each packet of a layer, to set its rate
	fill    [3]int  // the payload size a layer's packets are filled up to, when larger
	every   time.Duration
}

var rids = [3]string{"q", "h", "f"}

func newLayerPublisher(t *testing.T) *layerPublisher {
	p := &layerPublisher{client: newClient(t, simulcastClientAPI(t)), stop: make(chan struct{})}
	for i := range rids {
		s, err := layertest.NewStream(i, uint16(1000*i), uint32(i)<<28, uint16(500*i), 1000)
		if err != nil {
			t.Fatal(err)
		}
		l, err := pion.NewTrackLocalStaticRTP(pion.RTPCodecCapability{MimeType: pion.MimeTypeVP8, ClockRate: 90000},
			"cam", "alice", pion.WithRTPStreamID(rids[i]))
		if err != nil {
			t.Fatal(err)
		}
		p.streams[i], p.locals[i] = s, l
	}
	var err error
	if p.sender, err = p.pc.AddTrack(p.locals[0]); err != nil {
		t.Fatal(err)
	}
	for _, l := range p.locals[1:] {
		if err := p.sender.AddEncoding(l); err != nil {
			t.Fatal(err)
		}
	}
	return p
}

// run sends a frame of every layer every 20 ms (a camera's pace; every
// when set) until stopped, for at most 60 s, and reads each layer's RTCP.
func (p *layerPublisher) run(t *testing.T) {
	var midID, ridID uint8
	for _, e := range p.sender.GetParameters().HeaderExtensions {
		switch e.URI {
		case sdp.SDESMidURI:
			midID = uint8(e.ID)
		case sdp.SDESRTPStreamIDURI:
			ridID = uint8(e.ID)
		}
	}
	for i := range rids {
		p.goRun(func() {
			for {
				pkts, _, err := p.sender.ReadSimulcastRTCP(rids[i])
				if err != nil {
					return
				}
				for _, k := range pkts {
					if _, ok := k.(*rtcp.PictureLossIndication); ok {
						p.streams[i].AskKey()
					}
				}
			}
		})
	}
	p.goRun(func() {
		every := p.every
		if every == 0 {
			every = 20 * time.Millisecond
		}
		tick := time.NewTicker(every)
		defer tick.Stop()
		for range int(60 * time.Second / every) {
			select {
			case <-p.stop:
				return
			case <-tick.C:
			}
			for i, s := range p.streams {
				pkts, _ := s.Frame()
				for _, b := range pkts {
					var pkt rtp.Packet
					if err := pkt.Unmarshal(b); err != nil {
						t.Error(err)
						return
					}
					pkt.Header.Extensions, pkt.Header.Extension = nil, false
					if err := pkt.Header.SetExtension(midID, []byte(p.pc.GetTransceivers()[0].Mid())); err != nil {
						t.Error(err)
						return
					}
					if err := pkt.Header.SetExtension(ridID, []byte(rids[i])); err != nil {
						t.Error(err)
						return
					}
					if n := p.fill[i] - len(pkt.Payload); n > 0 {
						pkt.Payload = append(pkt.Payload, make([]byte, n)...) // after the frame: the decoder reads no further
					}
					if p.pad[i] > 0 {
						pkt.Header.Padding, pkt.Header.PaddingSize = true, p.pad[i]
					}
					_ = p.locals[i].WriteRTP(&pkt)
				}
			}
		}
	})
}

// layerReceiver records the video packets a pion subscriber reads.
type layerReceiver struct {
	*client
	mu   sync.Mutex // guards pkts
	pkts [][]byte
	ssrc atomic.Uint32 // the track's, once it arrived
}

func newLayerReceiver(t *testing.T) *layerReceiver {
	r := &layerReceiver{client: newClient(t, clientAPI(t))}
	r.pc.OnTrack(func(remote *pion.TrackRemote, _ *pion.RTPReceiver) {
		r.ssrc.Store(uint32(remote.SSRC()))
		r.goRun(func() {
			buf := make([]byte, 1500)
			for {
				n, _, err := remote.Read(buf)
				if err != nil {
					return
				}
				r.mu.Lock()
				r.pkts = append(r.pkts, append([]byte(nil), buf[:n]...))
				r.mu.Unlock()
			}
		})
	})
	return r
}

// received returns the packets so far, in sequence order, once each.
func (r *layerReceiver) received(t *testing.T) []layertest.Out {
	r.mu.Lock()
	pkts := append([][]byte(nil), r.pkts...)
	r.mu.Unlock()
	out, err := layertest.Ordered(pkts)
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
	waitFor(t, "the first packet", func() bool { return r.ssrc.Load() != 0 })
	if err := r.pc.WriteRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: r.ssrc.Load()}}); err != nil {
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
