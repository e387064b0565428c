package cluster

import (
	"context"
	"fmt"
	"net/netip"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/callcore/callcore/channel"
)

// Config configures a Node.
type Config struct {
	// Node is this node's id: 1 to 64 bytes of letters, digits, '-' and
	// '_', unique in the cluster (required).
	Node string
	// URL is the NATS server (or comma-separated servers) to connect to.
	// Exactly one of URL and Embedded is set.
	URL string
	// Embedded starts a NATS server in the process, which the node
	// connects to and shuts down when it closes.
	Embedded *EmbeddedConfig
	// TTL is the lease of the node's membership and of the channels it
	// owns: a node silent for TTL is dead and its channels are taken over.
	// Renewed every TTL/4. Default 2 s; at least 1 s.
	TTL time.Duration
	// Replicas is how many NATS servers keep each JetStream asset (1 to
	// 5; 3 in a 3-server NATS cluster). Default 1.
	Replicas int
	// Channels configures the registries of the channels this node owns.
	Channels channel.Config
	// LinkAddr is the IP address other nodes reach this node's media
	// links on (advertised in the membership bucket): the node listens
	// there, on a free port per far node, to offer its users' tracks.
	// Empty: no media across nodes (users of a channel exchange media
	// with the users of their own node only).
	LinkAddr string
	// LinkTLS, when set, protects the links (mutual TLS). Default nil:
	// plain TCP control channels, for private networks and tests only.
	LinkTLS *LinkTLS
	// OpTimeout bounds one forwarded operation, retries included. Default
	// 5 s.
	OpTimeout time.Duration
	// EventBuffer is each local session's buffer, in events; a session
	// that lets it fill is ended with channel.ErrSlowConsumer and its user
	// made to leave. Default 256.
	EventBuffer int
}

// Validate reports a bad configuration with an error wrapping ErrInvalid.
func (c Config) Validate() error {
	if err := checkNodeID(c.Node); err != nil {
		return err
	}
	switch {
	case (c.URL == "") == (c.Embedded == nil):
		return fmt.Errorf("%w: set exactly one of URL and Embedded", ErrInvalid)
	case c.TTL != 0 && c.TTL < time.Second:
		return fmt.Errorf("%w: TTL %v below 1s", ErrInvalid, c.TTL)
	case c.Replicas < 0 || c.Replicas > 5:
		return fmt.Errorf("%w: Replicas %d (1 to 5)", ErrInvalid, c.Replicas)
	case c.OpTimeout < 0:
		return fmt.Errorf("%w: negative OpTimeout", ErrInvalid)
	case c.EventBuffer < 0:
		return fmt.Errorf("%w: negative EventBuffer", ErrInvalid)
	}
	if c.LinkAddr != "" {
		if _, err := netip.ParseAddr(c.LinkAddr); err != nil {
			return fmt.Errorf("%w: LinkAddr: %v", ErrInvalid, err)
		}
	}
	if c.Embedded != nil {
		if err := c.Embedded.Validate(); err != nil {
			return err
		}
	}
	return c.Channels.Validate()
}

func checkNodeID(id string) error {
	if id == "" || len(id) > maxNodeIDLen {
		return fmt.Errorf("%w: node id must be 1 to %d bytes", ErrInvalid, maxNodeIDLen)
	}
	for _, r := range id {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return fmt.Errorf("%w: node id %q: only letters, digits, '-' and '_'", ErrInvalid, id)
		}
	}
	return nil
}

// Node is one call server's share of the cluster: its membership, the
// channels it owns (it runs them), the channels it follows (it has users
// in them), and the forwarding of its users' operations to the owners.
type Node struct {
	cfg    Config // immutable after Start
	emb    *Embedded
	nc     *nats.Conn
	js     jetstream.JetStream
	nodes  jetstream.KeyValue
	owners jetstream.KeyValue
	snaps  jetstream.KeyValue
	opSub  *nats.Subscription

	ctx    context.Context // ends when the node closes
	cancel context.CancelFunc
	wg     sync.WaitGroup // every goroutine of the node

	mu      sync.Mutex // guards the fields below
	closed  bool
	owned   map[string]*owned    // channels this node runs, by id
	follows map[string]*follower // channels this node follows, by id
	live    map[string]bool      // nodes whose membership key exists
	memRev  uint64               // revision of our membership key
	media   channel.Media        // the local plane (UseMedia), or nil
	hub     *hub                 // media across nodes (UseMedia with a LinkAddr), or nil
	linkVia func(string) string  // tests: given to the hub (set before UseMedia)

	stats Stats
}

// Start connects the node (starting its embedded NATS server first if it
// has one), sets up the buckets and the stream, registers the node and
// serves operations forwarded to it.
func Start(cfg Config) (*Node, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.TTL == 0 {
		cfg.TTL = 2 * time.Second
	}
	if cfg.Replicas == 0 {
		cfg.Replicas = 1
	}
	if cfg.OpTimeout == 0 {
		cfg.OpTimeout = 5 * time.Second
	}
	if cfg.EventBuffer == 0 {
		cfg.EventBuffer = 256
	}
	n := &Node{cfg: cfg, owned: map[string]*owned{}, follows: map[string]*follower{}, live: map[string]bool{}}
	n.ctx, n.cancel = context.WithCancel(context.Background())
	if err := n.start(); err != nil {
		n.Kill()
		return nil, err
	}
	return n, nil
}

func (n *Node) start() error {
	url := n.cfg.URL
	if n.cfg.Embedded != nil {
		emb, err := StartEmbedded(*n.cfg.Embedded)
		if err != nil {
			return err
		}
		n.emb = emb
		url = emb.ClientURL()
	}
	nc, err := nats.Connect(url, nats.Name("callcore-"+n.cfg.Node), nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond))
	if err != nil {
		return fmt.Errorf("%w: connect %s: %v", ErrUnavailable, url, err)
	}
	n.nc = nc
	if n.js, err = jetstream.New(nc); err != nil {
		return fmt.Errorf("%w: jetstream: %v", ErrUnavailable, err)
	}
	if err := n.setup(); err != nil {
		return err
	}
	if err := n.heartbeat(); err != nil {
		return err
	}
	if n.opSub, err = nc.Subscribe(opPrefix+n.cfg.Node, n.serveOp); err != nil {
		return fmt.Errorf("%w: subscribe: %v", ErrUnavailable, err)
	}
	if _, err = nc.Subscribe(linkPrefix+n.cfg.Node, n.serveLink); err != nil {
		return fmt.Errorf("%w: subscribe: %v", ErrUnavailable, err)
	}
	nodesW, err := n.nodes.WatchAll(n.ctx)
	if err != nil {
		return fmt.Errorf("%w: watch nodes: %v", ErrUnavailable, err)
	}
	ownersW, err := n.owners.WatchAll(n.ctx, jetstream.UpdatesOnly())
	if err != nil {
		_ = nodesW.Stop()
		return fmt.Errorf("%w: watch owners: %v", ErrUnavailable, err)
	}
	n.wg.Add(3)
	go n.watchNodes(nodesW)
	go n.watchOwners(ownersW)
	go n.renewLoop()
	return nil
}

// setup creates the buckets and the stream, or finds them (every node
// asks for the same configuration; the engine keeps one). A clustered
// engine does not answer until it has elected its leaders: each step is
// retried for up to 30 s.
func (n *Node) setup() error {
	ctx, cancel := context.WithTimeout(n.ctx, 30*time.Second)
	defer cancel()
	marker := n.cfg.TTL
	steps := []struct {
		what string
		do   func(ctx context.Context) error
	}{
		{"nodes bucket", func(ctx context.Context) (err error) {
			n.nodes, err = n.js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: nodesBucket, TTL: n.cfg.TTL, LimitMarkerTTL: marker, Replicas: n.cfg.Replicas, History: 1})
			return err
		}},
		{"owners bucket", func(ctx context.Context) (err error) {
			n.owners, err = n.js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: ownersBucket, TTL: n.cfg.TTL, LimitMarkerTTL: marker, Replicas: n.cfg.Replicas, History: 1})
			return err
		}},
		{"snapshots bucket", func(ctx context.Context) (err error) {
			n.snaps, err = n.js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: snapsBucket, Replicas: n.cfg.Replicas, History: 1})
			return err
		}},
		{"events stream", func(ctx context.Context) error {
			_, err := n.js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
				Name: eventStream, Subjects: []string{eventPrefix + ">"}, Replicas: n.cfg.Replicas,
				Duplicates: 2 * time.Minute, MaxAge: 24 * time.Hour, Discard: jetstream.DiscardOld,
			})
			return err
		}},
	}
	for _, step := range steps {
		for {
			try, cancelTry := context.WithTimeout(ctx, 2*time.Second)
			err := step.do(try)
			cancelTry()
			if err == nil {
				break
			}
			if ctx.Err() != nil {
				return fmt.Errorf("%w: %s: %v", ErrUnavailable, step.what, err)
			}
			select {
			case <-time.After(100 * time.Millisecond):
			case <-ctx.Done():
			}
		}
	}
	return nil
}

// ID returns the node's id.
func (n *Node) ID() string { return n.cfg.Node }

// Nodes returns the live nodes, as their membership keys say.
func (n *Node) Nodes(ctx context.Context) ([]NodeInfo, error) {
	keys, err := n.nodes.ListKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	var out []NodeInfo
	for k := range keys.Keys() {
		e, err := n.nodes.Get(ctx, k)
		if err != nil {
			continue
		}
		var info NodeInfo
		if err := jsonUnmarshal(e.Value(), &info); err == nil {
			out = append(out, info)
		}
	}
	return out, nil
}

// Close leaves the cluster: the channels it owns are released at once
// (another node with users in them takes them over from their snapshot and
// stream), its membership key is deleted, its sessions end with ErrClosed,
// and the connection (and embedded server) close.
func (n *Node) Close() {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return
	}
	n.closed = true
	owned := n.ownedList()
	n.mu.Unlock()
	if n.nodes != nil {
		ctx, cancel := context.WithTimeout(context.Background(), n.cfg.OpTimeout)
		for _, o := range owned {
			o.release(ctx)
		}
		_ = n.nodes.Delete(ctx, n.cfg.Node)
		cancel()
	}
	n.shutdown()
}

// Kill stops the node as a crash would: nothing is released or
// announced; the connection (and embedded server) close at once and the
// rest of the cluster finds out when the node's leases expire.
func (n *Node) Kill() {
	n.mu.Lock()
	n.closed = true
	n.mu.Unlock()
	if n.nc != nil {
		n.nc.Close()
	}
	n.shutdown()
}

func (n *Node) shutdown() {
	if n.emb != nil && n.nc != nil && !n.nc.IsClosed() {
		n.nc.Close()
	}
	n.cancel()
	n.mu.Lock()
	owns := n.ownedList()
	follows := make([]*follower, 0, len(n.follows))
	for _, f := range n.follows {
		follows = append(follows, f)
	}
	n.owned, n.follows = map[string]*owned{}, map[string]*follower{}
	n.mu.Unlock()
	for _, f := range follows {
		f.stop(ErrClosed)
	}
	for _, o := range owns {
		o.stop()
	}
	if n.nc != nil {
		n.nc.Close()
	}
	if h := n.hubOf(); h != nil {
		h.close()
	}
	n.wg.Wait()
	if n.emb != nil {
		n.emb.Shutdown()
	}
}

func (n *Node) ownedList() []*owned {
	out := make([]*owned, 0, len(n.owned))
	for _, o := range n.owned {
		out = append(out, o)
	}
	return out
}

// goTrack runs f on a goroutine the node waits for when it closes, unless
// it is closing.
func (n *Node) goTrack(f func()) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return false
	}
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		f()
	}()
	return true
}
