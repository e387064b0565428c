package server

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/tls"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/callcore/callcore/relay"
	"github.com/callcore/callcore/transport/webrtc"
)

// TURNConfig configures the embedded TURN server (package relay): for
// clients whose network lets no UDP through to the media port, or only
// TLS. It is on when it has a UDP, TCP or TLS port (or listener), and
// then needs the media transport's single UDP port (WebRTC.UDPPort or
// WebRTC.PacketConn): it relays to that port only.
type TURNConfig struct {
	// UDPPort, TCPPort and TLSPort are the ports TURN is served on over
	// UDP, TCP and TLS (TLS needs TLS); zero serves none. They listen on
	// ListenIP (default all addresses).
	UDPPort, TCPPort, TLSPort int
	ListenIP                  string
	// UDP, TCP and TLSListener are listeners supplied instead of the
	// ports (the server owns them once New has succeeded). TLSListener
	// is a plain TCP listener: the server wraps it with TLS.
	UDP                      net.PacketConn
	TCPListener, TLSListener net.Listener
	// TLS is the TLS listener's configuration (its certificate must
	// name Host).
	TLS *tls.Config
	// Host is the name or address clients reach the TURN server at: it
	// is in the turn: and turns: URLs handed to them. Required.
	Host string
	// Secret is the key of the TURN credentials (the TURN REST
	// convention), to share with other TURN servers that accept them.
	// Default: derived from the token secret.
	Secret []byte
	// RelayIP is the address the relayed clients' sockets are bound to:
	// the media server sees them at it. Default: the media socket's
	// address (127.0.0.1 when that listens on every address).
	RelayIP string
	// CredentialTTL, when set, bounds how long the credentials handed to
	// a client are valid. Default: until its token expires (the client
	// renewing its token gets fresh ones, and the SDK restarts a relayed
	// connection's ICE with them). A bound shorter than the tokens' renewal
	// cuts relayed clients off when their allocations cannot refresh.
	CredentialTTL time.Duration
}

func (c TURNConfig) enabled() bool {
	return c.UDPPort != 0 || c.TCPPort != 0 || c.TLSPort != 0 || c.UDP != nil || c.TCPListener != nil || c.TLSListener != nil
}

// Validate reports whether the config is usable (a config that is not
// enabled always is). Errors wrap ErrInvalidConfig.
func (c TURNConfig) Validate(rtc webrtc.Config) error {
	if !c.enabled() {
		return nil
	}
	bad := func(p int) bool { return p < 0 || p > 65535 }
	switch {
	case bad(c.UDPPort) || bad(c.TCPPort) || bad(c.TLSPort):
		return fmt.Errorf("%w: TURN port out of range", ErrInvalidConfig)
	case (c.UDPPort != 0 && c.UDP != nil) || (c.TCPPort != 0 && c.TCPListener != nil) || (c.TLSPort != 0 && c.TLSListener != nil):
		return fmt.Errorf("%w: both a TURN port and a listener", ErrInvalidConfig)
	case (c.TLSPort != 0 || c.TLSListener != nil) && c.TLS == nil:
		return fmt.Errorf("%w: TURN over TLS without a TLS config", ErrInvalidConfig)
	case c.Host == "":
		return fmt.Errorf("%w: TURN without a Host for its URLs", ErrInvalidConfig)
	case c.ListenIP != "" && net.ParseIP(c.ListenIP) == nil:
		return fmt.Errorf("%w: TURN listen IP %q", ErrInvalidConfig, c.ListenIP)
	case c.Secret != nil && len(c.Secret) < relay.MinSecretLen:
		return fmt.Errorf("%w: TURN secret shorter than %d bytes", ErrInvalidConfig, relay.MinSecretLen)
	case c.RelayIP != "" && net.ParseIP(c.RelayIP) == nil:
		return fmt.Errorf("%w: TURN relay IP %q", ErrInvalidConfig, c.RelayIP)
	case c.CredentialTTL < 0:
		return fmt.Errorf("%w: negative TURN credential TTL", ErrInvalidConfig)
	case rtc.UDPPort == 0 && rtc.PacketConn == nil:
		return fmt.Errorf("%w: the embedded TURN server relays to the single media port: set WebRTC.UDPPort", ErrInvalidConfig)
	}
	return nil
}

// turnSecret is the credentials' key: the configured one, or one derived
// from the token secret (never the token secret itself).
func turnSecret(c Config) []byte {
	if c.TURN.Secret != nil {
		return c.TURN.Secret
	}
	m := hmac.New(sha256.New, c.Secret)
	m.Write([]byte("callcore TURN credentials"))
	return m.Sum(nil)
}

// startTURN starts the embedded TURN server, relaying to the engine's
// UDP port. It closes what it opened when it fails.
func startTURN(c Config, engine *webrtc.Engine) (*relay.Server, error) {
	t := c.TURN
	mux, ok := engine.UDPAddr().(*net.UDPAddr)
	if !ok {
		return nil, fmt.Errorf("%w: the embedded TURN server needs the media transport's UDP port", ErrInvalidConfig)
	}
	media := mux.AddrPort()
	var ips []netip.Addr
	if media.Addr().IsUnspecified() {
		// The media socket listens on every address: the relay reaches
		// it on IPv4 loopback, and clients may name any of the host's.
		media = netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), media.Port())
		addrs, err := net.InterfaceAddrs()
		if err != nil {
			return nil, err
		}
		for _, a := range addrs {
			if p, err := netip.ParsePrefix(a.String()); err == nil {
				ips = append(ips, p.Addr())
			}
		}
	}
	for _, s := range c.WebRTC.NAT1To1IPs {
		if ip, err := netip.ParseAddr(s); err == nil {
			ips = append(ips, ip)
		}
	}
	var opened []interface{ Close() error }
	fail := func(err error) (*relay.Server, error) {
		for _, o := range opened {
			_ = o.Close()
		}
		return nil, err
	}
	ip := net.ParseIP(t.ListenIP)
	udp, tcp, tl := t.UDP, t.TCPListener, t.TLSListener
	if t.UDPPort != 0 {
		u, err := net.ListenUDP("udp", &net.UDPAddr{IP: ip, Port: t.UDPPort})
		if err != nil {
			return fail(err)
		}
		udp = u
		opened = append(opened, u)
	}
	for _, l := range []struct {
		port int
		to   *net.Listener
	}{{t.TCPPort, &tcp}, {t.TLSPort, &tl}} {
		if l.port != 0 {
			ln, err := net.ListenTCP("tcp", &net.TCPAddr{IP: ip, Port: l.port})
			if err != nil {
				return fail(err)
			}
			*l.to = ln
			opened = append(opened, ln)
		}
	}
	if tl != nil {
		tl = tls.NewListener(tl, t.TLS)
	}
	var relayIP netip.Addr
	if t.RelayIP != "" {
		relayIP, _ = netip.ParseAddr(t.RelayIP)
	}
	r, err := relay.New(relay.Config{Secret: turnSecret(c), UDP: udp, TCP: tcp, TLS: tl, Media: media, MediaIPs: ips, RelayIP: relayIP})
	if err != nil {
		return fail(err)
	}
	return r, nil
}

// turnServer is the embedded TURN server's entry in the ICE servers
// handed to a client whose token expires at expires: its URLs, and
// credentials valid until then (at most CredentialTTL).
func (s *Server) turnServer(user string, expires time.Time) (webrtc.ICEServer, bool) {
	if s.turn == nil {
		return webrtc.ICEServer{}, false
	}
	if ttl := s.cfg.TURN.CredentialTTL; ttl > 0 {
		if limit := time.Now().Add(ttl); expires.After(limit) {
			expires = limit
		}
	}
	var urls []string
	host := s.cfg.TURN.Host
	for _, a := range s.turn.Addrs() {
		port := ""
		if _, p, err := net.SplitHostPort(a.Addr.String()); err == nil {
			port = p
		}
		hp := net.JoinHostPort(host, port)
		switch a.Transport {
		case "udp":
			urls = append(urls, "turn:"+hp+"?transport=udp")
		case "tcp":
			urls = append(urls, "turn:"+hp+"?transport=tcp")
		case "tls":
			urls = append(urls, "turns:"+hp+"?transport=tcp")
		}
	}
	u, p := s.turn.Credentials(user, expires)
	return webrtc.ICEServer{URLs: urls, Username: u, Credential: p}, true
}
