package webrtc

import (
	"bytes"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	pion "github.com/pion/webrtc/v4"
	"go.uber.org/goleak"
	"golang.org/x/image/vp8"

	"github.com/callcore/callcore/forward"
)

// pubClient publishes VP8 and Opus with plain pion tracks. Its VP8 frames
// are one packet each with an RFC 7741 descriptor (picture IDs, as
// browsers send) and a frame tag; key
// frames come every 20 packets and on PLI unless paused. They do not
// decode (no VP8 start code), so the core's black frames keep their
// default 640×360 and are told apart from the publisher's.
type pubClient struct {
	*client
	video, audio *pion.TrackLocalStaticRTP
	stop         chan struct{} // closed by halt
	halt         func()        // stops send; also at the test's end, so a failed test does not wait for it
	keyPaused    atomic.Bool
	wantKey      atomic.Bool
	plis         atomic.Int64
	lastIdx      atomic.Int64 // the index of the last packet sent (its payload carries it)

	mu   sync.Mutex // guards sent
	sent map[string]bool
}

func newPubClient(t *testing.T, api *pion.API) *pubClient {
	t.Helper()
	p := &pubClient{client: newClient(t, api), stop: make(chan struct{}), sent: map[string]bool{}}
	p.halt = sync.OnceFunc(func() { close(p.stop) })
	t.Cleanup(p.halt) // before the client's cleanup, which waits for send
	var err error
	p.video, err = pion.NewTrackLocalStaticRTP(pion.RTPCodecCapability{MimeType: pion.MimeTypeVP8, ClockRate: 90000}, "cam", "alice")
	if err != nil {
		t.Fatal(err)
	}
	p.audio, err = pion.NewTrackLocalStaticRTP(pion.RTPCodecCapability{MimeType: pion.MimeTypeOpus, ClockRate: 48000, Channels: 2}, "mic", "alice")
	if err != nil {
		t.Fatal(err)
	}
	vs, err := p.pc.AddTrack(p.video)
	if err != nil {
		t.Fatal(err)
	}
	as, err := p.pc.AddTrack(p.audio)
	if err != nil {
		t.Fatal(err)
	}
	p.goRun(func() {
		for {
			pkts, _, err := vs.ReadRTCP()
			if err != nil {
				return
			}
			for _, k := range pkts {
				if _, ok := k.(*rtcp.PictureLossIndication); ok {
					p.plis.Add(1)
					p.wantKey.Store(true)
				}
			}
		}
	})
	p.goRun(func() {
		for {
			if _, _, err := as.ReadRTCP(); err != nil {
				return
			}
		}
	})
	return p
}

func (p *pubClient) send() {
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for i := range 12000 { // at most 60 s
		select {
		case <-p.stop:
			return
		case <-tick.C:
		}
		key := !p.keyPaused.Load() && (i%20 == 0 || p.wantKey.Swap(false))
		tag, fill := byte(0x01), byte(0xBB)
		if key {
			tag, fill = 0x00, 0xAA
		}
		// Descriptor as browsers send it: X, S, a 15-bit picture ID (one
		// frame per packet here); the core may shift the ID.
		pid := uint16(i) & 0x7fff
		payload := append([]byte{0x90, 0x80, 0x80 | byte(pid>>8), byte(pid), tag, byte(i >> 8), byte(i)},
			bytes.Repeat([]byte{fill}, 40)...)
		p.record(payload[vp8DescLen(payload):])
		p.lastIdx.Store(int64(i))
		_ = p.video.WriteRTP(&rtp.Packet{Header: rtp.Header{Version: 2, Marker: true,
			SequenceNumber: uint16(i), Timestamp: uint32(i) * 450}, Payload: payload})
		if i%4 == 0 {
			opus := append([]byte{0xFC, byte(i >> 8), byte(i)}, bytes.Repeat([]byte{0x55}, 30)...)
			p.record(opus)
			_ = p.audio.WriteRTP(&rtp.Packet{Header: rtp.Header{Version: 2, Marker: true,
				SequenceNumber: uint16(i / 4), Timestamp: uint32(i/4) * 960}, Payload: opus})
		}
	}
}

func (p *pubClient) record(b []byte) {
	p.mu.Lock()
	p.sent[string(b)] = true
	p.mu.Unlock()
}

func (p *pubClient) wasSent(b []byte) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.sent[string(b)]
}

// subClient receives with plain pion OnTrack readers.
type subClient struct {
	*client
	videoSSRC atomic.Uint32
	blackKeys atomic.Int64 // decodable 640×360 black key frames

	mu           sync.Mutex // guards video, audio, seqs
	video, audio [][]byte
	seqs         map[uint16]int // video sequence numbers: times received
	blackEnd     []int          // len(video) after each black key frame's last packet
	lastSeq      uint16
}

func newSubClient(t *testing.T, api *pion.API) *subClient {
	t.Helper()
	s := &subClient{client: newClient(t, api), seqs: map[uint16]int{}}
	s.pc.OnTrack(func(remote *pion.TrackRemote, _ *pion.RTPReceiver) {
		if remote.Kind() == pion.RTPCodecTypeVideo {
			s.videoSSRC.Store(uint32(remote.SSRC()))
		}
		s.goRun(func() { s.read(remote) })
	})
	return s
}

func (s *subClient) read(remote *pion.TrackRemote) {
	var frame []byte
	for {
		pkt, _, err := remote.ReadRTP()
		if err != nil {
			return
		}
		c := append([]byte(nil), pkt.Payload...)
		s.mu.Lock()
		if remote.Kind() == pion.RTPCodecTypeVideo {
			s.video = append(s.video, c)
			s.seqs[pkt.SequenceNumber]++
			s.lastSeq = pkt.SequenceNumber
		} else {
			s.audio = append(s.audio, c)
		}
		s.mu.Unlock()
		if remote.Kind() != pion.RTPCodecTypeVideo || len(c) < 2 {
			continue
		}
		if c[0]&0x10 != 0 { // S: a frame starts
			frame = frame[:0]
		}
		frame = append(frame, c[vp8DescLen(c):]...)
		if pkt.Marker && isBlackKey(frame) {
			s.mu.Lock()
			s.blackEnd = append(s.blackEnd, len(s.video))
			s.mu.Unlock()
			s.blackKeys.Add(1)
		}
	}
}

func (s *subClient) counts() (video, audio int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.video), len(s.audio)
}

// vp8DescLen returns the length of an RFC 7741 payload descriptor.
func vp8DescLen(p []byte) int {
	if len(p) < 2 || p[0]&0x80 == 0 {
		return 1
	}
	x, i := p[1], 2
	if x&0x80 != 0 { // I: picture ID, 7 or 15 bits
		if len(p) > i && p[i]&0x80 != 0 {
			i++
		}
		i++
	}
	if x&0x40 != 0 { // L: TL0PICIDX
		i++
	}
	if x&0x30 != 0 { // T or K
		i++
	}
	return min(i, len(p))
}

// isBlackKey decodes a VP8 key frame and checks it is 640×360 and black.
func isBlackKey(f []byte) bool {
	if len(f) < 10 || f[0]&1 != 0 {
		return false
	}
	d := vp8.NewDecoder()
	d.Init(bytes.NewReader(f), len(f))
	fh, err := d.DecodeFrameHeader()
	if err != nil || !fh.KeyFrame {
		return false
	}
	img, err := d.DecodeFrame()
	if err != nil || img.Bounds().Dx() != 640 || img.Bounds().Dy() != 360 {
		return false
	}
	for _, y := range img.Y {
		if y > 20 {
			return false
		}
	}
	return true
}

// call is the loopback call of TestPublishSubscribeLoopback: one
// publisher client, its server peer, and n subscriber clients with theirs.
type call struct {
	engine       *Engine
	api          *pion.API
	server       *Peer
	pub          *pubClient
	video, audio *forward.Track
	info         PublishInfo // the video's
	peers        []*Peer
	subs         []*subClient
	videoSubs    []*Subscription
	needed       chan struct{}
	statusMu     sync.Mutex // guards statuses
	statuses     []Status   // peers[0]'s
}

const callSubscribers = 3

// It runs with a port per peer (pion's send path) and in single-port mode
// (the direct path: NACK answers sent at once from the RTCP loop, the
// muter's key frames batched like the publisher's packets).
func TestPublishSubscribeLoopback(t *testing.T) {
	t.Run("ports", func(t *testing.T) { testPublishSubscribeLoopback(t, newTestEngine(t, Config{})) })
	t.Run("mux", func(t *testing.T) {
		e, _ := newMuxEngine(t)
		testPublishSubscribeLoopback(t, e)
	})
}

func testPublishSubscribeLoopback(t *testing.T, engine *Engine) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	c := &call{engine: engine, api: clientAPI(t), needed: make(chan struct{}, 64)}
	defer c.engine.Close()
	c.startPublisher(t)
	c.subscribeVideo(t)
	if engine.sock != nil {
		for _, s := range c.videoSubs {
			waitFor(t, "the direct path", func() bool { return s.out.fast.Load() != nil })
		}
	}
	c.addAudioMidCall(t)
	c.removeAudioMidCall(t)
	c.checkNACK(t)
	c.checkPLIMerged(t)
	c.checkSelfMute(t)
	c.close(t)
}

func (c *call) startPublisher(t *testing.T) {
	published := make(chan *forward.Track, 4)
	var infoMu sync.Mutex
	infos := map[*forward.Track]PublishInfo{}
	var err error
	c.server, err = NewPeer(PeerConfig{
		Engine: c.engine,
		Track:  forward.TrackConfig{KeyFrameInterval: 5 * time.Second},
		OnPublish: func(tr *forward.Track, info PublishInfo) {
			infoMu.Lock()
			infos[tr] = info
			infoMu.Unlock()
			published <- tr
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	c.pub = newPubClient(t, c.api)
	publish(t, c.server, c.pub.client)
	c.pub.goRun(c.pub.send)
	for c.video == nil || c.audio == nil {
		select {
		case tr := <-published:
			if tr.Config().Kind == forward.Video {
				c.video = tr
			} else {
				c.audio = tr
			}
		case <-time.After(deadline):
			t.Fatal("the publisher's tracks did not arrive")
		}
	}
	if m := c.video.Config().MimeType; m != pion.MimeTypeVP8 {
		t.Fatalf("video mime %q", m)
	}
	infoMu.Lock()
	c.info = infos[c.video]
	infoMu.Unlock()
}

// addVideoSubscriber connects one subscriber client to the video, its
// server peer reporting renegotiations on c.needed and, when recordStatus,
// its statuses in c.statuses.
func (c *call) addVideoSubscriber(t *testing.T, recordStatus bool) {
	t.Helper()
	cfg := PeerConfig{Engine: c.engine, OnNegotiationNeeded: func() {
		select {
		case c.needed <- struct{}{}:
		default:
		}
	}}
	if recordStatus {
		cfg.OnStatus = func(s Status) {
			c.statusMu.Lock()
			c.statuses = append(c.statuses, s)
			c.statusMu.Unlock()
		}
	}
	p, err := NewPeer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	s := newSubClient(t, c.api)
	sub, err := p.Subscribe(c.video, c.info)
	if err != nil {
		t.Fatal(err)
	}
	c.peers, c.subs, c.videoSubs = append(c.peers, p), append(c.subs, s), append(c.videoSubs, sub)
	negotiate(t, p, s.client)
}

// subscribeVideo connects the subscribers with the video only.
func (c *call) subscribeVideo(t *testing.T) {
	for i := range callSubscribers {
		c.addVideoSubscriber(t, i == 0)
	}
	for i, s := range c.subs {
		waitFor(t, "video at every subscriber", func() bool { v, _ := s.counts(); return v >= 30 })
		if st := c.peers[i].Status(); st != StatusConnected {
			t.Errorf("subscriber %d status %q", i, st)
		}
	}
}

func (c *call) wantNegotiation(t *testing.T, after string) {
	t.Helper()
	select {
	case <-c.needed:
	default:
		t.Fatalf("no negotiation needed after %s", after)
	}
}

// addAudioMidCall: the server adds audio and renegotiates on its own.
func (c *call) addAudioMidCall(t *testing.T) {
	for len(c.needed) > 0 {
		<-c.needed
	}
	for i, p := range c.peers {
		if _, err := p.Subscribe(c.audio, PublishInfo{}); err != nil {
			t.Fatal(err)
		}
		c.wantNegotiation(t, "a mid-call subscription")
		negotiate(t, p, c.subs[i].client)
	}
	for _, s := range c.subs {
		waitFor(t, "audio at every subscriber", func() bool { _, a := s.counts(); return a >= 20 })
		s.mu.Lock()
		for _, p := range s.video {
			if !c.pub.wasSent(p[vp8DescLen(p):]) {
				t.Errorf("a subscriber got a VP8 frame never sent: %x", p)
				break
			}
		}
		for _, p := range s.audio {
			if !c.pub.wasSent(p) {
				t.Errorf("a subscriber got an Opus payload never sent: %x", p)
				break
			}
		}
		s.mu.Unlock()
	}
}

// removeAudioMidCall: the server renegotiates a closed subscription away.
func (c *call) removeAudioMidCall(t *testing.T) {
	p := c.peers[0]
	var sub *Subscription
	p.mu.Lock()
	for s := range p.subs {
		if s.track == c.audio {
			sub = s
		}
	}
	p.mu.Unlock()
	if err := sub.Close(); err != nil {
		t.Fatal(err)
	}
	c.wantNegotiation(t, "closing a subscription")
	negotiate(t, p, c.subs[0].client)
	if got := c.audio.Subscribers(); got != callSubscribers-1 {
		t.Fatalf("audio has %d subscribers after one closed, want %d", got, callSubscribers-1)
	}
}

// checkNACK: a NACK is answered from the core's cache (pion's responder is
// not on the path), on the RTX stream the client negotiated, which pion
// unwraps: the client sees the sequence number a second time.
func (c *call) checkNACK(t *testing.T) {
	s := c.subs[1]
	s.mu.Lock()
	lost := s.lastSeq - 2
	s.mu.Unlock()
	if cfg := c.videoSubs[1].Subscriber().Config(); cfg.RTX == nil {
		t.Error("the client negotiated RTX, the subscriber has none")
	}
	nack := &rtcp.TransportLayerNack{MediaSSRC: s.videoSSRC.Load(), Nacks: []rtcp.NackPair{{PacketID: lost}}}
	if err := s.pc.WriteRTCP([]rtcp.Packet{nack}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the retransmission", func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.seqs[lost] >= 2
	})
	if st := c.videoSubs[1].Subscriber().Stats(); st.Retransmits < 1 {
		t.Errorf("subscriber stats: %d retransmits", st.Retransmits)
	}
}

// checkPLIMerged: PLIs of every subscriber reach the publisher as one.
// Key frames are paused and the track's KeyFrameInterval is 5 s, so
// nothing answers or repeats the request during the check.
func (c *call) checkPLIMerged(t *testing.T) {
	video, pub := c.video, c.pub
	pub.keyPaused.Store(true)
	p0 := video.Stats().PacketsIn
	waitFor(t, "packets sent after the pause", func() bool { return video.Stats().PacketsIn >= p0+3 })
	st0, plis0 := video.Stats(), pub.plis.Load()
	for _, s := range c.subs {
		if err := s.pc.WriteRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: s.videoSSRC.Load()}}); err != nil {
			t.Fatal(err)
		}
	}
	n := uint64(len(c.subs))
	waitFor(t, "the core to take every PLI", func() bool { return video.Stats().KeyFrameRequestsIn >= st0.KeyFrameRequestsIn+n })
	waitFor(t, "a PLI at the publisher", func() bool { return pub.plis.Load() > plis0 })
	if out := video.Stats().KeyFrameRequestsOut - st0.KeyFrameRequestsOut; out != 1 {
		t.Errorf("%d key-frame requests went upstream for %d PLIs, want 1", out, n)
	}
	if got := pub.plis.Load() - plis0; got != 1 {
		t.Errorf("the publisher got %d PLIs, want 1", got)
	}
	pub.keyPaused.Store(false)
}

// checkSelfMute: every subscriber gets black VP8 key frames.
func (c *call) checkSelfMute(t *testing.T) {
	pulse, err := forward.NewPulse(0)
	if err != nil {
		t.Fatal(err)
	}
	pulse.Add(c.video)
	c.video.SetMute(forward.SourceSelf, true)
	for _, s := range c.subs {
		waitFor(t, "a black key frame", func() bool { return s.blackKeys.Load() >= 1 })
	}
	marks := make([]int, len(c.subs))
	for i, s := range c.subs {
		marks[i], _ = s.counts()
	}
	c.video.SetMute(forward.SourceSelf, false)
	// After unmute the core shifts the publisher's picture IDs to follow
	// the empty frames' and passes each rewritten descriptor at the end of
	// the header part of WriteRTP: the frames must still arrive whole.
	for i, s := range c.subs {
		waitFor(t, "the publisher's frames after unmute", func() bool {
			s.mu.Lock()
			defer s.mu.Unlock()
			n := 0
			for _, p := range s.video[marks[i]:] {
				if c.pub.wasSent(p[vp8DescLen(p):]) {
					n++
				}
			}
			return n >= 20
		})
	}
	pulse.Remove(c.video)
	if err := pulse.Close(); err != nil {
		t.Fatal(err)
	}
}

func (c *call) close(t *testing.T) {
	c.pub.halt()
	for i, p := range c.peers {
		if err := p.Close(); err != nil {
			t.Error(err)
		}
		c.subs[i].close(t)
	}
	if err := c.server.Close(); err != nil {
		t.Error(err)
	}
	c.pub.close(t)
	c.statusMu.Lock()
	got := append([]Status(nil), c.statuses...)
	c.statusMu.Unlock()
	if len(got) < 2 || got[len(got)-1] != StatusDisconnected || !contains(got, StatusConnected) {
		t.Errorf("statuses %v: want connected, then disconnected last", got)
	}
}

func contains(s []Status, v Status) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}
