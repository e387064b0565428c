package webrtc

import (
	"encoding/binary"
	"net"
	"testing"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/rtp"
	pion "github.com/pion/webrtc/v4"

	"github.com/callcore/callcore/forward"
	"github.com/callcore/callcore/internal/pionloop"
	"github.com/callcore/callcore/transport"
	"github.com/callcore/callcore/transport/transporttest"
)

// TestConformance runs the transport suite over a connected server→client
// pair: the near end is a subscription's writer (what the core writes to),
// the far end a plain pion client's OnTrack reader.
//
// One adaptation, for a reason of WebRTC's: the suite's packets carry SSRC
// 7, but SRTP and pion's receivers route by the SSRC negotiated for the
// sender, which the core always writes (SubscriberConfig.SSRC). The near
// end puts the negotiated SSRC in, the far end puts 7 back; every other
// byte is compared as the suite sends it. The suite's RTCP (a PLI for SSRC
// 7) goes the way the core's feedback goes, through the peer's WriteRTCP,
// with the same SSRC swap, and is read from the client's RTPReceiver.
// The transport-wide sequence number the writer adds to every packet
// (twcc.go) is the connection's, not the suite's: the far end removes it.
func TestConformance(t *testing.T) {
	transporttest.Run(t, conformanceFactory)
}

func conformanceFactory(t *testing.T, far transport.RTPWriter, farRTCP transport.RTCPWriter) transporttest.Endpoints {
	t.Helper()
	api, mux := bigBufferClientAPI(t, "udp4", net.IPv4(127, 0, 0, 1))
	return conformanceOn(t, far, farRTCP, newTestEngine(t, Config{}), api, mux, nil)
}

// conformanceOn builds the suite's endpoints on engine, with a client of
// api (mux: its socket); ready, when set, checks the subscription once
// both ends are connected.
func conformanceOn(t *testing.T, far transport.RTPWriter, farRTCP transport.RTCPWriter, engine *Engine,
	api *pion.API, mux ice.UDPMux, ready func(*Subscription)) transporttest.Endpoints {
	t.Helper()
	server, err := NewPeer(PeerConfig{Engine: engine})
	if err != nil {
		t.Fatal(err)
	}
	c := newClient(t, api)
	c.pc.OnTrack(func(remote *pion.TrackRemote, recv *pion.RTPReceiver) {
		id := twccID(recv.GetParameters().HeaderExtensions)
		c.goRun(func() {
			buf := make([]byte, 1500)
			var h rtp.Header
			for {
				n, _, err := remote.Read(buf)
				if err != nil {
					return
				}
				if n >= 12 {
					binary.BigEndian.PutUint32(buf[8:], 7)
					_ = far.WriteRTP(withoutTWCC(&h, buf[:n], id), nil)
				}
			}
		})
	})
	track, err := forward.NewTrack(forward.TrackConfig{Kind: forward.Video, MimeType: pion.MimeTypeVP8, ClockRate: 90000, PayloadType: 96})
	if err != nil {
		t.Fatal(err)
	}
	sub, err := server.Subscribe(track, PublishInfo{})
	if err != nil {
		t.Fatal(err)
	}
	negotiate(t, server, c)
	// RTCP is read from the receiver at once: OnTrack waits for RTP.
	for _, recv := range c.pc.GetReceivers() {
		c.goRun(func() {
			buf := make([]byte, 1500)
			for {
				n, _, err := recv.Read(buf)
				if err != nil {
					return
				}
				if n >= 12 && buf[1] == 206 { // payload-specific feedback (the PLI), not reports
					binary.BigEndian.PutUint32(buf[8:], 7)
					_ = farRTCP.WriteRTCP(buf[:n])
				}
			}
		})
	}
	waitFor(t, "the binding", func() bool { return sub.Subscriber() != nil })
	waitFor(t, "both ends connected", func() bool {
		return server.Status() == StatusConnected && c.pc.ConnectionState() == pion.PeerConnectionStateConnected
	})
	if ready != nil {
		ready(sub)
	}
	ssrc := sub.Subscriber().Config().SSRC
	return transporttest.Endpoints{
		RTP:  &ssrcSwap{w: &sub.out, ssrc: ssrc},
		RTCP: transport.RTCPWriterFunc(func(b []byte) error { return feedback{pc: server.pc}.WriteRTCP(swapped(b, ssrc)) }),
		Close: func() error {
			err := server.Close()
			_ = track.Close()
			c.close(t)
			_ = mux.Close()
			_ = engine.Close()
			return err
		},
	}
}

// withoutTWCC returns pkt without its transport-wide sequence number
// extension (id).
func withoutTWCC(h *rtp.Header, pkt []byte, id uint8) []byte {
	n, err := h.Unmarshal(pkt)
	if err != nil || id == 0 || h.GetExtension(id) == nil {
		return pkt
	}
	if h.DelExtension(id) != nil {
		return pkt
	}
	out, err := h.Marshal()
	if err != nil {
		return pkt
	}
	return append(out, pkt[n:]...)
}

// ssrcSwap puts the negotiated SSRC into the suite's headers.
type ssrcSwap struct {
	w    transport.RTPWriter
	ssrc uint32
	buf  []byte
}

func (s *ssrcSwap) WriteRTP(h, p []byte) error {
	s.buf = append(s.buf[:0], h...)
	if len(s.buf) >= 12 {
		binary.BigEndian.PutUint32(s.buf[8:], s.ssrc)
	}
	return s.w.WriteRTP(s.buf, p)
}

// Batch is the writer's flush point: the suite flushes the direct path's
// batches through it.
func (s *ssrcSwap) Batch() transport.Flusher {
	if b, ok := s.w.(transport.Batcher); ok {
		return b.Batch()
	}
	return noFlush{}
}

func swapped(b []byte, ssrc uint32) []byte {
	c := append([]byte(nil), b...)
	if len(c) >= 12 {
		binary.BigEndian.PutUint32(c[8:], ssrc)
	}
	return c
}

// bigBufferClientAPI is clientAPI on one UDP socket (network, ip) with a
// 4 MiB receive buffer, so a burst of the suite's 300 packets is not
// dropped by the kernel while the reader is descheduled on a busy
// machine.
func bigBufferClientAPI(t *testing.T, network string, ip net.IP) (*pion.API, ice.UDPMux) {
	t.Helper()
	conn, err := net.ListenUDP(network, &net.UDPAddr{IP: ip})
	if err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadBuffer(4 << 20)
	mux := pion.NewICEUDPMux(nil, conn)
	me := &pion.MediaEngine{}
	if err := me.RegisterDefaultCodecs(); err != nil {
		t.Fatal(err)
	}
	ir := &interceptor.Registry{}
	if err := pion.RegisterDefaultInterceptors(me, ir); err != nil {
		t.Fatal(err)
	}
	se := pion.SettingEngine{}
	pionloop.Restrict(&se)
	if ip.To4() == nil {
		se.SetNetworkTypes([]pion.NetworkType{pion.NetworkTypeUDP6})
	}
	se.SetICEUDPMux(mux)
	return pion.NewAPI(pion.WithMediaEngine(me), pion.WithInterceptorRegistry(ir), pion.WithSettingEngine(se)), mux
}
