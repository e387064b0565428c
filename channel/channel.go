package channel

import (
	"context"
	"fmt"
	"sync"

	"github.com/callcore/callcore/permission"
)

// Channel is one call. Its methods are safe for concurrent use; every one
// takes the acting user explicitly, checks it with permission.Decide, and
// either changes the channel (emitting events, then telling Media) or
// refuses with an error and changes nothing.
type Channel struct {
	id  string
	reg *Registry // its cfg is immutable

	mu        sync.Mutex // guards every field below
	closed    bool
	cfg       CallConfig
	kindBy    string // who last narrowed cfg.Kind (mutedBy of kind mutes)
	owner     string
	members   map[string]*member // every member, the owner included
	removed   map[string]struct{}
	active    map[string]*member // members in the call now
	pending   map[string]*joinRequest
	gates     map[string]*permission.Gate // one per user ever asked for; never replaced
	seq       uint64                      // last event's sequence number
	slow      []*member                   // subscribers whose buffer overflowed, to disconnect
	idleGen   uint64                      // bumped whenever idle closing is armed or cancelled
	idleTimer Timer
	fx        []effect // Media, Notifier and timer calls to make, in order
	speakers  []string // the users of the last cnl:speakers, in order
	draining  bool     // a goroutine is making effects (flush)
}

// member is a member's state. Its fields are guarded by the channel's mu.
type member struct {
	id       string
	mode     permission.Mode
	sendBy   string      // who last cleared the send bit
	kindMute [3]kindMute // muteUser's admin mute, by track kind (1, 2)
	active   bool
	sub      *Subscription // while active
	tracks   []*track      // while active, in publication order
}

type kindMute struct {
	on         bool
	by, reason string
}

type track struct {
	info   TrackInfo
	self   bool      // the publisher's self mute
	state  MuteState // effective state, as last announced
	by     string    // MutedBy as last announced
	reason string
}

type joinRequest struct {
	user   string
	tracks []TrackInfo
	done   chan joinResult // buffered: the answer is sent under mu
	timer  Timer           // guarded by the channel's mu
}

type joinResult struct {
	sub *Subscription
	err error
}

func newChannel(r *Registry, id string, cfg CallConfig, owner string) *Channel {
	return &Channel{
		id: id, reg: r, cfg: cfg, owner: owner,
		members: make(map[string]*member),
		removed: make(map[string]struct{}),
		active:  make(map[string]*member),
		pending: make(map[string]*joinRequest),
		gates:   make(map[string]*permission.Gate),
	}
}

// ID returns the channel id.
func (c *Channel) ID() string { return c.id }

// Owner returns the user who created the channel; it never changes.
func (c *Channel) Owner() string { return c.owner }

// Config returns the current configuration, defaults filled in.
func (c *Channel) Config() CallConfig {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cfg
}

// Gate returns user's gate in this channel, for the packet path: its mode
// while the user is active, 0 otherwise. The same pointer is returned for
// the channel's whole life. An invalid user id gets a closed gate of its
// own.
func (c *Channel) Gate(user string) *permission.Gate {
	if checkID("user id", user) != nil {
		return new(permission.Gate)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gate(user)
}

func (c *Channel) gate(user string) *permission.Gate {
	g := c.gates[user]
	if g == nil {
		g = new(permission.Gate)
		if m := c.active[user]; m != nil {
			g.Store(m.mode)
		}
		c.gates[user] = g
	}
	return g
}

// start sets up a new channel: its owner joins with opts.Tracks and the
// named users become members. c.mu is held.
func (c *Channel) start(opts CreateOptions) *Subscription {
	owner := c.addMember(c.owner, permission.All)
	for _, u := range opts.Users {
		if c.members[u] == nil {
			c.addMember(u, c.cfg.DefaultPermission)
		}
	}
	sub := c.activate(owner, opts.Tracks, Event{Type: EventCreate, Sender: c.owner, Config: c.cfg})
	for _, u := range opts.Users {
		if u != c.owner {
			c.addFx(effect{kind: fxNewCall, sender: c.owner, user: u})
		}
	}
	return sub
}

func (c *Channel) addMember(id string, mode permission.Mode) *member {
	m := &member{id: id, mode: mode}
	c.members[id] = m
	delete(c.removed, id)
	return m
}

func (c *Channel) role(id string) permission.Role {
	switch {
	case id == c.owner:
		return permission.Owner
	case c.members[id] != nil:
		return permission.Member
	}
	if _, ok := c.removed[id]; ok {
		return permission.Removed
	}
	return permission.Outsider
}

func (c *Channel) actor(id string) permission.Actor {
	a := permission.Actor{Role: c.role(id)}
	if m := c.members[id]; m != nil {
		a.Mode, a.Active = m.mode, m.active
	}
	return a
}

// do runs an operation under mu, unless the channel is closed; then it
// disconnects slow consumers, unlocks and makes the queued effects.
func (c *Channel) do(op func() error) error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return fmt.Errorf("%w: channel %q", ErrClosed, c.id)
	}
	err := op()
	c.settle()
	c.mu.Unlock()
	c.flush()
	return err
}

// Join makes actor an active user, publishing tracks, and returns its
// event stream (whose first event is this user:join). With joinRequest on,
// a non-member's join is a request: admins get cnl:req, and Join waits for
// AddUsers (the join then completes), DelUsers or the request timeout
// (ErrNotMember), or ctx (ctx.Err(), the request withdrawn). Refusals:
// ErrInvalid, ErrNotMember (removed), ErrExists (already active, or a
// request pending), ErrKindNotAllowed, ErrFull, ErrClosed.
func (c *Channel) Join(ctx context.Context, actor string, tracks []TrackInfo) (*Subscription, error) {
	sub, req, err := c.startJoin(actor, tracks)
	if err != nil || req == nil {
		return sub, err
	}
	return c.await(ctx, req)
}

// PendingJoin is a join request StartJoin filed: Wait for its answer.
type PendingJoin struct {
	c   *Channel
	req *joinRequest
}

// StartJoin is Join without the wait: it joins (sub set), or, when the
// join is a join request, files it (admins get cnl:req) and returns it
// pending. The decision is taken under the channel's lock, so a caller
// that must not block knows at once whether it would have. A request
// nobody waits for still ends (answered, refused or timed out) and holds
// no goroutine; but once approved the user is active with a subscription
// only Wait returns: a caller that files a request must Wait on it, or
// Leave the user if it gives up.
func (c *Channel) StartJoin(actor string, tracks []TrackInfo) (*Subscription, *PendingJoin, error) {
	sub, req, err := c.startJoin(actor, tracks)
	if err != nil || req == nil {
		return sub, nil, err
	}
	return nil, &PendingJoin{c: c, req: req}, nil
}

// Wait waits for the answer to the request, as Join does: the
// subscription once AddUsers lets the user in; ErrNotMember when it is
// refused or times out; ctx.Err() when ctx ends first (the request is
// withdrawn).
func (p *PendingJoin) Wait(ctx context.Context) (*Subscription, error) {
	return p.c.await(ctx, p.req)
}

// startJoin joins, or files a join request without waiting for it.
func (c *Channel) startJoin(actor string, tracks []TrackInfo) (sub *Subscription, req *joinRequest, err error) {
	if err := checkID("user id", actor); err != nil {
		return nil, nil, err
	}
	if err := checkTracks(tracks, 0); err != nil {
		return nil, nil, err
	}
	err = c.do(func() (err error) {
		sub, req, err = c.join(actor, tracks)
		return err
	})
	return sub, req, err
}

func (c *Channel) join(actor string, tracks []TrackInfo) (*Subscription, *joinRequest, error) {
	d, err := permission.Decide(permission.OpJoin, permission.Facts{Actor: c.actor(actor), JoinRequest: c.cfg.JoinRequest})
	if err != nil {
		return nil, nil, err
	}
	if c.active[actor] != nil {
		return nil, nil, fmt.Errorf("%w: %q is already in the call", ErrExists, actor)
	}
	if c.pending[actor] != nil {
		return nil, nil, fmt.Errorf("%w: %q already asked to join", ErrExists, actor)
	}
	if err := c.checkKinds(tracks); err != nil {
		return nil, nil, err
	}
	if d == permission.Request {
		req := &joinRequest{user: actor, tracks: append([]TrackInfo(nil), tracks...), done: make(chan joinResult, 1)}
		c.pending[actor] = req
		c.emitAdmins(Event{Type: EventRequest, User: actor})
		c.addFx(effect{kind: fxArmRequest, req: req})
		return nil, req, nil
	}
	if err := c.checkFull(); err != nil {
		return nil, nil, err
	}
	m := c.members[actor]
	if m == nil {
		m = c.addMember(actor, c.cfg.DefaultPermission)
	}
	return c.activate(m, tracks, Event{Type: EventJoin, User: actor}), nil, nil
}

func (c *Channel) checkKinds(tracks []TrackInfo) error {
	for _, t := range tracks {
		if !c.cfg.Kind.allows(t.Kind) {
			return fmt.Errorf("%w: track %q is %v, the channel allows %v", ErrKindNotAllowed, t.Name, t.Kind, c.cfg.Kind)
		}
	}
	return nil
}

func (c *Channel) checkFull() error {
	if c.cfg.MaxUsers > 0 && len(c.active) >= c.cfg.MaxUsers {
		return fmt.Errorf("%w: %d active users", ErrFull, len(c.active))
	}
	return nil
}

// await waits for the answer to a join request.
func (c *Channel) await(ctx context.Context, req *joinRequest) (*Subscription, error) {
	select {
	case r := <-req.done:
		return r.sub, r.err
	case <-ctx.Done():
	}
	c.mu.Lock()
	withdrawn := c.pending[req.user] == req
	if withdrawn {
		delete(c.pending, req.user)
		c.stopRequestTimer(req)
	}
	c.mu.Unlock()
	c.flush()
	if withdrawn {
		return nil, ctx.Err()
	}
	r := <-req.done // answered meanwhile
	return r.sub, r.err
}

// answer ends a pending join request. c.mu is held.
func (c *Channel) answer(req *joinRequest, sub *Subscription, err error) {
	delete(c.pending, req.user)
	c.stopRequestTimer(req)
	req.done <- joinResult{sub, err}
}

func (c *Channel) stopRequestTimer(req *joinRequest) {
	if req.timer != nil {
		c.addFx(effect{kind: fxStop, timer: req.timer})
		req.timer = nil
	}
}

// expire fails a join request nobody answered in time.
func (c *Channel) expire(req *joinRequest) {
	c.mu.Lock()
	if c.pending[req.user] == req {
		c.answer(req, nil, fmt.Errorf("%w: join request expired", ErrNotMember))
	}
	c.mu.Unlock()
	c.flush()
}

// activate makes m an active user: first the event announcing it (user:join
// or cnl:create), then one track:add per track. c.mu is held.
func (c *Channel) activate(m *member, tracks []TrackInfo, ev Event) *Subscription {
	m.active = true
	m.sub = newSubscription(c.reg.cfg.EventBuffer)
	c.active[m.id] = m
	c.gate(m.id).Store(m.mode)
	c.idleGen++
	if c.idleTimer != nil {
		c.addFx(effect{kind: fxStop, timer: c.idleTimer})
		c.idleTimer = nil
	}
	sub := m.sub
	c.emit(ev)
	c.addFx(effect{kind: fxConfig, cfg: c.cfg})
	if !m.mode.Has(permission.Recv) {
		c.addFx(effect{kind: fxRecv, user: m.id, on: false})
	}
	for _, t := range tracks {
		c.publish(m, t)
	}
	return sub
}

// deactivate ends m's stay: its tracks end, its gate closes, Media forgets
// it. The caller emits the event and ends the subscription. c.mu is held.
func (c *Channel) deactivate(m *member) {
	m.active = false
	m.tracks = nil
	delete(c.active, m.id)
	c.gate(m.id).Store(0)
	c.addFx(effect{kind: fxGone, user: m.id})
	if len(c.active) == 0 && !c.closed && c.reg.cfg.IdleTimeout > 0 {
		c.idleGen++
		c.addFx(effect{kind: fxArmIdle, gen: c.idleGen})
	}
}

// Leave ends actor's stay in the call: its tracks end and user:left is
// emitted (the last event of its subscription, which then ends with
// ErrLeft). Leaving when not active is a no-op.
func (c *Channel) Leave(actor string) error {
	if err := checkID("user id", actor); err != nil {
		return err
	}
	return c.do(func() error {
		if _, err := permission.Decide(permission.OpLeave, permission.Facts{Actor: c.actor(actor)}); err != nil {
			return err
		}
		m := c.active[actor]
		if m == nil {
			return nil
		}
		c.deactivate(m)
		c.emit(Event{Type: EventLeft, User: actor}, m)
		m.sub.end(ErrLeft)
		m.sub = nil
		return nil
	})
}

// Delete deletes the channel (owner only): every active user gets
// cnl:delete, is disconnected (ErrClosed) and torn down; pending join
// requests fail with ErrClosed; the registry forgets the channel and every
// later operation fails with ErrClosed.
func (c *Channel) Delete(actor, reason string) error {
	if err := checkID("user id", actor); err != nil {
		return err
	}
	if err := checkReason(reason); err != nil {
		return err
	}
	return c.do(func() error {
		if _, err := permission.Decide(permission.OpDelete, permission.Facts{Actor: c.actor(actor)}); err != nil {
			return err
		}
		c.close(actor, reason)
		return nil
	})
}

// close deletes the channel. c.mu is held.
func (c *Channel) close(sender, reason string) {
	c.closed = true
	gone := make([]*member, 0, len(c.active))
	for _, m := range c.sortedActive() {
		c.deactivate(m)
		gone = append(gone, m)
	}
	c.emit(Event{Type: EventDelete, Sender: sender, Reason: reason}, gone...)
	for _, m := range gone {
		m.sub.end(fmt.Errorf("%w: channel %q deleted", ErrClosed, c.id))
		m.sub = nil
	}
	for _, req := range c.pending {
		c.answer(req, nil, fmt.Errorf("%w: channel %q deleted", ErrClosed, c.id))
	}
	c.idleGen++
	if c.idleTimer != nil {
		c.addFx(effect{kind: fxStop, timer: c.idleTimer})
		c.idleTimer = nil
	}
	c.addFx(effect{kind: fxForget})
}

// shutdown closes the channel unless it is closed.
func (c *Channel) shutdown(sender, reason string) {
	c.mu.Lock()
	if !c.closed {
		c.close(sender, reason)
	}
	c.mu.Unlock()
	c.flush()
}

// idleFire closes the channel if it is still idle since gen.
func (c *Channel) idleFire(gen uint64) {
	c.mu.Lock()
	if !c.closed && gen == c.idleGen && len(c.active) == 0 {
		c.idleTimer = nil
		c.close("", "idle")
	}
	c.mu.Unlock()
	c.flush()
}
