package callload

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"time"

	"github.com/callcore/callcore/server"
)

// Errors of a load run. Match them with errors.Is.
var (
	// ErrInvalidConfig is wrapped by every Config.Validate failure.
	ErrInvalidConfig = errors.New("callload: invalid config")
	// ErrJoin: a participant could not get a token, connect, authenticate,
	// create or join its channel, or negotiate its media in time.
	ErrJoin = errors.New("callload: join failed")
	// ErrSource: the media source (an IVF file) could not be read.
	ErrSource = errors.New("callload: bad media source")
)

// Limits of a run, checked by Validate.
const (
	// MaxParticipants bounds publishers plus subscribers in one run.
	MaxParticipants = 10000
	// MaxDuration bounds the measuring window and the warm-up.
	MaxDuration = 24 * time.Hour
	// MinBitrate and MaxBitrate bound the synthetic video's bit rate.
	MinBitrate, MaxBitrate = 10_000, 100_000_000
	// MaxFPS bounds the synthetic video's frame rate.
	MaxFPS = 240
)

// Config describes one load run. Zero values are documented defaults;
// URL, Publishers or Subscribers, and a token source (Secret or
// TokenURL) are required.
type Config struct {
	// URL is the call server's base URL, http:// or https:// (the
	// signalling WebSocket is its /ws).
	URL string
	// URLs, when set, are further servers: nodes of one cluster, which
	// share their channels. The participants are spread over URL and URLs
	// round robin: publishers first, then subscribers (so the first
	// channel's creator is on URL).
	URLs []string
	// Secret signs the participants' HS256 tokens (the server's token
	// secret, at least server.MinSecretLen bytes). Either Secret or
	// TokenURL.
	Secret []byte
	// TokenURL fetches tokens from a demo server's /dev/token (the user
	// and create=1 are added to its query).
	TokenURL string

	// Publishers send video (and Audio) into the channels, Subscribers
	// only receive. Both are spread round-robin over Channels channels
	// (default 1); a channel's first participant creates it.
	Publishers, Subscribers, Channels int
	// Prefix names the run's users (Prefix-p0, Prefix-s3) and channels
	// (Prefix-c1). Default: "load" and a random suffix, so that runs
	// never meet.
	Prefix string

	// IVF, when set, is a VP8 IVF file every publisher sends in a loop,
	// one frame per tick of the file's time base. Otherwise publishers
	// send a synthetic VP8 stream: black key frames and repeat frames
	// (package mute) of Width×Height, padded to Bitrate at FPS, a key
	// frame every KeyInterval and on every PLI or FIR.
	IVF string
	// Bitrate of the synthetic video in bits/s. Default 1,500,000.
	Bitrate int
	// FPS of the synthetic video. Default 30.
	FPS int
	// KeyInterval between the synthetic video's key frames. Default 2 s.
	KeyInterval time.Duration
	// Width and Height of the synthetic video. Default 640×360.
	Width, Height int
	// Audio adds an Opus track of 20 ms silent frames to each publisher.
	Audio bool

	// Warmup is the time between the last join and the measuring window.
	// Default 3 s.
	Warmup time.Duration
	// Duration is the measuring window. Default 10 s.
	Duration time.Duration
	// JoinTimeout bounds the whole join phase. Default 30 s.
	JoinTimeout time.Duration
	// JoinParallel is how many participants join at once. Default 8.
	JoinParallel int

	// ServerPID, when not 0, is the server's process: the report gives
	// its CPU time over the window (from /proc/PID/stat) per delivered
	// packet, and its RSS (from /proc/PID/status).
	ServerPID int
	// LoopbackICE confines the participants' ICE to 127.0.0.1. Default:
	// on when URL's host is a loopback address or localhost.
	LoopbackICE *bool
}

// withDefaults returns c with its zero fields set to their defaults.
func (c Config) withDefaults() Config {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&c.KeyInterval, 2*time.Second)
	def(&c.Warmup, 3*time.Second)
	def(&c.Duration, 10*time.Second)
	def(&c.JoinTimeout, 30*time.Second)
	defInt := func(p *int, v int) {
		if *p == 0 {
			*p = v
		}
	}
	defInt(&c.Channels, 1)
	defInt(&c.Bitrate, 1_500_000)
	defInt(&c.FPS, 30)
	defInt(&c.Width, 640)
	defInt(&c.Height, 360)
	defInt(&c.JoinParallel, 8)
	if c.LoopbackICE == nil {
		lo := loopbackURL(c.URL)
		c.LoopbackICE = &lo
	}
	return c
}

// Validate reports whether the config, with defaults applied, describes a
// run. Errors wrap ErrInvalidConfig and name the field.
func (c Config) Validate() error {
	c = c.withDefaults()
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrInvalidConfig}, a...)...)
	}
	u, err := url.Parse(c.URL)
	switch {
	case c.URL == "":
		return bad("URL is required (the server's http:// or https:// address)")
	case err != nil:
		return bad("URL %q: %v", c.URL, err)
	case u.Scheme != "http" && u.Scheme != "https" || u.Host == "":
		return bad("URL %q: want http://host:port or https://host:port", c.URL)
	case len(c.Secret) == 0 && c.TokenURL == "":
		return bad("a token source is required: Secret (the server's token secret) or TokenURL (a demo server's /dev/token)")
	case len(c.Secret) != 0 && c.TokenURL != "":
		return bad("Secret and TokenURL both given: choose one")
	case len(c.Secret) != 0 && len(c.Secret) < server.MinSecretLen:
		return bad("Secret is %d bytes, the server's secrets are at least %d", len(c.Secret), server.MinSecretLen)
	case c.Publishers < 0 || c.Subscribers < 0 || c.Channels < 1:
		return bad("Publishers %d, Subscribers %d, Channels %d: negative or no channel", c.Publishers, c.Subscribers, c.Channels)
	case c.Publishers+c.Subscribers == 0:
		return bad("no participants: give Publishers or Subscribers")
	case c.Publishers+c.Subscribers > MaxParticipants:
		return bad("%d participants, at most %d", c.Publishers+c.Subscribers, MaxParticipants)
	case c.Channels > c.Publishers+c.Subscribers:
		return bad("%d channels for %d participants: a channel would be empty", c.Channels, c.Publishers+c.Subscribers)
	case c.Bitrate < MinBitrate || c.Bitrate > MaxBitrate:
		return bad("Bitrate %d bit/s out of range [%d, %d]", c.Bitrate, MinBitrate, MaxBitrate)
	case c.FPS < 1 || c.FPS > MaxFPS:
		return bad("FPS %d out of range [1, %d]", c.FPS, MaxFPS)
	case c.KeyInterval < 0:
		return bad("KeyInterval %v is negative", c.KeyInterval)
	case c.Width < 16 || c.Height < 16 || c.Width > 4096 || c.Height > 4096:
		return bad("size %d×%d out of range [16, 4096]", c.Width, c.Height)
	case c.Warmup < 0 || c.Warmup > MaxDuration:
		return bad("Warmup %v out of range [0, %v]", c.Warmup, MaxDuration)
	case c.Duration < 100*time.Millisecond || c.Duration > MaxDuration:
		return bad("Duration %v out of range [100ms, %v]", c.Duration, MaxDuration)
	case c.JoinTimeout < 0 || c.JoinParallel < 1:
		return bad("JoinTimeout %v or JoinParallel %d out of range", c.JoinTimeout, c.JoinParallel)
	case c.ServerPID < 0:
		return bad("ServerPID %d is negative", c.ServerPID)
	case !validName(c.Prefix):
		return bad("Prefix %q: up to 64 bytes of letters, digits, '-', '_' and '.'", c.Prefix)
	}
	for _, extra := range c.URLs {
		if u, err := url.Parse(extra); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return bad("URLs: %q: want http://host:port or https://host:port", extra)
		}
	}
	if c.TokenURL != "" {
		if t, err := url.Parse(c.TokenURL); err != nil || (t.Scheme != "http" && t.Scheme != "https") || t.Host == "" {
			return bad("TokenURL %q: want http(s)://host:port/dev/token", c.TokenURL)
		}
	}
	return nil
}

// validName: the prefix goes into user and channel ids.
func validName(s string) bool {
	if len(s) > 64 {
		return false
	}
	for _, r := range s {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.'
		if !ok {
			return false
		}
	}
	return true
}

// loopbackURL reports whether u names a loopback host.
func loopbackURL(u string) bool {
	p, err := url.Parse(u)
	if err != nil {
		return false
	}
	h := p.Hostname()
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}
