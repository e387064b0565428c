package cluster

import "sync/atomic"

// Stats counts what a node did. Read it with Node.Stats.
type Stats struct {
	Forwarded         atomic.Uint64 // operations sent to another node
	Served            atomic.Uint64 // operations run for users of other nodes
	Published         atomic.Uint64 // events published to the stream
	Applied           atomic.Uint64 // events applied to followed channels
	Claims            atomic.Uint64 // channels taken over from a dead owner
	Fenced            atomic.Uint64 // channels lost to another node
	BadMessages       atomic.Uint64 // messages that did not decode (dropped)
	HeartbeatFailures atomic.Uint64
	SlowSessions      atomic.Uint64 // local sessions ended as slow consumers
}

// StatsSnapshot is Stats as plain numbers.
type StatsSnapshot struct {
	Forwarded, Served, Published, Applied, Claims, Fenced, BadMessages, HeartbeatFailures, SlowSessions uint64
}

// Stats returns the node's counters.
func (n *Node) Stats() StatsSnapshot {
	s := &n.stats
	return StatsSnapshot{s.Forwarded.Load(), s.Served.Load(), s.Published.Load(), s.Applied.Load(), s.Claims.Load(),
		s.Fenced.Load(), s.BadMessages.Load(), s.HeartbeatFailures.Load(), s.SlowSessions.Load()}
}

// Load returns how many channels the node runs and how many it follows.
func (n *Node) Load() (owned, followed int) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.owned), len(n.follows)
}
