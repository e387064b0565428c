package channel

import (
	"slices"
	"strings"

	"github.com/callcore/callcore/permission"
)

// emit numbers ev and queues it for every active user and for extra (users
// who just stopped being active and must see why). Nothing blocks: a full
// buffer ends that subscription with ErrSlowConsumer and settle disconnects
// its user. c.mu is held.
func (c *Channel) emit(ev Event, extra ...*member) {
	c.seq++
	ev.Seq = c.seq
	ev.Channel = c.id
	c.journal(&ev)
	for _, m := range c.active {
		c.deliver(m, &ev)
	}
	for _, m := range extra {
		if !m.active {
			c.deliver(m, &ev)
		}
	}
}

// emitAdmins numbers ev and queues it for active admins only.
func (c *Channel) emitAdmins(ev Event) {
	c.seq++
	ev.Seq = c.seq
	ev.Channel = c.id
	c.journal(&ev)
	for _, m := range c.active {
		if m.id == c.owner || m.mode.Has(permission.Admin) {
			c.deliver(m, &ev)
		}
	}
}

func (c *Channel) deliver(m *member, ev *Event) {
	if m.sub == nil || m.sub.ended {
		return
	}
	if !m.sub.push(ev) {
		m.sub.end(ErrSlowConsumer)
		c.slow = append(c.slow, m)
	}
}

// settle disconnects the users whose buffers overflowed, as if they left,
// by id among those that overflowed together; their user:left may overflow
// others', who go next. c.mu is held.
func (c *Channel) settle() {
	for len(c.slow) > 0 {
		batch := c.slow
		c.slow = nil
		slices.SortFunc(batch, func(a, b *member) int { return strings.Compare(a.id, b.id) })
		for _, m := range batch {
			if c.active[m.id] != m {
				continue // it also left or was removed
			}
			c.deactivate(m)
			m.sub = nil
			c.emit(Event{Type: EventLeft, User: m.id})
		}
	}
}

// sortedActive returns the active users by id: the order of per-user
// events that one operation emits for several users.
func (c *Channel) sortedActive() []*member {
	ms := make([]*member, 0, len(c.active))
	for _, m := range c.active {
		ms = append(ms, m)
	}
	slices.SortFunc(ms, func(a, b *member) int { return strings.Compare(a.id, b.id) })
	return ms
}

type fxKind uint8

const (
	fxTrackAdded fxKind = iota + 1
	fxTrackRemoved
	fxMute
	fxRecv
	fxGone
	fxNewCall
	fxArmIdle
	fxArmRequest
	fxStop
	fxForget
	fxConfig
	fxEvent
)

// effect is a call to make outside the lock.
type effect struct {
	kind         fxKind
	user, sender string
	track        TrackInfo
	state        MuteState
	on           bool
	gen          uint64
	req          *joinRequest
	timer        Timer
	cfg          CallConfig
	ev           *Event
}

func (c *Channel) addFx(e effect) { c.fx = append(c.fx, e) }

// flush makes the queued effects, outside mu, in queue order, by one
// goroutine at a time: if another goroutine is making them (or this one,
// when Media calls back into the channel), it will make these too before it
// returns; otherwise this one makes every effect queued until none is
// left. If Media panics, the effects not yet made stay queued for the next
// flush.
func (c *Channel) flush() {
	c.mu.Lock()
	if c.draining {
		c.mu.Unlock()
		return
	}
	c.draining = true
	defer func() {
		c.draining = false
		c.mu.Unlock()
	}()
	for len(c.fx) > 0 {
		batch := c.fx
		c.fx = nil
		c.mu.Unlock()
		for i := range batch {
			c.runOne(batch, i)
		}
		c.mu.Lock()
	}
}

// runOne makes batch[i]; if it panics, the rest of batch is queued again
// (ahead of anything queued since) and mu is taken for flush's cleanup.
func (c *Channel) runOne(batch []effect, i int) {
	ok := false
	defer func() {
		if !ok {
			c.mu.Lock()
			c.fx = append(batch[i+1:len(batch):len(batch)], c.fx...)
		}
	}()
	c.run(&batch[i])
	ok = true
}

// run makes one effect. No lock is held.
func (c *Channel) run(e *effect) {
	cfg := &c.reg.cfg
	switch e.kind {
	case fxTrackAdded:
		cfg.Media.TrackAdded(c.id, e.user, e.track, e.state)
	case fxTrackRemoved:
		cfg.Media.TrackRemoved(c.id, e.user, e.track.Name)
	case fxMute:
		cfg.Media.MuteChanged(c.id, e.user, e.track.Name, e.state)
	case fxRecv:
		cfg.Media.ReceiveChanged(c.id, e.user, e.on)
	case fxGone:
		cfg.Media.UserGone(c.id, e.user)
	case fxNewCall:
		cfg.Notifier.NewCall(c.id, e.sender, e.user)
	case fxArmIdle:
		gen := e.gen
		t := cfg.Clock.AfterFunc(cfg.IdleTimeout, func() { c.idleFire(gen) })
		c.mu.Lock()
		keep := !c.closed && c.idleGen == gen
		if keep {
			c.idleTimer = t
		}
		c.mu.Unlock()
		if !keep {
			t.Stop()
		}
	case fxArmRequest:
		req := e.req
		t := cfg.Clock.AfterFunc(cfg.JoinRequestTimeout, func() { c.expire(req) })
		c.mu.Lock()
		keep := c.pending[req.user] == req
		if keep {
			req.timer = t
		}
		c.mu.Unlock()
		if !keep {
			t.Stop()
		}
	case fxStop:
		e.timer.Stop()
	case fxForget:
		c.reg.forget(c)
	case fxConfig:
		if m, ok := cfg.Media.(ConfigMedia); ok {
			m.ConfigChanged(c.id, e.cfg)
		}
	case fxEvent:
		cfg.Media.(EventMedia).Emitted(e.ev)
	}
}
