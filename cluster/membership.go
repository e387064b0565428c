package cluster

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"time"

	"github.com/callcore/callcore/channel"

	"github.com/nats-io/nats.go/jetstream"
)

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }

// heartbeat writes the node's membership key: its id, link address and
// load. The bucket's TTL removes it when the node stops writing.
func (n *Node) heartbeat() error {
	n.mu.Lock()
	info := NodeInfo{ID: n.cfg.Node, LinkAddr: n.cfg.LinkAddr, Channels: len(n.owned)}
	for _, f := range n.follows {
		info.Users += f.localUsers()
	}
	n.mu.Unlock()
	b, _ := json.Marshal(info)
	ctx, cancel := context.WithTimeout(n.ctx, n.cfg.TTL)
	defer cancel()
	rev, err := n.nodes.Put(ctx, n.cfg.Node, b)
	if err != nil {
		n.stats.HeartbeatFailures.Add(1)
		return err
	}
	n.mu.Lock()
	n.memRev = rev
	n.mu.Unlock()
	return nil
}

// renewLoop renews the membership and the owned channels' leases every
// TTL/4, until the node closes.
func (n *Node) renewLoop() {
	defer n.wg.Done()
	t := time.NewTicker(n.cfg.TTL / 4)
	defer t.Stop()
	for tick := 1; ; tick++ {
		select {
		case <-n.ctx.Done():
			return
		case <-t.C:
		}
		_ = n.heartbeat()
		n.mu.Lock()
		owned := n.ownedList()
		var followed []string
		if tick%4 == 0 {
			for id, f := range n.follows {
				if n.owned[id] == nil && !f.closed() {
					followed = append(followed, id)
				}
			}
		}
		n.mu.Unlock()
		for _, o := range owned {
			o.renew()
		}
		// Once a lease, the owned channels' users' nodes are checked for a
		// membership, and the followed channels for an owner: a watch can
		// miss a key's expiry while the engine changes leaders.
		if tick%4 == 0 {
			n.checkNodes(owned)
		}
		for _, id := range followed {
			ctx, cancel := context.WithTimeout(n.ctx, n.cfg.TTL/2)
			if _, err := n.Owner(ctx, id); errors.Is(err, channel.ErrNotFound) && !errors.Is(err, errDeleted) {
				n.claimOrphan(ctx, id)
			}
			cancel()
		}
	}
}

// checkNodes makes the users of nodes without a membership key leave the
// channels this node owns.
func (n *Node) checkNodes(owned []*owned) {
	seen := map[string]bool{}
	for _, o := range owned {
		o.mu.Lock()
		var nodes []string
		for _, nd := range o.nodes {
			if nd != n.cfg.Node && !seen[nd] {
				seen[nd] = true
				nodes = append(nodes, nd)
			}
		}
		o.mu.Unlock()
		for _, nd := range nodes {
			ctx, cancel := context.WithTimeout(n.ctx, n.cfg.TTL/2)
			_, err := n.nodes.Get(ctx, nd)
			cancel()
			if errors.Is(err, jetstream.ErrKeyNotFound) {
				n.mu.Lock()
				delete(n.live, nd)
				n.mu.Unlock()
				for _, o := range owned {
					o.dropNode(nd)
				}
			}
		}
	}
}

// watchNodes keeps the set of live nodes; when one goes (deleted or
// expired), the channels this node owns drop that node's users.
func (n *Node) watchNodes(w jetstream.KeyWatcher) {
	defer n.wg.Done()
	defer func() { _ = w.Stop() }()
	for {
		var e jetstream.KeyValueEntry
		var ok bool
		select {
		case <-n.ctx.Done():
			return
		case e, ok = <-w.Updates():
		}
		if !ok {
			return
		}
		if e == nil {
			continue // the initial values are in
		}
		gone := e.Operation() != jetstream.KeyValuePut
		n.mu.Lock()
		if gone {
			delete(n.live, e.Key())
		} else {
			n.live[e.Key()] = true
		}
		owned := n.ownedList()
		n.mu.Unlock()
		if gone && e.Key() != n.cfg.Node {
			for _, o := range owned {
				n.goTrack(func() { o.dropNode(e.Key()) })
			}
			if h := n.hubOf(); h != nil {
				n.goTrack(func() { h.nodeGone(e.Key()) })
			}
		}
	}
}

// isLive reports whether node's membership key exists, as last seen.
func (n *Node) isLive(node string) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return node == n.cfg.Node || n.live[node]
}

// watchOwners takes over the channels this node follows when their
// owner's lease ends (its key expired or was deleted), and notices a
// channel it owned passing to another node.
func (n *Node) watchOwners(w jetstream.KeyWatcher) {
	defer n.wg.Done()
	defer func() { _ = w.Stop() }()
	for {
		var e jetstream.KeyValueEntry
		var ok bool
		select {
		case <-n.ctx.Done():
			return
		case e, ok = <-w.Updates():
		}
		if !ok {
			return
		}
		if e == nil {
			continue
		}
		raw, err := base64.RawURLEncoding.DecodeString(e.Key())
		if err != nil {
			continue
		}
		id := string(raw)
		if e.Operation() != jetstream.KeyValuePut {
			n.mu.Lock()
			f := n.follows[id]
			n.mu.Unlock()
			if f != nil && !f.closed() {
				rev := e.Revision()
				n.goTrack(func() { n.claim(id, rev) })
			}
			continue
		}
		var v ownerValue
		if json.Unmarshal(e.Value(), &v) != nil || v.Node == n.cfg.Node {
			continue
		}
		n.mu.Lock()
		o := n.owned[id]
		n.mu.Unlock()
		if o != nil {
			o.lose()
		}
	}
}
