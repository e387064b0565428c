package webrtc

import (
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/sdp/v3"
	pion "github.com/pion/webrtc/v4"

	"github.com/callcore/callcore/forward"
	"github.com/callcore/callcore/internal/pionloop"
)

// BenchmarkWebRTCFanoutPacing is the fan-out benchmark (measure) with a
// 1,200-byte VP8 packet to N subscribers that negotiate the
// transport-wide sequence number, three ways:
//
//   - off: Config.NoPacing;
//
//   - idle: pacing on, no feedback (the writers' one atomic load);
//
//   - paced: each peer paced at 32 Mbit/s with no burst depth, so nearly
//     every packet goes through its ring and the scheduler (the sender
//     waits while a ring is over half full, so nothing is dropped: the
//     delivery rate is then the pacing rate's, not the fan-out's).
//
//     go test ./transport/webrtc -run '^$' -bench WebRTCFanoutPacing -benchtime 2000x
//
// Besides measure's metrics, queued/delivery is the share of deliveries
// that went through a ring.
func BenchmarkWebRTCFanoutPacing(b *testing.B) {
	for _, n := range []int{10, 50} {
		for _, mode := range []string{"off", "idle", "paced"} {
			b.Run(fmt.Sprintf("%s/subs=%d", mode, n), func(b *testing.B) { benchPacing(b, n, mode) })
		}
	}
}

// videoAPI is the benchmark's receiver: default codecs, no interceptors,
// the transport-wide sequence number extension negotiated for video.
func videoAPI(t testing.TB) *pion.API {
	t.Helper()
	me := &pion.MediaEngine{}
	if err := me.RegisterDefaultCodecs(); err != nil {
		t.Fatal(err)
	}
	if err := me.RegisterHeaderExtension(pion.RTPHeaderExtensionCapability{URI: sdp.TransportCCURI}, pion.RTPCodecTypeVideo); err != nil {
		t.Fatal(err)
	}
	se := pion.SettingEngine{}
	pionloop.Restrict(&se)
	return pion.NewAPI(pion.WithMediaEngine(me), pion.WithSettingEngine(se),
		pion.WithInterceptorRegistry(&interceptor.Registry{}))
}

func benchPacing(b *testing.B, n int, mode string) {
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		b.Fatal(err)
	}
	engine, err := New(Config{PacketConn: conn, LoopbackOnly: true, NoPacing: mode == "off"})
	if err != nil {
		conn.Close()
		b.Fatal(err)
	}
	defer engine.Close()
	track, err := forward.NewTrack(forward.TrackConfig{Kind: forward.Video, MimeType: pion.MimeTypeVP8,
		ClockRate: 90000, PayloadType: 96, SSRC: 0x1234})
	if err != nil {
		b.Fatal(err)
	}
	defer track.Close()
	var subs []*Subscription
	var peers []*Peer
	api := videoAPI(b)
	recv, m, closeAll := receivers(b, n, api, func(c *client) (*pion.PeerConnection, func()) {
		p, err := NewPeer(PeerConfig{Engine: engine})
		if err != nil {
			b.Fatal(err)
		}
		s, err := p.Subscribe(track, PublishInfo{})
		if err != nil {
			b.Fatal(err)
		}
		subs, peers = append(subs, s), append(peers, p)
		negotiate(b, p, c)
		return p.pc, func() { _ = p.Close() }
	})
	defer closeAll()
	waitFor(b, "the direct path", func() bool {
		for _, s := range subs {
			if s.out.fast.Load() == nil || s.out.twccID == 0 {
				return false
			}
		}
		return true
	})
	if mode == "paced" {
		for _, p := range peers {
			p.down.pace.bucket.SetRate(4e6, 0) // 32 Mbit/s: a packet each 310 µs
		}
	}
	buf := make([]byte, 1500)
	measure(b, n, recv, m, func(seq int) {
		pkt := benchPacket(buf, seq)
		pkt[1] = 96
		pkt[12], pkt[13] = 0x10, 0x00 // a VP8 key frame's first packet
		_ = track.HandleRTP(pkt)
		if mode != "paced" {
			return
		}
		for _, s := range subs {
			for s.out.po.q.Len() > paceSlots/2 { // bounded by the pacing rate
				time.Sleep(200 * time.Microsecond)
			}
		}
	})
	var queued, dropped uint64
	for _, p := range peers {
		st := p.PaceStats()
		queued, dropped = queued+st.Queued, dropped+st.Dropped
	}
	if dropped != 0 {
		b.Fatalf("%d packets dropped", dropped)
	}
	b.ReportMetric(float64(queued)/float64(b.N*n), "queued/delivery")
}
