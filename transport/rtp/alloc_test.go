//go:build !race

package rtp_test

import (
	"testing"
	"time"

	"github.com/callcore/callcore/transport/rtp"
)

// signal tells a waiting test that a packet arrived, without allocating.
type signal chan struct{}

func (s signal) HandleRTP([]byte) error  { s <- struct{}{}; return nil }
func (s signal) HandleRTCP([]byte) error { s <- struct{}{}; return nil }

// wait blocks until the next packet arrived, or fails t at the deadline.
func (s signal) wait(t *testing.T, deadline *time.Timer) {
	deadline.Reset(10 * time.Second)
	select {
	case <-s:
	case <-deadline.C:
		t.Fatal("a packet never arrived")
	}
}

// TestPacketPathsAllocateNothing sends RTP from an Egress to an Ingest and
// RTCP back, and counts the allocations of both ends: the send path, the
// read goroutines and SRTP protect and unprotect.
func TestPacketPathsAllocateNothing(t *testing.T) {
	for _, tc := range []struct {
		name string
		k    *rtp.Keys
		mux  bool
	}{
		{"plain", nil, false},
		{"plain-mux", nil, true},
		{"AES_CM", keys(t, rtp.ProfileAESCM128SHA1_80), false},
		{"GCM-mux", keys(t, rtp.ProfileAEADAES128GCM), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in, out, deadline := make(signal, 1), make(signal, 1), time.NewTimer(time.Hour)
			ing := newIngest(t, rtp.IngestConfig{RTP: in, RTCP: in, SRTP: tc.k, RTCPMux: tc.mux})
			e := newEgress(t, rtp.EgressConfig{Remote: ing.Addr(), Addr: "127.0.0.1:0", RTCP: out, SRTP: tc.k, RTCPMux: tc.mux})
			hdr := rtpPacket(0, 5, nil)[:12]
			payload := make([]byte, 1200)
			seq := uint16(0)
			roundTrip := func() {
				seq++
				hdr[2], hdr[3] = byte(seq>>8), byte(seq)
				if err := e.WriteRTP(hdr, payload); err != nil {
					t.Fatal(err)
				}
				in.wait(t, deadline)
				if err := ing.WriteRTCP(pli); err != nil {
					t.Fatal(err)
				}
				out.wait(t, deadline)
			}
			roundTrip() // the ingest learns its sender once
			if a := testing.AllocsPerRun(500, roundTrip); a != 0 {
				t.Fatalf("%v allocations per round trip, want 0", a)
			}
			if s := ing.Stats(); s.Dropped() != 0 {
				t.Fatalf("ingest dropped: %+v", s)
			}
		})
	}
}

// TestSenderAllocatesNothing queues a packet for a Target, flushes it with
// sendmmsg and sends RTCP, and counts the allocations of both ends.
func TestSenderAllocatesNothing(t *testing.T) {
	for _, k := range []*rtp.Keys{nil, keys(t, rtp.ProfileAEADAES128GCM)} {
		in, deadline := make(signal, 1), time.NewTimer(time.Hour)
		ing := newIngest(t, rtp.IngestConfig{RTP: in, RTCP: in, SRTP: k})
		s := newSender(t, rtp.SenderConfig{Addr: "127.0.0.1:0"})
		tg := newTarget(t, s, rtp.TargetConfig{Remote: ing.Addr(), SRTP: k})
		hdr := rtpPacket(0, 5, nil)[:12]
		payload := make([]byte, 1200)
		seq := uint16(0)
		roundTrip := func() {
			seq++
			hdr[2], hdr[3] = byte(seq>>8), byte(seq)
			if err := tg.WriteRTP(hdr, payload); err != nil {
				t.Fatal(err)
			}
			if err := tg.Batch().Flush(); err != nil {
				t.Fatal(err)
			}
			in.wait(t, deadline)
			if err := tg.WriteRTCP(pli); err != nil {
				t.Fatal(err)
			}
			in.wait(t, deadline)
		}
		roundTrip()
		if a := testing.AllocsPerRun(500, roundTrip); a != 0 {
			t.Fatalf("%v allocations per round trip, want 0", a)
		}
	}
}
