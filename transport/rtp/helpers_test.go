package rtp_test

import (
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/callcore/callcore/internal/poll"
	"github.com/callcore/callcore/internal/rtptest"
	"github.com/callcore/callcore/transport/rtp"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// handler is an RTPHandler and RTCPHandler that counts and keeps copies.
type handler struct {
	n     atomic.Int64
	nrtcp atomic.Int64
	mu    sync.Mutex // guards rtp, rtcp
	rtp   [][]byte
	rtcp  [][]byte
}

func (h *handler) HandleRTP(b []byte) error {
	c := append([]byte(nil), b...)
	h.mu.Lock()
	h.rtp = append(h.rtp, c)
	h.mu.Unlock()
	h.n.Add(1)
	return nil
}

func (h *handler) HandleRTCP(b []byte) error {
	c := append([]byte(nil), b...)
	h.mu.Lock()
	h.rtcp = append(h.rtcp, c)
	h.mu.Unlock()
	h.nrtcp.Add(1)
	return nil
}

func (h *handler) packets() ([][]byte, [][]byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([][]byte(nil), h.rtp...), append([][]byte(nil), h.rtcp...)
}

// eventually polls cond against a deadline.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	poll.Until(t, 10*time.Second, what, cond)
}

func newIngest(t testing.TB, cfg rtp.IngestConfig) *rtp.Ingest {
	t.Helper()
	in, err := rtp.NewIngest(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { in.Close() })
	return in
}

func newEgress(t testing.TB, cfg rtp.EgressConfig) *rtp.Egress {
	t.Helper()
	e, err := rtp.NewEgress(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

// udp opens a plain socket at addr (port 0 for any).
func udp(t testing.TB, addr string) *net.UDPConn {
	t.Helper()
	c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.MustParseAddrPort(addr)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func addrOf(c *net.UDPConn) netip.AddrPort { return c.LocalAddr().(*net.UDPAddr).AddrPort() }

func keys(t testing.TB, p rtp.Profile) *rtp.Keys {
	t.Helper()
	k, err := rtp.NewKeys(p)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// rtpPacket returns a plain RTP packet (payload type 96, timestamp = seq).
func rtpPacket(seq uint16, ssrc uint32, payload []byte) []byte {
	return rtptest.Packet{PayloadType: 96, Seq: seq, Timestamp: uint32(seq), SSRC: ssrc, Payload: payload}.Marshal()
}
