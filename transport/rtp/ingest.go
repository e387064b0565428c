package rtp

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"

	"github.com/pion/rtcp"
	pionrtp "github.com/pion/rtp"
	"github.com/pion/srtp/v3"

	"github.com/callcore/callcore/transport"
)

// IngestConfig configures an Ingest.
type IngestConfig struct {
	// Addr is the local RTP address, "IP:port". RTCP is on the next port
	// unless RTCPMux; with port 0 a free pair of ports is picked. Default
	// "127.0.0.1:0".
	Addr string
	// RTCPMux carries RTCP on the RTP port (RFC 5761) instead of the next
	// port, both ways.
	RTCPMux bool
	// RTP receives each RTP packet, unprotected: the core's track.
	// Required.
	RTP transport.RTPHandler
	// RTCP receives each compound RTCP packet from the sender, typically
	// sender reports. Optional: without it RTCP is counted and dropped.
	RTCP transport.RTCPHandler
	// SRTP, when set, makes the ingest speak SRTP: it protects the RTCP it
	// sends with these keys and unprotects what the sender sends with them
	// too, unless RemoteSRTP is set. Default: plain RTP.
	SRTP *Keys
	// RemoteSRTP are the keys the sender protects with, when they differ
	// from SRTP (SDES gives each side its own). Needs SRTP. Default SRTP.
	RemoteSRTP *Keys
	// Source, when valid, is the only address RTP is accepted from, and
	// RTCP only from its IP. Default: the address of the first packet that
	// passes every check (SRTP authentication included) becomes the only
	// source.
	Source netip.AddrPort
	// SSRC, when nonzero, is the only SSRC accepted. Default any: the core
	// adopts the first one it sees.
	SSRC uint32
	// MaxPacketSize is the largest datagram accepted, SRTP overhead
	// included; larger ones are dropped and counted. Default 1500, at
	// most 65535.
	MaxPacketSize int
	// ReadBuffer is the receive buffer asked of the kernel for each socket
	// (SO_RCVBUF, capped by net.core.rmem_max). Default 1 MiB.
	ReadBuffer int
}

func (c *IngestConfig) setDefaults() {
	if c.Addr == "" {
		c.Addr = "127.0.0.1:0"
	}
	if c.MaxPacketSize == 0 {
		c.MaxPacketSize = 1500
	}
	if c.ReadBuffer == 0 {
		c.ReadBuffer = 1 << 20
	}
	if c.RemoteSRTP == nil {
		c.RemoteSRTP = c.SRTP
	}
}

// Validate reports whether the config, with defaults applied for zero
// fields, is usable. Errors wrap ErrInvalidConfig or ErrInvalidKeys.
func (c IngestConfig) Validate() error {
	if c.RemoteSRTP != nil && c.SRTP == nil {
		return fmt.Errorf("%w: RemoteSRTP without SRTP", ErrInvalidConfig)
	}
	c.setDefaults()
	if _, err := parseAddr(c.Addr, netip.AddrPort{}); err != nil {
		return err
	}
	switch {
	case c.RTP == nil:
		return fmt.Errorf("%w: nil RTP handler", ErrInvalidConfig)
	case c.MaxPacketSize < 12 || c.MaxPacketSize > 65535:
		return fmt.Errorf("%w: max packet size %d", ErrInvalidConfig, c.MaxPacketSize)
	case c.ReadBuffer < 0:
		return fmt.Errorf("%w: read buffer %d", ErrInvalidConfig, c.ReadBuffer)
	}
	return validateKeys(c.SRTP, c.RemoteSRTP)
}

func validateKeys(ks ...*Keys) error {
	for _, k := range ks {
		if k == nil {
			continue
		}
		if err := k.Validate(); err != nil {
			return err
		}
	}
	return nil
}

// Ingest receives one publisher's RTP and RTCP over UDP, plain or SRTP,
// and hands the packets to the core. One goroutine reads each socket; a
// bad datagram is counted and dropped, never stops it.
type Ingest struct {
	cfg    IngestConfig
	rtpc   *net.UDPConn
	rtcpc  *net.UDPConn // nil with RTCPMux
	cnt    counters
	wg     sync.WaitGroup
	closed atomic.Bool

	peer     atomic.Pointer[netip.AddrPort] // the sender's RTP address; set once by the RTP reader
	rtcpPeer atomic.Pointer[netip.AddrPort] // the sender's RTCP address; set once by a reader

	readers []*reader // one per socket, each owned by its read goroutine

	out rtcpPath // RTCP to the sender
}

// reader is the state of one socket's read goroutine, owned by it.
type reader struct {
	conn *net.UDPConn
	buf  []byte
	ctx  *srtp.Context // unprotects; nil for plain RTP
	hdr  pionrtp.Header
	chdr rtcp.Header
	rtcp bool // the socket carries only RTCP
}

// NewIngest opens the sockets and starts reading.
func NewIngest(cfg IngestConfig) (*Ingest, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.setDefaults()
	local, _ := parseAddr(cfg.Addr, netip.AddrPort{})
	rtpc, rtcpc, err := openPair(local, netip.AddrPort{}, netip.AddrPort{}, cfg.RTCPMux)
	if err != nil {
		return nil, err
	}
	in := &Ingest{cfg: cfg, rtpc: rtpc, rtcpc: rtcpc}
	if err := in.setup(); err != nil {
		in.closeSockets()
		return nil, err
	}
	for _, r := range in.readers {
		in.wg.Add(1)
		go in.read(r)
	}
	return in, nil
}

func (in *Ingest) setup() error {
	conns := []*net.UDPConn{in.rtpc}
	if in.rtcpc != nil {
		conns = append(conns, in.rtcpc)
	}
	for i, c := range conns {
		if err := c.SetReadBuffer(in.cfg.ReadBuffer); err != nil {
			return err
		}
		r := &reader{conn: c, buf: make([]byte, in.cfg.MaxPacketSize+1), rtcp: i == 1}
		if in.cfg.RemoteSRTP != nil {
			ctx, err := newContext(in.cfg.RemoteSRTP)
			if err != nil {
				return err
			}
			r.ctx = ctx
		}
		in.readers = append(in.readers, r)
	}
	return in.out.init(conns[len(conns)-1], in.cfg.SRTP, in.cfg.MaxPacketSize) // out of the RTCP socket
}

func (in *Ingest) closeSockets() {
	in.rtpc.Close()
	if in.rtcpc != nil {
		in.rtcpc.Close()
	}
}

func (in *Ingest) read(r *reader) {
	defer in.wg.Done()
	for {
		n, from, err := r.conn.ReadFromUDPAddrPort(r.buf)
		if err != nil {
			if in.closed.Load() || isClosed(err) {
				return
			}
			in.cnt.readErrors.Add(1)
			continue
		}
		// A dual-stack socket reports IPv4 senders as ::ffff:a.b.c.d.
		in.handle(r, r.buf[:n], netip.AddrPortFrom(from.Addr().Unmap(), from.Port()))
	}
}

// handle takes one datagram read by r. Every datagram is counted once in
// RTPIn, RTCPIn or one of the drop counters.
func (in *Ingest) handle(r *reader, b []byte, from netip.AddrPort) {
	switch {
	case len(b) > in.cfg.MaxPacketSize:
		in.cnt.oversized.Add(1)
	case r.rtcp || (in.cfg.RTCPMux && isRTCP(b)):
		in.handleRTCP(r, b, from)
	default:
		in.handleRTP(r, b, from)
	}
}

func (in *Ingest) handleRTP(r *reader, b []byte, from netip.AddrPort) {
	if !validRTP(b) {
		in.cnt.malformed.Add(1)
		return
	}
	peer := in.peer.Load()
	if (in.cfg.Source.IsValid() && from != in.cfg.Source) || (peer != nil && *peer != from) {
		in.cnt.unknownSource.Add(1)
		return
	}
	if in.cfg.SSRC != 0 && binary.BigEndian.Uint32(b[8:]) != in.cfg.SSRC {
		in.cnt.unknownSSRC.Add(1)
		return
	}
	n := len(b)
	if r.ctx != nil {
		var err error
		if b, err = r.ctx.DecryptRTP(b, b, &r.hdr); err != nil {
			in.cnt.countUnprotectError(err)
			return
		}
	}
	if peer == nil {
		p := from
		in.peer.Store(&p)
	}
	in.cnt.rtpIn.Add(1)
	in.cnt.bytesIn.Add(uint64(n))
	if err := in.cfg.RTP.HandleRTP(b); err != nil {
		in.cnt.refused.Add(1)
	}
}

func (in *Ingest) handleRTCP(r *reader, b []byte, from netip.AddrPort) {
	// Before the sender is known RTCP is taken from anyone, but only RTCP
	// from the sender's IP says where RTCP goes back.
	src := in.cfg.Source
	if p := in.peer.Load(); !src.IsValid() && p != nil {
		src = *p
	}
	if src.IsValid() && src.Addr() != from.Addr() {
		in.cnt.unknownSource.Add(1)
		return
	}
	pkt, ok := in.cnt.takeRTCP(r, b)
	if !ok {
		return
	}
	if src.IsValid() && in.rtcpPeer.Load() == nil {
		p := from
		in.rtcpPeer.Store(&p)
	}
	in.cnt.deliverRTCP(in.cfg.RTCP, pkt, len(b))
}

// WriteRTCP sends one compound RTCP packet (PLI, FIR, NACK, receiver
// reports) to the sender: to the address its RTCP comes from, else to its
// RTP port + 1 (the same port with RTCPMux). It returns ErrNoPeer before
// any packet arrived from a sender, unless Source is set. It never blocks.
func (in *Ingest) WriteRTCP(pkt []byte) error {
	if in.closed.Load() {
		return transport.ErrClosed
	}
	dst, ok := in.rtcpDest()
	if !ok {
		return ErrNoPeer
	}
	return in.out.write(&in.cnt, pkt, dst)
}

func (in *Ingest) rtcpDest() (netip.AddrPort, bool) {
	if p := in.rtcpPeer.Load(); p != nil {
		return *p, true
	}
	if p := in.peer.Load(); p != nil {
		return rtcpPort(*p, in.cfg.RTCPMux), true
	}
	if in.cfg.Source.IsValid() {
		return rtcpPort(in.cfg.Source, in.cfg.RTCPMux), true
	}
	return netip.AddrPort{}, false
}

// Addr returns the local RTP address.
func (in *Ingest) Addr() netip.AddrPort { return localAddr(in.rtpc) }

// RTCPAddr returns the local RTCP address: the next port, or Addr with
// RTCPMux.
func (in *Ingest) RTCPAddr() netip.AddrPort {
	if in.rtcpc == nil {
		return in.Addr()
	}
	return localAddr(in.rtcpc)
}

// Sender returns the sender's RTP address once a packet from it passed
// every check, or Source.
func (in *Ingest) Sender() (netip.AddrPort, bool) {
	if p := in.peer.Load(); p != nil {
		return *p, true
	}
	return in.cfg.Source, in.cfg.Source.IsValid()
}

// ForgetSender drops the learnt sender, so the next packet that passes
// every check locks the ingest again: for a sender that restarted from
// another port. It has no effect on a configured Source.
func (in *Ingest) ForgetSender() {
	in.peer.Store(nil)
	in.rtcpPeer.Store(nil)
}

// Stats returns the ingest's counters.
func (in *Ingest) Stats() Stats { return in.cnt.stats() }

// Close stops the read goroutines and waits for them. Later writes return
// transport.ErrClosed. Close may be called more than once.
func (in *Ingest) Close() error {
	if in.closed.Swap(true) {
		return nil
	}
	in.closeSockets()
	in.wg.Wait()
	return nil
}
