package channel

import (
	"context"
	"slices"
	"sort"

	"github.com/callcore/callcore/permission"
)

// refModel is a small reference model of the call API, written from
// docs/api.md (and the decisions documented in doc.go and docs/channels.md) with
// plain maps and no code shared with the channel. FuzzChannelOps checks the
// channel against it.
type refModel struct {
	closed  bool
	owner   string
	kind    Kind
	joinReq bool
	max     int
	defMode permission.Mode
	kindBy  string
	mode    map[string]permission.Mode // members
	sendBy  map[string]string
	kmute   map[string]map[Kind][2]string // user -> kind -> {by, reason} while muted
	removed map[string]bool
	active  map[string]bool
	tracks  map[string][]*refTrack // active users' tracks
	pending map[string][]TrackInfo
	seq     uint64

	// Observable results.
	events  map[string][]Event // per user, everything it should have received, and endMarks
	ending  map[string]error   // sessions ended, whose last event is still to come
	answers map[string]error   // join requests answered since last taken (nil: joined)
	notes   []string           // newcall notifications
	// media: what Media should believe.
	media map[string]MuteState // "user/track"
	recv  map[string]bool      // users told recv off (and not gone since)

	// Subscription buffers.
	buf        int
	queued     map[string]int  // events queued since the last drain
	overflowed map[string]bool // sessions ended by a full buffer
	slow       []string        // to disconnect, in overflow order
}

type refTrack struct {
	name       string
	kind       Kind
	self       bool
	state      MuteState
	by, reason string
}

func newRefModel(owner string, cfg CallConfig, users []string, buf int) *refModel {
	m := &refModel{owner: owner, mode: map[string]permission.Mode{}, sendBy: map[string]string{},
		kmute: map[string]map[Kind][2]string{}, removed: map[string]bool{}, active: map[string]bool{},
		tracks: map[string][]*refTrack{}, pending: map[string][]TrackInfo{}, events: map[string][]Event{},
		ending: map[string]error{}, answers: map[string]error{}, media: map[string]MuteState{}, recv: map[string]bool{},
		buf: buf, queued: map[string]int{}, overflowed: map[string]bool{}}
	m.setConfig(cfg)
	m.mode[owner] = 7
	for _, u := range users {
		if u != owner {
			m.mode[u] = m.defMode
		}
	}
	m.active[owner] = true
	m.send(Event{Type: EventCreate, Sender: owner, Config: m.config()})
	for _, u := range users {
		if u != owner {
			m.notes = append(m.notes, "ch "+owner+" "+u)
		}
	}
	return m
}

func (m *refModel) setConfig(c CallConfig) {
	m.kind, m.joinReq, m.max, m.defMode = c.Kind, c.JoinRequest, c.MaxUsers, c.DefaultPermission
	if m.kind == 0 {
		m.kind = 3
	}
	if m.defMode == 0 {
		m.defMode = 6
	}
}

func (m *refModel) config() CallConfig {
	return CallConfig{Kind: m.kind, JoinRequest: m.joinReq, MaxUsers: m.max, DefaultPermission: m.defMode}
}

// send numbers ev and gives it to the active users and to also.
func (m *refModel) send(ev Event, also ...string) {
	m.seq++
	ev.Seq, ev.Channel = m.seq, "ch"
	to := map[string]bool{}
	for u := range m.active {
		to[u] = true
	}
	for _, u := range also {
		to[u] = true
	}
	for u := range to {
		m.deliver(u, ev)
	}
	for _, u := range also {
		if why, ok := m.ending[u]; ok {
			delete(m.ending, u)
			if !m.overflowed[u] { // else its last event did not fit: it ended slow
				m.events[u] = append(m.events[u], endMark(why))
			}
		}
	}
}

// endMark stands for the end of a session in a user's event stream.
func endMark(why error) Event { return Event{Reason: "end: " + class(why)} }

// deliver queues ev for u, unless u's buffer is full: then u's session
// ends as a slow consumer, and settle disconnects it.
func (m *refModel) deliver(u string, ev Event) {
	if m.overflowed[u] {
		return
	}
	if m.queued[u] >= m.buf {
		m.overflowed[u] = true
		m.events[u] = append(m.events[u], endMark(ErrSlowConsumer))
		m.slow = append(m.slow, u)
		return
	}
	m.queued[u]++
	m.events[u] = append(m.events[u], ev)
}

// settle disconnects the slow consumers as if they left: those that
// overflowed together by id, then those their user:left overflowed.
func (m *refModel) settle() {
	for len(m.slow) > 0 {
		batch := m.slow
		m.slow = nil
		sort.Strings(batch)
		for _, u := range batch {
			if m.active[u] {
				m.exit(u, ErrSlowConsumer)
				m.send(Event{Type: EventLeft, User: u})
			}
		}
	}
}

// drained: every session read its queue.
func (m *refModel) drained() { clear(m.queued) }

func (m *refModel) isMember(u string) bool { _, ok := m.mode[u]; return ok }
func (m *refModel) isAdmin(u string) bool  { return u == m.owner || (m.isMember(u) && m.mode[u]&1 != 0) }

func (m *refModel) state(u string, t *refTrack) (MuteState, string, string) {
	if km, ok := m.kmute[u][t.kind]; ok {
		return MuteAdmin, km[0], km[1]
	}
	if m.mode[u]&2 == 0 {
		return MuteAdmin, m.sendBy[u], "send permission revoked"
	}
	if m.kind&t.kind == 0 {
		return MuteAdmin, m.kindBy, "kind not allowed"
	}
	if t.self {
		return MuteSelf, "", ""
	}
	return MuteNone, "", ""
}

func (t *refTrack) view() TrackState {
	return TrackState{Name: t.name, Kind: t.kind, Muted: t.state != 0, State: t.state, MutedBy: t.by, Reason: t.reason}
}

func (m *refModel) views(u string) []TrackState {
	out := []TrackState{}
	for _, t := range m.tracks[u] {
		out = append(out, t.view())
	}
	return out
}

func (m *refModel) publish(u string, ti TrackInfo) {
	t := &refTrack{name: ti.Name, kind: ti.Kind}
	t.state, t.by, t.reason = m.state(u, t)
	m.tracks[u] = append(m.tracks[u], t)
	m.send(Event{Type: EventTrackAdd, User: u, Track: t.view(), Tracks: m.views(u)})
	m.media[u+"/"+t.name] = t.state
}

func (m *refModel) update(u string, t *refTrack) {
	s, by, reason := m.state(u, t)
	if s == t.state {
		return
	}
	t.state, t.by, t.reason = s, by, reason
	m.send(Event{Type: EventTrackMute, User: u, Track: t.view()})
	m.media[u+"/"+t.name] = s
}

func (m *refModel) enter(u string, tracks []TrackInfo) {
	m.active[u] = true
	m.queued[u] = 0
	m.overflowed[u] = false
	m.send(Event{Type: EventJoin, User: u})
	if m.mode[u]&4 == 0 {
		m.recv[u] = true
	}
	for _, t := range tracks {
		m.publish(u, t)
	}
}

// exit ends u's stay; the caller sends the event, with u in also.
func (m *refModel) exit(u string, why error) {
	delete(m.active, u)
	delete(m.tracks, u)
	delete(m.recv, u)
	if !m.overflowed[u] {
		m.ending[u] = why
	}
	for k := range m.media {
		if k[:len(u)+1] == u+"/" {
			delete(m.media, k)
		}
	}
}

func kindsOK(allowed Kind, ts []TrackInfo) bool {
	for _, t := range ts {
		if allowed&t.Kind == 0 {
			return false
		}
	}
	return true
}

func (m *refModel) full() bool { return m.max > 0 && len(m.active) >= m.max }

func (m *refModel) join(u string, ts []TrackInfo) (pending bool, err error) {
	switch {
	case m.closed:
		return false, ErrClosed
	case m.removed[u]:
		return false, ErrNotMember
	case m.active[u], m.pending[u] != nil:
		return false, ErrExists
	case !kindsOK(m.kind, ts):
		return false, ErrKindNotAllowed
	}
	if !m.isMember(u) && m.joinReq {
		m.pending[u] = append([]TrackInfo{}, ts...)
		m.seq++
		ev := Event{Seq: m.seq, Type: EventRequest, Channel: "ch", User: u}
		for a := range m.active {
			if m.isAdmin(a) {
				m.deliver(a, ev)
			}
		}
		return true, nil
	}
	if m.full() {
		return false, ErrFull
	}
	if !m.isMember(u) {
		m.mode[u] = m.defMode
	}
	m.enter(u, ts)
	return false, nil
}

func (m *refModel) leave(u string) error {
	if m.closed {
		return ErrClosed
	}
	if m.active[u] {
		m.exit(u, ErrLeft)
		m.send(Event{Type: EventLeft, User: u}, u)
	}
	return nil
}

func (m *refModel) close(sender, reason string) {
	var gone []string
	for u := range m.active {
		gone = append(gone, u)
	}
	for _, u := range gone {
		m.exit(u, ErrClosed)
	}
	m.send(Event{Type: EventDelete, Sender: sender, Reason: reason}, gone...)
	for u := range m.pending {
		m.answers[u] = ErrClosed
	}
	m.pending = map[string][]TrackInfo{}
	m.closed = true
}

func (m *refModel) deleteCall(u, reason string) error {
	if m.closed {
		return ErrClosed
	}
	if u != m.owner {
		return ErrUnauthorized
	}
	m.close(u, reason)
	return nil
}

func (m *refModel) addUsers(actor string, ids []string) error {
	if m.closed {
		return ErrClosed
	}
	if !m.isAdmin(actor) {
		return ErrUnauthorized
	}
	var added []UserMode
	for _, id := range ids {
		if !m.isMember(id) {
			m.mode[id] = m.defMode
			delete(m.removed, id)
			added = append(added, UserMode{id, m.defMode})
		}
	}
	if len(added) == 0 {
		return nil
	}
	m.send(Event{Type: EventUserAdd, Sender: actor, Users: added})
	for _, a := range added {
		ts, ok := m.pending[a.ID]
		if !ok {
			continue
		}
		delete(m.pending, a.ID)
		switch {
		case !kindsOK(m.kind, ts):
			m.answers[a.ID] = ErrKindNotAllowed
		case m.full():
			m.answers[a.ID] = ErrFull
		default:
			m.answers[a.ID] = nil
			m.enter(a.ID, ts)
		}
	}
	for _, a := range added {
		if !m.active[a.ID] {
			m.notes = append(m.notes, "ch "+actor+" "+a.ID)
		}
	}
	return nil
}

func (m *refModel) delUsers(actor string, ids []string) error {
	if m.closed {
		return ErrClosed
	}
	if !m.isAdmin(actor) {
		return ErrUnauthorized
	}
	if slices.Contains(ids, m.owner) {
		return ErrUnauthorized
	}
	var dels []UserMode
	var gone []string
	for _, id := range ids {
		if m.removed[id] {
			continue
		}
		if m.active[id] {
			m.exit(id, ErrNotMember)
			gone = append(gone, id)
		}
		delete(m.mode, id)
		delete(m.sendBy, id)
		delete(m.kmute, id)
		m.removed[id] = true
		if _, ok := m.pending[id]; ok {
			delete(m.pending, id)
			m.answers[id] = ErrNotMember
		}
		dels = append(dels, UserMode{ID: id})
	}
	if len(dels) > 0 {
		m.send(Event{Type: EventUserDel, Sender: actor, Users: dels}, gone...)
	}
	return nil
}

// target checks moderation of t by actor.
func (m *refModel) target(actor, t string) error {
	if !m.isAdmin(actor) {
		return ErrUnauthorized
	}
	if t == m.owner && actor != m.owner {
		return ErrUnauthorized
	}
	if !m.isMember(t) {
		return ErrNotMember
	}
	return nil
}

func (m *refModel) modUsers(actor string, us []UserMode) error {
	if m.closed {
		return ErrClosed
	}
	for _, u := range us {
		if err := m.target(actor, u.ID); err != nil {
			return err
		}
	}
	type chg struct {
		id       string
		old, new permission.Mode
	}
	var chgs []chg
	var mods []UserMode
	for _, u := range us {
		nm := u.Mode
		if u.ID == m.owner {
			nm |= 1
		}
		old := m.mode[u.ID]
		if old == nm {
			continue
		}
		if old&2 != 0 && nm&2 == 0 {
			m.sendBy[u.ID] = actor
		}
		m.mode[u.ID] = nm
		chgs = append(chgs, chg{u.ID, old, nm})
		mods = append(mods, UserMode{u.ID, nm})
	}
	if len(chgs) == 0 {
		return nil
	}
	m.send(Event{Type: EventUserMod, Sender: actor, Users: mods})
	for _, c := range chgs {
		if !m.active[c.id] {
			continue
		}
		if (c.old^c.new)&4 != 0 {
			if c.new&4 == 0 {
				m.recv[c.id] = true
			} else {
				delete(m.recv, c.id)
			}
		}
		if (c.old^c.new)&2 != 0 {
			for _, t := range m.tracks[c.id] {
				m.update(c.id, t)
			}
		}
	}
	return nil
}

func (m *refModel) sortedActive() []string {
	var us []string
	for u := range m.active {
		us = append(us, u)
	}
	sort.Strings(us)
	return us
}

func (m *refModel) getUsers(actor string) (Snapshot, error) {
	if m.closed {
		return Snapshot{}, ErrClosed
	}
	if !m.active[actor] {
		return Snapshot{}, ErrNotMember
	}
	s := Snapshot{Seq: m.seq, Users: []ActiveUser{}}
	for _, u := range m.sortedActive() {
		s.Users = append(s.Users, ActiveUser{ID: u, Mode: m.mode[u], Tracks: m.views(u)})
	}
	return s, nil
}

func (m *refModel) configure(actor string, c CallConfig) error {
	if m.closed {
		return ErrClosed
	}
	if !m.isAdmin(actor) {
		return ErrUnauthorized
	}
	old := m.config()
	m.setConfig(c)
	if m.config() == old {
		return nil
	}
	if old.Kind&^m.kind != 0 {
		m.kindBy = actor
	}
	m.send(Event{Type: EventConfig, Sender: actor, Config: m.config()})
	if old.Kind != m.kind {
		for _, u := range m.sortedActive() {
			for _, t := range m.tracks[u] {
				m.update(u, t)
			}
		}
	}
	return nil
}

func (m *refModel) find(u, name string) *refTrack {
	for _, t := range m.tracks[u] {
		if t.name == name {
			return t
		}
	}
	return nil
}

func (m *refModel) addTracks(u string, ts []TrackInfo) error {
	switch {
	case m.closed:
		return ErrClosed
	case !m.active[u]:
		return ErrNotMember
	}
	for _, t := range ts {
		if m.find(u, t.Name) != nil {
			return ErrExists
		}
	}
	if !kindsOK(m.kind, ts) {
		return ErrKindNotAllowed
	}
	if len(m.tracks[u])+len(ts) > MaxTracksPerUser {
		return ErrInvalid
	}
	for _, t := range ts {
		m.publish(u, t)
	}
	return nil
}

func (m *refModel) removeTracks(u string, names []string) error {
	if err := m.ownTracks(u, names); err != nil {
		return err
	}
	for _, n := range names {
		t := m.find(u, n)
		m.tracks[u] = slices.DeleteFunc(m.tracks[u], func(x *refTrack) bool { return x == t })
		m.send(Event{Type: EventTrackDel, User: u, Track: TrackState{Name: n, Kind: t.kind}})
		delete(m.media, u+"/"+n)
	}
	return nil
}

func (m *refModel) ownTracks(u string, names []string) error {
	switch {
	case m.closed:
		return ErrClosed
	case !m.active[u]:
		return ErrNotMember
	}
	for _, n := range names {
		if m.find(u, n) == nil {
			return ErrNotFound
		}
	}
	return nil
}

func (m *refModel) muteTracks(u string, names []string, mute bool) error {
	if err := m.ownTracks(u, names); err != nil {
		return err
	}
	if !mute {
		for _, n := range names {
			if m.find(u, n).state == MuteAdmin {
				return ErrUnauthorized
			}
		}
	}
	for _, n := range names {
		t := m.find(u, n)
		t.self = mute
		m.update(u, t)
	}
	return nil
}

func (m *refModel) muteUser(actor, target string, k Kind, mute bool, reason string) error {
	if m.closed {
		return ErrClosed
	}
	if err := m.target(actor, target); err != nil {
		return err
	}
	_, on := m.kmute[target][k]
	if on == mute {
		return nil
	}
	if mute {
		if m.kmute[target] == nil {
			m.kmute[target] = map[Kind][2]string{}
		}
		m.kmute[target][k] = [2]string{actor, reason}
	} else {
		delete(m.kmute[target], k)
	}
	for _, t := range m.tracks[target] {
		if t.kind == k {
			m.update(target, t)
		}
	}
	return nil
}

// expireAll: the request timeout passes for every pending request.
func (m *refModel) expireAll() {
	for u := range m.pending {
		m.answers[u] = ErrNotMember
	}
	m.pending = map[string][]TrackInfo{}
}

// idle: the idle timeout passes.
func (m *refModel) idle() {
	if !m.closed && len(m.active) == 0 {
		m.close("", "idle")
	}
}

func (m *refModel) withdraw(u string) {
	if _, ok := m.pending[u]; ok {
		delete(m.pending, u)
		m.answers[u] = context.Canceled
	}
}

// Argument checks, written from the documented limits.

func refValidID(s string) bool { return len(s) >= 1 && len(s) <= 128 }

func refValidIDs(ids []string) bool {
	if len(ids) < 1 || len(ids) > 1024 {
		return false
	}
	seen := map[string]bool{}
	for _, id := range ids {
		if !refValidID(id) || seen[id] {
			return false
		}
		seen[id] = true
	}
	return true
}

func refValidTracks(ts []TrackInfo, min int) bool {
	if len(ts) < min || len(ts) > 32 {
		return false
	}
	seen := map[string]bool{}
	for _, t := range ts {
		if !refValidID(t.Name) || (t.Kind != Audio && t.Kind != Video) || seen[t.Name] {
			return false
		}
		seen[t.Name] = true
	}
	return true
}

func refValidConfig(c CallConfig) bool {
	return c.Kind <= 3 && c.MaxUsers >= 0 && c.DefaultPermission <= 7
}
