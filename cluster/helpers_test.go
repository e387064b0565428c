package cluster

import (
	"context"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/callcore/callcore/channel"
	"github.com/callcore/callcore/internal/poll"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// startEngine starts n embedded NATS servers with JetStream on loopback,
// clustered with routes when n > 1, and shuts them down at cleanup.
func startEngine(t *testing.T, n int) []*Embedded {
	t.Helper()
	var out []*Embedded
	// A clustered JetStream server needs its routes from the start: the
	// cluster ports are chosen first.
	ports := freePorts(t, n)
	var routes []string
	for _, p := range ports {
		routes = append(routes, fmt.Sprintf("nats://127.0.0.1:%d", p))
	}
	for i := range n {
		cfg := EmbeddedConfig{Name: fmt.Sprintf("s%d", i), StoreDir: t.TempDir()}
		if n > 1 {
			cfg.Cluster, cfg.ClusterPort, cfg.Routes = "callcore-test", ports[i], routes
		}
		e, err := StartEmbedded(cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(e.Shutdown)
		out = append(out, e)
	}
	return out
}

// startNode starts a node on url; it is closed at cleanup (a no-op after
// Kill or Close).
func startNode(t *testing.T, id, url string, replicas int) *Node {
	t.Helper()
	return startNodeTTL(t, id, url, replicas, time.Second)
}

func startNodeTTL(t *testing.T, id, url string, replicas int, ttl time.Duration) *Node {
	t.Helper()
	n, err := Start(Config{Node: id, URL: url, TTL: ttl, Replicas: replicas, OpTimeout: 15 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.Close)
	return n
}

// eventually polls cond until it holds or d passes.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	poll.Until(t, d, what, cond)
}

func ctxFor(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), d)
	t.Cleanup(cancel)
	return ctx
}

// events reads the session's events until one satisfies stop (included)
// or d passes.
func events(t *testing.T, s *Session, d time.Duration, stop func(channel.Event) bool) []channel.Event {
	t.Helper()
	ctx := ctxFor(t, d)
	var out []channel.Event
	for {
		ev, err := s.Next(ctx)
		if err != nil {
			t.Fatalf("%s on %s: after %v: %v", s.User(), s.Channel(), names(out), err)
		}
		out = append(out, ev)
		if stop(ev) {
			return out
		}
	}
}

func names(evs []channel.Event) []string {
	out := make([]string, len(evs))
	for i, ev := range evs {
		out[i] = fmt.Sprintf("%d:%v", ev.Seq, ev.Type)
	}
	return out
}

func seqIs(n uint64) func(channel.Event) bool {
	return func(ev channel.Event) bool { return ev.Seq >= n }
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// freePorts returns n loopback TCP ports that were free a moment ago.
func freePorts(t *testing.T, n int) []int {
	t.Helper()
	var ls []net.Listener
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	for _, l := range ls {
		l.Close()
	}
	return ports
}

func errorsIs(err, target error) bool { return err != nil && errors.Is(err, target) }

func (n *Node) followerOf(id string) *follower {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.follows[id]
}
