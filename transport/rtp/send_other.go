//go:build !unix

package rtp

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/callcore/callcore/transport"
)

// dontWait is the flag for sends that must not wait, where there is one.
const dontWait = 0

// sender sends datagrams on one socket. Without raw non-blocking sends on
// this platform a full send buffer may make it wait.
type sender struct {
	c  *net.UDPConn
	to netip.AddrPort // destination on an unconnected socket
}

func (s *sender) init(c *net.UDPConn) error { s.c = c; return nil }

func (s *sender) setDest(a netip.AddrPort) { s.to = a }

func (s *sender) send(b []byte) error {
	var err error
	if s.to.IsValid() {
		_, err = s.c.WriteToUDPAddrPort(b, s.to)
	} else {
		_, err = s.c.Write(b)
	}
	switch {
	case err == nil:
		return nil
	case errors.Is(err, net.ErrClosed):
		return transport.ErrClosed
	}
	return fmt.Errorf("%w: %w", ErrSend, err)
}
