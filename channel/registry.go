package channel

import (
	"fmt"
	"sync"

	"github.com/callcore/callcore/permission"
)

// Registry owns a server's channels by id: it creates them, finds them and
// forgets them when they are deleted or close idle.
type Registry struct {
	cfg Config // immutable after NewRegistry

	mu       sync.Mutex // guards channels, closed
	channels map[string]*Channel
	closed   bool
}

// NewRegistry returns an empty registry. cfg is validated.
func NewRegistry(cfg Config) (*Registry, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.setDefaults()
	return &Registry{cfg: cfg, channels: make(map[string]*Channel)}, nil
}

// CreateOptions are create's optional arguments.
type CreateOptions struct {
	// Tracks are the owner's tracks, published at once.
	Tracks []TrackInfo
	// Config is the channel's configuration (the zero value is the
	// default).
	Config CallConfig
	// Users are made members at creation (with the default permission)
	// and sent a newcall notification.
	Users []string
}

// Create creates channel id with actor as owner, who joins it at once: the
// returned Subscription's first event is cnl:create. Refusals: ErrInvalid,
// ErrUnauthorized (Config.CanCreate said no), ErrExists, ErrKindNotAllowed
// (a track the config does not allow), ErrClosed (the registry is closed).
func (r *Registry) Create(actor, id string, opts CreateOptions) (*Channel, *Subscription, error) {
	if err := r.checkCreate(actor, id, opts); err != nil {
		return nil, nil, err
	}
	if _, err := permission.Decide(permission.OpCreate, permission.Facts{CanCreate: r.cfg.CanCreate(actor)}); err != nil {
		return nil, nil, err
	}
	c := newChannel(r, id, opts.Config.withDefaults(), actor)
	c.mu.Lock()
	r.mu.Lock()
	switch {
	case r.closed:
		r.mu.Unlock()
		c.mu.Unlock()
		return nil, nil, fmt.Errorf("%w: registry closed", ErrClosed)
	case r.channels[id] != nil:
		r.mu.Unlock()
		c.mu.Unlock()
		return nil, nil, fmt.Errorf("%w: channel %q", ErrExists, id)
	}
	for _, t := range opts.Tracks {
		if !c.cfg.Kind.allows(t.Kind) {
			r.mu.Unlock()
			c.mu.Unlock()
			return nil, nil, fmt.Errorf("%w: track %q is %v", ErrKindNotAllowed, t.Name, t.Kind)
		}
	}
	r.channels[id] = c
	r.mu.Unlock()
	sub := c.start(opts)
	c.settle()
	c.mu.Unlock()
	c.flush()
	return c, sub, nil
}

func (r *Registry) checkCreate(actor, id string, opts CreateOptions) error {
	if err := checkID("user id", actor); err != nil {
		return err
	}
	if err := checkID("channel id", id); err != nil {
		return err
	}
	if err := checkTracks(opts.Tracks, 0); err != nil {
		return err
	}
	if err := opts.Config.Validate(); err != nil {
		return err
	}
	if len(opts.Users) > 0 {
		if err := checkIDs("user id", opts.Users); err != nil {
			return err
		}
	}
	return nil
}

// Get returns channel id, or ErrNotFound.
func (r *Registry) Get(id string) (*Channel, error) {
	r.mu.Lock()
	c := r.channels[id]
	r.mu.Unlock()
	if c == nil {
		return nil, fmt.Errorf("%w: channel %q", ErrNotFound, id)
	}
	return c, nil
}

// Len returns the number of live channels.
func (r *Registry) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.channels)
}

// Close closes every channel (as a delete with reason "registry closed" and
// no sender) and refuses further creates.
func (r *Registry) Close() {
	r.mu.Lock()
	r.closed = true
	all := make([]*Channel, 0, len(r.channels))
	for _, c := range r.channels {
		all = append(all, c)
	}
	r.mu.Unlock()
	for _, c := range all {
		c.shutdown("", "registry closed")
	}
}

// forget removes c if it is still the channel registered under its id.
func (r *Registry) forget(c *Channel) {
	r.mu.Lock()
	if r.channels[c.id] == c {
		delete(r.channels, c.id)
	}
	r.mu.Unlock()
}
