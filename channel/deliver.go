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

// settle disconnects the users whose buffers overflowed, as if they left
// (which may overflow others'). c.mu is held.
func (c *Channel) settle() {
	for len(c.slow) > 0 {
		m := c.slow[0]
		c.slow = c.slow[1:]
		if c.active[m.id] != m {
			continue
		}
		c.deactivate(m)
		m.sub = nil
		c.emit(Event{Type: EventLeft, User: m.id})
	}
	c.slow = nil
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
}

func (c *Channel) addFx(e effect) {
	c.fx = append(c.fx, e)
	c.fxQueued++
}

// flush returns once the first ticket effects have been made. Effects are
// made outside mu, in queue order, by one goroutine at a time: whoever
// finds no one making them makes every queued one; the others wait.
func (c *Channel) flush(ticket uint64) {
	c.mu.Lock()
	for c.fxDone < ticket {
		if c.draining {
			wake := c.fxWake
			c.mu.Unlock()
			<-wake
			c.mu.Lock()
			continue
		}
		batch := c.fx
		c.fx = nil
		c.draining = true
		c.mu.Unlock()
		for i := range batch {
			c.run(&batch[i])
		}
		c.mu.Lock()
		c.fxDone += uint64(len(batch))
		c.draining = false
		close(c.fxWake)
		c.fxWake = make(chan struct{})
	}
	c.mu.Unlock()
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
	}
}
