package rtp_test

import (
	"testing"

	"github.com/callcore/callcore/transport"
	"github.com/callcore/callcore/transport/rtp"
	"github.com/callcore/callcore/transport/transporttest"
)

// splitter hands an Ingest's packets to the suite's far-end writers.
type splitter struct {
	rtp  transport.RTPWriter
	rtcp transport.RTCPWriter
}

func (s splitter) HandleRTP(b []byte) error  { return s.rtp.WriteRTP(b[:12], b[12:]) }
func (s splitter) HandleRTCP(b []byte) error { return s.rtcp.WriteRTCP(b) }

// conformance runs the suite on an Egress whose receiver is an Ingest.
func conformance(t *testing.T, addr string, mux bool, k *rtp.Keys) {
	transporttest.Run(t, func(t *testing.T, w transport.RTPWriter, rw transport.RTCPWriter) transporttest.Endpoints {
		far := splitter{w, rw}
		in, err := rtp.NewIngest(rtp.IngestConfig{Addr: addr, RTCPMux: mux, RTP: far, RTCP: far, SRTP: k})
		if err != nil {
			t.Fatal(err)
		}
		e, err := rtp.NewEgress(rtp.EgressConfig{Remote: in.Addr(), Addr: addr, RTCPMux: mux, SRTP: k})
		if err != nil {
			in.Close()
			t.Fatal(err)
		}
		return transporttest.Endpoints{RTP: e, RTCP: e, Close: func() error {
			err := e.Close()
			in.Close()
			if s := in.Stats(); s.Dropped() != 0 {
				t.Errorf("receiver dropped packets: %+v", s)
			}
			return err
		}}
	})
}

func TestConformance(t *testing.T) { conformance(t, "127.0.0.1:0", false, nil) }

func TestConformanceMux(t *testing.T) { conformance(t, "127.0.0.1:0", true, nil) }

func TestConformanceIPv6(t *testing.T) { conformance(t, "[::1]:0", false, nil) }

func TestConformanceSRTP(t *testing.T) {
	for _, p := range []rtp.Profile{rtp.ProfileAESCM128SHA1_80, rtp.ProfileAEADAES128GCM} {
		t.Run(p.String(), func(t *testing.T) { conformance(t, "127.0.0.1:0", false, keys(t, p)) })
	}
}

func TestConformanceSRTPMux(t *testing.T) {
	conformance(t, "127.0.0.1:0", true, keys(t, rtp.ProfileAEADAES128GCM))
}
