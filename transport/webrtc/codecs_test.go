package webrtc

import (
	"bytes"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtp"
	pion "github.com/pion/webrtc/v4"
	"go.uber.org/goleak"

	"github.com/callcore/callcore/forward"
)

// TestH264AndPCMU forwards H.264 (single NAL units: an IDR every 10
// packets) and PCMU from a pion publisher to a pion subscriber, which
// receives them under the codecs it negotiated.
func TestH264AndPCMU(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	engine := newTestEngine(t, Config{})
	defer engine.Close()
	api := clientAPI(t)
	type pubd struct {
		t    *forward.Track
		info PublishInfo
	}
	published := make(chan pubd, 2)
	server, err := NewPeer(PeerConfig{Engine: engine, OnPublish: func(tr *forward.Track, info PublishInfo) {
		published <- pubd{tr, info}
	}})
	if err != nil {
		t.Fatal(err)
	}
	pub := newClient(t, api)
	h264, err := pion.NewTrackLocalStaticRTP(pion.RTPCodecCapability{MimeType: pion.MimeTypeH264, ClockRate: 90000,
		SDPFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f"}, "cam", "bob")
	if err != nil {
		t.Fatal(err)
	}
	pcmu, err := pion.NewTrackLocalStaticRTP(pion.RTPCodecCapability{MimeType: pion.MimeTypePCMU, ClockRate: 8000}, "mic", "bob")
	if err != nil {
		t.Fatal(err)
	}
	for _, tr := range []pion.TrackLocal{h264, pcmu} {
		if _, err := pub.pc.AddTrack(tr); err != nil {
			t.Fatal(err)
		}
	}
	publish(t, server, pub)
	var sentMu sync.Mutex
	sent := map[string]bool{}
	stop := make(chan struct{})
	pub.goRun(func() {
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			nal := byte(0x41) // non-IDR slice
			if i%10 == 0 {
				nal = 0x65 // IDR slice
			}
			v := append([]byte{nal, byte(i >> 8), byte(i)}, bytes.Repeat([]byte{0x11}, 50)...)
			a := append([]byte{0xFF, byte(i >> 8), byte(i)}, bytes.Repeat([]byte{0x7F}, 37)...)
			sentMu.Lock()
			sent[string(v)], sent[string(a)] = true, true
			sentMu.Unlock()
			_ = h264.WriteRTP(&rtp.Packet{Header: rtp.Header{Version: 2, Marker: true, SequenceNumber: uint16(i), Timestamp: uint32(i) * 450}, Payload: v})
			_ = pcmu.WriteRTP(&rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: uint16(i), Timestamp: uint32(i) * 40}, Payload: a})
		}
	})

	sub, err := NewPeer(PeerConfig{Engine: engine})
	if err != nil {
		t.Fatal(err)
	}
	c := newClient(t, api)
	var mu sync.Mutex
	got := map[string]int{} // mime → packets whose payload was sent
	bad := 0
	c.pc.OnTrack(func(remote *pion.TrackRemote, _ *pion.RTPReceiver) {
		mime := strings.ToLower(remote.Codec().MimeType)
		c.goRun(func() {
			for {
				pkt, _, err := remote.ReadRTP()
				if err != nil {
					return
				}
				sentMu.Lock()
				ok := sent[string(pkt.Payload)]
				sentMu.Unlock()
				mu.Lock()
				if ok {
					got[mime]++
				} else {
					bad++
				}
				mu.Unlock()
			}
		})
	})
	for range 2 {
		select {
		case p := <-published:
			if _, err := sub.Subscribe(p.t, p.info); err != nil {
				t.Fatal(err)
			}
		case <-time.After(deadline):
			t.Fatal("the publisher's tracks did not arrive")
		}
	}
	negotiate(t, sub, c)
	waitFor(t, "H.264 and PCMU at the subscriber", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return got["video/h264"] >= 20 && got["audio/pcmu"] >= 20
	})
	mu.Lock()
	if bad != 0 {
		t.Errorf("%d packets with payloads never sent", bad)
	}
	mu.Unlock()
	close(stop)
	for _, p := range []*Peer{sub, server} {
		if err := p.Close(); err != nil {
			t.Error(err)
		}
	}
	c.close(t)
	pub.close(t)
}
