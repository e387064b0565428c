package webrtc

import (
	"errors"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"
	"golang.org/x/net/ipv4"

	"github.com/callcore/callcore/transport"
)

// maxBatch bounds the datagrams a batchConn holds: a full batch is sent
// at once rather than wait for the flush.
const maxBatch = 64

// batchSlot is the size of a batch slot; a larger datagram is sent at once.
const batchSlot = 2048

// srtpOverhead bounds what SRTP adds to an RTP packet (a 16-byte AEAD tag,
// or a 10-byte HMAC tag and a 4-byte MKI-less ROC, with room to spare).
const srtpOverhead = 32

var errTooLarge = errors.New("webrtc: RTP packet too large for a batch slot")

// batchConn is the UDP mux's socket when it is IPv4: the RTP datagrams
// pion writes to it (the SRTP output of the subscriptions' writers) are
// copied into a preallocated ring and sent together with one sendmmsg
// when the core flushes after a fan-out (transport.Flusher). Everything
// else (STUN, DTLS, SRTCP) goes out at once. Every RTP datagram pion
// writes on the server comes from an rtpOut, and every rtpOut write is
// followed by a Flush: the core's after a fan-out, the subscription's RTCP
// loop's after the core answered NACKs. So nothing waits for a batch to
// fill, and a batch never holds more than maxBatch datagrams.
//
// It implements ice.AddrPortReaderWriter so pion's mux writes with
// netip.AddrPort (no allocation).
type batchConn struct {
	conn *net.UDPConn
	bw   *ipv4.PacketConn

	mu    sync.Mutex     // guards msgs, iov, bufs, addrs, n: the batch
	msgs  []ipv4.Message // msgs[i].Buffers is iov[i:i+1], msgs[i].Addr is &addrs[i]
	iov   [][]byte
	bufs  [][]byte
	addrs []net.UDPAddr
	n     int
	at    uint32 // sendClock time of the batch's first datagram

	clock sendClock
}

func newBatchConn(conn *net.UDPConn, clock sendClock) *batchConn {
	c := &batchConn{conn: conn, bw: ipv4.NewPacketConn(conn), clock: clock,
		msgs: make([]ipv4.Message, maxBatch), iov: make([][]byte, maxBatch),
		bufs: make([][]byte, maxBatch), addrs: make([]net.UDPAddr, maxBatch)}
	for i := range c.msgs {
		c.bufs[i] = make([]byte, batchSlot)
		c.addrs[i].IP = make(net.IP, 4)
		c.msgs[i].Buffers = c.iov[i : i+1]
		c.msgs[i].Addr = &c.addrs[i]
	}
	return c
}

// isRTP reports whether b is an RTP (not RTCP) packet (RFC 7983, RFC 5761).
func isRTP(b []byte) bool {
	return len(b) >= 12 && b[0] >= 128 && b[0] <= 191 && (b[1] < 192 || b[1] > 223)
}

func (c *batchConn) WriteToAddrPort(b []byte, to netip.AddrPort) (int, error) {
	if !isRTP(b) || !to.Addr().Unmap().Is4() || len(b) > batchSlot {
		return c.conn.WriteToUDPAddrPort(b, to)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == maxBatch {
		if err := c.flushLocked(); err != nil && errors.Is(err, net.ErrClosed) {
			return 0, err
		}
	}
	i := c.n
	c.iov[i] = c.bufs[i][:copy(c.bufs[i][:len(b)], b)]
	ip := to.Addr().Unmap().As4()
	copy(c.addrs[i].IP, ip[:])
	c.addrs[i].Port = int(to.Port())
	c.n++
	return len(b), nil
}

// writeSRTP copies the RTP packet header+payload into a slot and encrypts
// it there in place with ctx (the one copy of the packet), addressed to
// to. hdr is the caller's scratch header, parsed from the packet. It
// returns the batch's time (sendClock), read once per batch.
func (c *batchConn) writeSRTP(ctx *srtp.Context, hdr *rtp.Header, header, payload []byte, to netip.AddrPort) (uint32, error) {
	n := len(header) + len(payload)
	if n+srtpOverhead > batchSlot || !to.Addr().Is4() {
		return 0, errTooLarge
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == maxBatch {
		if err := c.flushLocked(); err != nil && errors.Is(err, net.ErrClosed) {
			return 0, err
		}
	}
	if c.n == 0 {
		c.at = c.clock.now()
	}
	i := c.n
	buf := c.bufs[i]
	copy(buf[copy(buf, header):n], payload)
	out, err := ctx.EncryptRTP(buf, buf[:n], hdr)
	if err != nil {
		return 0, err
	}
	c.iov[i] = out
	ip := to.Addr().As4()
	copy(c.addrs[i].IP, ip[:])
	c.addrs[i].Port = int(to.Port())
	c.n++
	return c.at, nil
}

func (c *batchConn) WriteTo(b []byte, to net.Addr) (int, error) {
	if u, ok := to.(*net.UDPAddr); ok {
		return c.WriteToAddrPort(b, u.AddrPort())
	}
	return c.conn.WriteTo(b, to)
}

// Flush sends the batch with one sendmmsg (more when the kernel takes
// part of it).
func (c *batchConn) Flush() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.flushLocked()
}

func (c *batchConn) flushLocked() error {
	msgs := c.msgs[:c.n]
	c.n = 0
	var first error
	for len(msgs) > 0 {
		n, err := c.bw.WriteBatch(msgs, 0)
		msgs = msgs[max(n, 0):]
		if err == nil {
			continue
		}
		if errors.Is(err, net.ErrClosed) {
			return err
		}
		if first == nil {
			first = err
		}
		if len(msgs) > 0 {
			msgs = msgs[1:] // the one the kernel refused
		}
	}
	return first
}

func (c *batchConn) ReadFromAddrPort(b []byte) (int, netip.AddrPort, error) {
	return c.conn.ReadFromUDPAddrPort(b)
}

func (c *batchConn) ReadFrom(b []byte) (int, net.Addr, error) { return c.conn.ReadFrom(b) }
func (c *batchConn) Close() error                             { return c.conn.Close() }
func (c *batchConn) LocalAddr() net.Addr                      { return c.conn.LocalAddr() }
func (c *batchConn) SetDeadline(t time.Time) error            { return c.conn.SetDeadline(t) }
func (c *batchConn) SetReadDeadline(t time.Time) error        { return c.conn.SetReadDeadline(t) }
func (c *batchConn) SetWriteDeadline(t time.Time) error       { return c.conn.SetWriteDeadline(t) }

// noFlush is the flusher of writers whose sends are not batched.
type noFlush struct{}

func (noFlush) Flush() error { return nil }

var (
	_ net.PacketConn    = (*batchConn)(nil)
	_ transport.Flusher = (*batchConn)(nil)
)
