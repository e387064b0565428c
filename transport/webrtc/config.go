package webrtc

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/pion/dtls/v3"
	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	pion "github.com/pion/webrtc/v4"

	"github.com/callcore/callcore/internal/pionloop"
	"github.com/callcore/callcore/pace"
)

// Config is the server side of every peer: ICE and the media engine. Zero
// values are documented defaults.
type Config struct {
	// UDPPort, when nonzero, serves the ICE of every peer on this one UDP
	// port (pion's UDP mux). Zero gives each peer its own ports, from
	// PortMin..PortMax when set, else ephemeral ones.
	UDPPort int
	// PacketConn, when set, is the socket of single-port mode, supplied by
	// the embedder instead of UDPPort (a socket handed over by the
	// service manager, one with options of its own, a wrapper). The
	// engine that New returns owns it and closes it in Close. The direct,
	// batched send path is used when it is a *net.UDPConn (IPv4, IPv6 or
	// both); any other socket gets pion's send path. When New fails, the
	// socket is left open.
	PacketConn net.PacketConn
	// NoProbing, when set, does not probe a subscriber peer's downlink:
	// a limited stream then moves up only as fast as the estimate grows
	// by itself. By default the downlink is probed with padding before
	// a limited stream moves up (probe.go).
	NoProbing bool
	// NoCongestionControl turns the downlink's congestion control off:
	// subscriptions write no transport-wide sequence numbers, clients'
	// feedback is not estimated, and every subscriber is sent everything
	// it subscribed to whatever its network carries. For measuring what
	// congestion control costs, and for a deployment that must not adapt.
	// Publishers still get transport-wide feedback from the server.
	NoCongestionControl bool
	// NoPacing turns pacing off: a subscriber peer's video is then sent
	// as fast as the core forwards it. With pacing (pace.go), once a peer
	// has sent feedback its video leaves no faster than 2.5 times its
	// estimate, frame bursts smoothed by the engine's one scheduler; audio
	// never waits.
	NoPacing bool
	// ListenIP is the address the UDP mux (and the ICE-TCP port) listens
	// on. Default: all addresses, or 127.0.0.1 with LoopbackOnly.
	ListenIP string
	// TCPPort, when nonzero, also serves ICE over TCP (RFC 6544) on this
	// one TCP port (pion's TCP mux): every peer offers passive TCP host
	// candidates on it beside its UDP ones, for clients whose network
	// lets no UDP through. Clients prefer UDP (TCP candidates have the
	// lower priority); media over TCP takes pion's send path, never the
	// direct one. Zero: no TCP candidates.
	TCPPort int
	// TCPListener, when set, is the ICE-TCP listener, supplied by the
	// embedder instead of TCPPort (as PacketConn is for UDP). The engine
	// that New returns owns it and closes it in Close; when New fails it
	// is left open.
	TCPListener net.Listener
	// PortMin and PortMax bound the ports a peer gathers on without the
	// mux. Both zero means ephemeral ports.
	PortMin, PortMax uint16
	// NAT1To1IPs are public addresses advertised instead of the host's
	// (host candidates rewritten), for a server behind a 1:1 NAT.
	NAT1To1IPs []string
	// ICEServers are handed to clients through ICEServers(); the server
	// itself gathers host candidates only.
	ICEServers []ICEServer
	// ICEDisconnectedTimeout is how long a peer's selected pair may stay
	// silent before the peer is disconnected; ICEFailedTimeout, how long
	// after that before it has failed (pion's ICE timers). Defaults 10 s
	// and 25 s. The server is an ICE-lite agent and sends no checks of its
	// own, so silence is the client's: media and RTCP count, and a client
	// sending neither still sends a consent check every 4 to 6 s (RFC
	// 7675); a disconnected timeout under 6 s would flap for it.
	ICEDisconnectedTimeout, ICEFailedTimeout time.Duration
	// LoopbackOnly restricts ICE to loopback, without mDNS: for tests on
	// a host with other interfaces. ICE runs over UDP4 (and UDP6 when the
	// single port's socket or ListenIP is IPv6: ::1).
	LoopbackOnly bool
}

// ICEServer is a STUN or TURN server a client may use. Its JSON is the
// browser's RTCIceServer.
type ICEServer struct {
	URLs       []string `json:"urls"`
	Username   string   `json:"username,omitempty"`
	Credential string   `json:"credential,omitempty"`
}

func (c *Config) setDefaults() {
	if c.ICEDisconnectedTimeout == 0 {
		c.ICEDisconnectedTimeout = 10 * time.Second
	}
	if c.ICEFailedTimeout == 0 {
		c.ICEFailedTimeout = 25 * time.Second
	}
	if c.ListenIP == "" && c.LoopbackOnly && c.PacketConn == nil {
		c.ListenIP = "127.0.0.1"
	}
}

// Validate reports whether the config, with defaults applied for zero
// fields, is usable. Errors wrap ErrInvalidConfig.
func (c Config) Validate() error {
	c.setDefaults()
	switch {
	case c.UDPPort < 0 || c.UDPPort > 65535:
		return fmt.Errorf("%w: UDP port %d", ErrInvalidConfig, c.UDPPort)
	case c.TCPPort < 0 || c.TCPPort > 65535:
		return fmt.Errorf("%w: TCP port %d", ErrInvalidConfig, c.TCPPort)
	case c.TCPPort != 0 && c.TCPListener != nil:
		return fmt.Errorf("%w: both a TCP port and a TCP listener", ErrInvalidConfig)
	case c.UDPPort != 0 && (c.PortMin != 0 || c.PortMax != 0):
		return fmt.Errorf("%w: both a UDP mux port and a port range", ErrInvalidConfig)
	case c.PacketConn != nil && (c.UDPPort != 0 || c.PortMin != 0 || c.PortMax != 0 || (c.ListenIP != "" && c.TCPPort == 0)):
		return fmt.Errorf("%w: both a PacketConn and a UDP port, port range or listen IP", ErrInvalidConfig)
	case c.PortMin > c.PortMax || (c.PortMin == 0) != (c.PortMax == 0):
		return fmt.Errorf("%w: port range %d-%d", ErrInvalidConfig, c.PortMin, c.PortMax)
	case c.ListenIP != "" && net.ParseIP(c.ListenIP) == nil:
		return fmt.Errorf("%w: listen IP %q", ErrInvalidConfig, c.ListenIP)
	case c.ICEDisconnectedTimeout < 0 || c.ICEFailedTimeout < 0:
		return fmt.Errorf("%w: negative ICE timeout", ErrInvalidConfig)
	}
	for _, ip := range c.NAT1To1IPs {
		if net.ParseIP(ip) == nil {
			return fmt.Errorf("%w: NAT 1:1 IP %q", ErrInvalidConfig, ip)
		}
	}
	for _, s := range c.ICEServers {
		if len(s.URLs) == 0 {
			return fmt.Errorf("%w: ICE server without URLs", ErrInvalidConfig)
		}
		for _, u := range s.URLs {
			if !strings.HasPrefix(u, "stun:") && !strings.HasPrefix(u, "turn:") &&
				!strings.HasPrefix(u, "turns:") && !strings.HasPrefix(u, "stuns:") {
				return fmt.Errorf("%w: ICE server URL %q", ErrInvalidConfig, u)
			}
		}
	}
	return nil
}

// Engine holds what the peers of one server share: pion's API (codecs,
// interceptors, ICE settings) and the UDP mux when there is one.
type Engine struct {
	cfg Config
	// The pion setup each peer's API is made of: the settings (with the
	// peer's own buffer factory), codecs and interceptors.
	se   pion.SettingEngine
	me   *pion.MediaEngine
	ir   *interceptor.Registry
	conn net.PacketConn // the mux's socket, nil without UDPPort
	mux  ice.UDPMux
	tcp  ice.TCPMux // the ICE-TCP mux, nil without TCPPort
	// sock is the direct path's socket: the mux's when it is a
	// *net.UDPConn, else nil (the subscriptions' writers use pion's send
	// path).
	sock  *sendSock
	clock sendClock // for sender reports
	// pacer sends the peers' paced packets (pace.go), nil with NoPacing;
	// paceScratch is its goroutine's.
	pacer       *pace.Scheduler
	paceScratch paceScratch
}

// New validates cfg and builds an Engine. Close it after its peers.
func New(cfg Config) (*Engine, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.setDefaults()
	e := &Engine{cfg: cfg, clock: sendClock{epoch: time.Now()}}
	se := pion.SettingEngine{}
	// AES-128-GCM first: the cheapest SRTP profile in pion (pion's own
	// default list starts with AES-256-GCM).
	se.SetSRTPProtectionProfiles(dtls.SRTP_AEAD_AES_128_GCM, dtls.SRTP_AEAD_AES_256_GCM,
		dtls.SRTP_AES128_CM_HMAC_SHA1_80)
	// The keepalive interval is pion's default; a lite agent sends none.
	se.SetICETimeouts(cfg.ICEDisconnectedTimeout, cfg.ICEFailedTimeout, 2*time.Second)
	// ICE-lite: the server only answers checks, so it is the controlled
	// agent in every negotiation and ICE restart, whichever side offers.
	// As a full agent it kept the role the first offer gave it, and a
	// browser restarting ICE as the offerer takes the controlling role:
	// both controlling, role conflicts, and now and then a server that
	// kept sending to the client's old address (TestBrowserICERestart).
	// The server gathers host candidates only, which is what a lite agent
	// may have.
	se.SetLite(true)
	se.SetNetworkTypes([]pion.NetworkType{pion.NetworkTypeUDP4, pion.NetworkTypeUDP6})
	if cfg.LoopbackOnly {
		pionloop.Restrict(&se)
	}
	types := []pion.NetworkType{pion.NetworkTypeUDP4}
	if !cfg.LoopbackOnly || v6Socket(cfg.PacketConn) || isIPv6(cfg.ListenIP) {
		types = append(types, pion.NetworkTypeUDP6)
	}
	if cfg.TCPPort != 0 || cfg.TCPListener != nil {
		types = append(types, pion.NetworkTypeTCP4)
		if !cfg.LoopbackOnly {
			types = append(types, pion.NetworkTypeTCP6)
		}
	}
	se.SetNetworkTypes(types)
	if len(cfg.NAT1To1IPs) > 0 {
		if err := se.SetICEAddressRewriteRules(pion.ICEAddressRewriteRule{
			External:        cfg.NAT1To1IPs,
			AsCandidateType: pion.ICECandidateTypeHost,
			Mode:            pion.ICEAddressRewriteReplace,
		}); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
		}
	}
	if cfg.PortMin != 0 {
		if err := se.SetEphemeralUDPPortRange(cfg.PortMin, cfg.PortMax); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
		}
	}
	me, ir, err := mediaEngine()
	if err != nil {
		return nil, err
	}
	switch {
	case cfg.PacketConn != nil:
		e.conn = cfg.PacketConn
	case cfg.UDPPort != 0:
		ip := net.ParseIP(cfg.ListenIP)
		conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: ip, Port: cfg.UDPPort})
		if err != nil {
			return nil, err
		}
		e.conn = conn
	}
	if l := cfg.TCPListener; l != nil || cfg.TCPPort != 0 {
		if l == nil {
			tl, err := net.ListenTCP("tcp", &net.TCPAddr{IP: net.ParseIP(cfg.ListenIP), Port: cfg.TCPPort})
			if err != nil {
				if cfg.UDPPort != 0 { // ours; a PacketConn stays the caller's when New fails
					_ = e.conn.Close()
				}
				return nil, err
			}
			l = tl
		}
		// pion's TCP mux: one listener, connections handed to the peer
		// whose ufrag their first STUN request names (RFC 4571 framing).
		// Its writes go to a buffer (4 MB, pion's) drained by a goroutine
		// per connection, and are dropped when it is full: a slow TCP
		// client never blocks the fan-out.
		e.tcp = pion.NewICETCPMux(nil, l, tcpReadBuffer)
		se.SetICETCPMux(e.tcp)
	}
	if e.conn != nil {
		if conn, ok := e.conn.(*net.UDPConn); ok {
			e.sock = newSendSock(conn, e.clock)
		}
		e.mux = pion.NewICEUDPMux(nil, e.conn)
		se.SetICEUDPMux(e.mux)
	}
	e.se, e.me, e.ir = se, me, ir
	if !cfg.NoPacing {
		if e.sock != nil {
			e.paceScratch.batch = newTrackBatch(e.sock, false)
		}
		if e.pacer, err = pace.New(pace.Config{OnRound: e.paceScratch.flush}); err != nil {
			return nil, err
		}
	}
	return e, nil
}

// ICEServers returns the ICE servers to hand to clients.
func (e *Engine) ICEServers() []ICEServer { return append([]ICEServer(nil), e.cfg.ICEServers...) }

// v6Socket reports whether c is a UDP socket of the IPv6 family (an IPv6
// address, or every address of both families).
func v6Socket(c net.PacketConn) bool {
	if c == nil {
		return false
	}
	a, ok := c.LocalAddr().(*net.UDPAddr)
	return ok && !a.AddrPort().Addr().Is4()
}

func isIPv6(ip string) bool {
	p := net.ParseIP(ip)
	return p != nil && p.To4() == nil
}

// tcpReadBuffer is the ICE-TCP mux's per-connection count of packets
// read ahead of their reader.
const tcpReadBuffer = 64

// Close releases the UDP mux and the ICE-TCP listener. Close the engine's
// peers first.
func (e *Engine) Close() error {
	if e.pacer != nil {
		e.pacer.Close()
	}
	var err error
	if e.tcp != nil {
		err = e.tcp.Close()
	}
	if e.mux != nil {
		err = errors.Join(err, e.mux.Close())
	}
	return err
}

// UDPAddr is the single UDP port's socket address, nil without one.
func (e *Engine) UDPAddr() net.Addr {
	if e.conn == nil {
		return nil
	}
	return e.conn.LocalAddr()
}

// TCPAddr is the ICE-TCP listener's address, nil without one.
func (e *Engine) TCPAddr() net.Addr {
	if e.tcp == nil {
		return nil
	}
	if a, ok := e.tcp.(interface{ LocalAddr() net.Addr }); ok {
		return a.LocalAddr()
	}
	return nil
}
