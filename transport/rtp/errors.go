package rtp

import (
	"errors"
	"fmt"

	"github.com/callcore/callcore/transport"
)

// Errors returned by the rtp package. Match them with errors.Is. Writes
// after Close return transport.ErrClosed.
var (
	// ErrInvalidConfig is wrapped by every Validate failure.
	ErrInvalidConfig = errors.New("rtp: invalid config")
	// ErrInvalidKeys is wrapped when SRTP keys or a profile name are
	// unusable.
	ErrInvalidKeys = errors.New("rtp: invalid SRTP keys")
	// ErrOversized is returned for a packet larger than MaxPacketSize once
	// protected.
	ErrOversized = errors.New("rtp: packet too large")
	// ErrMalformed is returned for a packet that is not RTP or RTCP.
	ErrMalformed = errors.New("rtp: malformed packet")
	// ErrWouldBlock is returned when the socket's send buffer is full: the
	// packet was dropped rather than wait. It wraps transport.ErrBufferFull,
	// on which the core drops the subscriber's video up to a key frame.
	ErrWouldBlock = fmt.Errorf("rtp: send would block, packet dropped: %w", transport.ErrBufferFull)
	// ErrSend is wrapped when the kernel refused a datagram, for instance
	// because the far end's port is closed (ICMP port unreachable).
	ErrSend = errors.New("rtp: send failed")
	// ErrNoPeer is returned by Ingest.WriteRTCP before a sender is known.
	ErrNoPeer = errors.New("rtp: no sender known yet")
	// ErrProtect is wrapped when SRTP or SRTCP protection fails.
	ErrProtect = errors.New("rtp: SRTP protect failed")
)
