package webrtc

import (
	"encoding/binary"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/rtp"
	pion "github.com/pion/webrtc/v4"

	"github.com/callcore/callcore/forward"
)

// BenchmarkFanoutWebRTC: one op is one 1,200-byte Opus packet delivered to
// every subscriber through real pion PeerConnections on loopback (SRTP,
// interceptors, sendto). "callcore" is a forward.Track with this package's
// subscriptions; "pion-static" is the shape a Go user writes by default
// (pion's broadcast example): one TrackLocalStaticRTP on every
// PeerConnection, default interceptors, WriteRTP per packet.
// recv-ratio is the share of deliveries the clients read (the kernel
// drops what they cannot read in time).
//
//	go test ./transport/webrtc -run '^$' -bench FanoutWebRTC -benchtime 20000x
func BenchmarkFanoutWebRTC(b *testing.B) {
	for _, n := range []int{1, 10} {
		b.Run(fmt.Sprintf("callcore/subs=%d", n), func(b *testing.B) { benchCallcore(b, n) })
		b.Run(fmt.Sprintf("pion-static/subs=%d", n), func(b *testing.B) { benchStatic(b, n) })
	}
}

// benchClients connects n counting clients through connect, which
// negotiates one server side and returns its closer.
func benchClients(b *testing.B, n int, connect func(c *client) func()) (recv *atomic.Int64, closeAll func()) {
	recv = &atomic.Int64{}
	api := clientAPI(b)
	var closers []func()
	var clients []*client
	for range n {
		c := newClient(b, api)
		c.pc.OnTrack(func(remote *pion.TrackRemote, _ *pion.RTPReceiver) {
			c.goRun(func() {
				buf := make([]byte, 1500)
				for {
					if _, _, err := remote.Read(buf); err != nil {
						return
					}
					recv.Add(1)
				}
			})
		})
		closers = append(closers, connect(c))
		clients = append(clients, c)
	}
	return recv, func() {
		for i, c := range clients {
			closers[i]()
			c.close(b)
		}
	}
}

func benchPacket(buf []byte, seq int) []byte {
	buf = buf[:1200]
	buf[0], buf[1] = 0x80, 111
	binary.BigEndian.PutUint16(buf[2:], uint16(seq))
	binary.BigEndian.PutUint32(buf[4:], uint32(seq)*960)
	binary.BigEndian.PutUint32(buf[8:], 0x1234)
	return buf
}

// warm feeds packets until every client has read some, then times b.N.
func timeFanout(b *testing.B, n int, recv *atomic.Int64, send func(seq int)) {
	seq := 0
	waitFor(b, "every client receiving", func() bool {
		send(seq)
		seq++
		return recv.Load() >= int64(10*n)
	})
	recv.Store(0)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		send(seq)
		seq++
	}
	b.StopTimer()
	el := b.Elapsed()
	want := int64(b.N * n)
	end := time.Now().Add(3 * time.Second)
	for last := int64(-1); recv.Load() < want && time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		if r := recv.Load(); r == last {
			break // nothing more is coming
		} else {
			last = r
		}
	}
	b.ReportMetric(float64(el.Nanoseconds())/float64(want), "ns/delivery")
	b.ReportMetric(float64(want)/el.Seconds(), "deliveries/s")
	b.ReportMetric(float64(recv.Load())/float64(want), "recv-ratio")
}

func benchCallcore(b *testing.B, n int) {
	engine := newTestEngine(b, Config{})
	defer engine.Close()
	track, err := forward.NewTrack(forward.TrackConfig{Kind: forward.Audio, MimeType: pion.MimeTypeOpus,
		ClockRate: 48000, PayloadType: 111, SSRC: 0x1234})
	if err != nil {
		b.Fatal(err)
	}
	defer track.Close()
	recv, closeAll := benchClients(b, n, func(c *client) func() {
		p, err := NewPeer(PeerConfig{Engine: engine})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := p.Subscribe(track, PublishInfo{}); err != nil {
			b.Fatal(err)
		}
		negotiate(b, p, c)
		return func() { _ = p.Close() }
	})
	defer closeAll()
	buf := make([]byte, 1500)
	timeFanout(b, n, recv, func(seq int) { _ = track.HandleRTP(benchPacket(buf, seq)) })
}

func benchStatic(b *testing.B, n int) {
	track, err := pion.NewTrackLocalStaticRTP(pion.RTPCodecCapability{MimeType: pion.MimeTypeOpus, ClockRate: 48000, Channels: 2}, "a", "s")
	if err != nil {
		b.Fatal(err)
	}
	serverAPI := clientAPI(b) // default codecs and interceptors, NACK responder included
	recv, closeAll := benchClients(b, n, func(c *client) func() {
		s := newClient(b, serverAPI)
		if _, err := s.pc.AddTrack(track); err != nil {
			b.Fatal(err)
		}
		offer, err := s.pc.CreateOffer(nil)
		if err != nil {
			b.Fatal(err)
		}
		if err := c.pc.SetRemoteDescription(pion.SessionDescription{Type: pion.SDPTypeOffer, SDP: setLocal(b, s.pc, offer)}); err != nil {
			b.Fatal(err)
		}
		ans, err := c.pc.CreateAnswer(nil)
		if err != nil {
			b.Fatal(err)
		}
		if err := s.pc.SetRemoteDescription(pion.SessionDescription{Type: pion.SDPTypeAnswer, SDP: setLocal(b, c.pc, ans)}); err != nil {
			b.Fatal(err)
		}
		return func() { s.close(b) }
	})
	defer closeAll()
	buf := make([]byte, 1500)
	var pkt rtp.Packet
	timeFanout(b, n, recv, func(seq int) {
		if err := pkt.Unmarshal(benchPacket(buf, seq)); err == nil {
			_ = track.WriteRTP(&pkt)
		}
	})
}
