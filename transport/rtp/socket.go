package rtp

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"
)

// pairTries bounds the search for two free consecutive ports.
const pairTries = 32

// openUDP binds local and, when remote is valid, connects to it so the
// kernel drops datagrams from anyone else.
func openUDP(local, remote netip.AddrPort) (*net.UDPConn, error) {
	l := net.UDPAddrFromAddrPort(local)
	if remote.IsValid() {
		return net.DialUDP("udp", l, net.UDPAddrFromAddrPort(remote))
	}
	return net.ListenUDP("udp", l)
}

// openPair opens the RTP socket at local and, unless mux, the RTCP socket
// at the next port, connected to remote and remoteRTCP when they are
// valid. With port 0 it looks for two free consecutive ports.
func openPair(local, remote, remoteRTCP netip.AddrPort, mux bool) (rtpc, rtcpc *net.UDPConn, err error) {
	if mux {
		c, err := openUDP(local, remote)
		return c, nil, err
	}
	for range pairTries {
		c, err := openUDP(local, remote)
		if err != nil {
			return nil, nil, err
		}
		p := localAddr(c).Port()
		if p == 65535 {
			c.Close()
			continue
		}
		r, err := openUDP(netip.AddrPortFrom(local.Addr(), p+1), remoteRTCP)
		if err == nil {
			return c, r, nil
		}
		c.Close()
		if local.Port() != 0 || !errors.Is(err, syscall.EADDRINUSE) {
			return nil, nil, err
		}
	}
	return nil, nil, fmt.Errorf("rtp: no two free consecutive ports at %v after %d tries", local.Addr(), pairTries)
}

func localAddr(c *net.UDPConn) netip.AddrPort {
	return c.LocalAddr().(*net.UDPAddr).AddrPort()
}

// parseAddr parses an "IP:port" setting, or returns def for "".
func parseAddr(s string, def netip.AddrPort) (netip.AddrPort, error) {
	if s == "" {
		return def, nil
	}
	a, err := netip.ParseAddrPort(s)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("%w: address %q: %w", ErrInvalidConfig, s, err)
	}
	return a, nil
}

// rtcpPort is where RTCP of the RTP address a goes: the next port, or the
// same one with rtcp-mux.
func rtcpPort(a netip.AddrPort, mux bool) netip.AddrPort {
	if mux {
		return a
	}
	return netip.AddrPortFrom(a.Addr(), a.Port()+1)
}

// isClosed reports whether err is the error of a socket closed under us.
func isClosed(err error) bool { return errors.Is(err, net.ErrClosed) }
