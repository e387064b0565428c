package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/callcore/callcore/channel"
)

// Create creates channel id with actor (connected to this node) as its
// owner user. This node claims the channel (a compare-and-set create of
// its ownership key) and runs it. The session's first event is
// cnl:create. Refusals: channel's (ErrExists when any node has the
// channel), ErrUnavailable.
func (n *Node) Create(ctx context.Context, actor, id string, opts channel.CreateOptions) (*Session, error) {
	if len(id) == 0 || len(id) > channel.MaxIDLen {
		return nil, fmt.Errorf("%w: channel id must be 1 to %d bytes", channel.ErrInvalid, channel.MaxIDLen)
	}
	key := chanKey(id)
	val, _ := json.Marshal(ownerValue{Node: n.cfg.Node})
	rev, err := n.owners.Create(ctx, key, val)
	if errors.Is(err, jetstream.ErrKeyExists) {
		// A deleted channel's key stays, marked closed, until it expires.
		e, gerr := n.owners.Get(ctx, key)
		var v ownerValue
		if gerr != nil || json.Unmarshal(e.Value(), &v) != nil || !v.Closed {
			return nil, fmt.Errorf("%w: channel %q", channel.ErrExists, id)
		}
		rev, err = n.owners.Update(ctx, key, val, e.Revision())
	}
	if err != nil {
		if errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			return nil, fmt.Errorf("%w: channel %q", channel.ErrExists, id)
		}
		return nil, fmt.Errorf("%w: claim: %v", ErrUnavailable, err)
	}
	// A channel of the same id that was deleted leaves its events: start
	// the subject afresh.
	if err := n.purge(ctx, id); err != nil {
		n.unclaim(key, rev)
		return nil, err
	}
	o, err := newOwned(n, id, rev)
	if err != nil {
		n.unclaim(key, rev)
		return nil, err
	}
	s, err := n.session(id, actor)
	if err != nil {
		n.unclaim(key, rev)
		return nil, err
	}
	o.setNode(actor, n.cfg.Node)
	ch, sub, err := o.reg.Create(actor, id, opts)
	if err != nil {
		s.f.dropSession(s)
		n.unclaim(key, rev)
		return nil, err
	}
	o.drain(sub)
	if !n.adopt(o, ch) {
		return nil, ErrClosed
	}
	if err := s.f.waitSeq(ctx, 1); err != nil {
		return nil, err
	}
	return s, nil
}

func (n *Node) purge(ctx context.Context, id string) error {
	st, err := n.js.Stream(ctx, eventStream)
	if err == nil {
		err = st.Purge(ctx, jetstream.WithPurgeSubject(eventSubject(id)))
	}
	if err == nil || errors.Is(err, jetstream.ErrKeyNotFound) {
		err = n.snaps.Purge(ctx, chanKey(id))
	}
	if err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
		return fmt.Errorf("%w: purge: %v", ErrUnavailable, err)
	}
	return nil
}

func (n *Node) unclaim(key string, rev uint64) {
	ctx, cancel := context.WithTimeout(n.ctx, n.cfg.OpTimeout)
	defer cancel()
	_ = n.owners.Delete(ctx, key, jetstream.LastRevision(rev))
}

// adopt makes o one of the channels the node runs, serving operations.
func (n *Node) adopt(o *owned, ch *channel.Channel) bool {
	o.mu.Lock()
	o.ch = ch
	o.mu.Unlock()
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		o.stop()
		return false
	}
	prev := n.owned[o.id]
	n.owned[o.id] = o
	n.wg.Add(1)
	n.mu.Unlock()
	if prev != nil && prev != o {
		prev.lose() // this node's own lease had run out: the new claim replaces it
	}
	go func() {
		defer n.wg.Done()
		o.snapshots()
	}()
	o.snapshotDue()
	return true
}

// Join makes actor (connected to this node) an active user of channel id,
// wherever the channel runs: the operation goes to its owner, and the
// session gets the channel's events from the user:join on.
func (n *Node) Join(ctx context.Context, actor, id string, tracks []channel.TrackInfo) (*Session, error) {
	s, err := n.session(id, actor)
	if err != nil {
		return nil, err
	}
	seq, err := n.call(ctx, Op{Name: OpJoin, Channel: id, Actor: actor, Tracks: tracks})
	if err != nil {
		s.f.dropSession(s)
		return nil, err
	}
	if err := s.f.waitSeq(ctx, seq); err != nil {
		return nil, err
	}
	return s, nil
}

// Do runs op (any operation but join and create) for op.Actor, connected
// to this node, on op.Channel's owner, and returns the sequence number of
// the channel's last event when it was done. When this node follows the
// channel, Do returns once the replica reflects that event, so that a
// getUsers after it sees the operation.
func (n *Node) Do(ctx context.Context, op Op) (uint64, error) {
	if op.Name == OpJoin {
		return 0, fmt.Errorf("%w: join through Join", channel.ErrInvalid)
	}
	seq, err := n.call(ctx, op)
	if err != nil {
		return seq, err
	}
	n.mu.Lock()
	f := n.follows[op.Channel]
	n.mu.Unlock()
	if f != nil {
		return seq, f.waitSeq(ctx, seq)
	}
	return seq, nil
}

// GetUsers answers getUsers from this node's replica of the channel: the
// same answer as on every node at the same event number (Snapshot.Seq).
func (n *Node) GetUsers(ctx context.Context, actor, id string) (channel.Snapshot, error) {
	n.mu.Lock()
	f := n.follows[id]
	n.mu.Unlock()
	if f == nil {
		return channel.Snapshot{}, fmt.Errorf("%w: %q has no stay in %q on this node", channel.ErrNotMember, actor, id)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.st.Users(actor)
}

// Owner returns the node that owns channel id now.
func (n *Node) Owner(ctx context.Context, id string) (string, error) {
	e, err := n.owners.Get(ctx, chanKey(id))
	if err != nil {
		if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
			return "", fmt.Errorf("%w: channel %q has no owner", channel.ErrNotFound, id)
		}
		return "", fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	var v ownerValue
	if err := json.Unmarshal(e.Value(), &v); err != nil {
		return "", fmt.Errorf("%w: owner of %q: %v", ErrBadMessage, id, err)
	}
	if v.Closed {
		return "", fmt.Errorf("%w: channel %q: %w", channel.ErrNotFound, id, errDeleted)
	}
	return v.Node, nil
}

// call sends op to the channel's owner, or runs it when this node owns
// the channel, and retries while the channel changes owner (until ctx or
// OpTimeout ends).
func (n *Node) call(ctx context.Context, op Op) (uint64, error) {
	op.Node = n.cfg.Node
	ctx, cancel := context.WithTimeout(ctx, n.cfg.OpTimeout)
	defer cancel()
	b, err := json.Marshal(op)
	if err != nil {
		return 0, fmt.Errorf("%w: %v", channel.ErrInvalid, err)
	}
	var last error
	for {
		owner, err := n.Owner(ctx, op.Channel)
		if err != nil && !n.following(op.Channel) {
			return 0, err // no channel, unless it is being taken over
		}
		if err != nil && errors.Is(err, channel.ErrNotFound) && !errors.Is(err, errDeleted) {
			n.claimOrphan(ctx, op.Channel) // a claim that failed is tried again
		}
		var r opReply
		switch {
		case err != nil:
			last = err
		case owner == n.cfg.Node:
			r, last = n.local(ctx, op)
		default:
			n.stats.Forwarded.Add(1)
			var msg *nats.Msg
			msg, last = n.nc.RequestWithContext(ctx, opPrefix+owner, b)
			if last == nil {
				r, last = decodeReply(msg.Data)
			}
		}
		if last == nil {
			last = codeErr(r.Code, r.Msg)
			if !errors.Is(last, ErrNotOwner) {
				return r.Seq, last
			}
		}
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("%w: %s on %q: %v", ErrUnavailable, op.Name, op.Channel, last)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// errDeleted marks the ErrNotFound of a deleted channel.
var errDeleted = errors.New("deleted")

// claimOrphan claims channel id if its ownership key is gone (expired or
// deleted) and nobody has claimed it yet.
func (n *Node) claimOrphan(ctx context.Context, id string) {
	st, err := n.js.Stream(ctx, "KV_"+ownersBucket)
	if err != nil {
		return
	}
	m, err := st.GetLastMsgForSubject(ctx, "$KV."+ownersBucket+"."+chanKey(id))
	if err != nil || (m.Header.Get("KV-Operation") == "" && m.Header.Get(jetstream.MarkerReasonHeader) == "") {
		return // never owned, or owned
	}
	n.claim(id, m.Sequence)
}

func (n *Node) following(id string) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	f := n.follows[id]
	return f != nil && !f.closed()
}

func (n *Node) local(ctx context.Context, op Op) (opReply, error) {
	n.mu.Lock()
	o := n.owned[op.Channel]
	n.mu.Unlock()
	if o == nil {
		return opReply{Code: errCode(ErrNotOwner)}, nil
	}
	return o.do(ctx, op), nil
}

// serveOp answers an operation another node forwarded, on a goroutine of
// its own (a join request may wait for an admin).
func (n *Node) serveOp(msg *nats.Msg) {
	op, err := decodeOp(msg.Data)
	if err != nil {
		n.stats.BadMessages.Add(1)
		b, _ := json.Marshal(opReply{Code: errCode(err), Msg: err.Error()})
		_ = msg.Respond(b)
		return
	}
	n.goTrack(func() {
		n.stats.Served.Add(1)
		ctx, cancel := context.WithTimeout(n.ctx, n.cfg.OpTimeout)
		defer cancel()
		r, _ := n.local(ctx, op)
		b, _ := json.Marshal(r)
		_ = msg.Respond(b)
	})
}

// claim takes channel id over after its owner's lease ended (the key's
// revision is rev): an update of the ownership key against that revision,
// which one node wins. The winner rebuilds the channel from its snapshot
// and the events after it, and runs it from there; the users of nodes
// that are gone leave.
func (n *Node) claim(id string, rev uint64) {
	ctx, cancel := context.WithTimeout(n.ctx, n.cfg.OpTimeout)
	defer cancel()
	key := chanKey(id)
	val, _ := json.Marshal(ownerValue{Node: n.cfg.Node})
	fence, err := n.owners.Update(ctx, key, val, rev)
	if err != nil {
		return // another node was first, or the engine is unreachable
	}
	n.stats.Claims.Add(1)
	st, nodes, lastSubj, snapRev, err := n.recoverState(ctx, id)
	if err != nil || st.Closed || st.Seq == 0 {
		n.unclaim(key, fence)
		return
	}
	o, err := newOwned(n, id, fence)
	if err != nil {
		n.unclaim(key, fence)
		return
	}
	o.published, o.lastSubj, o.nodes, o.snapRev = st.Seq, lastSubj, nodes, snapRev
	ch, subs, err := o.reg.Restore(st)
	if err != nil {
		n.unclaim(key, fence)
		return
	}
	for _, sub := range subs {
		o.drain(sub)
	}
	if !n.adopt(o, ch) {
		return
	}
	for u, node := range nodes {
		if !n.isLive(node) {
			_ = ch.Leave(u)
		}
	}
}

// recoverState reads channel id's last snapshot and applies the events
// published after it.
func (n *Node) recoverState(ctx context.Context, id string) (st channel.State, nodes map[string]string, lastSubj, snapRev uint64, err error) {
	nodes = map[string]string{}
	if e, gerr := n.snaps.Get(ctx, chanKey(id)); gerr == nil {
		snap, derr := decodeSnapshot(e.Value())
		if derr != nil {
			return st, nil, 0, 0, derr
		}
		st, nodes, lastSubj, snapRev = snap.State, snap.Nodes, snap.StreamSeq, e.Revision()
	} else if !errors.Is(gerr, jetstream.ErrKeyNotFound) {
		return st, nil, 0, 0, fmt.Errorf("%w: snapshot: %v", ErrUnavailable, gerr)
	}
	stream, err := n.js.Stream(ctx, eventStream)
	if err != nil {
		return st, nil, 0, 0, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	subject := eventSubject(id)
	last, err := stream.GetLastMsgForSubject(ctx, subject)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return st, nodes, lastSubj, snapRev, nil
	}
	if err != nil {
		return st, nil, 0, 0, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	for seq := lastSubj + 1; seq <= last.Sequence; {
		m, err := stream.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(subject))
		if err != nil {
			return st, nil, 0, 0, fmt.Errorf("%w: event at %d: %v", ErrUnavailable, seq, err)
		}
		lastSubj, seq = m.Sequence, m.Sequence+1
		ev, err := decodeEvent(m.Data)
		if err != nil || ev.Channel != id {
			n.stats.BadMessages.Add(1) // not the owner's: skipped
			continue
		}
		st.Apply(ev)
		switch ev.Type {
		case channel.EventCreate:
			nodes[ev.Sender] = m.Header.Get(headerNode)
		case channel.EventJoin:
			nodes[ev.User] = m.Header.Get(headerNode)
		case channel.EventLeft:
			delete(nodes, ev.User)
		}
	}
	return st, nodes, lastSubj, snapRev, nil
}
