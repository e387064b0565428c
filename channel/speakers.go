package channel

import (
	"fmt"
	"slices"
)

// SetSpeakers announces the channel's speakers, the dominant speaker
// first, as cnl:speakers to every active user, in the channel's event
// order. The media plane calls it when its speaker detection changes the
// order; there is no acting user. Users who are not active are left out,
// and nothing is emitted when the users left and their order are those of
// the last cnl:speakers (levels alone do not make an event). Refusals:
// ErrInvalid (a bad user id, a user twice, a level outside 0..127, more
// than MaxBatch speakers), ErrClosed. Like every operation it makes the
// channel's queued Media calls before it returns, unless another goroutine
// is making them.
func (c *Channel) SetSpeakers(list []Speaker) error {
	if len(list) > MaxBatch {
		return fmt.Errorf("%w: %d speakers (at most %d)", ErrInvalid, len(list), MaxBatch)
	}
	seen := make(map[string]struct{}, len(list))
	for _, s := range list {
		if err := checkID("user id", s.User); err != nil {
			return err
		}
		if s.Level < 0 || s.Level > 127 {
			return fmt.Errorf("%w: speaker %q level %d (0 to 127)", ErrInvalid, s.User, s.Level)
		}
		if _, dup := seen[s.User]; dup {
			return fmt.Errorf("%w: speaker %q twice", ErrInvalid, s.User)
		}
		seen[s.User] = struct{}{}
	}
	return c.do(func() error {
		out := make([]Speaker, 0, len(list))
		users := make([]string, 0, len(list))
		for _, s := range list {
			if c.active[s.User] != nil {
				out = append(out, s)
				users = append(users, s.User)
			}
		}
		if slices.Equal(users, c.speakers) {
			return nil
		}
		c.speakers = users
		c.emit(Event{Type: EventSpeakers, Speakers: out})
		return nil
	})
}

// Speakers returns the speakers of the last cnl:speakers (users who left
// since included).
func (c *Channel) Speakers() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.speakers)
}

// SetSpeakers calls SetSpeakers on channel ch, or returns ErrNotFound.
func (r *Registry) SetSpeakers(ch string, list []Speaker) error {
	c, err := r.Get(ch)
	if err != nil {
		return err
	}
	return c.SetSpeakers(list)
}
