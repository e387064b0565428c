package speaker

import (
	"fmt"
	"time"
)

// Clock gives monotonic time in nanoseconds. It is the same contract as
// forward's clock, so a node can hand both the same one.
type Clock interface {
	Nanotime() int64
}

// systemClock is the default Clock: monotonic time since it was created.
type systemClock struct{ start time.Time }

func (c systemClock) Nanotime() int64 { return int64(time.Since(c.start)) }

// Bounds of Config.Interval.
const (
	MinInterval     = 100 * time.Millisecond
	MaxInterval     = 5 * time.Second
	DefaultInterval = 300 * time.Millisecond
)

// Config configures a Group.
type Config struct {
	// Interval is how often the Group decides the speakers of every busy
	// Detector, and so the fastest rate of OnChange calls of one Detector.
	// Default DefaultInterval; from MinInterval to MaxInterval.
	Interval time.Duration
	// Clock is the time source of the decisions. Levels must be stamped
	// with readings of the same clock. Default: monotonic time since
	// NewGroup.
	Clock Clock
}

// Validate reports whether c is usable, after defaults are applied.
func (c *Config) Validate() error {
	if c.Interval == 0 {
		c.Interval = DefaultInterval
	}
	if c.Interval < MinInterval || c.Interval > MaxInterval {
		return fmt.Errorf("%w: Interval %v is not within [%v, %v]", ErrInvalidConfig, c.Interval, MinInterval, MaxInterval)
	}
	if c.Clock == nil {
		c.Clock = systemClock{start: time.Now()}
	}
	return nil
}

// DetectorConfig configures one Detector (one channel's speakers).
type DetectorConfig struct {
	// OnChange receives the speakers, dominant first, each time their
	// order changes (not when only levels change). It runs on the Group's
	// goroutine with no lock held, at most once per Interval per Detector,
	// and must not block: it delays every channel of the Group. It may
	// keep the slice. Required.
	OnChange func([]Speaker)
	// VoiceFlag makes frames whose V flag is clear count as silence. Set
	// it only when the publishers negotiated voice activity (vad=on);
	// otherwise the flag means nothing and is ignored.
	VoiceFlag bool
}

// Validate reports whether c is usable.
func (c *DetectorConfig) Validate() error {
	if c.OnChange == nil {
		return fmt.Errorf("%w: OnChange is required", ErrInvalidConfig)
	}
	return nil
}
