package server

import (
	"fmt"
	"io/fs"
	"log/slog"
	"time"

	"github.com/callcore/callcore/transport/webrtc"
)

// MinSecretLen is the shortest token secret accepted: 32 bytes, the size
// of HS256's output.
const MinSecretLen = 32

// Config configures a Server. Zero values are documented defaults; Secret
// is required.
type Config struct {
	// Secret is the HS256 key of the tokens clients present (at least
	// MinSecretLen bytes). The server takes a user id from nothing else.
	Secret []byte
	// DevTokens serves GET /dev/token?user=ID&create=1, which answers with
	// a token for any user: for demos and tests only.
	DevTokens bool
	// LoopbackHostsOnly refuses (421) requests whose Host header is not
	// localhost or a loopback address: with DevTokens on a loopback
	// listener, it keeps a web page whose name was made to resolve to
	// 127.0.0.1 (DNS rebinding) from minting tokens and joining calls.
	LoopbackHostsOnly bool
	// DevTokenTTL is how long a dev token is valid. Default 12 hours.
	DevTokenTTL time.Duration
	// WebRTC is the media transport's ICE and engine setup. A
	// WebRTC.PacketConn belongs to the server once New has built its
	// engine: Shutdown closes it, and so does a New that fails after that
	// point; a New refused before (an invalid config) leaves it open.
	WebRTC webrtc.Config
	// TURN is the embedded TURN server, off by default: each client is
	// handed its URLs with credentials of its own in the auth answer.
	TURN TURNConfig
	// Static, when set, is served at / (the demo page) and /sdk/ (the
	// browser SDK): cmd/callserver passes web.FS.
	Static fs.FS
	// OriginPatterns are the host patterns (path.Match syntax, e.g.
	// "*.example.com") of pages allowed to open a WebSocket, besides the
	// server's own host. Default: the server's own host only.
	OriginPatterns []string
	// Logger receives structured logs. Default: slog.Default().
	Logger *slog.Logger

	// Cluster, when set, runs the server's channels in a cluster of call
	// servers: create and join go to it (see Cluster), and Server.Registry
	// holds no channels. Default nil: the server's own registry.
	Cluster Cluster

	// IdleTimeout closes a channel that has had no active user for this
	// long. Default 0: kept until deleted.
	IdleTimeout time.Duration
	// JoinRequestTimeout is how long a join request waits for an admin.
	// Default 0: the channel package's (30 s).
	JoinRequestTimeout time.Duration

	// MaxMessageBytes is the largest message a client may send. Default
	// 256 KiB.
	MaxMessageBytes int64
	// RequestRate and RequestBurst bound each user's requests, over all
	// its connections: a token bucket of RequestBurst tokens refilled at
	// RequestRate a second, kept after the user's last connection closes
	// until it is full again (reconnecting gives no fresh burst). Defaults
	// 20 and 40.
	RequestRate  float64
	RequestBurst int
	// AddrRequestRate and AddrRequestBurst bound what one remote address
	// sends before its connections are authenticated: each new connection
	// and each auth spends a token (what a user sends after is the user's
	// budget). Defaults 100 and 200: many users behind one address (a
	// NAT, a load tool) can all connect at once.
	AddrRequestRate  float64
	AddrRequestBurst int
	// MaxConnsPerIP bounds the WebSocket connections open at once from
	// one remote address; more are refused (429). Default 64.
	MaxConnsPerIP int
	// MaxConnsPerUser bounds the authenticated connections of one user at
	// once; an auth past it is refused (RateLimited, closed with 1008).
	// Default 16.
	MaxConnsPerUser int
	// MaxRefusals and RefusalWindow close a connection whose messages
	// were refused (by a rate limit, or as malformed) more than
	// MaxRefusals times in RefusalWindow (a token bucket of MaxRefusals
	// refilled over RefusalWindow). Defaults 20 and 10 s.
	MaxRefusals   int
	RefusalWindow time.Duration
	// AuthTimeout is how long a new connection has to authenticate.
	// Default 10 s.
	AuthTimeout time.Duration
	// PingInterval and PingTimeout are the keepalive: a WebSocket ping
	// every PingInterval, the connection closed when a pong takes longer
	// than PingTimeout. Defaults 15 s and 15 s.
	PingInterval, PingTimeout time.Duration
	// WriteTimeout bounds one write to a client. Default 10 s.
	WriteTimeout time.Duration
	// SendQueue is how many messages may wait to be written to one
	// client; a client that lets it fill is disconnected. Default 512.
	SendQueue int
	// ResumeGrace is how long a user's stay in a channel outlives a lost
	// WebSocket (one that failed rather than closed): its media keeps
	// flowing, and a new connection of the user joining with resume takes
	// it over without leaving the call. Default 15 s.
	ResumeGrace time.Duration
	// Webhooks sends the channels' lifecycle (created, ended, users
	// joined and left, tracks published and ended) as signed POSTs.
	// Default: none.
	Webhooks WebhookConfig
	// RTP enables RTP participants: plain RTP sources published into a
	// channel (rtpPublish) and channel tracks sent as RTP (rtpReceive).
	// Default: off.
	RTP RTPConfig
	// Grace is how long a user's media connection may stay disconnected
	// (ICE lost) while its WebSocket lives before the user is made to
	// leave its channel. Default 30 s.
	Grace time.Duration
}

// withDefaults returns c with its zero fields set to their defaults.
func (c Config) withDefaults() Config {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&c.DevTokenTTL, 12*time.Hour)
	def(&c.AuthTimeout, 10*time.Second)
	def(&c.PingInterval, 15*time.Second)
	def(&c.PingTimeout, 15*time.Second)
	def(&c.WriteTimeout, 10*time.Second)
	def(&c.Grace, 30*time.Second)
	def(&c.ResumeGrace, 15*time.Second)
	if c.MaxMessageBytes == 0 {
		c.MaxMessageBytes = 256 << 10
	}
	if c.RequestRate == 0 {
		c.RequestRate = 20
	}
	if c.RequestBurst == 0 {
		c.RequestBurst = 40
	}
	if c.MaxConnsPerIP == 0 {
		c.MaxConnsPerIP = 64
	}
	if c.MaxConnsPerUser == 0 {
		c.MaxConnsPerUser = 16
	}
	if c.MaxRefusals == 0 {
		c.MaxRefusals = 20
	}
	def(&c.RefusalWindow, 10*time.Second)
	if c.AddrRequestRate == 0 {
		c.AddrRequestRate = 100
	}
	if c.AddrRequestBurst == 0 {
		c.AddrRequestBurst = 200
	}
	if c.SendQueue == 0 {
		c.SendQueue = 512
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	c.RTP = c.RTP.withDefaults()
	return c
}

// Validate reports whether the config, with defaults applied, is usable.
// Errors wrap ErrInvalidConfig.
func (c Config) Validate() error {
	c = c.withDefaults()
	switch {
	case len(c.Secret) < MinSecretLen:
		return fmt.Errorf("%w: Secret must be at least %d bytes", ErrInvalidConfig, MinSecretLen)
	case c.MaxMessageBytes < 4<<10:
		return fmt.Errorf("%w: MaxMessageBytes %d is below 4 KiB", ErrInvalidConfig, c.MaxMessageBytes)
	case c.RequestRate < 0 || c.RequestBurst < 1 || c.AddrRequestRate < 0 || c.AddrRequestBurst < 1 ||
		c.MaxRefusals < 1 || c.SendQueue < 16 || c.MaxConnsPerIP < 1 || c.MaxConnsPerUser < 1:
		return fmt.Errorf("%w: RequestRate, RequestBurst, AddrRequestRate, AddrRequestBurst, MaxRefusals, SendQueue, MaxConnsPerIP or MaxConnsPerUser out of range", ErrInvalidConfig)
	case c.DevTokenTTL < 0 || c.AuthTimeout < 0 || c.PingInterval < 0 || c.PingTimeout < 0 ||
		c.WriteTimeout < 0 || c.Grace < 0 || c.ResumeGrace < 0 || c.IdleTimeout < 0 || c.JoinRequestTimeout < 0 || c.RefusalWindow < 0:
		return fmt.Errorf("%w: negative duration", ErrInvalidConfig)
	}
	for _, p := range c.OriginPatterns {
		if p == "" {
			return fmt.Errorf("%w: empty origin pattern", ErrInvalidConfig)
		}
	}
	if err := c.RTP.Validate(); err != nil {
		return err
	}
	if err := c.Webhooks.Validate(); err != nil {
		return err
	}
	if err := c.WebRTC.Validate(); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	if err := c.TURN.Validate(c.WebRTC); err != nil {
		return err
	}
	return nil
}
