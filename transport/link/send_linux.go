//go:build linux

package link

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"

	"github.com/callcore/callcore/transport"
)

// errWouldBlock wraps transport.ErrBufferFull: the core then drops the
// track's video on the link up to the next key frame.
var errWouldBlock = fmt.Errorf("link: send would block, packet dropped: %w", transport.ErrBufferFull)

// rawSender sends datagrams with one non-blocking sendto(2), never
// waiting for room in the socket buffer. It is used by one goroutine at
// a time and allocates nothing per packet.
type rawSender struct {
	rc   syscall.RawConn
	fn   func(fd uintptr) bool // s.write, bound once
	b    []byte
	sa4  syscall.SockaddrInet4
	sa6  syscall.SockaddrInet6
	sa   syscall.Sockaddr
	err  error
	last netip.AddrPort
}

func (s *rawSender) init(c *net.UDPConn) error {
	rc, err := c.SyscallConn()
	if err != nil {
		return err
	}
	s.rc = rc
	s.fn = s.write
	return nil
}

func (s *rawSender) write(fd uintptr) bool {
	s.err = syscall.Sendto(int(fd), s.b, syscall.MSG_DONTWAIT, s.sa)
	return true
}

// send sends b to to.
func (s *rawSender) send(b []byte, to netip.AddrPort) error {
	if to != s.last || s.sa == nil {
		s.last = to
		if a := to.Addr(); a.Is4() {
			s.sa4 = syscall.SockaddrInet4{Port: int(to.Port()), Addr: a.As4()}
			s.sa = &s.sa4
		} else {
			s.sa6 = syscall.SockaddrInet6{Port: int(to.Port()), Addr: a.As16()}
			s.sa = &s.sa6
		}
	}
	s.b = b
	if err := s.rc.Write(s.fn); err != nil {
		return err
	}
	s.b = nil
	if errors.Is(s.err, syscall.EAGAIN) {
		return errWouldBlock
	}
	return s.err
}
