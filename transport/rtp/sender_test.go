package rtp_test

import (
	"errors"
	"net/netip"
	"testing"

	"github.com/callcore/callcore/transport"
	"github.com/callcore/callcore/transport/rtp"
	"github.com/callcore/callcore/transport/transporttest"
)

func newSender(t testing.TB, cfg rtp.SenderConfig) *rtp.Sender {
	t.Helper()
	s, err := rtp.NewSender(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func newTarget(t testing.TB, s *rtp.Sender, cfg rtp.TargetConfig) *rtp.Target {
	t.Helper()
	tg, err := s.Target(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return tg
}

// senderConformance runs the suite on a Target of a shared Sender whose
// receiver is an Ingest. maxBatch 7 makes full queues flush early too.
func senderConformance(t *testing.T, addr string, k *rtp.Keys) {
	transporttest.Run(t, func(t *testing.T, w transport.RTPWriter, rw transport.RTCPWriter) transporttest.Endpoints {
		far := splitter{w, rw}
		in, err := rtp.NewIngest(rtp.IngestConfig{Addr: addr, RTP: far, RTCP: far, SRTP: k})
		if err != nil {
			t.Fatal(err)
		}
		s, err := rtp.NewSender(rtp.SenderConfig{Addr: addr, MaxBatch: 7})
		if err != nil {
			in.Close()
			t.Fatal(err)
		}
		tg, err := s.Target(rtp.TargetConfig{Remote: in.Addr(), SRTP: k})
		if err != nil {
			t.Fatal(err)
		}
		return transporttest.Endpoints{RTP: tg, RTCP: tg, Close: func() error {
			tg.Close()
			err := s.Close()
			in.Close()
			if st := in.Stats(); st.Dropped() != 0 {
				t.Errorf("receiver dropped packets: %+v", st)
			}
			return err
		}}
	})
}

func TestConformanceSender(t *testing.T) { senderConformance(t, "127.0.0.1:0", nil) }

func TestConformanceSenderIPv6(t *testing.T) { senderConformance(t, "[::1]:0", nil) }

func TestConformanceSenderSRTP(t *testing.T) {
	senderConformance(t, "127.0.0.1:0", keys(t, rtp.ProfileAEADAES128GCM))
}

// TestSenderFanout queues one packet for each of three receivers and sends
// them with one Flush.
func TestSenderFanout(t *testing.T) {
	s := newSender(t, rtp.SenderConfig{Addr: "127.0.0.1:0"})
	var hs [3]handler
	var targets []*rtp.Target
	for i := range hs {
		in := newIngest(t, rtp.IngestConfig{RTP: &hs[i]})
		targets = append(targets, newTarget(t, s, rtp.TargetConfig{Remote: in.Addr()}))
	}
	for _, tg := range targets {
		if err := tg.WriteRTP(rtpPacket(1, 5, nil)[:12], []byte("fan-out")); err != nil {
			t.Fatal(err)
		}
	}
	if s.Stats().RTPOut != 0 {
		t.Fatal("sent before Flush")
	}
	if targets[0].Batch() != targets[2].Batch() {
		t.Fatal("targets of one sender have different flush points")
	}
	if err := targets[0].Batch().Flush(); err != nil {
		t.Fatal(err)
	}
	for i := range hs {
		eventually(t, "every receiver's packet", func() bool { return hs[i].n.Load() == 1 })
	}
	if st := s.Stats(); st.RTPOut != 3 || st.BytesOut != 3*(12+7) {
		t.Fatalf("stats %+v", st)
	}
	targets[1].Close()
	if err := targets[1].WriteRTP(rtpPacket(2, 5, nil), nil); !errors.Is(err, transport.ErrClosed) {
		t.Fatalf("write to a closed target: %v", err)
	}
	if err := targets[0].WriteRTP(rtpPacket(2, 5, nil), nil); err != nil {
		t.Fatalf("a closed target stopped its neighbours: %v", err)
	}
}

func TestSenderConfig(t *testing.T) {
	for i, err := range []error{
		rtp.SenderConfig{Addr: "nowhere"}.Validate(),
		rtp.SenderConfig{MaxBatch: 2000}.Validate(),
		rtp.TargetConfig{}.Validate(),
		rtp.TargetConfig{Remote: netip.MustParseAddrPort("127.0.0.1:0")}.Validate(),
	} {
		if !errors.Is(err, rtp.ErrInvalidConfig) {
			t.Errorf("config %d: %v, want ErrInvalidConfig", i, err)
		}
	}
}
