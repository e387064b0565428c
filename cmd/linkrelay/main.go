// Command linkrelay forwards one callcore link between two nodes: TCP
// connections (the control channel) and UDP datagrams (the media flow),
// optionally dropping every Nth RTP datagram on the way to the dialing
// side. The link tests run it as a separate process and kill and restart
// it; it is a test tool, not a production relay.
//
//	linkrelay -tcp 127.0.0.1:7000 -to-tcp 127.0.0.1:7100 -udp 127.0.0.1:7001 -to-udp 127.0.0.1:7101 [-drop 50 -drop-pt 96]
package main

import (
	"flag"
	"io"
	"log"
	"net"
	"net/netip"
	"sync/atomic"
)

func main() {
	tcpAddr := flag.String("tcp", "", "TCP address to listen on")
	tcpTo := flag.String("to-tcp", "", "TCP address to forward to")
	udpAddr := flag.String("udp", "", "UDP address to listen on")
	udpTo := flag.String("to-udp", "", "UDP address to forward to")
	drop := flag.Int("drop", 0, "drop every Nth RTP datagram of payload type -drop-pt towards the dialing side (0: none)")
	dropPT := flag.Int("drop-pt", 96, "the payload type -drop applies to")
	flag.Parse()
	ln, err := net.Listen("tcp", *tcpAddr)
	if err != nil {
		log.Fatal(err)
	}
	uc, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.MustParseAddrPort(*udpAddr)))
	if err != nil {
		log.Fatal(err)
	}
	target, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(netip.MustParseAddrPort(*udpTo)))
	if err != nil {
		log.Fatal(err)
	}
	go forwardUDP(uc, target, *drop, byte(*dropPT))
	for {
		c, err := ln.Accept()
		if err != nil {
			log.Fatal(err)
		}
		go forwardTCP(c, *tcpTo)
	}
}

func forwardTCP(c net.Conn, to string) {
	defer c.Close()
	t, err := net.Dial("tcp", to)
	if err != nil {
		return
	}
	defer t.Close()
	go func() {
		_, _ = io.Copy(t, c)
		t.Close()
	}()
	_, _ = io.Copy(c, t)
}

// forwardUDP sends what the dialing side sends to the target, and what
// the target sends back to the last address the dialing side used.
func forwardUDP(uc, target *net.UDPConn, drop int, pt byte) {
	var client atomic.Pointer[netip.AddrPort]
	go func() {
		buf := make([]byte, 65536)
		n := 0
		for {
			k, err := target.Read(buf)
			if err != nil {
				continue
			}
			c := client.Load()
			if c == nil {
				continue
			}
			if k >= 2 && buf[1]&0x7f == pt && drop > 0 {
				if n++; n%drop == 0 {
					continue
				}
			}
			_, _ = uc.WriteToUDPAddrPort(buf[:k], *c)
		}
	}()
	buf := make([]byte, 65536)
	for {
		k, src, err := uc.ReadFromUDPAddrPort(buf)
		if err != nil {
			continue
		}
		client.Store(&src)
		_, _ = target.Write(buf[:k])
	}
}
