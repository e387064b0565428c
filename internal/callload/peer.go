package callload

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtcp"
	pion "github.com/pion/webrtc/v4"
)

// participant is one user of the run: a signalling connection and a pion
// PeerConnection speaking the protocol as the browser SDK does. A
// publisher sends video (and audio); every participant counts what it
// receives.
type participant struct {
	user, channel string
	url           string // the server it joins through
	publisher     bool
	creates       bool // the first participant of its channel: creates it
	expectsMedia  bool // a publisher other than itself is in its channel

	// Set by join, read after it returns.
	sig      *signal
	pc       *pion.PeerConnection
	video    *pion.TrackLocalStaticRTP
	audio    *pion.TrackLocalStaticRTP
	start    time.Time     // join began
	joined   time.Duration // start → the create or join result
	life     sync.WaitGroup
	closing  sync.Once
	lifeDone func()          // releases the WaitGroup's token of the PeerConnection's life
	log      io.Writer       // safe for concurrent use
	ctx      context.Context // the participant's life: cancelled by close
	cancel   context.CancelFunc

	connected  chan struct{} // closed when the PeerConnection is first connected
	connOnce   sync.Once
	connAt     atomic.Int64 // ns after start: connected
	firstMedia atomic.Int64 // ns after start: the first RTP packet received

	// Counters, written by the reading and sending goroutines.
	received atomic.Uint64 // RTP packets read on every received track
	gaps     atomic.Uint64 // sequence numbers skipped (per track, forward jumps)
	late     atomic.Uint64 // packets older than their track's newest, not seen before (reordered or repaired)
	dups     atomic.Uint64 // packets received before (repeated retransmissions)
	sent     atomic.Uint64 // RTP packets written (video and audio)
	keyReqs  atomic.Uint64 // PLIs and FIRs received for the video
	keyReq   atomic.Bool   // a key frame is wanted
}

// trackInfo is the protocol's TrackInfo.
type trackInfo struct {
	Name    string `json:"name"`
	Kind    string `json:"kind"`
	TrackID string `json:"trackId"`
}

// join connects, authenticates, creates or joins the channel, and
// negotiates media: a publisher offers its tracks, everyone answers the
// server's offers (from then on, until the participant is closed).
func (p *participant) join(ctx context.Context, r *runner) error {
	p.start = time.Now()
	p.log = r.log
	p.connected = make(chan struct{})
	p.ctx, p.cancel = context.WithCancel(context.Background())
	tok, err := r.tokens.get(ctx, p.user)
	if err != nil {
		return err
	}
	if p.sig, err = dial(ctx, p.url); err != nil {
		return err
	}
	var auth struct {
		ICEServers []pion.ICEServer `json:"iceServers"`
	}
	if err := p.sig.call(ctx, "auth", map[string]string{"token": tok}, &auth); err != nil {
		return err
	}
	var tracks []trackInfo
	if p.publisher {
		tracks = append(tracks, trackInfo{Name: "cam", Kind: "video", TrackID: p.user + "-cam"})
		if r.cfg.Audio {
			tracks = append(tracks, trackInfo{Name: "mic", Kind: "audio", TrackID: p.user + "-mic"})
		}
	}
	op := "join"
	if p.creates {
		op = "create"
	}
	if err := p.sig.call(ctx, op, map[string]any{"channelId": p.channel, "tracks": tracks}, nil); err != nil {
		return err
	}
	p.joined = time.Since(p.start)

	if p.pc, err = r.api.NewPeerConnection(pion.Configuration{ICEServers: auth.ICEServers}); err != nil {
		return err
	}
	p.life.Add(1)
	p.lifeDone = sync.OnceFunc(p.life.Done)
	p.pc.OnConnectionStateChange(func(s pion.PeerConnectionState) {
		if s == pion.PeerConnectionStateConnected {
			p.connOnce.Do(func() {
				p.connAt.Store(int64(time.Since(p.start)))
				close(p.connected)
			})
		}
	})
	p.pc.OnTrack(func(tr *pion.TrackRemote, _ *pion.RTPReceiver) {
		p.life.Add(1)
		go p.count(tr)
	})
	if p.publisher {
		if err := p.addTracks(r.cfg.Audio); err != nil {
			return err
		}
	}
	// The negotiator outlives the join: it answers the server's offers
	// until the participant closes.
	negotiated := make(chan error, 1)
	p.life.Add(1)
	go p.negotiate(p.ctx, negotiated)
	select {
	case err := <-negotiated:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// addTracks adds the publisher's send-only tracks and starts reading
// their RTCP (PLI and FIR ask for a key frame).
func (p *participant) addTracks(audio bool) error {
	var err error
	if p.video, err = pion.NewTrackLocalStaticRTP(pion.RTPCodecCapability{MimeType: pion.MimeTypeVP8, ClockRate: 90000}, p.user+"-cam", p.user); err != nil {
		return err
	}
	tracks := []*pion.TrackLocalStaticRTP{p.video}
	if audio {
		if p.audio, err = pion.NewTrackLocalStaticRTP(pion.RTPCodecCapability{MimeType: pion.MimeTypeOpus, ClockRate: 48000, Channels: 2}, p.user+"-mic", p.user); err != nil {
			return err
		}
		tracks = append(tracks, p.audio)
	}
	for i, t := range tracks {
		tx, err := p.pc.AddTransceiverFromTrack(t, pion.RTPTransceiverInit{Direction: pion.RTPTransceiverDirectionSendonly})
		if err != nil {
			return err
		}
		p.life.Add(1)
		go p.readRTCP(tx.Sender(), i == 0)
	}
	return nil
}

// readRTCP reads a sender's RTCP (pion's interceptors need it read) and
// notes the video's key-frame requests.
func (p *participant) readRTCP(s *pion.RTPSender, video bool) {
	defer p.life.Done()
	buf := make([]byte, 1500)
	for {
		n, _, err := s.Read(buf)
		if err != nil {
			return
		}
		if !video {
			continue
		}
		pkts, err := rtcp.Unmarshal(buf[:n])
		if err != nil {
			continue
		}
		for _, pkt := range pkts {
			switch pkt.(type) {
			case *rtcp.PictureLossIndication, *rtcp.FullIntraRequest:
				p.keyReqs.Add(1)
				p.keyReq.Store(true)
			}
		}
	}
}

// count reads a received track, counting packets, sequence gaps, late
// packets and duplicates.
func (p *participant) count(tr *pion.TrackRemote) {
	defer p.life.Done()
	buf := make([]byte, 1500)
	var w seqWindow
	for {
		n, _, err := tr.Read(buf)
		if err != nil {
			return
		}
		if n < 12 {
			continue
		}
		if p.received.Add(1) == 1 {
			p.firstMedia.Store(int64(time.Since(p.start)))
		}
		switch kind, gap := w.add(binary.BigEndian.Uint16(buf[2:4])); kind {
		case seqNew:
			p.gaps.Add(uint64(gap))
		case seqLate, seqOld:
			p.late.Add(1)
		case seqDup:
			p.dups.Add(1)
		}
	}
}

// negotiate makes the publisher's offer (rolling back and answering the
// server's offer first on Glare), reports the first negotiation's result,
// then answers the server's offers until the participant closes.
func (p *participant) negotiate(ctx context.Context, first chan<- error) {
	defer p.life.Done()
	if p.publisher {
		err := p.offer(ctx)
		first <- err
		if err != nil {
			return
		}
		first = nil
	} else if !p.expectsMedia {
		first <- nil // nobody will send: joined without media
		first = nil
	}
	for {
		select {
		case sdp := <-p.sig.offers:
			err := p.answer(ctx, sdp)
			if first != nil {
				first <- err
				first = nil
			} else if err != nil && ctx.Err() == nil {
				fmt.Fprintf(p.log, "callload: %s: answering the server's offer: %v\n", p.user, err)
			}
			if err != nil {
				return
			}
		case <-p.sig.quit:
			return
		case <-ctx.Done():
			return
		}
	}
}

// offer sends the client's offer and applies the server's answer.
func (p *participant) offer(ctx context.Context) error {
	for range 5 {
		o, err := p.pc.CreateOffer(nil)
		if err != nil {
			return err
		}
		sdp, err := p.local(ctx, o)
		if err != nil {
			return err
		}
		var a struct {
			SDP string `json:"sdp"`
		}
		err = p.sig.call(ctx, "offer", map[string]string{"sdp": sdp}, &a)
		var ce *codeError
		if errors.As(err, &ce) && ce.code == "Glare" {
			// The server is the impolite peer: roll back, answer its
			// offer (on its way), then offer again.
			if err := p.pc.SetLocalDescription(pion.SessionDescription{Type: pion.SDPTypeRollback}); err != nil {
				return err
			}
			select {
			case sdp := <-p.sig.offers:
				if err := p.answer(ctx, sdp); err != nil {
					return err
				}
			case <-ctx.Done():
				return ctx.Err()
			}
			continue
		}
		if err != nil {
			return err
		}
		return p.pc.SetRemoteDescription(pion.SessionDescription{Type: pion.SDPTypeAnswer, SDP: a.SDP})
	}
	return errors.New("offer: glare five times in a row")
}

// answer applies the server's offer and sends the answer.
func (p *participant) answer(ctx context.Context, offer string) error {
	if err := p.pc.SetRemoteDescription(pion.SessionDescription{Type: pion.SDPTypeOffer, SDP: offer}); err != nil {
		return err
	}
	a, err := p.pc.CreateAnswer(nil)
	if err != nil {
		return err
	}
	sdp, err := p.local(ctx, a)
	if err != nil {
		return err
	}
	return p.sig.call(ctx, "answer", map[string]string{"sdp": sdp}, nil)
}

// local sets a local description and returns it with every candidate
// (no trickle).
func (p *participant) local(ctx context.Context, d pion.SessionDescription) (string, error) {
	done := pion.GatheringCompletePromise(p.pc)
	if err := p.pc.SetLocalDescription(d); err != nil {
		return "", err
	}
	select {
	case <-done:
	case <-ctx.Done():
		return "", ctx.Err()
	}
	return p.pc.LocalDescription().SDP, nil
}

// close deletes the channel (its creator, best effort), closes the
// signalling connection and the PeerConnection, and waits for every
// goroutine of the participant.
func (p *participant) close() {
	p.closing.Do(func() {
		if p.sig != nil {
			if p.creates {
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				_ = p.sig.call(ctx, "delete", map[string]string{"reason": "load run over"}, nil)
				cancel()
			}
			p.sig.close()
		}
		if p.cancel != nil {
			p.cancel()
		}
		if p.pc != nil {
			_ = p.pc.GracefulClose()
			p.lifeDone()
		}
		p.life.Wait()
	})
}

// randomSuffix names a run.
func randomSuffix() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%x", b)
}
