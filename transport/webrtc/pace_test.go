package webrtc

import (
	"encoding/binary"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtcp"
	pion "github.com/pion/webrtc/v4"
	"go.uber.org/goleak"

	"github.com/callcore/callcore/forward"
)

// burstResult is what a pion subscriber received of a bursty VP8 stream.
type burstResult struct {
	spans     []time.Duration // per frame once paced: last arrival - first
	lost      int             // packets of the frames it received that never arrived
	reordered int             // packets that arrived before one of a lower number
	stats     PaceStats
	rate      float64 // bit/s the peer was paced at during the frames measured
}

const (
	burstFrames   = 40
	burstPackets  = 10   // a frame's packets, sent back to back
	burstSize     = 1000 // payload bytes
	burstInterval = 100 * time.Millisecond
	burstREMB     = 1.2e6 // bit/s: above the stream's 0.8 Mbit/s, so the allocation keeps it
)

// runBursts sends a pion subscriber (default interceptors: transport-wide
// feedback) a VP8 stream of 10-packet frames every 100 ms, each frame's
// packets handed to the core back to back, on the direct path (an engine
// on one UDP socket) or pion's (direct false: each peer its own ports);
// the subscriber sends a REMB of 1.2 Mbit/s. It returns the frames'
// arrival spans once the peer has its estimate, and the loss and order
// seen.
func runBursts(t *testing.T, noPacing, direct bool) burstResult {
	cfg := Config{LoopbackOnly: true, NoPacing: noPacing}
	if direct {
		conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		cfg.PacketConn = conn
	}
	engine, err := New(cfg)
	if err != nil {
		if cfg.PacketConn != nil {
			cfg.PacketConn.Close()
		}
		t.Fatal(err)
	}
	defer engine.Close()
	track, err := forward.NewTrack(forward.TrackConfig{Kind: forward.Video, MimeType: pion.MimeTypeVP8,
		ClockRate: 90000, PayloadType: 96, SSRC: 0x5678})
	if err != nil {
		t.Fatal(err)
	}
	defer track.Close()
	server, err := NewPeer(PeerConfig{Engine: engine})
	if err != nil {
		t.Fatal(err)
	}
	defer server.Close()
	c := newClient(t, clientAPI(t))
	defer c.close(t)

	type arrival struct {
		frame, idx int
		seq        uint16
		at         time.Time
	}
	var (
		mu   sync.Mutex
		got  []arrival
		ssrc uint32
	)
	c.pc.OnTrack(func(remote *pion.TrackRemote, _ *pion.RTPReceiver) {
		mu.Lock()
		ssrc = uint32(remote.SSRC())
		mu.Unlock()
		c.goRun(func() {
			for {
				pkt, _, err := remote.ReadRTP()
				if err != nil {
					return
				}
				if p := pkt.Payload; len(p) == burstSize {
					mu.Lock()
					got = append(got, arrival{frame: int(binary.BigEndian.Uint16(p[2:])), idx: int(p[4]),
						seq: pkt.SequenceNumber, at: time.Now()})
					mu.Unlock()
				}
			}
		})
	})
	sub, err := server.Subscribe(track, PublishInfo{})
	if err != nil {
		t.Fatal(err)
	}
	negotiate(t, server, c)
	waitFor(t, "the subscriber bound", func() bool { return sub.Subscriber() != nil && (!direct || sub.out.fast.Load() != nil) })
	if !direct {
		waitFor(t, "DTLS up", func() bool { return server.Status() == StatusConnected })
	}

	buf := make([]byte, 12+burstSize)
	seq := 0
	send := func(frame int) {
		for i := range burstPackets {
			p := buf[:12+burstSize]
			p[0], p[1] = 0x80, 96
			if i == burstPackets-1 {
				p[1] |= 0x80 // marker: the frame's last packet
			}
			binary.BigEndian.PutUint16(p[2:], uint16(seq))
			binary.BigEndian.PutUint32(p[4:], uint32(frame)*9000)
			binary.BigEndian.PutUint32(p[8:], 0x5678)
			pl := p[12:]
			pl[0], pl[1] = 0x00, 0x01 // VP8: a continuation, inter frame
			if i == 0 {
				pl[0], pl[1] = 0x10, 0x00 // start of partition 0, key frame
			}
			binary.BigEndian.PutUint16(pl[2:], uint16(frame))
			pl[4] = byte(i)
			_ = track.HandleRTP(p)
			seq++
		}
	}
	frame := 0
	waitFor(t, "the first frame", func() bool {
		send(frame)
		frame++
		mu.Lock()
		defer mu.Unlock()
		return len(got) > 0 && ssrc != 0
	})
	remb := func() {
		mu.Lock()
		s := ssrc
		mu.Unlock()
		if err := c.pc.WriteRTCP([]rtcp.Packet{&rtcp.ReceiverEstimatedMaximumBitrate{Bitrate: burstREMB, SSRCs: []uint32{s}}}); err != nil {
			t.Fatal(err)
		}
	}
	remb()
	waitFor(t, "the estimate", func() bool { return server.Estimator().HasFeedback() })
	first := frame + 5 // measured from here: the estimate has settled on the REMB
	tick := time.NewTicker(burstInterval)
	defer tick.Stop()
	var rates []float64
	for frame < first+burstFrames {
		<-tick.C
		if frame%5 == 0 {
			remb()
		}
		if frame >= first {
			rates = append(rates, server.PaceStats().Rate)
		}
		send(frame)
		frame++
	}
	last := frame - 1
	waitFor(t, "the last frame", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got) > 0 && got[len(got)-1].frame == last && got[len(got)-1].idx == burstPackets-1
	})
	if p := engine.pacer; p != nil {
		waitFor(t, "the scheduler idle", func() bool { st := p.Stats(); return !st.Armed && st.Queues == 0 })
	}
	if !direct && sub.out.fast.Load() != nil {
		t.Fatal("the subscription went on the direct path")
	}
	res := burstResult{stats: server.PaceStats()}
	slices.Sort(rates)
	res.rate = rates[len(rates)/2]
	mu.Lock()
	defer mu.Unlock()
	byFrame := map[int][]time.Time{}
	for i, a := range got {
		if i > 0 && a.seq-got[i-1].seq > 0x8000 {
			res.reordered++
		}
		byFrame[a.frame] = append(byFrame[a.frame], a.at)
	}
	firstGot := got[0].frame
	for f := firstGot + 1; f <= last; f++ { // the first frame received may have started mid-frame
		res.lost += burstPackets - len(byFrame[f])
		if f >= first && len(byFrame[f]) == burstPackets {
			ts := byFrame[f]
			res.spans = append(res.spans, ts[len(ts)-1].Sub(ts[0]))
		}
	}
	return res
}

// TestPacingSmoothsAFramesBurst: a pion subscriber whose estimate is
// 1.2 Mbit/s receives a stream of 10 KB frames whose packets the core
// sends back to back. Paced, each frame arrives spread over about the
// time its bytes take at 2.5 times the estimate (3 Mbit/s: some 20 ms
// beyond the bucket's 15 ms depth); unpaced, it arrives at once. Either
// way nothing is lost or reordered, and nothing is dropped. On the direct
// path, and paced on pion's.
func TestPacingSmoothsAFramesBurst(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	t.Run("direct", func(t *testing.T) { testPacingSmooths(t, true) })
	t.Run("pion", func(t *testing.T) { testPacingSmooths(t, false) })
}

func testPacingSmooths(t *testing.T, direct bool) {
	paced := runBursts(t, false, direct)
	unpaced := runBursts(t, true, direct)
	med := func(d []time.Duration) time.Duration {
		d = slices.Clone(d)
		slices.Sort(d)
		return d[len(d)/2]
	}
	pm, um := med(paced.spans), med(unpaced.spans)
	frameBits := float64(burstPackets*(12+burstSize+paceOverhead)) * 8
	want := time.Duration((frameBits/paced.rate - float64(paceDepth)/1e9) * 1e9) // the last packet's wait
	t.Logf("direct %v: paced at %.2f Mbit/s: frame span median %v (the bucket gives %v), max delay %v, %d queued, %d dropped; unpaced: median %v",
		direct, paced.rate/1e6, pm, want.Round(time.Millisecond), paced.stats.MaxDelay, paced.stats.Queued, paced.stats.Dropped, um)
	for name, r := range map[string]burstResult{"paced": paced, "unpaced": unpaced} {
		if r.lost != 0 || r.reordered != 0 || len(r.spans) < burstFrames*9/10 {
			t.Errorf("%s: %d lost, %d reordered, %d of %d frames measured", name, r.lost, r.reordered, len(r.spans), burstFrames)
		}
	}
	if paced.rate < 2.5*burstREMB*0.5 || paced.rate > 2.5*burstREMB*1.01 {
		t.Fatalf("paced at %.0f bit/s, want 2.5 times an estimate of at most %.0f", paced.rate, burstREMB)
	}
	if pm < want*6/10 || pm < 3*um {
		t.Errorf("paced frames span %v (want about %v, and over 3 times the unpaced %v)", pm, want, um)
	}
	if paced.stats.Queued == 0 || paced.stats.Dropped != 0 || paced.stats.MaxDelay > paceMaxDelay {
		t.Errorf("paced stats %+v", paced.stats)
	}
	if unpaced.stats.Queued != 0 || unpaced.stats.Rate != 0 {
		t.Errorf("unpaced stats %+v", unpaced.stats)
	}
}
