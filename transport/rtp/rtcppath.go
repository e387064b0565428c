package rtp

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"

	"github.com/pion/rtcp"
	"github.com/pion/srtp/v3"
)

// rtcpPath sends RTCP on one socket, protected as SRTCP when it has keys.
// It is safe for concurrent use.
type rtcpPath struct {
	mu   sync.Mutex // guards out, buf, ctx, hdr
	out  sender
	buf  []byte
	ctx  *srtp.Context // nil for plain RTP
	hdr  rtcp.Header
	over int // bytes SRTCP adds: the tag and the 4-byte index
}

func (p *rtcpPath) init(c *net.UDPConn, k *Keys, maxPacketSize int) error {
	p.buf = make([]byte, maxPacketSize)
	if k != nil {
		ctx, err := newContext(k)
		if err != nil {
			return err
		}
		p.ctx, p.over = ctx, k.Profile.Overhead()+4
	}
	return p.out.init(c)
}

// write checks pkt, copies it into the path's buffer, protects it there
// and sends it, to dst on an unconnected socket. It counts the outcome.
func (p *rtcpPath) write(cnt *counters, pkt []byte, dst netip.AddrPort) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	b, err := p.protect(pkt)
	if err != nil {
		cnt.countProtectError(err)
		return err
	}
	if dst.IsValid() {
		p.out.setDest(dst)
	}
	return cnt.countSend(p.out.send(b), len(b), &cnt.rtcpOut)
}

// countProtectError counts a packet refused before it was sent.
func (c *counters) countProtectError(err error) {
	if errors.Is(err, ErrOversized) {
		c.oversized.Add(1)
		return
	}
	c.malformed.Add(1)
}

func (p *rtcpPath) protect(pkt []byte) ([]byte, error) {
	if !validRTCP(pkt) {
		return nil, fmt.Errorf("%w: not a compound RTCP packet", ErrMalformed)
	}
	if len(pkt)+p.over > len(p.buf) {
		return nil, fmt.Errorf("%w: %d bytes", ErrOversized, len(pkt)+p.over)
	}
	b := p.buf[:len(pkt)]
	copy(b, pkt)
	if p.ctx == nil {
		return b, nil
	}
	out, err := p.ctx.EncryptRTCP(b, b, &p.hdr)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrProtect, err)
	}
	return out, nil
}
