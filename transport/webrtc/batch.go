package webrtc

import (
	"errors"
	"net"
	"net/netip"
	"sync"

	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"

	"github.com/callcore/callcore/forward"
	"github.com/callcore/callcore/transport"
)

// maxBatch bounds the datagrams a batch holds: a full batch is sent at
// once rather than wait for the flush.
const maxBatch = 64

// batchSlot is the size of a batch slot.
const batchSlot = 2048

// maxSend bounds the datagrams of one sendmmsg: a batch is sent in
// chunks of at most this many, of equal size. On loopback a datagram costs
// about 3 µs of system call (the receive side runs in it), and the Go
// runtime hands a goroutine's P to other work when a system call lasts
// more than one sysmon tick (20 µs): the sender then waits for a P when
// the call returns. Shorter calls keep the P (BenchmarkWebRTCFanout at 50
// subscribers: one call of 50 left the sender waiting a quarter of its
// time).
const maxSend = 8

// srtpOverhead bounds what SRTP adds to an RTP packet (a 16-byte AEAD tag,
// or a 10-byte HMAC tag and a 4-byte ROC, with room to spare).
const srtpOverhead = 32

var errTooLarge = errors.New("webrtc: RTP packet too large for a batch slot, or its peer unreachable from the socket")

// sendSock is the engine's UDP mux socket: pion's mux reads and writes
// it (STUN, DTLS, SRTCP, RTP of writers not yet on the direct path: each
// datagram at once), and the subscriptions' writers on the direct path
// send their SRTP datagrams on it, batched per track.
//
// An IPv4 socket takes IPv4 peers only; an IPv6 one (an IPv6 address, or
// every address of both families) takes IPv6 peers and, as IPv4-mapped
// addresses, IPv4 ones: sendmmsg's addresses are the socket family's
// (ipv4.PacketConn or ipv6.PacketConn builds them).
type sendSock struct {
	conn  *net.UDPConn
	bw    batchWriter
	v6    bool // the socket is AF_INET6
	clock sendClock

	mu      sync.Mutex // guards batches (subscribe and close, never the packet path)
	batches map[*forward.Track]*trackBatch
}

// batchWriter is sendmmsg: ipv4.PacketConn or ipv6.PacketConn (their
// Message is the same type).
type batchWriter interface {
	WriteBatch(ms []ipv4.Message, flags int) (int, error)
}

func newSendSock(conn *net.UDPConn, clock sendClock) *sendSock {
	s := &sendSock{conn: conn, clock: clock, batches: map[*forward.Track]*trackBatch{}}
	if s.v6 = v6Socket(conn); s.v6 {
		s.bw = ipv6.NewPacketConn(conn)
	} else {
		s.bw = ipv4.NewPacketConn(conn)
	}
	return s
}

// reaches reports whether the socket can send to to (an IPv4 socket
// cannot reach IPv6 peers).
func (s *sendSock) reaches(to netip.AddrPort) bool {
	return to.IsValid() && (s.v6 || to.Addr().Is4())
}

// acquire returns the batch of track's subscriptions on this engine.
func (s *sendSock) acquire(track *forward.Track) *trackBatch {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.batches[track]
	if b == nil {
		b = newTrackBatch(s, track.Config().Pool != nil)
		s.batches[track] = b
	}
	b.refs++
	return b
}

// release drops a subscription's hold on its track's batch.
func (s *sendSock) release(track *forward.Track, b *trackBatch) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if b.refs--; b.refs == 0 && s.batches[track] == b {
		delete(s.batches, track)
	}
}

// trackBatch holds the SRTP datagrams of one track's fan-out until the
// core flushes (transport.Flusher): one sendmmsg for every subscriber of
// the packet on this engine. It takes no lock: every write to a track's
// subscribers runs in the track's exclusive section (the core's fan-out,
// its generated media, its NACK answers), and so does the fan-out's
// Flush. The exceptions are handled by the writer: NACK answers, which
// the core writes from the subscription's RTCP loop and which no fan-out
// flushes, are sent at once (rtpOut.immediate); a track that fans out on
// a forward.Pool (several workers in the section at once) gets a locked
// batch.
type trackBatch struct {
	sock   *sendSock
	refs   int  // guarded by sock.mu
	locked bool // the track uses a Pool: mu guards the batch
	mu     sync.Mutex

	msgs  []ipv4.Message // msgs[i].Buffers is iov[i:i+1], msgs[i].Addr is &addrs[i]
	iov   [][]byte
	bufs  [][]byte      // slots, allocated on first use
	addrs []net.UDPAddr // IP: 4 bytes on an IPv4 socket, 16 on an IPv6 one
	n     int
	at    uint32 // sendClock time of the batch's first datagram
}

func newTrackBatch(s *sendSock, locked bool) *trackBatch {
	b := &trackBatch{sock: s, locked: locked,
		msgs: make([]ipv4.Message, maxBatch), iov: make([][]byte, maxBatch),
		bufs: make([][]byte, maxBatch), addrs: make([]net.UDPAddr, maxBatch)}
	size := net.IPv4len
	if s.v6 {
		size = net.IPv6len
	}
	ips := make([]byte, size*maxBatch)
	for i := range b.msgs {
		b.addrs[i].IP = ips[size*i : size*i+size : size*i+size]
		b.msgs[i].Buffers = b.iov[i : i+1]
		b.msgs[i].Addr = &b.addrs[i]
	}
	return b
}

// write copies the RTP packet header+payload into a slot and encrypts it
// there in place with ctx (the one copy of the packet), addressed to to.
// hdr is the caller's scratch header, parsed from the packet. It returns
// the batch's time (sendClock), read once per batch.
func (b *trackBatch) write(ctx *srtp.Context, hdr *rtp.Header, header, payload []byte, to netip.AddrPort) (uint32, error) {
	n := len(header) + len(payload)
	if n+srtpOverhead > batchSlot || !b.sock.reaches(to) {
		return 0, errTooLarge
	}
	if b.locked {
		b.mu.Lock()
		defer b.mu.Unlock()
	}
	if b.n == maxBatch {
		if err := b.flush(); err != nil && errors.Is(err, net.ErrClosed) {
			return 0, err
		}
	}
	if b.n == 0 {
		b.at = b.sock.clock.now()
	}
	i := b.n
	buf := b.bufs[i]
	if buf == nil {
		buf = make([]byte, batchSlot)
		b.bufs[i] = buf
	}
	copy(buf[copy(buf, header):n], payload)
	out, err := ctx.EncryptRTP(buf, buf[:n], hdr)
	if err != nil {
		return 0, err
	}
	b.iov[i] = out
	if b.sock.v6 {
		ip := to.Addr().As16() // an IPv4 peer as IPv4-mapped
		copy(b.addrs[i].IP, ip[:])
	} else {
		ip := to.Addr().As4()
		copy(b.addrs[i].IP, ip[:])
	}
	b.addrs[i].Port = int(to.Port())
	b.n++
	return b.at, nil
}

// Flush sends the batch with one sendmmsg (more when the kernel takes
// part of it).
func (b *trackBatch) Flush() error {
	if b.locked {
		b.mu.Lock()
		defer b.mu.Unlock()
	}
	return b.flush()
}

func (b *trackBatch) flush() error {
	msgs := b.msgs[:b.n]
	b.n = 0
	chunk := len(msgs)
	if chunk > maxSend {
		calls := (chunk + maxSend - 1) / maxSend
		chunk = (chunk + calls - 1) / calls
	}
	var first error
	for len(msgs) > 0 {
		n, err := b.sock.bw.WriteBatch(msgs[:min(len(msgs), chunk)], 0)
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

// noFlush is the flusher of writers whose sends are not batched.
type noFlush struct{}

func (noFlush) Flush() error { return nil }

var _ transport.Flusher = (*trackBatch)(nil)
