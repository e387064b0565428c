package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"strconv"
	"sync"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/callcore/callcore/channel"
)

// owned is a channel this node runs: a channel.Registry of its own holding
// the real channel.Channel, whose events it publishes to the stream in
// order, fenced by the stream's last sequence for the channel's subject.
type owned struct {
	n     *Node
	id    string
	key   string
	fence uint64 // the ownership key's revision when this node claimed it
	reg   *channel.Registry
	dirty chan struct{} // one slot: a snapshot is due
	done  chan struct{} // closed by stop
	once  sync.Once     // closes done

	mu        sync.Mutex // guards the fields below
	ch        *channel.Channel
	kvRev     uint64            // the ownership key's last revision (renewals compare it)
	published uint64            // the last event published
	lastSubj  uint64            // its stream sequence
	nodes     map[string]string // node of each user who joined, until it leaves
	stopped   bool              // lost, released or closed: nothing more is published
	ended     bool              // cnl:delete published
	snapRev   uint64            // the snapshot key's last revision
}

func newOwned(n *Node, id string, fence uint64) (*owned, error) {
	o := &owned{n: n, id: id, key: chanKey(id), fence: fence, kvRev: fence,
		dirty: make(chan struct{}, 1), done: make(chan struct{}), nodes: map[string]string{}}
	cfg := n.cfg.Channels
	cfg.Media = ownedMedia{o: o, inner: cfg.Media}
	reg, err := channel.NewRegistry(cfg)
	if err != nil {
		return nil, err
	}
	o.reg = reg
	return o, nil
}

// ownedMedia passes the channel's Media calls on, and publishes its
// events (channel.EventMedia).
type ownedMedia struct {
	o     *owned
	inner channel.Media
}

func (m ownedMedia) TrackAdded(ch, user string, t channel.TrackInfo, s channel.MuteState) {
	if m.inner != nil {
		m.inner.TrackAdded(ch, user, t, s)
	}
}

func (m ownedMedia) TrackRemoved(ch, user, track string) {
	if m.inner != nil {
		m.inner.TrackRemoved(ch, user, track)
	}
}

func (m ownedMedia) MuteChanged(ch, user, track string, s channel.MuteState) {
	if m.inner != nil {
		m.inner.MuteChanged(ch, user, track, s)
	}
}

func (m ownedMedia) ReceiveChanged(ch, user string, on bool) {
	if m.inner != nil {
		m.inner.ReceiveChanged(ch, user, on)
	}
}

func (m ownedMedia) UserGone(ch, user string) {
	if m.inner != nil {
		m.inner.UserGone(ch, user)
	}
}

func (m ownedMedia) ConfigChanged(ch string, cfg channel.CallConfig) {
	if cm, ok := m.inner.(channel.ConfigMedia); ok {
		cm.ConfigChanged(ch, cfg)
	}
}

func (m ownedMedia) Emitted(ev *channel.Event) { m.o.publish(ev) }

// publish writes ev to the stream: message id channel/fence/seq (a retry
// is de-duplicated), expected last subject sequence the previous event's
// (a node that lost the channel cannot write), the joiner's node in a
// header. Called in event order, one at a time per channel.
func (o *owned) publish(ev *channel.Event) {
	o.mu.Lock()
	if o.stopped {
		o.mu.Unlock()
		return
	}
	expect := o.lastSubj
	u := ev.User
	if ev.Type == channel.EventCreate {
		u = ev.Sender // the creator
	}
	node := o.nodes[u]
	o.mu.Unlock()
	b, err := json.Marshal(ev)
	if err != nil {
		o.lose()
		return
	}
	msg := nats.NewMsg(eventSubject(o.id))
	msg.Data = b
	msg.Header.Set(headerFence, strconv.FormatUint(o.fence, 10))
	if ev.Type == channel.EventJoin || ev.Type == channel.EventCreate {
		msg.Header.Set(headerNode, node)
	}
	id := o.key + "/" + strconv.FormatUint(o.fence, 10) + "/" + strconv.FormatUint(ev.Seq, 10)
	var ack *jetstream.PubAck
	for try := 0; try < 3; try++ {
		ctx, cancel := context.WithTimeout(o.n.ctx, o.n.cfg.OpTimeout)
		ack, err = o.n.js.PublishMsg(ctx, msg, jetstream.WithMsgID(id), jetstream.WithExpectLastSequencePerSubject(expect))
		cancel()
		if err == nil || isWrongLastSeq(err) || o.n.ctx.Err() != nil {
			break
		}
	}
	if err != nil {
		o.lose() // fenced, or the engine is gone: this node cannot go on numbering
		return
	}
	o.n.stats.Published.Add(1)
	o.mu.Lock()
	o.published, o.lastSubj = ev.Seq, ack.Sequence
	switch ev.Type {
	case channel.EventLeft:
		delete(o.nodes, ev.User)
	case channel.EventUserDel:
		for _, u := range ev.Users {
			delete(o.nodes, u.ID)
		}
	case channel.EventDelete:
		o.ended = true
		clear(o.nodes)
	}
	ended := o.ended
	o.mu.Unlock()
	o.snapshotDue()
	if ended {
		// Marked before the operation that deleted the channel returns, so
		// that the id can be created again at once.
		o.markClosed()
		o.n.goTrack(o.finish)
	}
}

// markClosed marks the ownership key of a deleted channel closed (and
// leaves it to expire), so that nobody takes the channel over, and drops
// its snapshot.
func (o *owned) markClosed() {
	o.mu.Lock()
	rev := o.kvRev
	o.mu.Unlock()
	b, _ := json.Marshal(ownerValue{Node: o.n.cfg.Node, Closed: true})
	ctx, cancel := context.WithTimeout(o.n.ctx, o.n.cfg.OpTimeout)
	defer cancel()
	if nrev, err := o.n.owners.Update(ctx, o.key, b, rev); err == nil {
		o.mu.Lock()
		o.kvRev = nrev
		o.mu.Unlock()
	}
	_ = o.n.snaps.Delete(ctx, o.key)
}

func isWrongLastSeq(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence || apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant)
}

func (o *owned) snapshotDue() {
	select {
	case o.dirty <- struct{}{}:
	default:
	}
}

// snapshots writes the channel's state to the snapshot bucket whenever it
// is due and reflects exactly the events published so far, until stop.
func (o *owned) snapshots() {
	for {
		select {
		case <-o.done:
			return
		case <-o.dirty:
		}
		o.mu.Lock()
		ch := o.ch
		o.mu.Unlock()
		if ch == nil {
			continue
		}
		st := ch.State()
		o.mu.Lock()
		if o.stopped || st.Seq != o.published {
			o.mu.Unlock()
			continue // events are still being published: the last one makes it due again
		}
		snap := snapshot{State: st, Nodes: maps.Clone(o.nodes), StreamSeq: o.lastSubj, Fence: o.fence}
		rev := o.snapRev
		o.mu.Unlock()
		b, err := json.Marshal(snap)
		if err != nil {
			continue
		}
		ctx, cancel := context.WithTimeout(o.n.ctx, o.n.cfg.OpTimeout)
		var nrev uint64
		if rev == 0 {
			nrev, err = o.n.snaps.Put(ctx, o.key, b)
		} else {
			nrev, err = o.n.snaps.Update(ctx, o.key, b, rev)
		}
		cancel()
		if err == nil {
			o.mu.Lock()
			o.snapRev = nrev
			o.mu.Unlock()
		} else if errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			o.lose() // another node wrote it: it owns the channel now
		}
	}
}

// renew extends the ownership lease (compare-and-set on its revision).
func (o *owned) renew() {
	o.mu.Lock()
	if o.stopped || o.ended {
		o.mu.Unlock()
		return
	}
	rev := o.kvRev
	o.mu.Unlock()
	b, _ := json.Marshal(ownerValue{Node: o.n.cfg.Node})
	ctx, cancel := context.WithTimeout(o.n.ctx, o.n.cfg.TTL/2)
	nrev, err := o.n.owners.Update(ctx, o.key, b, rev)
	cancel()
	switch {
	case err == nil:
		o.mu.Lock()
		o.kvRev = nrev
		o.mu.Unlock()
	case errors.Is(err, jetstream.ErrKeyRevisionMismatch) || errors.Is(err, jetstream.ErrKeyExists):
		o.lose()
	}
}

// lose stops running the channel: another node owns it, or this one can
// no longer write its events.
func (o *owned) lose() {
	o.mu.Lock()
	was := o.stopped
	o.stopped = true
	rev := o.kvRev
	o.mu.Unlock()
	if !was {
		o.n.stats.Fenced.Add(1)
		o.n.goTrack(func() {
			// Still ours (the stream refused a write, not another owner's
			// claim): let go at once, so that a node takes over from the
			// snapshot and the stream without waiting for the lease.
			ctx, cancel := context.WithTimeout(o.n.ctx, o.n.cfg.OpTimeout)
			_ = o.n.owners.Delete(ctx, o.key, jetstream.LastRevision(rev))
			cancel()
			o.finish()
		})
	}
}

// finish forgets the channel: deleted, lost or released.
func (o *owned) finish() {
	o.mu.Lock()
	o.stopped = true
	o.mu.Unlock()
	o.n.mu.Lock()
	if o.n.owned[o.id] == o {
		delete(o.n.owned, o.id)
	}
	o.n.mu.Unlock()
	o.stop()
}

// release gives the channel up at once (a node closing): its ownership
// key is deleted, so that a node with users in it takes it over. A renewal
// that raced with it moved the revision: the key is read again, and
// deleted if it is still this node's.
func (o *owned) release(ctx context.Context) {
	o.mu.Lock()
	o.stopped = true
	rev := o.kvRev
	o.mu.Unlock()
	for range 3 {
		if o.n.owners.Delete(ctx, o.key, jetstream.LastRevision(rev)) == nil {
			return
		}
		e, err := o.n.owners.Get(ctx, o.key)
		var v ownerValue
		if err != nil || json.Unmarshal(e.Value(), &v) != nil || v.Node != o.n.cfg.Node {
			return
		}
		rev = e.Revision()
	}
}

// stop closes the registry (its users' subscriptions end; nothing is
// published any more) and the snapshot writer.
func (o *owned) stop() {
	o.mu.Lock()
	o.stopped = true
	o.mu.Unlock()
	o.once.Do(func() {
		close(o.done)
		o.reg.Close()
	})
}

// setNode records the node a joining user is connected to.
func (o *owned) setNode(user, node string) {
	o.mu.Lock()
	o.nodes[user] = node
	o.mu.Unlock()
}

// dropNode makes the users of a node that died leave.
func (o *owned) dropNode(node string) {
	o.mu.Lock()
	ch := o.ch
	var users []string
	for u, nd := range o.nodes {
		if nd == node {
			users = append(users, u)
		}
	}
	o.mu.Unlock()
	if ch == nil {
		return
	}
	for _, u := range users {
		_ = ch.Leave(u)
	}
}

// drain reads and drops an owner-side subscription: users get their
// events from the stream, on the node they are connected to.
func (o *owned) drain(sub *channel.Subscription) {
	if sub != nil {
		o.n.goTrack(func() {
			for range sub.C() {
			}
		})
	}
}

// do runs op on the channel and answers with the channel's sequence
// number after it.
func (o *owned) do(ctx context.Context, op Op) opReply {
	o.mu.Lock()
	ch, stopped := o.ch, o.stopped
	o.mu.Unlock()
	if ch == nil || stopped {
		return opReply{Code: errCode(ErrNotOwner), Msg: "not the owner"}
	}
	err := o.run(ctx, ch, op)
	o.mu.Lock()
	// A channel that ended had its delete event written to the stream
	// (ended is set after the write), so every event of the operation is
	// there: the finish that stops it after a delete is not a loss.
	lost := o.stopped && !o.ended
	o.mu.Unlock()
	if lost {
		// Its events may not all be in the stream: the caller tries again
		// on the channel's next owner.
		return opReply{Code: errCode(ErrNotOwner), Msg: "ownership lost during the operation"}
	}
	r := opReply{Seq: ch.Seq(), Code: errCode(err)}
	if err != nil {
		r.Msg = err.Error()
	}
	return r
}

func (o *owned) run(ctx context.Context, ch *channel.Channel, op Op) error {
	switch op.Name {
	case OpJoin:
		o.setNode(op.Actor, op.Node)
		sub, pending, err := ch.StartJoin(op.Actor, op.Tracks)
		if pending != nil {
			sub, err = pending.Wait(ctx)
		}
		o.drain(sub)
		return err
	case OpLeave:
		return ch.Leave(op.Actor)
	case OpDelete:
		return ch.Delete(op.Actor, op.Reason)
	case OpAddUsers:
		return ch.AddUsers(op.Actor, op.Users)
	case OpDelUsers:
		return ch.DelUsers(op.Actor, op.Users)
	case OpModUsers:
		return ch.ModUsers(op.Actor, op.Modes)
	case OpConfigure:
		return ch.Configure(op.Actor, op.Config)
	case OpUpdateConfig:
		if op.Patch == nil {
			return fmt.Errorf("%w: updateConfig without a patch", channel.ErrInvalid)
		}
		return ch.UpdateConfig(op.Actor, *op.Patch)
	case OpAddTracks:
		return ch.AddTracks(op.Actor, op.Tracks)
	case OpRemoveTracks:
		return ch.RemoveTracks(op.Actor, op.Names)
	case OpMuteTracks:
		return ch.MuteTracks(op.Actor, op.Names, channel.MuteAction(op.Mute))
	case OpMuteUser:
		return ch.MuteUser(op.Actor, op.Target, op.Kind, channel.MuteAction(op.Mute), op.Reason)
	}
	return fmt.Errorf("%w: unknown operation %q", channel.ErrInvalid, op.Name)
}
