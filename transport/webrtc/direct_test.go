package webrtc

import (
	"bytes"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/rtcp"
	pion "github.com/pion/webrtc/v4"
	"go.uber.org/goleak"

	"github.com/callcore/callcore/forward"
)

// TestDirectPath: in single-port mode a subscription's writer encrypts
// SRTP itself into the engine's batch (the direct path), with the peer as
// DTLS server (the server offered first) and as DTLS client (the client
// offered first). The client decrypts every packet with the keys pion
// negotiated, byte for byte, and gets sender reports (callcore's, not
// pion's) counting exactly the packets sent, with an RTP time that
// matches the stream's clock.
func TestDirectPath(t *testing.T) {
	for _, clientOffers := range []bool{false, true} {
		name := "server offers"
		if clientOffers {
			name = "client offers"
		}
		t.Run(name, func(t *testing.T) { testDirectPath(t, clientOffers) })
	}
}

func testDirectPath(t *testing.T, clientOffers bool) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	engine, _ := newMuxEngine(t)
	defer engine.Close()
	track, err := forward.NewTrack(forward.TrackConfig{Kind: forward.Audio, MimeType: pion.MimeTypeOpus,
		ClockRate: 48000, PayloadType: 111, SSRC: 0x1234})
	if err != nil {
		t.Fatal(err)
	}
	defer track.Close()
	server, err := NewPeer(PeerConfig{Engine: engine})
	if err != nil {
		t.Fatal(err)
	}
	c := newClient(t, clientAPI(t))
	var (
		mu       sync.Mutex
		got      = map[int][]byte{} // the test's packets by index (payload 0xAA, index)
		lastSR   *rtcp.SenderReport
		srAt     time.Time // when lastSR arrived
		lastTS   uint32    // the last packet's timestamp, as the client saw it
		lastAt   time.Time // when it arrived
		received atomic.Int64
		marked   atomic.Int64 // distinct test packets received
	)
	c.pc.OnTrack(func(remote *pion.TrackRemote, recv *pion.RTPReceiver) {
		c.goRun(func() {
			for {
				pkts, _, err := recv.ReadRTCP()
				if err != nil {
					return
				}
				for _, p := range pkts {
					if sr, ok := p.(*rtcp.SenderReport); ok && sr.SSRC == uint32(remote.SSRC()) {
						mu.Lock()
						lastSR, srAt = sr, time.Now()
						mu.Unlock()
					}
				}
			}
		})
		c.goRun(func() {
			for {
				pkt, _, err := remote.ReadRTP()
				if err != nil {
					return
				}
				mu.Lock()
				if p := pkt.Payload; len(p) > 3 && p[0] == 0xAA {
					if _, dup := got[int(p[1])<<8|int(p[2])]; !dup {
						got[int(p[1])<<8|int(p[2])] = p
						marked.Add(1)
					}
				}
				lastTS, lastAt = pkt.Timestamp, time.Now()
				mu.Unlock()
				received.Add(1)
			}
		})
	})
	if clientOffers {
		if _, err := c.pc.AddTransceiverFromKind(pion.RTPCodecTypeAudio,
			pion.RTPTransceiverInit{Direction: pion.RTPTransceiverDirectionRecvonly}); err != nil {
			t.Fatal(err)
		}
		publish(t, server, c)
		waitFor(t, "connected", func() bool { return server.Status() == StatusConnected })
	}
	sub, err := server.Subscribe(track, PublishInfo{})
	if err != nil {
		t.Fatal(err)
	}
	negotiate(t, server, c)
	waitFor(t, "the direct path", func() bool { return sub.out.fast.Load() != nil && sub.Subscriber() != nil })

	buf := make([]byte, 1500)
	seq := 0
	// The subscriber starts on the first packet it is handed.
	waitFor(t, "the first packet", func() bool {
		_ = track.HandleRTP(benchPacket(buf, seq))
		seq++
		return received.Load() > 0
	})
	sentBefore := sub.out.packets.Load()
	const n = 200
	payload := func(i int) []byte {
		p := make([]byte, 1200-12)
		for j := range p {
			p[j] = byte(i + j)
		}
		p[0], p[1], p[2] = 0xAA, byte(i>>8), byte(i)
		return p
	}
	for i := range n {
		pkt := benchPacket(buf, seq)
		copy(pkt[12:], payload(i))
		_ = track.HandleRTP(pkt)
		seq++
		if i%20 == 19 { // paced: a burst must not overflow the client's socket buffer
			waitFor(t, "the packets sent so far", func() bool { return marked.Load() >= int64(i)+1 })
		}
	}
	mu.Lock()
	for i := range n {
		if !bytes.Equal(got[i], payload(i)) {
			t.Fatalf("packet %d: payload differs", i)
		}
	}
	mu.Unlock()
	if sent := sub.out.packets.Load() - sentBefore; sent != n {
		t.Fatalf("the writer counted %d packets, want %d", sent, n)
	}
	total := sub.out.packets.Load()
	var sr *rtcp.SenderReport
	waitFor(t, "a sender report counting every packet", func() bool {
		mu.Lock()
		defer mu.Unlock()
		sr = lastSR
		return sr != nil && sr.PacketCount == total
	})
	if sr.OctetCount != total*(1200-12) {
		t.Errorf("octet count %d, want %d", sr.OctetCount, total*(1200-12))
	}
	// The SR's RTP time is the last timestamp advanced at 48 kHz by the
	// time since that packet was sent (the packets were sent faster than
	// real time, so the SR must extrapolate from the last one).
	mu.Lock()
	ticks := float64(int32(sr.RTPTime-lastTS)) / 48000
	gap := srAt.Sub(lastAt).Seconds()
	mu.Unlock()
	if ticks < gap-0.1 || ticks > gap+0.1 {
		t.Errorf("SR RTP time %.3f s past the last packet, which was %.3f s before the SR", ticks, gap)
	}
	if err := server.Close(); err != nil {
		t.Error(err)
	}
	c.close(t)
}
