package rtp_test

import (
	"bytes"
	"errors"
	"net/netip"
	"strconv"
	"testing"

	"github.com/callcore/callcore/transport"
	"github.com/callcore/callcore/transport/rtp"
)

func TestEgressRTCPIn(t *testing.T) {
	for _, k := range []*rtp.Keys{nil, keys(t, rtp.ProfileAEADAES128GCM)} {
		name := "plain"
		if k != nil {
			name = k.Profile.String()
		}
		t.Run(name, func(t *testing.T) { testEgressRTCPIn(t, k) })
	}
}

func testEgressRTCPIn(t *testing.T, k *rtp.Keys) {
	p := freePair(t)
	recv, recvRTCP := udp(t, "127.0.0.1:"+strconv.Itoa(p)), udp(t, "127.0.0.1:"+strconv.Itoa(p+1))
	var h handler
	e := newEgress(t, rtp.EgressConfig{Remote: addrOf(recv), Addr: "127.0.0.1:0", RTCP: &h, SRTP: k})
	if err := e.WriteRTP(rtpPacket(1, 5, nil)[:12], []byte("payload")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1500)
	n, from, err := recv.ReadFromUDPAddrPort(buf)
	if err != nil {
		t.Fatal(err)
	}
	got := buf[:n]
	if k != nil {
		if got, err = srtpContext(t, k).DecryptRTP(nil, got, nil); err != nil {
			t.Fatal(err)
		}
	}
	if from != e.Addr() || !bytes.Equal(got, rtpPacket(1, 5, []byte("payload"))) {
		t.Fatalf("receiver got %x from %v", got, from)
	}
	rr := pli
	if k != nil {
		if rr, err = srtpContext(t, k).EncryptRTCP(nil, pli, nil); err != nil {
			t.Fatal(err)
		}
	}
	send(t, recvRTCP, e.RTCPAddr(), []byte{0x80, 201, 0, 7}) // garbage
	send(t, recvRTCP, e.RTCPAddr(), rr)
	send(t, udp(t, "127.0.0.1:0"), e.RTCPAddr(), rr) // a stranger: the connected socket never sees it
	eventually(t, "the receiver's RTCP", func() bool { return h.nrtcp.Load() == 1 })
	if _, rtcp := h.packets(); !bytes.Equal(rtcp[0], pli) {
		t.Fatalf("RTCP handler got %x", rtcp[0])
	}
	if s := e.Stats(); s.RTPOut != 1 || s.RTCPIn != 1 || s.Malformed != 1 {
		t.Fatalf("stats %+v", s)
	}
}

func TestEgressErrors(t *testing.T) {
	gone := udp(t, "127.0.0.1:0")
	to := addrOf(gone)
	gone.Close()
	// Without rtcp-mux nothing reads the RTP socket, so the error reaches
	// a send (with mux the read goroutine may take it first).
	e := newEgress(t, rtp.EgressConfig{Remote: to, SRTP: keys(t, rtp.ProfileAEADAES128GCM)})
	h := rtpPacket(1, 5, nil)[:12]
	if err := e.WriteRTP(h, make([]byte, 1500-12-16+1)); !errors.Is(err, rtp.ErrOversized) {
		t.Fatalf("oversized: %v", err)
	}
	if err := e.WriteRTP(h, make([]byte, 1500-12-16)); err != nil {
		t.Fatalf("largest packet: %v", err)
	}
	// The closed port answers with ICMP port unreachable; the kernel
	// reports it on a later send.
	eventually(t, "a refused send", func() bool {
		return errors.Is(e.WriteRTP(h, []byte("x")), rtp.ErrSend)
	})
	if err := e.WriteRTP([]byte{1, 2}, nil); !errors.Is(err, rtp.ErrProtect) {
		t.Fatalf("garbage with SRTP: %v, want ErrProtect", err)
	}
	if err := e.WriteRTCP([]byte{1, 2, 3}); !errors.Is(err, rtp.ErrMalformed) {
		t.Fatalf("garbage RTCP: %v, want ErrMalformed", err)
	}
	s := e.Stats()
	if s.Oversized != 1 || s.SendErrors == 0 || s.Malformed != 2 {
		t.Fatalf("stats %+v", s)
	}
	if !errors.Is(rtp.ErrWouldBlock, transport.ErrBufferFull) {
		t.Error("ErrWouldBlock does not match transport.ErrBufferFull")
	}
	e.Close()
	if err := e.WriteRTCP(pli); !errors.Is(err, transport.ErrClosed) {
		t.Fatalf("RTCP after close: %v", err)
	}
}

func TestConfigValidate(t *testing.T) {
	var h handler
	k := keys(t, rtp.ProfileAESCM128SHA1_80)
	remote := netip.MustParseAddrPort("127.0.0.1:5004")
	bad := []error{
		rtp.IngestConfig{}.Validate(),
		rtp.IngestConfig{RTP: &h, Addr: "localhost:5004"}.Validate(),
		rtp.IngestConfig{RTP: &h, MaxPacketSize: 70000}.Validate(),
		rtp.IngestConfig{RTP: &h, RemoteSRTP: k}.Validate(),
		rtp.EgressConfig{}.Validate(),
		rtp.EgressConfig{Remote: netip.MustParseAddrPort("127.0.0.1:65535")}.Validate(),
		rtp.EgressConfig{Remote: remote, MaxPacketSize: 11}.Validate(),
	}
	for i, err := range bad {
		if !errors.Is(err, rtp.ErrInvalidConfig) {
			t.Errorf("config %d: %v, want ErrInvalidConfig", i, err)
		}
	}
	short := &rtp.Keys{Profile: rtp.ProfileAEADAES128GCM, Key: k.Key, Salt: k.Salt}
	for i, err := range []error{
		rtp.IngestConfig{RTP: &h, SRTP: short}.Validate(),
		rtp.EgressConfig{Remote: remote, SRTP: &rtp.Keys{Profile: 99}}.Validate(),
	} {
		if !errors.Is(err, rtp.ErrInvalidKeys) {
			t.Errorf("keys %d: %v, want ErrInvalidKeys", i, err)
		}
	}
	if _, err := rtp.NewEgress(rtp.EgressConfig{}); !errors.Is(err, rtp.ErrInvalidConfig) {
		t.Errorf("NewEgress does not validate: %v", err)
	}
	if err := (rtp.EgressConfig{Remote: remote, SRTP: k}).Validate(); err != nil {
		t.Error(err)
	}
}

func TestKeys(t *testing.T) {
	// An SDP a=crypto key parameter, with its lifetime.
	k, err := rtp.ParseKeys(rtp.ProfileAESCM128SHA1_80, "inline:4W8CxJo5vfD0OVGIaJAyuLyOexK0D7VUxVFbF0Ym|2^31")
	if err != nil {
		t.Fatal(err)
	}
	if len(k.Key) != 16 || len(k.Salt) != 14 || k.Inline() != "4W8CxJo5vfD0OVGIaJAyuLyOexK0D7VUxVFbF0Ym" {
		t.Fatalf("parsed %+v", k)
	}
	g := keys(t, rtp.ProfileAEADAES128GCM)
	back, err := rtp.ParseKeys(g.Profile, g.Inline())
	if err != nil || !bytes.Equal(back.Key, g.Key) || !bytes.Equal(back.Salt, g.Salt) {
		t.Fatalf("round trip: %v %+v", err, back)
	}
	for _, s := range []string{"!!", g.Inline()} {
		if _, err := rtp.ParseKeys(rtp.ProfileAESCM128SHA1_80, s); !errors.Is(err, rtp.ErrInvalidKeys) {
			t.Errorf("%q: %v", s, err)
		}
	}
	for name, want := range map[string]rtp.Profile{"AES_CM_128_HMAC_SHA1_80": rtp.ProfileAESCM128SHA1_80,
		"SRTP_AES128_CM_HMAC_SHA1_80": rtp.ProfileAESCM128SHA1_80, "aead_aes_128_gcm": rtp.ProfileAEADAES128GCM} {
		if p, err := rtp.ParseProfile(name); err != nil || p != want {
			t.Errorf("%s: %v %v", name, p, err)
		}
	}
	if _, err := rtp.ParseProfile("AES_CM_128_HMAC_SHA1_32"); !errors.Is(err, rtp.ErrInvalidKeys) {
		t.Error(err)
	}
}
