package link

import (
	"crypto/tls"
	"fmt"
	"net"
	"net/netip"
	"time"
)

// Config configures a Link. Exactly one of Listen and Dial is set.
type Config struct {
	// Listen is the TCP address ("IP:port") on which the link accepts its
	// peer's control connection. A new connection replaces the session
	// under way (the peer reconnected).
	Listen string
	// Dial is the peer's control address. The link dials it, and redials
	// after every drop until Close.
	Dial string
	// PeerMedia is the UDP address the dialing side sends media to.
	// Default: the host of Dial and the port the peer announces in its
	// hello. Set it when a relay or NAT sits between the nodes. The
	// listening side sends to the address the dialer's first
	// authenticated packet came from.
	PeerMedia string
	// TLS, when set, protects the control channel, which carries the
	// session's SRTP keys: it is the server config when listening, the
	// client config when dialing. Use mutual authentication (ClientAuth
	// tls.RequireAndVerifyClientCert) so only nodes with a certificate
	// connect. When dialing with no ServerName, the peer's certificate
	// must name the host of Dial (as tls.Dial checks). Default nil: plain
	// TCP, for private networks and tests only.
	TLS *tls.Config
	// Media is the local UDP address. Default the local IP of the control
	// connection and a free port; a new socket is opened per session.
	Media string
	// OnTrack is called when the peer offers a track this link has not
	// seen (not again when a reconnection re-offers it), from the link's
	// control goroutine, with no lock held. Optional.
	OnTrack func(*RemoteTrack)
	// OnTrackEnded is called when the peer withdraws a track, the peer
	// does not offer it again after a reconnection, or the link closes.
	// Optional.
	OnTrackEnded func(*RemoteTrack)
	// Timeout is how long a silent control connection is kept; pings go
	// every Timeout/5. Default 5 s.
	Timeout time.Duration
	// Linger is how long the peer's tracks are kept after a session ends
	// without a new one; then they end (OnTrackEnded) and their memory is
	// freed. Default 30 s.
	Linger time.Duration
	// Redial is the longest wait between two dials (the first retry is
	// after 50 ms, doubling). Default 1 s.
	Redial time.Duration
	// MaxPacketSize is the largest RTP packet carried, before SRTP.
	// Default 1500.
	MaxPacketSize int

	// dropIn, in tests, drops decrypted RTP packets on arrival.
	dropIn func(pkt []byte) bool
}

func (c *Config) setDefaults() {
	if c.Timeout == 0 {
		c.Timeout = 5 * time.Second
	}
	if c.Linger == 0 {
		c.Linger = 30 * time.Second
	}
	if c.Redial == 0 {
		c.Redial = time.Second
	}
	if c.MaxPacketSize == 0 {
		c.MaxPacketSize = 1500
	}
	if c.TLS != nil && c.Dial != "" && c.TLS.ServerName == "" && !c.TLS.InsecureSkipVerify {
		// As tls.Dial does: the peer's certificate must name the host
		// dialed.
		if host, _, err := net.SplitHostPort(c.Dial); err == nil {
			c.TLS = c.TLS.Clone()
			c.TLS.ServerName = host
		}
	}
}

// Validate reports whether the config, with defaults applied for zero
// fields, is usable. Errors wrap ErrInvalidConfig.
func (c Config) Validate() error {
	c.setDefaults()
	switch {
	case (c.Listen == "") == (c.Dial == ""):
		return fmt.Errorf("%w: exactly one of Listen and Dial", ErrInvalidConfig)
	case c.PeerMedia != "" && c.Dial == "":
		return fmt.Errorf("%w: PeerMedia without Dial", ErrInvalidConfig)
	case c.Timeout < 50*time.Millisecond:
		return fmt.Errorf("%w: timeout %v", ErrInvalidConfig, c.Timeout)
	case c.Linger < 0:
		return fmt.Errorf("%w: linger %v", ErrInvalidConfig, c.Linger)
	case c.Redial < time.Millisecond:
		return fmt.Errorf("%w: redial %v", ErrInvalidConfig, c.Redial)
	case c.MaxPacketSize < 64 || c.MaxPacketSize > 65000:
		return fmt.Errorf("%w: max packet size %d", ErrInvalidConfig, c.MaxPacketSize)
	}
	if c.PeerMedia != "" {
		if _, err := netip.ParseAddrPort(c.PeerMedia); err != nil {
			return fmt.Errorf("%w: peer media: %w", ErrInvalidConfig, err)
		}
	}
	if c.Media != "" {
		if _, err := netip.ParseAddrPort(c.Media); err != nil {
			return fmt.Errorf("%w: media: %w", ErrInvalidConfig, err)
		}
	}
	return nil
}
