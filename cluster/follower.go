package cluster

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/callcore/callcore/channel"
)

// follower is a channel this node has users in: a replica of the channel
// (channel.State) fed by the channel's events from the stream, in order,
// and the sessions of its local users, which get the events in that order.
type follower struct {
	n     *Node
	id    string
	media channel.Media            // the node's plane at the start, or nil
	cc    jetstream.ConsumeContext // set once by start
	once  sync.Once                // stops cc

	mu       sync.Mutex // guards the fields below
	st       channel.State
	nodes    map[string]string // node of each user, from the join events
	sessions map[string][]*Session
	notify   chan struct{} // closed and replaced at every applied event
	ended    bool          // cnl:delete applied, or stopped
	seqs     []uint64      // every applied event's number, in order (kept for checks)
}

// Session is a local user's stay in a channel: its events, from the one
// that made it active (cnl:create or user:join) to the one that ended its
// stay, as the channel's owner numbered them, whichever node that is.
type Session struct {
	f    *follower
	user string
	q    chan *channel.Event
	// err is written once, before q is closed.
	err error
	// started and ended are guarded by f.mu.
	started, ended bool
}

// User returns the session's user.
func (s *Session) User() string { return s.user }

// Channel returns the session's channel id.
func (s *Session) Channel() string { return s.f.id }

// C returns the events, closed after the last one; Next then returns why
// the stay ended. Every session receives the same *Event: do not modify it.
func (s *Session) C() <-chan *channel.Event { return s.q }

// Next returns the next event, blocking until there is one, the stay ends
// (its reason: channel.ErrLeft, ErrNotMember, ErrClosed, ErrSlowConsumer,
// or this package's ErrClosed when the node closed) or ctx is done.
func (s *Session) Next(ctx context.Context) (channel.Event, error) {
	select {
	case ev, ok := <-s.q:
		if !ok {
			return channel.Event{}, s.err
		}
		return *ev, nil
	case <-ctx.Done():
		return channel.Event{}, ctx.Err()
	}
}

// end closes the session with err. f.mu is held.
func (s *Session) end(err error) {
	if !s.ended {
		s.ended = true
		s.err = err
		close(s.q)
	}
}

// follow returns the node's follower of channel id, starting it (from the
// last snapshot, then the stream) if it has none.
func (n *Node) follow(id string) (*follower, error) {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return nil, ErrClosed
	}
	if f := n.follows[id]; f != nil {
		n.mu.Unlock()
		return f, nil
	}
	// (an ended follower is replaced by session's unfollow)
	f := &follower{n: n, id: id, media: n.media, nodes: map[string]string{}, sessions: map[string][]*Session{}, notify: make(chan struct{})}
	n.follows[id] = f
	n.mu.Unlock()
	if err := f.start(); err != nil {
		n.unfollow(f)
		return nil, err
	}
	return f, nil
}

func (f *follower) start() error {
	ctx, cancel := context.WithTimeout(f.n.ctx, f.n.cfg.OpTimeout)
	defer cancel()
	cfg := jetstream.OrderedConsumerConfig{FilterSubjects: []string{eventSubject(f.id)}, DeliverPolicy: jetstream.DeliverAllPolicy}
	if e, err := f.n.snaps.Get(ctx, chanKey(f.id)); err == nil {
		snap, err := decodeSnapshot(e.Value())
		if err != nil {
			f.n.stats.BadMessages.Add(1)
		} else {
			f.mu.Lock()
			f.st, f.nodes = snap.State, snap.Nodes
			f.mu.Unlock()
			if f.media != nil {
				for _, call := range snapshotCalls(&snap.State) {
					call(f.media)
				}
			}
			cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, snap.StreamSeq+1
		}
	} else if !errors.Is(err, jetstream.ErrKeyNotFound) {
		return fmt.Errorf("%w: snapshot: %v", ErrUnavailable, err)
	}
	cons, err := f.n.js.OrderedConsumer(ctx, eventStream, cfg)
	if err != nil {
		return fmt.Errorf("%w: consumer: %v", ErrUnavailable, err)
	}
	cc, err := cons.Consume(f.handle)
	if err != nil {
		return fmt.Errorf("%w: consume: %v", ErrUnavailable, err)
	}
	f.mu.Lock()
	f.cc = cc
	f.mu.Unlock()
	return nil
}

// handle applies one message of the stream. The consumer calls it for one
// message at a time, in stream order.
func (f *follower) handle(msg jetstream.Msg) {
	ev, err := decodeEvent(msg.Data())
	if err != nil || ev.Channel != f.id {
		f.n.stats.BadMessages.Add(1) // dropped: it cannot be this channel's
		return
	}
	f.apply(ev, msg.Headers().Get(headerNode))
}

// apply applies ev to the replica and hands it to the local sessions it
// is for. Events already applied (a replay, a duplicate) are ignored.
func (f *follower) apply(ev *channel.Event, node string) {
	var slow []string
	f.mu.Lock()
	if ev.Seq <= f.st.Seq || f.ended {
		f.mu.Unlock()
		return
	}
	had := len(f.sessions) > 0
	was := make(map[string]bool, len(f.sessions))
	for u := range f.sessions {
		was[u] = f.st.Active(u)
	}
	var calls []mediaCall
	if f.media != nil {
		pre := cloneState(&f.st)
		f.st.Apply(ev)
		calls = mediaCalls(ev, &pre, &f.st)
	} else {
		f.st.Apply(ev)
	}
	f.seqs = append(f.seqs, ev.Seq)
	switch ev.Type {
	case channel.EventCreate:
		f.nodes[ev.Sender] = node
	case channel.EventJoin:
		f.nodes[ev.User] = node
	case channel.EventLeft:
		delete(f.nodes, ev.User)
	}
	for u, list := range f.sessions {
		is, admin := f.st.Active(u), f.st.Admin(u)
		kept := list[:0]
		for _, s := range list {
			if s.offer(ev, was[u], is, admin) {
				slow = append(slow, u)
			}
			if !s.ended {
				kept = append(kept, s)
			}
		}
		if len(kept) == 0 {
			delete(f.sessions, u)
		} else {
			f.sessions[u] = kept
		}
	}
	if ev.Type == channel.EventDelete {
		f.ended = true
		for _, list := range f.sessions {
			for _, s := range list {
				s.end(fmt.Errorf("%w: channel %q deleted", channel.ErrClosed, f.id))
			}
		}
		clear(f.sessions)
	}
	close(f.notify)
	f.notify = make(chan struct{})
	idle := had && len(f.sessions) == 0
	f.mu.Unlock()
	for _, call := range calls {
		call(f.media)
	}
	f.n.stats.Applied.Add(1)
	for _, u := range slow {
		f.n.goTrack(func() {
			ctx, cancel := context.WithTimeout(f.n.ctx, f.n.cfg.OpTimeout)
			defer cancel()
			_, _ = f.n.Do(ctx, Op{Name: OpLeave, Channel: f.id, Actor: u})
		})
	}
	if idle {
		f.n.goTrack(func() { f.n.unfollowIfIdle(f) })
	}
}

// offer delivers ev to s if it is for it, and ends s after the event that
// ends its stay. It reports whether s overflowed. f.mu is held.
func (s *Session) offer(ev *channel.Event, was, is, admin bool) (overflow bool) {
	if s.ended {
		return false
	}
	if !s.started {
		if was || !is {
			return false // an earlier stay's events
		}
		s.started = true
	}
	if !channel.Recipients(ev, was, is, admin) {
		return false
	}
	select {
	case s.q <- ev:
	default:
		s.f.n.stats.SlowSessions.Add(1)
		s.end(channel.ErrSlowConsumer)
		return true
	}
	if was && !is {
		switch ev.Type {
		case channel.EventUserDel:
			s.end(fmt.Errorf("%w: removed by %q", channel.ErrNotMember, ev.Sender))
		case channel.EventDelete:
			s.end(fmt.Errorf("%w: channel %q deleted", channel.ErrClosed, s.f.id))
		default:
			s.end(channel.ErrLeft)
		}
	}
	return false
}

// addSession registers a session for user, which starts with the next
// event that makes user active; nil if the follower has ended.
func (f *follower) addSession(user string) *Session {
	s := &Session{f: f, user: user, q: make(chan *channel.Event, f.n.cfg.EventBuffer)}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.ended {
		return nil
	}
	f.sessions[user] = append(f.sessions[user], s)
	return s
}

// session follows channel id and registers a session for user.
func (n *Node) session(id, user string) (*Session, error) {
	for {
		f, err := n.follow(id)
		if err != nil {
			return nil, err
		}
		if s := f.addSession(user); s != nil {
			return s, nil
		}
		n.unfollow(f) // a deleted channel's follower: follow afresh
	}
}

// dropSession forgets a session that never started (its join failed).
func (f *follower) dropSession(s *Session) {
	f.mu.Lock()
	list := f.sessions[s.user]
	for i, x := range list {
		if x == s {
			list = append(list[:i:i], list[i+1:]...)
			break
		}
	}
	if len(list) == 0 {
		delete(f.sessions, s.user)
	} else {
		f.sessions[s.user] = list
	}
	s.end(channel.ErrLeft)
	f.mu.Unlock()
	f.n.unfollowIfIdle(f)
}

// waitSeq waits until the replica reflects event seq.
func (f *follower) waitSeq(ctx context.Context, seq uint64) error {
	for {
		f.mu.Lock()
		applied, notify, ended := f.st.Seq, f.notify, f.ended
		f.mu.Unlock()
		if applied >= seq || ended {
			return nil
		}
		select {
		case <-notify:
		case <-ctx.Done():
			return fmt.Errorf("%w: event %d not received (at %d): %v", ErrUnavailable, seq, applied, ctx.Err())
		}
	}
}

func (f *follower) localUsers() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.sessions)
}

func (f *follower) closed() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.ended
}

// state returns a copy of the replica's state and the numbers of the
// events applied so far.
func (f *follower) state() (channel.State, map[string]string, []uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	st := f.st
	st.Members = append([]channel.MemberState(nil), st.Members...)
	nodes := make(map[string]string, len(f.nodes))
	for u, n := range f.nodes {
		nodes[u] = n
	}
	return st, nodes, append([]uint64(nil), f.seqs...)
}

// stop ends the consumer (waiting for it) and every session with err.
func (f *follower) stop(err error) {
	f.once.Do(func() {
		f.mu.Lock()
		cc := f.cc
		f.mu.Unlock()
		if cc != nil {
			cc.Stop()
			<-cc.Closed()
		}
	})
	f.mu.Lock()
	f.ended = true
	for _, list := range f.sessions {
		for _, s := range list {
			s.end(err)
		}
	}
	clear(f.sessions)
	f.mu.Unlock()
	if h := f.n.hubOf(); h != nil {
		f.n.goTrack(func() { h.recheck(f.id) })
	}
}

// unfollowIfIdle stops following a channel the node has no users in.
func (n *Node) unfollowIfIdle(f *follower) {
	n.mu.Lock()
	f.mu.Lock()
	idle := len(f.sessions) == 0
	if idle {
		f.ended = true // addSession refuses from now on
		if n.follows[f.id] == f {
			delete(n.follows, f.id)
		}
	}
	f.mu.Unlock()
	n.mu.Unlock()
	if idle {
		f.stop(channel.ErrLeft)
	}
}

// unfollow stops following a channel whatever its sessions.
func (n *Node) unfollow(f *follower) {
	n.mu.Lock()
	if n.follows[f.id] == f {
		delete(n.follows, f.id)
	}
	n.mu.Unlock()
	f.stop(channel.ErrLeft)
}
