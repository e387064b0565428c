package link

import (
	"net"
	"net/netip"
	"testing"

	pionrtp "github.com/pion/rtp"

	"github.com/callcore/callcore/forward"
	"github.com/callcore/callcore/internal/rtcpx"
	"github.com/callcore/callcore/transport/rtp"
)

// FuzzDatagram feeds a session's receive path arbitrary datagrams, from
// the peer or a stranger. Oracle: every datagram is accounted for exactly
// once (handed on as RTP or RTCP, or dropped under one counter), and
// nothing panics.
func FuzzDatagram(f *testing.F) {
	keys := &rtp.Keys{Profile: profile, Key: []byte("0123456789abcdef"), Salt: []byte("saltsaltsalt")}
	enc, err := newContext(keys)
	if err != nil {
		f.Fatal(err)
	}
	for _, seq := range []uint16{1, 2, 5, 300} {
		p, _ := (&pionrtp.Packet{Header: pionrtp.Header{Version: 2, PayloadType: 111, SequenceNumber: seq,
			Timestamp: uint32(seq) * 960, SSRC: 0x1111}, Payload: []byte{1, 2, 3}}).Marshal()
		e, err := enc.EncryptRTP(nil, p, nil)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(byte(0), e)
	}
	pli, err := enc.EncryptRTCP(nil, rtcpx.AppendPLI(nil, 9, 0x2222), nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(byte(0), pli)
	f.Add(byte(1), pli)
	f.Add(byte(0), []byte{0x80, 200, 0, 1, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8})
	f.Add(byte(0), []byte{0x80})

	check := fuzzState(f, keys)
	f.Fuzz(func(t *testing.T, from byte, d []byte) { check(t, from, d) })
}

// fuzzState makes a session with no control connection whose peer sends
// with keys, and returns a function that feeds it one datagram and checks
// it was counted exactly once.
func fuzzState(tb testing.TB, keys *rtp.Keys) func(t testing.TB, from byte, d []byte) {
	var err error
	l := &Link{}
	l.cfg.setDefaults()
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { conn.Close() })
	s := &session{l: l, conn: conn, fbSSRC: 7, local: keys, remote: keys}
	if s.rx.ctx, err = newContext(keys); err != nil {
		tb.Fatal(err)
	}
	if s.rtcpCtx, err = newContext(keys); err != nil {
		tb.Fatal(err)
	}
	if err := s.rtcpOut.init(conn); err != nil {
		tb.Fatal(err)
	}
	peer := conn.LocalAddr().(*net.UDPAddr).AddrPort()
	stranger := netip.MustParseAddrPort("127.0.0.1:9")
	s.peer.Store(&peer)
	tr, err := forward.NewTrack(forward.TrackConfig{Kind: forward.Audio, ClockRate: 48000, PayloadType: 111,
		MimeType: "audio/opus", SSRC: 0x1111, RTX: &forward.RTX{SSRC: 0x1112, PayloadType: 127}})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { tr.Close() })
	in := &inbound{track: tr, ssrc: 0x1111, rtxSSRC: 0x1112}
	s.inbound.Store(&map[uint32]*inbound{0x1111: in, 0x1112: in})
	s.relays.Store(&map[uint32]*relay{})
	buf := make([]byte, 2048)

	return func(t testing.TB, from byte, d []byte) {
		if len(d) > len(buf) {
			return
		}
		src := peer
		if from&1 == 1 {
			src = stranger
		}
		before := l.Stats()
		n := copy(buf, d)
		s.datagram(buf[:n], src)
		after := l.Stats()
		got := after.Dropped() + after.RTPIn + after.RTCPIn - before.Dropped() - before.RTPIn - before.RTCPIn
		if got != 1 {
			t.Fatalf("datagram %x from %v counted %d times: %+v", d, src, got, after)
		}
	}
}
