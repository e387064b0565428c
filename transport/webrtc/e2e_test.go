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
// are one packet each with a valid RFC 7741 descriptor and frame tag; key
// frames come every 20 packets and on PLI unless paused. They do not
// decode (no VP8 start code), so the core's black frames keep their
// default 640×360 and are told apart from the publisher's.
type pubClient struct {
	*client
	video, audio *pion.TrackLocalStaticRTP
	stop         chan struct{}
	keyPaused    atomic.Bool
	wantKey      atomic.Bool
	plis         atomic.Int64

	mu   sync.Mutex // guards sent
	sent map[string]bool
}

func newPubClient(t *testing.T, api *pion.API) *pubClient {
	t.Helper()
	p := &pubClient{client: newClient(t, api), stop: make(chan struct{}), sent: map[string]bool{}}
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
	for i := 0; ; i++ {
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
		payload := append([]byte{0x10, tag, byte(i >> 8), byte(i)}, bytes.Repeat([]byte{fill}, 40)...)
		p.record(payload)
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
		if c[0]&0x10 != 0 { // S: a frame starts (one-byte descriptors only here)
			frame = frame[:0]
		}
		frame = append(frame, c[1:]...)
		if pkt.Marker && isBlackKey(frame) {
			s.blackKeys.Add(1)
		}
	}
}

func (s *subClient) counts() (video, audio int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.video), len(s.audio)
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

func TestPublishSubscribeLoopback(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	engine := newTestEngine(t, Config{})
	defer engine.Close()
	api := clientAPI(t)

	published := make(chan *forward.Track, 4)
	infos := map[*forward.Track]PublishInfo{}
	var infoMu sync.Mutex
	server, err := NewPeer(PeerConfig{
		Engine: engine,
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
	pub := newPubClient(t, api)
	publish(t, server, pub.client)
	pub.goRun(pub.send)

	var video, audio *forward.Track
	for video == nil || audio == nil {
		select {
		case tr := <-published:
			if tr.Config().Kind == forward.Video {
				video = tr
			} else {
				audio = tr
			}
		case <-time.After(deadline):
			t.Fatal("the publisher's tracks did not arrive")
		}
	}
	if m := video.Config().MimeType; m != pion.MimeTypeVP8 {
		t.Fatalf("video mime %q", m)
	}

	const n = 3
	var statusMu sync.Mutex
	var statuses []Status
	needed := make(chan struct{}, 64)
	peers := make([]*Peer, n)
	videoSubs := make([]*Subscription, n)
	subs := make([]*subClient, n)
	for i := range n {
		cfg := PeerConfig{Engine: engine, OnNegotiationNeeded: func() {
			select {
			case needed <- struct{}{}:
			default:
			}
		}}
		if i == 0 {
			cfg.OnStatus = func(s Status) {
				statusMu.Lock()
				statuses = append(statuses, s)
				statusMu.Unlock()
			}
		}
		if peers[i], err = NewPeer(cfg); err != nil {
			t.Fatal(err)
		}
		subs[i] = newSubClient(t, api)
		infoMu.Lock()
		info := infos[video]
		infoMu.Unlock()
		if videoSubs[i], err = peers[i].Subscribe(video, info); err != nil {
			t.Fatal(err)
		}
		negotiate(t, peers[i], subs[i].client)
	}
	for i, s := range subs {
		waitFor(t, "video at every subscriber", func() bool { v, _ := s.counts(); return v >= 30 })
		if peers[i].Status() != StatusConnected {
			t.Errorf("subscriber %d status %q", i, peers[i].Status())
		}
	}

	// Mid-call: the server adds audio and renegotiates on its own.
	for len(needed) > 0 {
		<-needed
	}
	audioSubs := make([]*Subscription, n)
	for i := range n {
		if audioSubs[i], err = peers[i].Subscribe(audio, PublishInfo{}); err != nil {
			t.Fatal(err)
		}
		select {
		case <-needed:
		default:
			t.Fatal("no negotiation needed after a mid-call subscription")
		}
		negotiate(t, peers[i], subs[i].client)
	}
	for _, s := range subs {
		waitFor(t, "audio at every subscriber", func() bool { _, a := s.counts(); return a >= 20 })
		s.mu.Lock()
		for _, p := range append(append([][]byte(nil), s.video...), s.audio...) {
			if !pub.wasSent(p) {
				t.Errorf("a subscriber got a payload never sent: %x", p)
				break
			}
		}
		s.mu.Unlock()
	}

	// Mid-call removal: the server renegotiates the track away.
	if err := audioSubs[0].Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-needed:
	default:
		t.Fatal("no negotiation needed after closing a subscription")
	}
	negotiate(t, peers[0], subs[0].client)
	if got := audio.Subscribers(); got != n-1 {
		t.Fatalf("audio has %d subscribers after one closed, want %d", got, n-1)
	}

	// A NACK is answered from the core's cache (pion's responder is not
	// on the path), on the RTX stream the client negotiated, which pion
	// unwraps: the client sees the sequence number a second time.
	s1 := subs[1]
	s1.mu.Lock()
	lost := s1.lastSeq - 2
	s1.mu.Unlock()
	if cfg := videoSubs[1].Subscriber().Config(); cfg.RTX == nil {
		t.Error("the client negotiated RTX, the subscriber has none")
	}
	nack := &rtcp.TransportLayerNack{MediaSSRC: s1.videoSSRC.Load(), Nacks: []rtcp.NackPair{{PacketID: lost}}}
	if err := s1.pc.WriteRTCP([]rtcp.Packet{nack}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the retransmission", func() bool {
		s1.mu.Lock()
		defer s1.mu.Unlock()
		return s1.seqs[lost] >= 2
	})
	if st := videoSubs[1].Subscriber().Stats(); st.Retransmits < 1 {
		t.Errorf("subscriber stats: %d retransmits", st.Retransmits)
	}

	// PLIs of three subscribers reach the publisher merged into one.
	pub.keyPaused.Store(true)
	p0 := video.Stats().PacketsIn
	waitFor(t, "packets sent after the pause", func() bool { return video.Stats().PacketsIn >= p0+3 })
	st0, plis0 := video.Stats(), pub.plis.Load()
	for _, s := range subs {
		if err := s.pc.WriteRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: s.videoSSRC.Load()}}); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "the core to take three PLIs", func() bool { return video.Stats().KeyFrameRequestsIn >= st0.KeyFrameRequestsIn+n })
	waitFor(t, "a PLI at the publisher", func() bool { return pub.plis.Load() > plis0 })
	if out := video.Stats().KeyFrameRequestsOut - st0.KeyFrameRequestsOut; out != 1 {
		t.Errorf("%d key-frame requests went upstream for %d PLIs, want 1", out, n)
	}
	if got := pub.plis.Load() - plis0; got != 1 {
		t.Errorf("the publisher got %d PLIs, want 1", got)
	}
	pub.keyPaused.Store(false)

	// Self mute: every subscriber gets black VP8 key frames.
	pulse, err := forward.NewPulse(0)
	if err != nil {
		t.Fatal(err)
	}
	pulse.Add(video)
	video.SetMute(forward.MuteSelf, true)
	for _, s := range subs {
		waitFor(t, "a black key frame", func() bool { return s.blackKeys.Load() >= 1 })
	}
	video.SetMute(forward.MuteSelf, false)
	pulse.Remove(video)
	if err := pulse.Close(); err != nil {
		t.Fatal(err)
	}

	close(pub.stop)
	for i := range n {
		if err := peers[i].Close(); err != nil {
			t.Error(err)
		}
		subs[i].close(t)
	}
	if err := server.Close(); err != nil {
		t.Error(err)
	}
	pub.close(t)
	statusMu.Lock()
	got := append([]Status(nil), statuses...)
	statusMu.Unlock()
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
