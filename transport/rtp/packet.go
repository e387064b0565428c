package rtp

import (
	"fmt"
	"sync/atomic"

	pionrtp "github.com/pion/rtp"
	"github.com/pion/srtp/v3"

	"github.com/callcore/callcore/internal/rtcpx"
	"github.com/callcore/callcore/transport"
)

// isRTCP reports whether a datagram on an rtcp-mux port is RTCP: RFC 5761
// tells them apart by the second byte (marker and payload type), 192 to 223
// for RTCP.
func isRTCP(b []byte) bool { return len(b) >= 2 && b[1] >= 192 && b[1] <= 223 }

// validRTP reports whether b can be an RTP packet: version 2 and a whole
// fixed header. The core checks the rest.
func validRTP(b []byte) bool { return len(b) >= 12 && b[0]>>6 == 2 }

// validRTCP reports whether b is a well-formed compound RTCP packet: an
// RTCP packet type first, and parts whose versions, lengths and padding
// rtcpx.Parse accepts.
func validRTCP(b []byte) bool {
	var fb rtcpx.Feedback
	if len(b) < 8 || !isRTCP(b) {
		return false
	}
	_, err := rtcpx.Parse(b, 0, &fb)
	return err == nil
}

// countSend counts the outcome of one send of n bytes.
func (c *counters) countSend(err error, n int, sent *atomic.Uint64) error {
	switch err {
	case nil:
		sent.Add(1)
		c.bytesOut.Add(uint64(n))
		return nil
	case ErrWouldBlock:
		c.wouldBlock.Add(1)
	case transport.ErrClosed:
	default:
		c.sendErrors.Add(1)
	}
	return err
}

// protectRTP protects the RTP packet in b in place with ctx, when there is
// one; b must have room for the tag.
func protectRTP(ctx *srtp.Context, hdr *pionrtp.Header, b []byte) ([]byte, error) {
	if ctx == nil {
		return b, nil
	}
	out, err := ctx.EncryptRTP(b, b, hdr)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrProtect, err)
	}
	return out, nil
}

// takeRTCP unprotects (with r.ctx) and checks one RTCP datagram in place.
// It counts a datagram it refuses and reports false.
func (c *counters) takeRTCP(r *reader, b []byte) ([]byte, bool) {
	if r.ctx != nil {
		var err error
		if b, err = r.ctx.DecryptRTCP(b, b, &r.chdr); err != nil {
			c.countUnprotectError(err)
			return nil, false
		}
	}
	if !validRTCP(b) {
		c.malformed.Add(1)
		return nil, false
	}
	return b, true
}

// deliverRTCP counts one RTCP datagram of n bytes and hands the packet to
// h, if any.
func (c *counters) deliverRTCP(h transport.RTCPHandler, pkt []byte, n int) {
	c.rtcpIn.Add(1)
	c.bytesIn.Add(uint64(n))
	if h == nil {
		return
	}
	if err := h.HandleRTCP(pkt); err != nil {
		c.refused.Add(1)
	}
}
