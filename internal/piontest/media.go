package piontest

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"
	pion "github.com/pion/webrtc/v4"

	"github.com/callcore/callcore/internal/layertest"
	"github.com/callcore/callcore/mute"
)

// RecordConfig says what a Recorder keeps.
type RecordConfig struct {
	// Keep keeps a copy of every packet (Packets).
	Keep bool
	// OnPacket, when set, is called with every packet, whole, from the
	// track's read goroutine.
	OnPacket func(tr *pion.TrackRemote, pkt []byte)
}

// Recorder reads every remote track of a client and counts, and with
// Keep keeps, what arrives.
type Recorder struct {
	// Tracks gets each remote track as it arrives (up to 16 unread).
	Tracks chan *pion.TrackRemote

	cfg      RecordConfig
	received atomic.Int64
	ssrc     atomic.Uint32 // the newest remote track's

	mu   sync.Mutex // guards pkts
	pkts [][]byte
}

// Record makes c read every remote track into a Recorder. Call it before
// the client negotiates.
func Record(c *Client, cfg RecordConfig) *Recorder {
	r := &Recorder{Tracks: make(chan *pion.TrackRemote, 16), cfg: cfg}
	c.PC.OnTrack(func(tr *pion.TrackRemote, _ *pion.RTPReceiver) {
		r.ssrc.Store(uint32(tr.SSRC()))
		select {
		case r.Tracks <- tr:
		default:
		}
		c.Go(func() {
			buf := make([]byte, 1500)
			for {
				n, _, err := tr.Read(buf)
				if err != nil {
					return
				}
				if r.cfg.OnPacket != nil {
					r.cfg.OnPacket(tr, buf[:n])
				}
				if r.cfg.Keep {
					r.mu.Lock()
					r.pkts = append(r.pkts, append([]byte(nil), buf[:n]...))
					r.mu.Unlock()
				}
				r.received.Add(1)
			}
		})
	})
	return r
}

// Received returns the number of RTP packets read so far, of every track.
func (r *Recorder) Received() int64 { return r.received.Load() }

// SSRC returns the SSRC of the newest remote track, 0 before any.
func (r *Recorder) SSRC() uint32 { return r.ssrc.Load() }

// Packets returns copies of the packets kept so far, in arrival order.
func (r *Recorder) Packets() [][]byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([][]byte(nil), r.pkts...)
}

// Layers returns the kept packets read back as synthetic layers
// (layertest.Ordered: in sequence order, once each).
func (r *Recorder) Layers() ([]layertest.Out, error) {
	return layertest.Ordered(r.Packets())
}

// SendVP8 adds a send-only VP8 track (track ID id, stream ID stream) to c
// and sends a 320x240 black key frame 30 times a second until stop is
// closed.
func SendVP8(c *Client, id, stream string, stop <-chan struct{}) *pion.TrackLocalStaticRTP {
	c.T.Helper()
	tr, err := pion.NewTrackLocalStaticRTP(pion.RTPCodecCapability{MimeType: pion.MimeTypeVP8, ClockRate: 90000}, id, stream)
	if err != nil {
		c.T.Fatal(err)
	}
	if _, err := c.PC.AddTransceiverFromTrack(tr, pion.RTPTransceiverInit{Direction: pion.RTPTransceiverDirectionSendonly}); err != nil {
		c.T.Fatal(err)
	}
	frame, err := mute.BlackKeyFrame(mute.MimeTypeVP8, 320, 240)
	if err != nil {
		c.T.Fatal(err)
	}
	payload := append([]byte{0x10}, frame...) // VP8 payload descriptor: start of partition 0
	c.Go(func() {
		tick := time.NewTicker(33 * time.Millisecond)
		defer tick.Stop()
		for i := uint32(0); ; i++ {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			pkt := &rtp.Packet{Header: rtp.Header{Version: 2, Marker: true, SequenceNumber: uint16(i), Timestamp: i * 3000}, Payload: payload}
			if err := tr.WriteRTP(pkt); err != nil {
				return
			}
		}
	})
	return tr
}

// Rids are the rids of the three layers, smallest first.
var Rids = [3]string{"q", "h", "f"}

// LayerPublisher sends three synthetic VP8 layers (layertest: 160x90,
// 320x180, 640x360) with rids q, h and f as pion's simulcast sender does:
// one sender, three encodings, mid and rid in every packet. A PLI for a
// rid makes that layer's next frame a key frame.
type LayerPublisher struct {
	C       *Client
	Streams [3]*layertest.Stream
	Locals  [3]*pion.TrackLocalStaticRTP
	Sender  *pion.RTPSender

	// Set before Run, to shape the layers' rates:
	Pad   [3]byte       // RTP padding added to each packet of a layer
	Fill  [3]int        // the payload size a layer's packets are filled up to, when larger
	Every time.Duration // the time between frames; 0 is 20 ms (a camera's pace)

	// Off stops a layer (as an encoder told nobody receives it does);
	// it can be set at any time.
	Off [3]atomic.Bool

	frames atomic.Int64    // frames sent, of every layer
	sent   [3]atomic.Int64 // frames sent, by layer
}

// NewLayerPublisher adds the three layers to c, whose API must have the
// Simulcast option, as track ID id in stream stream.
func NewLayerPublisher(c *Client, id, stream string) *LayerPublisher {
	c.T.Helper()
	p := &LayerPublisher{C: c}
	for i := range Rids {
		s, err := layertest.NewStream(i, uint16(1000*i), uint32(i)<<28, uint16(500*i), 1000)
		if err != nil {
			c.T.Fatal(err)
		}
		l, err := pion.NewTrackLocalStaticRTP(pion.RTPCodecCapability{MimeType: pion.MimeTypeVP8, ClockRate: 90000},
			id, stream, pion.WithRTPStreamID(Rids[i]))
		if err != nil {
			c.T.Fatal(err)
		}
		p.Streams[i], p.Locals[i] = s, l
	}
	var err error
	if p.Sender, err = c.PC.AddTrack(p.Locals[0]); err != nil {
		c.T.Fatal(err)
	}
	for _, l := range p.Locals[1:] {
		if err := p.Sender.AddEncoding(l); err != nil {
			c.T.Fatal(err)
		}
	}
	return p
}

// Frames returns the number of frames sent so far, of every layer.
func (p *LayerPublisher) Frames() int64 { return p.frames.Load() }

// Sent returns the number of frames of layer i sent so far.
func (p *LayerPublisher) Sent(i int) int64 { return p.sent[i].Load() }

// Run sends a frame of every layer every Every until stop is closed, for
// at most 60 s, and reads each layer's RTCP. Call it once the client's
// offer has been answered.
func (p *LayerPublisher) Run(stop <-chan struct{}) {
	var midID, ridID uint8
	for _, e := range p.Sender.GetParameters().HeaderExtensions {
		switch e.URI {
		case sdp.SDESMidURI:
			midID = uint8(e.ID)
		case sdp.SDESRTPStreamIDURI:
			ridID = uint8(e.ID)
		}
	}
	mid := []byte(p.C.PC.GetTransceivers()[0].Mid())
	for i := range Rids {
		p.C.Go(func() {
			for {
				pkts, _, err := p.Sender.ReadSimulcastRTCP(Rids[i])
				if err != nil {
					return
				}
				for _, k := range pkts {
					if _, ok := k.(*rtcp.PictureLossIndication); ok {
						p.Streams[i].AskKey()
					}
				}
			}
		})
	}
	every := p.Every
	if every == 0 {
		every = 20 * time.Millisecond
	}
	p.C.Go(func() {
		tick := time.NewTicker(every)
		defer tick.Stop()
		for range int(60 * time.Second / every) {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			for i, s := range p.Streams {
				if p.Off[i].Load() {
					continue
				}
				p.sent[i].Add(1)
				pkts, _ := s.Frame()
				for _, b := range pkts {
					var pkt rtp.Packet
					if err := pkt.Unmarshal(b); err != nil {
						p.C.T.Error(err)
						return
					}
					pkt.Header.Extensions, pkt.Header.Extension = nil, false
					if pkt.Header.SetExtension(midID, mid) != nil || pkt.Header.SetExtension(ridID, []byte(Rids[i])) != nil {
						p.C.T.Error("setting mid and rid")
						return
					}
					if n := p.Fill[i] - len(pkt.Payload); n > 0 {
						pkt.Payload = append(pkt.Payload, make([]byte, n)...) // after the frame: the decoder reads no further
					}
					if p.Pad[i] > 0 {
						pkt.Header.Padding, pkt.Header.PaddingSize = true, p.Pad[i]
					}
					_ = p.Locals[i].WriteRTP(&pkt)
				}
			}
			p.frames.Add(1)
		}
	})
}
