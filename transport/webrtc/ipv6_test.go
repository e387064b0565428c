package webrtc

import (
	"errors"
	"net"
	"testing"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"
	pion "github.com/pion/webrtc/v4"

	"github.com/callcore/callcore/forward"
	"github.com/callcore/callcore/internal/pionloop"
	"github.com/callcore/callcore/transport"
	"github.com/callcore/callcore/transport/transporttest"
)

// listenIPv6Loopback binds a UDP socket on [::1], or skips the test when
// the machine cannot (no IPv6 loopback: some CI machines and containers
// have none, which is not a fault of the code under test).
func listenIPv6Loopback(t *testing.T) *net.UDPConn {
	t.Helper()
	c, err := net.ListenUDP("udp6", &net.UDPAddr{IP: net.IPv6loopback})
	if err != nil {
		t.Skipf("no IPv6 loopback on this machine (cannot bind [::1]: %v): the IPv6 direct path is not tested", err)
	}
	return c
}

// TestConformanceIPv6DirectPath runs the transport suite over a
// server→client pair on ::1 in single-port mode: the subscription's
// writer is on the direct, batched path (sendmmsg on an IPv6 socket) to
// the client's IPv6 address.
func TestConformanceIPv6DirectPath(t *testing.T) {
	listenIPv6Loopback(t).Close() // skip early when there is no ::1
	transporttest.Run(t, func(t *testing.T, far transport.RTPWriter, farRTCP transport.RTCPWriter) transporttest.Endpoints {
		t.Helper()
		conn := listenIPv6Loopback(t)
		engine, err := New(Config{PacketConn: conn, LoopbackOnly: true})
		if err != nil {
			conn.Close()
			t.Fatal(err)
		}
		api, mux := bigBufferClientAPI(t, "udp6", net.IPv6loopback)
		return conformanceOn(t, far, farRTCP, engine, api, mux, func(sub *Subscription) {
			waitFor(t, "the direct path", func() bool { return sub.out.fast.Load() != nil })
			to := *sub.peer.direct.to.Load()
			if !to.Addr().Is6() || !to.Addr().IsLoopback() || !engine.sock.v6 {
				t.Fatalf("direct path to %v on an IPv6 socket %v, want ::1", to, engine.sock.v6)
			}
		})
	})
}

// TestDirectPathDualStack: a batch on an IPv6 socket listening on every
// address sends to an IPv4 peer (as an IPv4-mapped address) and to an
// IPv6 one, with one sendmmsg; a batch on an IPv4 socket refuses an IPv6
// peer (the writer then takes pion's path).
func TestDirectPathDualStack(t *testing.T) {
	listenIPv6Loopback(t).Close()
	dual, err := net.ListenUDP("udp", &net.UDPAddr{})
	if err != nil {
		t.Fatal(err)
	}
	defer dual.Close()
	v4 := listenUDP4(t)
	defer v4.Close()
	recv4 := listenUDP4(t)
	defer recv4.Close()
	recv6 := listenIPv6Loopback(t)
	defer recv6.Close()

	track, err := forward.NewTrack(forward.TrackConfig{Kind: forward.Audio, MimeType: "audio/opus", ClockRate: 48000, PayloadType: 111})
	if err != nil {
		t.Fatal(err)
	}
	defer track.Close()
	ctx, err := srtp.CreateContext(make([]byte, 16), make([]byte, 14), srtp.ProtectionProfileAes128CmHmacSha1_80)
	if err != nil {
		t.Fatal(err)
	}
	header := []byte{0x80, 111, 0, 1, 0, 0, 0, 1, 0, 0, 0x12, 0x34}
	var hdr rtp.Header
	if _, err := hdr.Unmarshal(header); err != nil {
		t.Fatal(err)
	}
	payload := []byte("hello")

	s6 := newSendSock(dual, sendClock{})
	b := s6.acquire(track)
	defer s6.release(track, b)
	for _, to := range []*net.UDPConn{recv4, recv6} {
		if _, err := b.write(ctx, &hdr, header, payload, to.LocalAddr().(*net.UDPAddr).AddrPort()); err != nil {
			t.Fatalf("to %v: %v", to.LocalAddr(), err)
		}
		hdr.SequenceNumber++
		header[3]++
	}
	if err := b.Flush(); err != nil {
		t.Fatal(err)
	}
	for _, r := range []*net.UDPConn{recv4, recv6} {
		_ = r.SetReadDeadline(time.Now().Add(deadline))
		buf := make([]byte, 1500)
		n, from, err := r.ReadFromUDPAddrPort(buf)
		if err != nil {
			t.Fatalf("at %v: %v", r.LocalAddr(), err)
		}
		if n != len(header)+len(payload)+10 || from.Port() != uint16(dual.LocalAddr().(*net.UDPAddr).Port) {
			t.Fatalf("at %v: %d bytes from %v", r.LocalAddr(), n, from)
		}
	}

	s4 := newSendSock(v4, sendClock{})
	b4 := s4.acquire(track)
	defer s4.release(track, b4)
	if _, err := b4.write(ctx, &hdr, header, payload, recv6.LocalAddr().(*net.UDPAddr).AddrPort()); !errors.Is(err, errTooLarge) {
		t.Fatalf("an IPv4 socket's batch took an IPv6 peer: %v", err)
	}
}

func listenUDP4(t *testing.T) *net.UDPConn {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// BenchmarkWebRTCFanoutIPv6 is BenchmarkWebRTCFanout's subs=10 on ::1:
// the direct path's sendmmsg on an IPv6 socket, beside the IPv4 run.
//
// Each receiver has a UDP mux of its own on [::1] (pion gathers no ::1
// candidate on lo: it takes ::1 for an IPv4-compatible address).
func BenchmarkWebRTCFanoutIPv6(b *testing.B) {
	b.Run("subs=10", func(b *testing.B) {
		conn, err := net.ListenUDP("udp6", &net.UDPAddr{IP: net.IPv6loopback})
		if err != nil {
			b.Skipf("no IPv6 loopback on this machine (cannot bind [::1]: %v)", err)
		}
		engine, err := New(Config{PacketConn: conn, LoopbackOnly: true})
		if err != nil {
			conn.Close()
			b.Fatal(err)
		}
		me := &pion.MediaEngine{}
		if err := me.RegisterDefaultCodecs(); err != nil {
			b.Fatal(err)
		}
		var muxes []interface{ Close() error }
		defer func() {
			for _, m := range muxes {
				_ = m.Close()
			}
		}()
		benchOursOn(b, 10, engine, func() *pion.API {
			cc, err := net.ListenUDP("udp6", &net.UDPAddr{IP: net.IPv6loopback})
			if err != nil {
				b.Fatal(err)
			}
			_ = cc.SetReadBuffer(4 << 20)
			mux := pion.NewICEUDPMux(nil, cc)
			muxes = append(muxes, mux)
			se := pion.SettingEngine{}
			pionloop.Restrict(&se)
			se.SetNetworkTypes([]pion.NetworkType{pion.NetworkTypeUDP6})
			se.SetICEUDPMux(mux)
			return pion.NewAPI(pion.WithMediaEngine(me), pion.WithSettingEngine(se), pion.WithInterceptorRegistry(&interceptor.Registry{}))
		}, false)
	})
}
