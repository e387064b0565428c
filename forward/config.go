package forward

import (
	"fmt"
	"math/bits"
	"time"

	"github.com/callcore/callcore/transport"
)

// Kind is a track's media kind.
type Kind uint8

// Media kinds.
const (
	Audio Kind = iota + 1
	Video
)

func (k Kind) String() string {
	switch k {
	case Audio:
		return "audio"
	case Video:
		return "video"
	}
	return fmt.Sprintf("Kind(%d)", uint8(k))
}

// Extension is a negotiated RTP header extension: its ID on one peer's
// connection and its URI.
type Extension struct {
	ID  uint8
	URI string
}

// URITransportCC is the transport-wide congestion control extension. Its
// sequence numbers belong to one connection and never pass through the core.
const URITransportCC = "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01"

// URIAudioLevel is the client-to-mixer audio level extension (RFC 6464).
// An audio track whose publisher negotiated it hands the level of each
// packet to its Levels.
const URIAudioLevel = "urn:ietf:params:rtp-hdrext:ssrc-audio-level"

// Levels takes the audio levels of a track's packets. Level is called on
// the packet path, in the track's exclusive section, for every accepted
// packet with media: level in -dBov (0 the loudest, 127 silence), voiced
// the extension's V flag, now the track's clock when the packet arrived.
// While the track is muted it is called with 127 (silence) for each packet
// the muter replaces. It must not block, lock or allocate.
type Levels interface {
	Level(level uint8, voiced bool, now int64)
}

// Clock gives monotonic time in nanoseconds. Tests inject a manual clock.
type Clock interface {
	Nanotime() int64
}

// SystemClock is the default Clock: monotonic time since it was created.
type SystemClock struct{ start time.Time }

// NewSystemClock returns a clock that starts at zero now.
func NewSystemClock() *SystemClock { return &SystemClock{start: time.Now()} }

// Nanotime returns the monotonic nanoseconds since the clock was created.
func (c *SystemClock) Nanotime() int64 { return int64(time.Since(c.start)) }

// TrackConfig configures a published track.
type TrackConfig struct {
	// Kind is Audio or Video. Required.
	Kind Kind
	// ClockRate is the RTP clock rate in Hz (48000 for Opus, 90000 for
	// video). Required.
	ClockRate uint32
	// PayloadType is the publisher's payload type for this track's codec.
	// Packets with any other payload type are dropped.
	PayloadType uint8
	// SSRC is the publisher's SSRC. Zero adopts the first packet's.
	SSRC uint32
	// Extensions are the header extensions negotiated with the publisher.
	Extensions []Extension
	// ReorderWindow is how many sequence numbers behind the newest a
	// reordered packet may arrive: a power of two from 64 to 8192.
	// Default 512.
	ReorderWindow int
	// MaxDropout is the largest forward sequence jump taken as loss; a
	// larger one must be confirmed by the next packet (RFC 3550 A.1).
	// Default 3000; at most 32768 - ReorderWindow.
	MaxDropout int
	// MaxPacketSize is the largest RTP packet accepted, in bytes.
	// Default 1500; at most 65535.
	MaxPacketSize int
	// Clock is the time source for splices. Default NewSystemClock().
	Clock Clock

	// MimeType names the codec ("video/VP8", "video/H264", "video/VP9",
	// "video/AV1", "audio/opus", ...), compared case-insensitively. Key
	// frames are found in VP8, VP9, H.264 and AV1; every packet of an audio
	// or unknown format is a place a subscriber can start.
	MimeType string
	// RTX is the publisher's retransmission stream (RFC 4588), unwrapped
	// into the track on the way in. Nil when not negotiated.
	RTX *RTX
	// Feedback takes the RTCP the track sends its publisher (key-frame
	// requests). Nil drops it.
	Feedback transport.RTCPWriter
	// FeedbackSSRC is the sender SSRC of that RTCP. Default 1.
	FeedbackSSRC uint32
	// CacheSize is how many packets the retransmission cache keeps: a power
	// of two from 16 to 8192. Default 512.
	CacheSize int
	// KeyFrameInterval is the least time between two key-frame requests to
	// the publisher, whatever comes back: requests arriving sooner are
	// merged into the next one allowed, and a request is repeated at this
	// interval while no key frame comes. Default 500 ms.
	KeyFrameInterval time.Duration
	// ReplayAge is the age under which a joining subscriber is given the
	// cached run from the last key frame at once, instead of waiting for a
	// new key frame. Default 1 s; negative disables replay.
	ReplayAge time.Duration
	// Pool, when set, spreads the deliveries of one packet over its
	// workers once the track has ParallelThreshold subscribers or more.
	Pool *Pool
	// ParallelThreshold is the subscriber count from which Pool is used.
	// Default 256.
	ParallelThreshold int
	// Mute sets the empty media of a muted track.
	Mute MuteConfig
	// NACKUpstream makes the track ask its publisher (through Feedback) to
	// resend packets lost on the way in, up to three times each, 20 ms
	// apart. Leave it off when the publisher's transport already does
	// (pion's NACK generator, for instance).
	NACKUpstream bool
	// Levels, when set, takes the audio level of each packet of an audio
	// track whose Extensions include URIAudioLevel (see Levels).
	// Track.SetLevels replaces it.
	Levels Levels
}

// RTX names a retransmission stream: its SSRC and payload type.
type RTX struct {
	SSRC        uint32
	PayloadType uint8
}

func (c *TrackConfig) setDefaults() {
	if c.ReorderWindow == 0 {
		c.ReorderWindow = 512
	}
	if c.MaxDropout == 0 {
		c.MaxDropout = 3000
	}
	if c.MaxPacketSize == 0 {
		c.MaxPacketSize = 1500
	}
	if c.Clock == nil {
		c.Clock = NewSystemClock()
	}
	if c.FeedbackSSRC == 0 {
		c.FeedbackSSRC = 1
	}
	if c.CacheSize == 0 {
		c.CacheSize = 512
	}
	if c.KeyFrameInterval == 0 {
		c.KeyFrameInterval = 500 * time.Millisecond
	}
	if c.ReplayAge == 0 {
		c.ReplayAge = time.Second
	}
	if c.ParallelThreshold == 0 {
		c.ParallelThreshold = 256
	}
	c.Mute.setDefaults()
}

// Validate reports whether the config, with defaults applied for zero
// fields, is usable. Errors wrap ErrInvalidConfig.
func (c TrackConfig) Validate() error {
	c.setDefaults()
	switch {
	case c.Kind != Audio && c.Kind != Video:
		return fmt.Errorf("%w: kind %v", ErrInvalidConfig, c.Kind)
	case c.ClockRate == 0:
		return fmt.Errorf("%w: clock rate 0", ErrInvalidConfig)
	case c.PayloadType > 127:
		return fmt.Errorf("%w: payload type %d", ErrInvalidConfig, c.PayloadType)
	case c.ReorderWindow < 64 || c.ReorderWindow > 8192 || bits.OnesCount(uint(c.ReorderWindow)) != 1:
		return fmt.Errorf("%w: reorder window %d", ErrInvalidConfig, c.ReorderWindow)
	case c.MaxDropout < 1 || c.MaxDropout > 32768-c.ReorderWindow:
		return fmt.Errorf("%w: max dropout %d", ErrInvalidConfig, c.MaxDropout)
	case c.MaxPacketSize < 12 || c.MaxPacketSize > 65535:
		return fmt.Errorf("%w: max packet size %d", ErrInvalidConfig, c.MaxPacketSize)
	case c.CacheSize < 16 || c.CacheSize > 8192 || bits.OnesCount(uint(c.CacheSize)) != 1:
		return fmt.Errorf("%w: cache size %d", ErrInvalidConfig, c.CacheSize)
	case c.KeyFrameInterval < 0:
		return fmt.Errorf("%w: key-frame interval %v", ErrInvalidConfig, c.KeyFrameInterval)
	case c.ParallelThreshold < 1:
		return fmt.Errorf("%w: parallel threshold %d", ErrInvalidConfig, c.ParallelThreshold)
	case c.RTX != nil && (c.RTX.PayloadType > 127 || c.RTX.PayloadType == c.PayloadType || c.RTX.SSRC == 0):
		return fmt.Errorf("%w: RTX %+v", ErrInvalidConfig, *c.RTX)
	case c.Mute.VideoRate < 1 || c.Mute.VideoRate > 30:
		return fmt.Errorf("%w: mute video rate %d", ErrInvalidConfig, c.Mute.VideoRate)
	case c.Mute.AudioFrame < 10*time.Millisecond || c.Mute.AudioFrame > 60*time.Millisecond:
		return fmt.Errorf("%w: mute audio frame %v", ErrInvalidConfig, c.Mute.AudioFrame)
	case c.Mute.Width < 16 || c.Mute.Height < 16 || c.Mute.Width > 4096 || c.Mute.Height > 4096:
		return fmt.Errorf("%w: mute size %d×%d", ErrInvalidConfig, c.Mute.Width, c.Mute.Height)
	case c.Mute.Flush < 0:
		return fmt.Errorf("%w: mute flush %v", ErrInvalidConfig, c.Mute.Flush)
	}
	return validateExtensions(c.Extensions)
}

// SubscriberConfig configures one subscriber's output stream.
type SubscriberConfig struct {
	// Writer takes the rewritten packets. Required.
	Writer transport.RTPWriter
	// SSRC is the SSRC the subscriber sees. Required, nonzero.
	SSRC uint32
	// PayloadType is the payload type negotiated with the subscriber.
	PayloadType uint8
	// Extensions are the header extensions negotiated with the subscriber.
	// A publisher's extension whose URI is not listed here is stripped.
	Extensions []Extension
	// FirstSeq and FirstTimestamp are the first output sequence number and
	// timestamp. Zero values are used as they are; callers wanting RFC
	// 3550's random start pass random values.
	FirstSeq       uint16
	FirstTimestamp uint32
	// RTX is the retransmission stream negotiated with the subscriber.
	// Nil sends retransmissions on the media SSRC.
	RTX *RTX
	// KeyFrameRequests is the subscriber's budget of PLI and FIR. Requests
	// over it are dropped and counted (KeyFrameRequestsDropped). Default 5
	// a second, burst 5.
	KeyFrameRequests Budget
	// NACKs is the subscriber's budget of NACKed sequence numbers (one
	// NACK entry names up to 17). Numbers over it are dropped and counted
	// (NACKsDropped). Default 1000 a second, burst 500.
	NACKs Budget
	// RetransmitPercent bounds the retransmissions sent to the subscriber
	// to this percentage of the packets forwarded to it, plus
	// RetransmitBurst: each forwarded packet earns RetransmitPercent/100 of
	// a retransmission, up to RetransmitBurst saved. Retransmissions over
	// it are refused and counted (RetransmitsRefused). Default 50, at most
	// 1000.
	RetransmitPercent int
	// RetransmitBurst is the most retransmissions saved up, and the
	// subscriber's allowance when it starts. Default 100.
	RetransmitBurst int
}

// Budget is a token bucket: Rate tokens a second, at most Burst saved.
// The bucket starts full.
type Budget struct {
	Rate  int
	Burst int
}

func (b *Budget) setDefaults(rate, burst int) {
	if b.Rate == 0 {
		b.Rate = rate
	}
	if b.Burst == 0 {
		b.Burst = burst
	}
}

func (b Budget) validate(what string) error {
	if b.Rate < 1 || b.Rate > 1_000_000 || b.Burst < 1 || b.Burst > 1_000_000 {
		return fmt.Errorf("%w: %s budget %+v", ErrInvalidConfig, what, b)
	}
	return nil
}

func (c *SubscriberConfig) setDefaults() {
	c.KeyFrameRequests.setDefaults(5, 5)
	c.NACKs.setDefaults(1000, 500)
	if c.RetransmitPercent == 0 {
		c.RetransmitPercent = 50
	}
	if c.RetransmitBurst == 0 {
		c.RetransmitBurst = 100
	}
}

// Validate reports whether the config, with defaults applied for zero
// fields, is usable. Errors wrap ErrInvalidConfig.
func (c SubscriberConfig) Validate() error {
	c.setDefaults()
	if err := c.KeyFrameRequests.validate("key-frame request"); err != nil {
		return err
	}
	if err := c.NACKs.validate("NACK"); err != nil {
		return err
	}
	switch {
	case c.RetransmitPercent < 1 || c.RetransmitPercent > 1000:
		return fmt.Errorf("%w: retransmit percent %d", ErrInvalidConfig, c.RetransmitPercent)
	case c.RetransmitBurst < 1 || c.RetransmitBurst > 1_000_000:
		return fmt.Errorf("%w: retransmit burst %d", ErrInvalidConfig, c.RetransmitBurst)
	case c.Writer == nil:
		return fmt.Errorf("%w: nil writer", ErrInvalidConfig)
	case c.SSRC == 0:
		return fmt.Errorf("%w: SSRC 0", ErrInvalidConfig)
	case c.PayloadType > 127:
		return fmt.Errorf("%w: payload type %d", ErrInvalidConfig, c.PayloadType)
	case c.RTX != nil && (c.RTX.PayloadType > 127 || c.RTX.SSRC == 0 || c.RTX.SSRC == c.SSRC):
		return fmt.Errorf("%w: RTX %+v", ErrInvalidConfig, *c.RTX)
	}
	return validateExtensions(c.Extensions)
}

func validateExtensions(exts []Extension) error {
	seen := map[uint8]bool{}
	for _, e := range exts {
		if e.ID == 0 || e.URI == "" || seen[e.ID] {
			return fmt.Errorf("%w: extension %d %q", ErrInvalidConfig, e.ID, e.URI)
		}
		seen[e.ID] = true
	}
	return nil
}

// remapTable maps a publisher's extension IDs to a subscriber's, 0 meaning
// strip. The transport-wide sequence number is always stripped.
func remapTable(pub, sub []Extension) [256]uint8 {
	var t [256]uint8
	for _, p := range pub {
		if p.URI == URITransportCC {
			continue
		}
		for _, s := range sub {
			if s.URI == p.URI {
				t[p.ID] = s.ID
			}
		}
	}
	return t
}
