package channel

import (
	"fmt"
	"slices"
	"strings"

	"github.com/callcore/callcore/permission"
)

// AddUsers makes ids members (admins only), with the default permission,
// and emits user:add with those that were not members (members already
// are a no-op). A pending join request of one of them is approved: its
// join completes (user:join, track:add) or fails (ErrKindNotAllowed,
// ErrFull) for the requester. The added users not in the call afterwards
// get a newcall notification.
func (c *Channel) AddUsers(actor string, ids []string) error {
	if err := checkID("user id", actor); err != nil {
		return err
	}
	if err := checkIDs("user id", ids); err != nil {
		return err
	}
	return c.do(func() error {
		if _, err := permission.Decide(permission.OpAddUsers, permission.Facts{Actor: c.actor(actor)}); err != nil {
			return err
		}
		var added []UserMode
		for _, id := range ids {
			if c.members[id] == nil {
				m := c.addMember(id, c.cfg.DefaultPermission)
				added = append(added, UserMode{ID: id, Mode: m.mode})
			}
		}
		if len(added) == 0 {
			return nil
		}
		c.emit(Event{Type: EventUserAdd, Sender: actor, Users: added})
		for _, u := range added {
			if req := c.pending[u.ID]; req != nil {
				c.approve(req)
			}
		}
		for _, u := range added {
			if !c.members[u.ID].active {
				c.addFx(effect{kind: fxNewCall, sender: actor, user: u.ID})
			}
		}
		return nil
	})
}

// approve completes an approved join request, or fails it. c.mu is held.
func (c *Channel) approve(req *joinRequest) {
	if err := c.checkKinds(req.tracks); err != nil {
		c.answer(req, nil, err)
		return
	}
	if err := c.checkFull(); err != nil {
		c.answer(req, nil, err)
		return
	}
	sub := c.activate(c.members[req.user], req.tracks, Event{Type: EventJoin, User: req.user})
	c.answer(req, sub, nil)
}

// DelUsers removes ids (admins only; never the owner): they stop being
// members, active ones are disconnected (user:del is their last event; their
// subscriptions end with ErrNotMember), a pending join request of theirs
// fails with ErrNotMember, and they cannot join until added again. Ids
// already removed are a no-op; ids that never were members are barred too.
func (c *Channel) DelUsers(actor string, ids []string) error {
	if err := checkID("user id", actor); err != nil {
		return err
	}
	if err := checkIDs("user id", ids); err != nil {
		return err
	}
	return c.do(func() error {
		a := c.actor(actor)
		for _, id := range ids {
			if _, err := permission.Decide(permission.OpDelUsers, permission.Facts{Actor: a, Target: c.role(id)}); err != nil {
				return err
			}
		}
		var dels []UserMode
		var gone []*member
		for _, id := range ids {
			if _, ok := c.removed[id]; ok {
				continue
			}
			if m := c.members[id]; m != nil && m.active {
				c.deactivate(m)
				gone = append(gone, m)
			}
			delete(c.members, id)
			c.removed[id] = struct{}{}
			if req := c.pending[id]; req != nil {
				c.answer(req, nil, fmt.Errorf("%w: join request refused", ErrNotMember))
			}
			dels = append(dels, UserMode{ID: id})
		}
		if len(dels) == 0 {
			return nil
		}
		c.emit(Event{Type: EventUserDel, Sender: actor, Users: dels}, gone...)
		for _, m := range gone {
			m.sub.end(fmt.Errorf("%w: removed by %q", ErrNotMember, actor))
			m.sub = nil
		}
		return nil
	})
}

// ModUsers sets each user's mode (admins only; the owner's only by
// itself, and the owner keeps the admin bit). user:mod lists the users
// whose mode changed; then, for active ones, a cleared send bit admin-mutes
// their tracks (track:mute, Media.MuteChanged) and a changed recv bit
// pauses or resumes what is forwarded to them (Media.ReceiveChanged).
// Refusals: ErrInvalid (a mode outside the mask, duplicate ids),
// ErrUnauthorized, ErrNotMember (a target that is not a member).
func (c *Channel) ModUsers(actor string, users []UserMode) error {
	if err := checkID("user id", actor); err != nil {
		return err
	}
	ids := make([]string, len(users))
	for i, u := range users {
		if !u.Mode.Valid() {
			return fmt.Errorf("%w: mode %d of %q outside the mask", ErrInvalid, u.Mode, u.ID)
		}
		ids[i] = u.ID
	}
	if err := checkIDs("user id", ids); err != nil {
		return err
	}
	return c.do(func() error { return c.modUsers(actor, users) })
}

func (c *Channel) modUsers(actor string, users []UserMode) error {
	a := c.actor(actor)
	for _, u := range users {
		if _, err := permission.Decide(permission.OpModUsers, permission.Facts{Actor: a, Target: c.role(u.ID)}); err != nil {
			return err
		}
	}
	type change struct {
		m        *member
		old, new permission.Mode
	}
	var changes []change
	var mods []UserMode
	for _, u := range users {
		m, mode := c.members[u.ID], u.Mode
		if u.ID == c.owner {
			mode |= permission.Admin
		}
		if m.mode == mode {
			continue
		}
		changes = append(changes, change{m, m.mode, mode})
		mods = append(mods, UserMode{ID: u.ID, Mode: mode})
		if m.mode.Has(permission.Send) && !mode.Has(permission.Send) {
			m.sendBy = actor
		}
		m.mode = mode
		if m.active {
			c.gate(m.id).Store(mode)
		}
	}
	if len(changes) == 0 {
		return nil
	}
	c.emit(Event{Type: EventUserMod, Sender: actor, Users: mods})
	for _, ch := range changes {
		if !ch.m.active {
			continue
		}
		if recv := ch.new.Has(permission.Recv); recv != ch.old.Has(permission.Recv) {
			c.addFx(effect{kind: fxRecv, user: ch.m.id, on: recv})
		}
		if ch.new.Has(permission.Send) != ch.old.Has(permission.Send) {
			for _, t := range ch.m.tracks {
				c.recompute(ch.m, t)
			}
		}
	}
	return nil
}

// Snapshot is getUsers' answer: the active users by id, and the sequence
// number of the last event it reflects.
type Snapshot struct {
	Seq   uint64
	Users []ActiveUser
}

// ActiveUser is an active user with its mode and tracks.
type ActiveUser struct {
	ID     string
	Mode   permission.Mode
	Tracks []TrackState // in publication order
}

// GetUsers returns every active user with its tracks and mode (active users
// only).
func (c *Channel) GetUsers(actor string) (Snapshot, error) {
	if err := checkID("user id", actor); err != nil {
		return Snapshot{}, err
	}
	var s Snapshot
	err := c.do(func() error {
		if _, err := permission.Decide(permission.OpGetUsers, permission.Facts{Actor: c.actor(actor)}); err != nil {
			return err
		}
		s.Seq = c.seq
		s.Users = make([]ActiveUser, 0, len(c.active))
		for _, m := range c.active {
			s.Users = append(s.Users, ActiveUser{ID: m.id, Mode: m.mode, Tracks: m.trackStates()})
		}
		slices.SortFunc(s.Users, func(a, b ActiveUser) int { return strings.Compare(a.ID, b.ID) })
		return nil
	})
	return s, err
}

// Configure replaces the channel's configuration (admins only; zero fields
// take their defaults) and emits cnl:config; the same configuration is a
// no-op. Narrowing kind admin-mutes the active tracks of the kind no longer
// allowed (mutedBy the actor, ReasonKindNotAllowed); widening it lifts that
// mute. The other fields apply from the next join.
func (c *Channel) Configure(actor string, cfg CallConfig) error {
	if err := checkID("user id", actor); err != nil {
		return err
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	cfg = cfg.withDefaults()
	return c.do(func() error {
		if _, err := permission.Decide(permission.OpConfigure, permission.Facts{Actor: c.actor(actor)}); err != nil {
			return err
		}
		c.setConfig(actor, cfg)
		return nil
	})
}

// ConfigPatch names the configuration fields UpdateConfig changes; nil
// fields keep their current values.
type ConfigPatch struct {
	Kind              *Kind
	JoinRequest       *bool
	MaxUsers          *int
	DefaultPermission *permission.Mode
	LastN             *int
}

// apply returns cfg with p's fields set.
func (p ConfigPatch) apply(cfg CallConfig) CallConfig {
	if p.Kind != nil {
		cfg.Kind = *p.Kind
	}
	if p.JoinRequest != nil {
		cfg.JoinRequest = *p.JoinRequest
	}
	if p.MaxUsers != nil {
		cfg.MaxUsers = *p.MaxUsers
	}
	if p.DefaultPermission != nil {
		cfg.DefaultPermission = *p.DefaultPermission
	}
	if p.LastN != nil {
		cfg.LastN = *p.LastN
	}
	return cfg
}

// UpdateConfig is Configure for the fields p sets, the others keeping
// their values: the patch is applied under the channel's lock, so that
// admins updating different fields at once all see their change hold.
// A zero Kind or DefaultPermission means its default, as in Configure.
func (c *Channel) UpdateConfig(actor string, p ConfigPatch) error {
	if err := checkID("user id", actor); err != nil {
		return err
	}
	if err := p.apply(CallConfig{}).Validate(); err != nil { // every field a patch sets is checked on its own
		return err
	}
	return c.do(func() error {
		if _, err := permission.Decide(permission.OpConfigure, permission.Facts{Actor: c.actor(actor)}); err != nil {
			return err
		}
		c.setConfig(actor, p.apply(c.cfg).withDefaults())
		return nil
	})
}

// setConfig makes cfg the configuration, with c.mu held: cnl:config, and
// the kind's admin mute recomputed when the kind changed. The same
// configuration is a no-op.
func (c *Channel) setConfig(actor string, cfg CallConfig) {
	if cfg == c.cfg {
		return
	}
	old := c.cfg.Kind
	c.cfg = cfg
	if old&^cfg.Kind != 0 {
		c.kindBy = actor
	}
	c.emit(Event{Type: EventConfig, Sender: actor, Config: cfg})
	c.addFx(effect{kind: fxConfig, cfg: cfg})
	if old != cfg.Kind {
		for _, m := range c.sortedActive() {
			for _, t := range m.tracks {
				c.recompute(m, t)
			}
		}
	}
}
