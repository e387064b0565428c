// Package relay is an embedded TURN server (pion/turn) that relays to one
// media server only: clients whose network lets nothing but TCP or TLS
// out reach the media server through it, and nobody can use it to reach
// anything else.
//
// Credentials follow the TURN REST convention: the username is
// "<expiry, Unix seconds>:<user id>" and the password is
// base64(HMAC-SHA1(secret, username)). Whoever holds the secret (the call
// server) hands them out; the relay keeps no user list, and refuses a
// username past its expiry and a password that was not made with the
// secret, counting both.
//
// Every allocation's relay socket is bound to the media server's own
// address (or Config.RelayIP) and sends only to the media port: a peer address is allowed
// when its IP is one of the media server's (the addresses its ICE
// candidates carry) and its port is the media port, and the datagram then
// goes to the media socket's local address. What the relay socket
// receives from anywhere but the media socket is dropped. Refused peers
// and dropped datagrams are counted (Stats).
package relay

import (
	"crypto/hmac"
	"crypto/sha1" //nolint:gosec // the TURN REST convention's MAC
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/pion/logging"
	pionturn "github.com/pion/turn/v5"
)

// Errors of the relay. Match them with errors.Is.
var (
	// ErrInvalidConfig is wrapped by every Config.Validate failure.
	ErrInvalidConfig = errors.New("relay: invalid config")
	// ErrRefusedPeer: a datagram to an address that is not the media
	// server's (the allocation's send is refused; nothing is sent).
	ErrRefusedPeer = errors.New("relay: peer is not the media server")
	// ErrAllocation: the relay only makes UDP allocations.
	ErrAllocation = errors.New("relay: only UDP allocations")
)

// MinSecretLen is the shortest credential secret accepted.
const MinSecretLen = 16

// Config configures a relay. At least one of UDP, TCP and TLS is
// required; the relay owns them once New succeeds and closes them in
// Close.
type Config struct {
	// Secret is the key of the credentials (at least MinSecretLen bytes).
	Secret []byte
	// Realm is the TURN realm. Default "callcore".
	Realm string
	// UDP serves TURN over UDP.
	UDP net.PacketConn
	// TCP serves TURN over TCP; TLS serves TURN over TLS (a listener
	// made with crypto/tls).
	TCP, TLS net.Listener
	// Media is the media server's socket address as the relay reaches it
	// (a concrete IP, loopback when the socket listens on all addresses).
	Media netip.AddrPort
	// MediaIPs are the IPs clients see the media server at (those of its
	// ICE candidates): a peer address is allowed when it is one of them
	// with Media's port. Media's own IP is always allowed.
	MediaIPs []netip.Addr
	// RelayIP is the address the allocations' relay sockets are bound
	// to (the media server sees relayed clients at it). Default: Media's
	// IP.
	RelayIP netip.Addr
}

// Validate reports whether the config is usable. Errors wrap
// ErrInvalidConfig.
func (c Config) Validate() error {
	switch {
	case len(c.Secret) < MinSecretLen:
		return fmt.Errorf("%w: secret shorter than %d bytes", ErrInvalidConfig, MinSecretLen)
	case c.UDP == nil && c.TCP == nil && c.TLS == nil:
		return fmt.Errorf("%w: no UDP, TCP or TLS listener", ErrInvalidConfig)
	case !c.Media.IsValid() || c.Media.Addr().IsUnspecified() || c.Media.Port() == 0:
		return fmt.Errorf("%w: media address %v", ErrInvalidConfig, c.Media)
	}
	if c.RelayIP.IsValid() && (c.RelayIP.IsUnspecified() || c.RelayIP.Unmap().Is4() != c.Media.Addr().Unmap().Is4()) {
		return fmt.Errorf("%w: relay IP %v for media address %v", ErrInvalidConfig, c.RelayIP, c.Media)
	}
	for _, ip := range c.MediaIPs {
		if !ip.IsValid() || ip.IsUnspecified() {
			return fmt.Errorf("%w: media IP %v", ErrInvalidConfig, ip)
		}
	}
	return nil
}

// Stats are the relay's counters.
type Stats struct {
	// UDPAllocations, TCPAllocations and TLSAllocations count the
	// allocations made by clients over each transport; Active is how many
	// are open.
	UDPAllocations, TCPAllocations, TLSAllocations uint64
	Active                                         int
	// RefusedPeers counts permissions and datagrams refused because their
	// peer is not the media server.
	RefusedPeers uint64
	// DroppedInbound counts datagrams a relay socket received from
	// anything but the media server.
	DroppedInbound uint64
	// Expired counts requests refused for a username past its expiry;
	// Forged, for a password the secret did not make; Malformed, for a
	// username that is not "<expiry>:<user id>".
	Expired, Forged, Malformed uint64
}

// Server is a running relay.
type Server struct {
	cfg   Config
	media *net.UDPAddr // cfg.Media
	ips   []netip.Addr // allowed peer IPs (unmapped)
	turn  *pionturn.Server

	allocations                  [3]atomic.Uint64 // by transport: UDP, TCP, TLS
	refusedPeers, droppedInbound atomic.Uint64
	expired, forged, malformed   atomic.Uint64
}

// New validates cfg and starts serving.
func New(cfg Config) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Realm == "" {
		cfg.Realm = "callcore"
	}
	s := &Server{cfg: cfg, media: net.UDPAddrFromAddrPort(cfg.Media)}
	s.ips = append(s.ips, cfg.Media.Addr().Unmap())
	for _, ip := range cfg.MediaIPs {
		if ip = ip.Unmap(); !slices.Contains(s.ips, ip) {
			s.ips = append(s.ips, ip)
		}
	}
	gen := &relayGen{s: s}
	sc := pionturn.ServerConfig{
		// pion's logs go to stderr: off (what matters is counted).
		LoggerFactory: &logging.DefaultLoggerFactory{DefaultLogLevel: logging.LogLevelDisabled},
		Realm:         cfg.Realm,
		AuthHandler:   s.auth,
		EventHandler: pionturn.EventHandler{
			OnAuth: func(_, _ net.Addr, _, _, _, _ string, ok bool) {
				if !ok { // the AuthHandler knew the username: the password was wrong
					s.forged.Add(1)
				}
			},
			OnAllocationCreated: func(_, dst net.Addr, _, _, _ string, _ net.Addr, _ int) {
				s.allocations[s.transportOf(dst)].Add(1)
			},
		},
	}
	if cfg.UDP != nil {
		sc.PacketConnConfigs = append(sc.PacketConnConfigs, pionturn.PacketConnConfig{
			PacketConn: cfg.UDP, RelayAddressGenerator: gen, PermissionHandler: s.permit})
	}
	for _, l := range []net.Listener{cfg.TCP, cfg.TLS} {
		if l != nil {
			sc.ListenerConfigs = append(sc.ListenerConfigs, pionturn.ListenerConfig{
				Listener: l, RelayAddressGenerator: gen, PermissionHandler: s.permit})
		}
	}
	t, err := pionturn.NewServer(sc)
	if err != nil {
		return nil, err
	}
	s.turn = t
	return s, nil
}

// Addr is one of the relay's listening addresses.
type Addr struct {
	Transport string // "udp", "tcp" or "tls"
	Addr      net.Addr
}

// Addrs returns the relay's listening addresses.
func (s *Server) Addrs() []Addr {
	var out []Addr
	if s.cfg.UDP != nil {
		out = append(out, Addr{"udp", s.cfg.UDP.LocalAddr()})
	}
	if s.cfg.TCP != nil {
		out = append(out, Addr{"tcp", s.cfg.TCP.Addr()})
	}
	if s.cfg.TLS != nil {
		out = append(out, Addr{"tls", s.cfg.TLS.Addr()})
	}
	return out
}

// Close stops the relay, its listeners and its allocations.
func (s *Server) Close() error { return s.turn.Close() }

// Stats returns the relay's counters.
func (s *Server) Stats() Stats {
	return Stats{
		UDPAllocations: s.allocations[0].Load(), TCPAllocations: s.allocations[1].Load(),
		TLSAllocations: s.allocations[2].Load(), Active: s.turn.AllocationCount(),
		RefusedPeers: s.refusedPeers.Load(), DroppedInbound: s.droppedInbound.Load(),
		Expired: s.expired.Load(), Forged: s.forged.Load(), Malformed: s.malformed.Load(),
	}
}

// transportOf is the index (UDP 0, TCP 1, TLS 2) of the listener a
// client reached at dst, told apart by port.
func (s *Server) transportOf(dst net.Addr) int {
	port := func(a net.Addr) int {
		switch a := a.(type) {
		case *net.TCPAddr:
			return a.Port
		case *net.UDPAddr:
			return a.Port
		}
		return -1
	}
	if _, ok := dst.(*net.UDPAddr); ok {
		return 0
	}
	if s.cfg.TLS != nil && port(dst) == port(s.cfg.TLS.Addr()) {
		return 2
	}
	return 1
}

// Credentials returns the TURN username and password of user, valid
// until expires.
func Credentials(secret []byte, user string, expires time.Time) (username, password string) {
	username = strconv.FormatInt(expires.Unix(), 10) + ":" + user
	return username, mac(secret, username)
}

// Credentials returns the username and password of user, valid until
// expires, for this relay.
func (s *Server) Credentials(user string, expires time.Time) (username, password string) {
	return Credentials(s.cfg.Secret, user, expires)
}

func mac(secret []byte, username string) string {
	h := hmac.New(sha1.New, secret)
	h.Write([]byte(username))
	return base64.StdEncoding.EncodeToString(h.Sum(nil))
}

// auth is pion's AuthHandler: the key of a username, or a refusal.
// pion checks the request's integrity with the key (OnAuth reports a
// mismatch: a forged password).
func (s *Server) auth(ra *pionturn.RequestAttributes) (string, []byte, bool) {
	exp, user, ok := strings.Cut(ra.Username, ":")
	t, err := strconv.ParseInt(exp, 10, 64)
	if !ok || err != nil || user == "" {
		s.malformed.Add(1)
		return "", nil, false
	}
	if time.Now().Unix() > t {
		s.expired.Add(1)
		return "", nil, false
	}
	return user, pionturn.GenerateAuthKey(ra.Username, ra.Realm, mac(s.cfg.Secret, ra.Username)), true
}

// allowedIP reports whether ip is one of the media server's.
func (s *Server) allowedIP(ip netip.Addr) bool { return slices.Contains(s.ips, ip.Unmap()) }

// permit is pion's PermissionHandler (CreatePermission, ChannelBind,
// Send): only the media server's IPs. The port is checked per datagram.
func (s *Server) permit(_ net.Addr, peer net.IP) bool {
	ip, ok := netip.AddrFromSlice(peer)
	if !ok || !s.allowedIP(ip) {
		s.refusedPeers.Add(1)
		return false
	}
	return true
}

// relayGen makes the allocations' relay sockets: UDP, bound to the media
// server's IP.
type relayGen struct{ s *Server }

func (g *relayGen) Validate() error { return nil }

func (g *relayGen) AllocatePacketConn(c pionturn.AllocateListenerConfig) (net.PacketConn, net.Addr, error) {
	network := "udp4"
	if g.s.cfg.Media.Addr().Unmap().Is6() {
		network = "udp6"
	}
	ip := g.s.media.IP
	if g.s.cfg.RelayIP.IsValid() {
		ip = g.s.cfg.RelayIP.AsSlice()
	}
	conn, err := net.ListenUDP(network, &net.UDPAddr{IP: ip})
	if err != nil {
		return nil, nil, err
	}
	return &relayConn{UDPConn: conn, s: g.s}, conn.LocalAddr(), nil
}

func (g *relayGen) AllocateListener(pionturn.AllocateListenerConfig) (net.Listener, net.Addr, error) {
	return nil, nil, ErrAllocation
}

func (g *relayGen) AllocateConn(pionturn.AllocateConnConfig) (net.Conn, error) {
	return nil, ErrAllocation
}

// relayConn is an allocation's relay socket: it sends only to the media
// server and receives only from it.
type relayConn struct {
	*net.UDPConn
	s *Server
	// peer is the allowed address last written to: datagrams from the
	// media socket are reported as coming from it (the client addressed
	// the media server by it).
	peer atomic.Pointer[net.UDPAddr]
}

func (c *relayConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	u, ok := addr.(*net.UDPAddr)
	if !ok || u.Port != int(c.s.cfg.Media.Port()) {
		c.s.refusedPeers.Add(1)
		return 0, ErrRefusedPeer
	}
	ip, ok := netip.AddrFromSlice(u.IP)
	if !ok || !c.s.allowedIP(ip) {
		c.s.refusedPeers.Add(1)
		return 0, ErrRefusedPeer
	}
	if c.peer.Load() != u {
		c.peer.Store(u)
	}
	return c.UDPConn.WriteTo(b, c.s.media)
}

func (c *relayConn) ReadFrom(b []byte) (int, net.Addr, error) {
	for {
		n, from, err := c.UDPConn.ReadFromUDPAddrPort(b)
		if err != nil {
			return n, nil, err
		}
		if from == c.s.cfg.Media || (from.Addr().Unmap() == c.s.cfg.Media.Addr().Unmap() && from.Port() == c.s.cfg.Media.Port()) {
			if p := c.peer.Load(); p != nil {
				return n, p, nil
			}
		}
		c.s.droppedInbound.Add(1)
	}
}
