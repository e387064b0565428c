//go:build !linux

package link

import (
	"fmt"
	"net"
	"net/netip"

	"github.com/callcore/callcore/transport"
)

var errWouldBlock = fmt.Errorf("link: send would block, packet dropped: %w", transport.ErrBufferFull)

// rawSender sends with the blocking WriteToUDPAddrPort outside Linux.
type rawSender struct{ c *net.UDPConn }

func (s *rawSender) init(c *net.UDPConn) error { s.c = c; return nil }

func (s *rawSender) send(b []byte, to netip.AddrPort) error {
	_, err := s.c.WriteToUDPAddrPort(b, to)
	return err
}
