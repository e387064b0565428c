package channel

import (
	"fmt"
	"time"

	"github.com/callcore/callcore/permission"
)

// Limits on arguments. Longer or empty values are refused with ErrInvalid.
const (
	// MaxIDLen is the longest user id, channel id or track name, in bytes.
	MaxIDLen = 128
	// MaxReasonLen is the longest delete or mute reason, in bytes.
	MaxReasonLen = 256
	// MaxBatch is the most ids, users, tracks or names in one call.
	MaxBatch = 1024
	// MaxTracksPerUser is the most tracks one user publishes at once.
	MaxTracksPerUser = 32
)

// Kind is a set of media kinds. A track has exactly one (Audio or Video);
// a channel's configuration allows a non-empty set.
type Kind uint8

// Kinds.
const (
	Audio      Kind = 1
	Video      Kind = 2
	AudioVideo      = Audio | Video
)

func (k Kind) String() string {
	switch k {
	case Audio:
		return "audio"
	case Video:
		return "video"
	case AudioVideo:
		return "audioVideo"
	}
	return fmt.Sprintf("Kind(%d)", uint8(k))
}

// isTrackKind reports whether k is one kind (a track's).
func (k Kind) isTrackKind() bool { return k == Audio || k == Video }

// allows reports whether a channel configured with k accepts tracks of kind t.
func (k Kind) allows(t Kind) bool { return k&t != 0 }

// CallConfig is a channel's configuration, as create and configure set it.
// The zero value is the default configuration.
type CallConfig struct {
	// Kind is the media kinds allowed. Default (0) AudioVideo. Narrowing it
	// at run time admin-mutes the existing tracks of the kind no longer
	// allowed and refuses new ones with ErrKindNotAllowed.
	Kind Kind
	// JoinRequest makes a join by a non-member a request that admins see as
	// cnl:req and answer with AddUsers (approve) or DelUsers (refuse).
	// Default false.
	JoinRequest bool
	// MaxUsers is the most active users at once; a join past it fails with
	// ErrFull. Default (0) no limit.
	MaxUsers int
	// DefaultPermission is the mode of users who join or are added without
	// one of their own. Default (0) permission.Default (6, send+recv);
	// because 0 means default, a mode of 0 cannot be the default (give
	// joiners permission.Recv for a listen-only audience).
	DefaultPermission permission.Mode
	// LastN is how many of the most recent speakers each subscriber
	// receives video from (screen shares always flow); the video of the
	// others is paused for it and resumes on a key frame when their users
	// speak. Default (0) no limit; at most MaxLastN.
	LastN int
}

// MaxLastN is the largest CallConfig.LastN.
const MaxLastN = MaxBatch

// withDefaults returns c with its zero fields set to their defaults.
func (c CallConfig) withDefaults() CallConfig {
	if c.Kind == 0 {
		c.Kind = AudioVideo
	}
	if c.DefaultPermission == 0 {
		c.DefaultPermission = permission.Default
	}
	return c
}

// Validate reports a bad configuration with an error wrapping ErrInvalid.
func (c CallConfig) Validate() error {
	if c.Kind&^AudioVideo != 0 {
		return fmt.Errorf("%w: config kind %v", ErrInvalid, c.Kind)
	}
	if c.MaxUsers < 0 {
		return fmt.Errorf("%w: config maxUsers %d", ErrInvalid, c.MaxUsers)
	}
	if c.LastN < 0 || c.LastN > MaxLastN {
		return fmt.Errorf("%w: config lastN %d (0 to %d)", ErrInvalid, c.LastN, MaxLastN)
	}
	if !c.DefaultPermission.Valid() {
		return fmt.Errorf("%w: config defaultPermission %d outside the mask", ErrInvalid, c.DefaultPermission)
	}
	return nil
}

// Config configures a Registry. The zero value is valid.
type Config struct {
	// CanCreate is the server's policy for who may create channels.
	// Default (nil): every user may.
	CanCreate func(user string) bool
	// Media is the forwarding plane. Default (nil): nothing is forwarded
	// (NopMedia).
	Media Media
	// Notifier sends newcall notifications. Default (nil): none are sent.
	Notifier Notifier
	// Clock schedules idle closing and join-request expiry. Default (nil):
	// SystemClock (works with testing/synctest).
	Clock Clock
	// IdleTimeout is how long a channel with no active users lives before
	// it closes. Default (0): until deleted.
	IdleTimeout time.Duration
	// JoinRequestTimeout is how long a join request waits for an answer
	// before failing with ErrNotMember. Default (0): 30 seconds.
	JoinRequestTimeout time.Duration
	// EventBuffer is each subscription's buffer, in events; a consumer that
	// lets it fill is disconnected with ErrSlowConsumer. Default (0): 256.
	EventBuffer int
}

func (c *Config) setDefaults() {
	if c.CanCreate == nil {
		c.CanCreate = func(string) bool { return true }
	}
	if c.Media == nil {
		c.Media = NopMedia{}
	}
	if c.Notifier == nil {
		c.Notifier = NopNotifier{}
	}
	if c.Clock == nil {
		c.Clock = SystemClock{}
	}
	if c.JoinRequestTimeout == 0 {
		c.JoinRequestTimeout = 30 * time.Second
	}
	if c.EventBuffer == 0 {
		c.EventBuffer = 256
	}
}

// Validate reports a bad configuration with an error wrapping ErrInvalid.
func (c Config) Validate() error {
	switch {
	case c.IdleTimeout < 0:
		return fmt.Errorf("%w: negative IdleTimeout", ErrInvalid)
	case c.JoinRequestTimeout < 0:
		return fmt.Errorf("%w: negative JoinRequestTimeout", ErrInvalid)
	case c.EventBuffer < 0:
		return fmt.Errorf("%w: negative EventBuffer", ErrInvalid)
	}
	return nil
}

func checkID(what, id string) error {
	if id == "" || len(id) > MaxIDLen {
		return fmt.Errorf("%w: %s must be 1 to %d bytes", ErrInvalid, what, MaxIDLen)
	}
	return nil
}

func checkReason(r string) error {
	if len(r) > MaxReasonLen {
		return fmt.Errorf("%w: reason longer than %d bytes", ErrInvalid, MaxReasonLen)
	}
	return nil
}

// checkIDs validates a batch of distinct ids.
func checkIDs(what string, ids []string) error {
	if len(ids) == 0 || len(ids) > MaxBatch {
		return fmt.Errorf("%w: %d %ss (1 to %d)", ErrInvalid, len(ids), what, MaxBatch)
	}
	seen := make(map[string]struct{}, len(ids))
	for _, id := range ids {
		if err := checkID(what, id); err != nil {
			return err
		}
		if _, dup := seen[id]; dup {
			return fmt.Errorf("%w: duplicate %s %q", ErrInvalid, what, id)
		}
		seen[id] = struct{}{}
	}
	return nil
}

// checkTracks validates at least min tracks to publish.
func checkTracks(tracks []TrackInfo, min int) error {
	if len(tracks) < min || len(tracks) > MaxTracksPerUser {
		return fmt.Errorf("%w: %d tracks (%d to %d)", ErrInvalid, len(tracks), min, MaxTracksPerUser)
	}
	seen := make(map[string]struct{}, len(tracks))
	for _, t := range tracks {
		if err := checkID("track name", t.Name); err != nil {
			return err
		}
		if !t.Kind.isTrackKind() {
			return fmt.Errorf("%w: track %q kind %v", ErrInvalid, t.Name, t.Kind)
		}
		if _, dup := seen[t.Name]; dup {
			return fmt.Errorf("%w: duplicate track name %q", ErrInvalid, t.Name)
		}
		seen[t.Name] = struct{}{}
	}
	return nil
}
