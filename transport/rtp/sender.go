package rtp

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"

	pionrtp "github.com/pion/rtp"
	"github.com/pion/srtp/v3"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"

	"github.com/callcore/callcore/transport"
)

// SenderConfig configures a Sender.
type SenderConfig struct {
	// Addr is the local address of the shared socket, "IP:port". Default
	// "0.0.0.0:0"; use an IPv6 address to reach IPv6 receivers.
	Addr string
	// MaxPacketSize is the largest datagram sent, SRTP overhead included.
	// Default 1500, at most 65535.
	MaxPacketSize int
	// MaxBatch is how many datagrams are queued before a Flush; a full
	// queue is sent at once rather than wait. Default 64, at most 1024.
	MaxBatch int
}

func (c *SenderConfig) setDefaults() {
	if c.Addr == "" {
		c.Addr = "0.0.0.0:0"
	}
	if c.MaxPacketSize == 0 {
		c.MaxPacketSize = 1500
	}
	if c.MaxBatch == 0 {
		c.MaxBatch = 64
	}
}

// Validate reports whether the config, with defaults applied for zero
// fields, is usable. Errors wrap ErrInvalidConfig.
func (c SenderConfig) Validate() error {
	c.setDefaults()
	if _, err := parseAddr(c.Addr, netip.AddrPort{}); err != nil {
		return err
	}
	switch {
	case c.MaxPacketSize < 12 || c.MaxPacketSize > 65535:
		return fmt.Errorf("%w: max packet size %d", ErrInvalidConfig, c.MaxPacketSize)
	case c.MaxBatch < 1 || c.MaxBatch > 1024:
		return fmt.Errorf("%w: max batch %d", ErrInvalidConfig, c.MaxBatch)
	}
	return nil
}

// batchWriter is the WriteBatch of ipv4.PacketConn and ipv6.PacketConn.
type batchWriter interface {
	WriteBatch(ms []ipv4.Message, flags int) (int, error)
}

// Sender is one UDP socket shared by the Targets of many receivers: what
// their WriteRTP queues goes out at Flush in one sendmmsg system call
// (transport.Batcher), so a fan-out costs one system call, not one per
// subscriber. It only sends: receivers' RTCP is not read.
type Sender struct {
	cfg    SenderConfig
	conn   *net.UDPConn
	bw     batchWriter
	cnt    counters
	closed atomic.Bool

	mu   sync.Mutex     // guards msgs, iov, bufs, n: the queue
	msgs []ipv4.Message // msgs[i].Buffers is iov[i:i+1]
	iov  [][]byte       // iov[i] is bufs[i] cut to the queued datagram
	bufs [][]byte
	n    int // datagrams queued
}

// NewSender opens the shared socket.
func NewSender(cfg SenderConfig) (*Sender, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.setDefaults()
	local, _ := parseAddr(cfg.Addr, netip.AddrPort{})
	c, err := openUDP(local, netip.AddrPort{})
	if err != nil {
		return nil, err
	}
	s := &Sender{cfg: cfg, conn: c, msgs: make([]ipv4.Message, cfg.MaxBatch),
		iov: make([][]byte, cfg.MaxBatch), bufs: make([][]byte, cfg.MaxBatch)}
	if local.Addr().Is4() {
		s.bw = ipv4.NewPacketConn(c)
	} else {
		s.bw = ipv6.NewPacketConn(c)
	}
	for i := range s.msgs {
		s.bufs[i] = make([]byte, cfg.MaxPacketSize)
		s.msgs[i].Buffers = s.iov[i : i+1]
	}
	return s, nil
}

// TargetConfig configures one receiver of a Sender.
type TargetConfig struct {
	// Remote is the receiver's RTP address. Required.
	Remote netip.AddrPort
	// RTCPMux sends RTCP to Remote's port instead of the next one.
	RTCPMux bool
	// SRTP, when set, protects what the target sends. Default plain RTP.
	SRTP *Keys
}

// Validate reports whether the config is usable. Errors wrap
// ErrInvalidConfig or ErrInvalidKeys.
func (c TargetConfig) Validate() error {
	if !c.Remote.IsValid() || c.Remote.Port() == 0 || (!c.RTCPMux && c.Remote.Port() == 65535) {
		return fmt.Errorf("%w: remote %v", ErrInvalidConfig, c.Remote)
	}
	return validateKeys(c.SRTP)
}

// Target is one receiver's stream sent through a shared Sender. It is a
// transport.RTPWriter and transport.Batcher: give it as a subscriber's
// Writer, and the core flushes the Sender after each fan-out.
type Target struct {
	s      *Sender
	to     *net.UDPAddr // read by WriteBatch; never changes
	rtcpTo netip.AddrPort
	closed atomic.Bool
	ctx    *srtp.Context  // guarded by s.mu; nil for plain RTP
	hdr    pionrtp.Header // guarded by s.mu
	over   int            // bytes SRTP adds to RTP
	rtcp   rtcpPath       // RTCP to the receiver, on the shared socket
}

// Target adds a receiver.
func (s *Sender) Target(cfg TargetConfig) (*Target, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	t := &Target{s: s, to: net.UDPAddrFromAddrPort(cfg.Remote), rtcpTo: rtcpPort(cfg.Remote, cfg.RTCPMux)}
	if cfg.SRTP != nil {
		var err error
		if t.ctx, err = newContext(cfg.SRTP); err != nil {
			return nil, err
		}
		t.over = cfg.SRTP.Profile.Overhead()
	}
	if err := t.rtcp.init(s.conn, cfg.SRTP, s.cfg.MaxPacketSize); err != nil {
		return nil, err
	}
	return t, nil
}

// WriteRTP queues one packet until the Sender's Flush; a full queue is
// sent first. Errors are those of Egress.WriteRTP.
func (t *Target) WriteRTP(header, payload []byte) error {
	s := t.s
	if t.closed.Load() || s.closed.Load() {
		return transport.ErrClosed
	}
	n := len(header) + len(payload)
	if n+t.over > s.cfg.MaxPacketSize {
		s.cnt.oversized.Add(1)
		return ErrOversized
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var err error
	if s.n == len(s.msgs) {
		err = s.flushLocked()
	}
	b := s.bufs[s.n][:n]
	copy(b[copy(b, header):], payload)
	b, perr := protectRTP(t.ctx, &t.hdr, b)
	if perr != nil {
		s.cnt.malformed.Add(1)
		return perr
	}
	s.iov[s.n] = b
	s.msgs[s.n].Addr = t.to
	s.n++
	return err
}

// WriteRTCP sends one compound RTCP packet to the receiver at once.
func (t *Target) WriteRTCP(pkt []byte) error {
	s := t.s
	if t.closed.Load() || s.closed.Load() {
		return transport.ErrClosed
	}
	return t.rtcp.write(&s.cnt, pkt, t.rtcpTo)
}

// Batch returns the Sender, flushed by the core after each fan-out.
func (t *Target) Batch() transport.Flusher { return t.s }

// Close stops the target: later writes return transport.ErrClosed. What
// it queued is still sent at the next Flush.
func (t *Target) Close() error {
	t.closed.Store(true)
	return nil
}

// Flush sends every queued datagram with sendmmsg, never waiting: when
// the socket's buffer is full the rest are dropped and counted.
func (s *Sender) Flush() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.flushLocked()
}

func (s *Sender) flushLocked() error {
	msgs := s.msgs[:s.n]
	s.n = 0
	var first error
	for len(msgs) > 0 {
		n, err := s.bw.WriteBatch(msgs, dontWait)
		n = max(n, 0)
		for i := range n {
			s.cnt.bytesOut.Add(uint64(msgs[i].N))
		}
		s.cnt.rtpOut.Add(uint64(n))
		msgs = msgs[n:]
		if err == nil {
			continue
		}
		switch {
		case errors.Is(err, net.ErrClosed):
			return transport.ErrClosed
		case errors.Is(err, syscall.EAGAIN):
			s.cnt.wouldBlock.Add(uint64(len(msgs)))
			return ErrWouldBlock
		}
		s.cnt.sendErrors.Add(1)
		if first == nil {
			first = fmt.Errorf("%w: %w", ErrSend, err)
		}
		if len(msgs) > 0 {
			msgs = msgs[1:] // the one the kernel refused
		}
	}
	return first
}

// Addr returns the shared socket's local address.
func (s *Sender) Addr() netip.AddrPort { return localAddr(s.conn) }

// Stats returns the counters of every target's sends.
func (s *Sender) Stats() Stats { return s.cnt.stats() }

// Close closes the socket; queued datagrams are dropped and later writes
// return transport.ErrClosed. Close may be called more than once.
func (s *Sender) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	return s.conn.Close()
}
