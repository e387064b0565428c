package rtp

import (
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"

	pionrtp "github.com/pion/rtp"
	"github.com/pion/srtp/v3"

	"github.com/callcore/callcore/transport"
)

// EgressConfig configures an Egress.
type EgressConfig struct {
	// Remote is the receiver's RTP address. Its RTCP is at the next port
	// unless RTCPMux. Required.
	Remote netip.AddrPort
	// RTCPMux carries RTCP on the RTP port (RFC 5761) instead of the next
	// port, both ways.
	RTCPMux bool
	// Addr is the local RTP address, "IP:port"; the local RTCP port is the
	// next one unless RTCPMux. Default the unspecified address of Remote's
	// family and a free pair of ports. The sockets are connected to the
	// receiver, so the kernel drops datagrams from anyone else.
	Addr string
	// RTCP receives each compound RTCP packet from the receiver (receiver
	// reports, NACK, PLI, FIR), typically the core's subscriber. Optional:
	// without it RTCP is counted and dropped.
	RTCP transport.RTCPHandler
	// SRTP, when set, protects what the egress sends; it also unprotects
	// the receiver's RTCP unless RemoteSRTP is set. Default: plain RTP.
	SRTP *Keys
	// RemoteSRTP are the keys the receiver protects its RTCP with, when
	// they differ from SRTP. Needs SRTP. Default SRTP.
	RemoteSRTP *Keys
	// MaxPacketSize is the largest datagram sent or received, SRTP
	// overhead included. Default 1500, at most 65535.
	MaxPacketSize int
}

func (c *EgressConfig) setDefaults() {
	if c.MaxPacketSize == 0 {
		c.MaxPacketSize = 1500
	}
	if c.RemoteSRTP == nil {
		c.RemoteSRTP = c.SRTP
	}
}

func (c *EgressConfig) local() (netip.AddrPort, error) {
	def := netip.AddrPortFrom(netip.IPv4Unspecified(), 0)
	if c.Remote.Addr().Is6() && !c.Remote.Addr().Is4In6() {
		def = netip.AddrPortFrom(netip.IPv6Unspecified(), 0)
	}
	return parseAddr(c.Addr, def)
}

// Validate reports whether the config, with defaults applied for zero
// fields, is usable. Errors wrap ErrInvalidConfig or ErrInvalidKeys.
func (c EgressConfig) Validate() error {
	if c.RemoteSRTP != nil && c.SRTP == nil {
		return fmt.Errorf("%w: RemoteSRTP without SRTP", ErrInvalidConfig)
	}
	c.setDefaults()
	if _, err := c.local(); err != nil {
		return err
	}
	switch {
	case !c.Remote.IsValid() || c.Remote.Port() == 0 || (!c.RTCPMux && c.Remote.Port() == 65535):
		return fmt.Errorf("%w: remote %v", ErrInvalidConfig, c.Remote)
	case c.MaxPacketSize < 12 || c.MaxPacketSize > 65535:
		return fmt.Errorf("%w: max packet size %d", ErrInvalidConfig, c.MaxPacketSize)
	}
	return validateKeys(c.SRTP, c.RemoteSRTP)
}

// Egress sends one subscriber's stream to an external receiver: give it as
// the subscriber's Writer. WriteRTP joins header and payload in one buffer,
// protects it there with SRTP and sends it in one system call, never
// waiting: when the socket cannot take it, the packet is dropped and
// counted. One goroutine reads the receiver's RTCP.
type Egress struct {
	cfg    EgressConfig
	rtpc   *net.UDPConn
	rtcpc  *net.UDPConn // nil with RTCPMux
	cnt    counters
	wg     sync.WaitGroup
	closed atomic.Bool

	// The RTP send path, owned by the one goroutine calling WriteRTP.
	out  sender
	buf  []byte
	ctx  *srtp.Context // nil for plain RTP
	hdr  pionrtp.Header
	over int // bytes SRTP adds

	rtcpOut rtcpPath // RTCP to the receiver

	in reader // owned by the read goroutine
}

// NewEgress opens the sockets, connected to the receiver, and starts
// reading its RTCP.
func NewEgress(cfg EgressConfig) (*Egress, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.setDefaults()
	local, _ := cfg.local()
	rtpc, rtcpc, err := openPair(local, cfg.Remote, rtcpPort(cfg.Remote, false), cfg.RTCPMux)
	if err != nil {
		return nil, err
	}
	e := &Egress{cfg: cfg, rtpc: rtpc, rtcpc: rtcpc,
		buf: make([]byte, cfg.MaxPacketSize)}
	if err := e.setup(); err != nil {
		e.closeSockets()
		return nil, err
	}
	e.wg.Add(1)
	go e.read()
	return e, nil
}

func (e *Egress) setup() error {
	rc := e.rtcpConn()
	e.in = reader{conn: rc, buf: make([]byte, e.cfg.MaxPacketSize+1)}
	if err := e.out.init(e.rtpc); err != nil {
		return err
	}
	if err := e.rtcpOut.init(rc, e.cfg.SRTP, e.cfg.MaxPacketSize); err != nil {
		return err
	}
	if e.cfg.SRTP == nil {
		return nil
	}
	e.over = e.cfg.SRTP.Profile.Overhead()
	var err error
	if e.ctx, err = newContext(e.cfg.SRTP); err != nil {
		return err
	}
	e.in.ctx, err = newContext(e.cfg.RemoteSRTP)
	return err
}

func (e *Egress) rtcpConn() *net.UDPConn {
	if e.rtcpc != nil {
		return e.rtcpc
	}
	return e.rtpc
}

func (e *Egress) closeSockets() {
	e.rtpc.Close()
	if e.rtcpc != nil {
		e.rtcpc.Close()
	}
}

// WriteRTP sends one RTP packet. It returns ErrWouldBlock when the packet
// was dropped for a full send buffer, an error wrapping ErrSend when the
// kernel refused it (the receiver's port is not open yet, say), and
// transport.ErrClosed after Close. It must be called from one goroutine at
// a time.
func (e *Egress) WriteRTP(header, payload []byte) error {
	if e.closed.Load() {
		return transport.ErrClosed
	}
	n := len(header) + len(payload)
	if n+e.over > len(e.buf) {
		e.cnt.oversized.Add(1)
		return ErrOversized
	}
	b := e.buf[:n]
	copy(b[copy(b, header):], payload)
	b, err := protectRTP(e.ctx, &e.hdr, b)
	if err != nil {
		e.cnt.malformed.Add(1)
		return err
	}
	return e.cnt.countSend(e.out.send(b), len(b), &e.cnt.rtpOut)
}

// WriteRTCP sends one compound RTCP packet (sender reports) to the
// receiver. It never blocks and is safe for concurrent use.
func (e *Egress) WriteRTCP(pkt []byte) error {
	if e.closed.Load() {
		return transport.ErrClosed
	}
	return e.rtcpOut.write(&e.cnt, pkt, netip.AddrPort{})
}

func (e *Egress) read() {
	defer e.wg.Done()
	r := &e.in
	for {
		n, err := r.conn.Read(r.buf)
		if err != nil {
			if e.closed.Load() || isClosed(err) {
				return
			}
			e.cnt.readErrors.Add(1) // ICMP port unreachable while the receiver starts
			continue
		}
		b := r.buf[:n]
		if n > e.cfg.MaxPacketSize {
			e.cnt.oversized.Add(1)
			continue
		}
		e.handleRTCP(r, b)
	}
}

func (e *Egress) handleRTCP(r *reader, b []byte) {
	if !isRTCP(b) {
		e.cnt.malformed.Add(1)
		return
	}
	if pkt, ok := e.cnt.takeRTCP(r, b); ok {
		e.cnt.deliverRTCP(e.cfg.RTCP, pkt, len(b))
	}
}

// Addr returns the local RTP address.
func (e *Egress) Addr() netip.AddrPort { return localAddr(e.rtpc) }

// RTCPAddr returns the local RTCP address.
func (e *Egress) RTCPAddr() netip.AddrPort { return localAddr(e.rtcpConn()) }

// Stats returns the egress's counters.
func (e *Egress) Stats() Stats { return e.cnt.stats() }

// Close stops the read goroutine and waits for it. Later writes return
// transport.ErrClosed. Close may be called more than once.
func (e *Egress) Close() error {
	if e.closed.Swap(true) {
		return nil
	}
	e.closeSockets()
	e.wg.Wait()
	return nil
}
