package main

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"time"

	"github.com/callcore/callcore/cluster"
)

// clusterOptions are the -cluster flags: with -cluster-node set, the
// server is one node of a cluster of call servers on NATS JetStream
// (docs/scaling.md).
type clusterOptions struct {
	node, nats, routes, store, link string
	natsPort, routePort, replicas   int
	ttl                             time.Duration
}

func (c *clusterOptions) register(fs *flag.FlagSet) {
	fs.StringVar(&c.node, "cluster-node", "", "this node's id in a cluster of call servers (letters, digits, - and _); off when empty")
	fs.StringVar(&c.nats, "cluster-nats", "", "NATS server URL(s) of the cluster, comma-separated; empty: run an embedded NATS server")
	fs.IntVar(&c.natsPort, "cluster-nats-port", 0, "client port of the embedded NATS server, on 127.0.0.1 (0: any free port)")
	fs.IntVar(&c.routePort, "cluster-port", 0, "route port of the embedded NATS server, which the other nodes' -cluster-routes name")
	fs.StringVar(&c.routes, "cluster-routes", "", "route URLs of the embedded NATS servers (nats://host:port), comma-separated, this node's own may be among them")
	fs.StringVar(&c.store, "cluster-store", "", "JetStream directory of the embedded NATS server (default: callcore-nats-<node> in the temporary directory)")
	fs.IntVar(&c.replicas, "cluster-replicas", 0, "how many NATS servers keep the cluster's state (0: 1; 3 for three servers)")
	fs.StringVar(&c.link, "cluster-link", "", "the IP address other nodes reach this node's media links on (a free port per peer node); empty: media crosses no node")
	fs.DurationVar(&c.ttl, "cluster-ttl", 0, "lease of a node and of the channels it owns: a node silent this long is dead (0: 2s)")
}

// config returns the node's configuration, or nil without -cluster-node.
func (c clusterOptions) config() (*cluster.Config, error) {
	if c.node == "" {
		if c.nats != "" || c.routes != "" {
			return nil, errors.New("-cluster-nats and -cluster-routes need -cluster-node")
		}
		return nil, nil
	}
	cfg := &cluster.Config{Node: c.node, URL: c.nats, Replicas: c.replicas, LinkAddr: c.link, TTL: c.ttl}
	if c.nats == "" {
		store := c.store
		if store == "" {
			store = filepath.Join(os.TempDir(), "callcore-nats-"+c.node)
		}
		cfg.Embedded = &cluster.EmbeddedConfig{Name: c.node, StoreDir: store, Port: c.natsPort, Routes: splitList(c.routes), Ready: 30 * time.Second}
		if len(cfg.Embedded.Routes) > 0 || c.routePort != 0 {
			cfg.Embedded.Cluster, cfg.Embedded.ClusterPort = "callcore", c.routePort
		}
	}
	return cfg, cfg.Validate()
}
