//go:build unix

package rtp

import (
	"fmt"
	"net"
	"net/netip"
	"syscall"

	"github.com/callcore/callcore/transport"
)

// dontWait makes sendmmsg return at once when the socket is full.
const dontWait = syscall.MSG_DONTWAIT

// sender sends datagrams on one socket without ever waiting: a full send
// buffer drops the datagram. It is not safe for concurrent use; its owner
// serialises calls.
type sender struct {
	rc  syscall.RawConn
	v4  bool             // the socket is AF_INET
	to  syscall.Sockaddr // destination on an unconnected socket, else nil
	sa4 syscall.SockaddrInet4
	sa6 syscall.SockaddrInet6
	buf []byte // the datagram being sent, set only during send
	err error  // send's result
	fn  func(fd uintptr) bool
}

func (s *sender) init(c *net.UDPConn) error {
	rc, err := c.SyscallConn()
	if err != nil {
		return err
	}
	s.rc = rc
	s.v4 = localAddr(c).Addr().Is4()
	s.fn = s.do
	return nil
}

// setDest makes send go to a on an unconnected socket.
func (s *sender) setDest(a netip.AddrPort) {
	if s.v4 {
		s.sa4 = syscall.SockaddrInet4{Port: int(a.Port()), Addr: a.Addr().Unmap().As4()}
		s.to = &s.sa4
		return
	}
	s.sa6 = syscall.SockaddrInet6{Port: int(a.Port()), Addr: a.Addr().As16()}
	s.to = &s.sa6
}

// send sends b in one system call and returns ErrWouldBlock, an error
// wrapping ErrSend, or transport.ErrClosed once the socket is closed.
func (s *sender) send(b []byte) error {
	s.buf, s.err = b, nil
	err := s.rc.Write(s.fn)
	s.buf = nil
	if err != nil {
		return transport.ErrClosed
	}
	switch s.err {
	case nil:
		return nil
	case syscall.EAGAIN:
		return ErrWouldBlock
	}
	if errno, ok := s.err.(syscall.Errno); ok {
		return sendError{errno}
	}
	return fmt.Errorf("%w: %w", ErrSend, s.err)
}

func (s *sender) do(fd uintptr) bool {
	for {
		if s.to == nil {
			_, s.err = syscall.Write(int(fd), s.buf)
		} else {
			s.err = syscall.Sendto(int(fd), s.buf, 0, s.to)
		}
		if s.err != syscall.EINTR {
			return true // never wait for the socket to become writable
		}
	}
}

// sendError wraps ErrSend and the errno without allocating.
type sendError struct{ errno syscall.Errno }

func (e sendError) Error() string   { return ErrSend.Error() + ": " + e.errno.Error() }
func (e sendError) Unwrap() []error { return []error{ErrSend, e.errno} }
