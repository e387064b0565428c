package webrtc

import (
	"crypto/rand"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtp"
	pion "github.com/pion/webrtc/v4"

	"github.com/callcore/callcore/forward"
	"github.com/callcore/callcore/internal/layertest"
)

// What the constrained-link tests measure at a pion subscriber, per
// stream: loss from the sequence numbers received (each number once,
// retransmissions included), the layer, the longest time between two
// arrivals (a freeze), whether video that resumed after a pause started on
// a key frame, and for audio the queueing delay: arrival time minus RTP
// timestamp, relative to the least seen.

// recvStream is one stream a subscriber reads; mu guards it.
type recvStream struct {
	mu       sync.Mutex
	clock    float64
	started  bool
	last     uint16
	ext      int64 // extended highest number, from 0
	seen     map[int64]bool
	distinct int64
	layer    int
	layerAt  time.Time
	lastAt   time.Time
	maxGap   time.Duration // since the last reset
	resumed  []bool        // video after a gap of 1 s: whether it started on a key frame
	minDelay float64       // s, ever
	delays   []float64     // s, arrival minus timestamp, since the last reset
	frames   int64         // video: frames started
}

type recvSnap struct {
	at       time.Time
	ext      int64
	distinct int64
}

func (r *recvStream) add(p *rtp.Packet, video bool, now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.seen == nil {
		r.seen = map[int64]bool{}
	}
	var e int64
	if !r.started {
		r.started, r.last = true, p.SequenceNumber
	} else {
		d := int64(int16(p.SequenceNumber - r.last))
		e = r.ext + d
		if d > 0 {
			r.last = p.SequenceNumber
		}
	}
	if e > r.ext {
		r.ext = e
	}
	if !r.seen[e] {
		r.seen[e] = true
		r.distinct++
	}
	if !r.lastAt.IsZero() {
		gap := now.Sub(r.lastAt)
		r.maxGap = max(r.maxGap, gap)
		if video && gap >= time.Second {
			r.resumed = append(r.resumed, len(p.Payload) > 6 && p.Payload[0]&0x10 != 0 && p.Payload[6]&1 == 0)
		}
	}
	r.lastAt = now
	if video {
		if l := layertest.LayerOf(p.Payload); l != r.layer {
			r.layer, r.layerAt = l, now
		}
		if len(p.Payload) > 0 && p.Payload[0]&0x10 != 0 {
			r.frames++
		}
	} else {
		// Audio: the publisher's timestamps follow its clock (the layer
		// publisher's video ones do not), so the delay's growth is the
		// queueing on the way.
		d := float64(now.UnixNano())/1e9 - float64(p.Timestamp)/r.clock
		if len(r.delays) == 0 && r.minDelay == 0 || d < r.minDelay {
			r.minDelay = d
		}
		r.delays = append(r.delays, d)
	}
}

func (r *recvStream) snap() recvSnap {
	r.mu.Lock()
	defer r.mu.Unlock()
	return recvSnap{time.Now(), r.ext, r.distinct}
}

// lossSince is the fraction of the numbers sent since a that were not
// received.
func (r *recvStream) lossSince(a recvSnap) float64 {
	b := r.snap()
	if b.ext <= a.ext {
		return 0
	}
	return max(0, 1-float64(b.distinct-a.distinct)/float64(b.ext-a.ext))
}

// reset starts the longest gap and the delays again, and returns the
// longest gap and the mean and largest queueing delay since the last
// reset.
func (r *recvStream) reset() (gap time.Duration, mean, most time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	gap = r.maxGap
	if !r.lastAt.IsZero() {
		gap = max(gap, time.Since(r.lastAt))
	}
	var sum float64
	for _, d := range r.delays {
		q := d - r.minDelay
		sum += q
		most = max(most, time.Duration(q*1e9))
	}
	if len(r.delays) > 0 {
		mean = time.Duration(sum / float64(len(r.delays)) * 1e9)
	}
	r.maxGap, r.delays = 0, r.delays[:0]
	return gap, mean, most
}

// changedSince is how long after start the layer last changed, -1 when
// it did not since.
func (r *recvStream) changedSince(start time.Time) time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.layerAt.Before(start) {
		return -1
	}
	return r.layerAt.Sub(start)
}

func (r *recvStream) state() (layer int, lastAt time.Time, resumed []bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.layer, r.lastAt, append([]bool(nil), r.resumed...)
}

// recvClient is a pion subscriber recording its audio and video.
type recvClient struct {
	*client
	audio, video recvStream
}

func newRecvClient(t *testing.T, api *pion.API) *recvClient {
	r := &recvClient{client: newClient(t, api)}
	r.audio.clock, r.video.clock = 48000, 90000
	r.video.layer = -1
	r.pc.OnTrack(func(remote *pion.TrackRemote, _ *pion.RTPReceiver) {
		s, video := &r.audio, remote.Kind() == pion.RTPCodecTypeVideo
		if video {
			s = &r.video
		}
		r.goRun(func() {
			for {
				pkt, _, err := remote.ReadRTP()
				if err != nil {
					return
				}
				s.add(pkt, video, time.Now())
			}
		})
	})
	return r
}

// audioPublisher is a pion client publishing an Opus track: 50 packets a
// second of 80 bytes (about 40 kbit/s of RTP), until stop.
func publishAudio(t *testing.T, engine *Engine, stop <-chan struct{}) (*forward.Track, *Peer, *client) {
	t.Helper()
	got := make(chan *forward.Track, 1)
	server, err := NewPeer(PeerConfig{Engine: engine, OnPublish: func(tr *forward.Track, _ PublishInfo) { got <- tr }})
	if err != nil {
		t.Fatal(err)
	}
	c := newClient(t, clientAPI(t))
	track, err := pion.NewTrackLocalStaticRTP(pion.RTPCodecCapability{MimeType: pion.MimeTypeOpus, ClockRate: 48000, Channels: 2}, "mic", "alice")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.pc.AddTrack(track); err != nil {
		t.Fatal(err)
	}
	publish(t, server, c)
	c.goRun(func() {
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		payload := make([]byte, 80)
		_, _ = rand.Read(payload)
		payload[0] = 0xfc // TOC: CELT fullband 20 ms, one frame
		pkt := &rtp.Packet{Header: rtp.Header{Version: 2, Marker: true}, Payload: payload}
		for i := 0; i < 50*120; i++ { // bounded: two minutes at most
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			pkt.SequenceNumber++
			pkt.Timestamp += 960
			_ = track.WriteRTP(pkt)
		}
	})
	select {
	case tr := <-got:
		return tr, server, c
	case <-time.After(deadline):
		t.Fatal("the audio track was not published")
	}
	return nil, nil, nil
}

// capRow is a line of a constrained-link test's table.
type capRow struct {
	name                string
	layer               string
	converge            time.Duration // -1 never
	toLayer             time.Duration // when the layer last changed in the phase; -1 it did not
	loss, lossConv      float64       // at the bottleneck
	audioLoss           float64       // audio after convergence, at the receiver; -1 no audio
	freeze              time.Duration // longest time without video
	probeBytes          uint64
	delayMean, delayMax time.Duration // queueing delay at the receiver
}

func capTable(rows []capRow) string {
	var b strings.Builder
	b.WriteString("| phase | layer | converged after | last layer change after | loss | loss after convergence | audio loss after convergence | longest video freeze | probe bytes | queueing delay (audio, at the receiver) mean / max |\n|---|---|---|---|---|---|---|---|---|---|\n")
	for _, r := range rows {
		conv := "-"
		if r.converge >= 0 {
			conv = r.converge.Round(10 * time.Millisecond).String()
		}
		to := "-"
		if r.toLayer >= 0 {
			to = r.toLayer.Round(10 * time.Millisecond).String()
		}
		audio, delay := "-", "-" // the queueing delay is measured on audio
		if r.audioLoss >= 0 {
			audio = fmt.Sprintf("%.2f %%", 100*r.audioLoss)
			delay = fmt.Sprintf("%v / %v", r.delayMean.Round(time.Millisecond), r.delayMax.Round(time.Millisecond))
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %.2f %% | %.2f %% | %s | %v | %d | %s |\n", r.name, r.layer, conv, to, 100*r.loss, 100*r.lossConv,
			audio, r.freeze.Round(10*time.Millisecond), r.probeBytes, delay)
	}
	return b.String()
}
