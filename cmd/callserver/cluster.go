package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
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
	linkCert, linkKey, linkCA       string
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
	fs.StringVar(&c.linkCert, "cluster-link-cert", "", "this node's certificate (PEM) for mutual TLS on the media links' control channels, which carry their SRTP keys; it must name the -cluster-link address and allow server and client authentication; with -cluster-link-key and -cluster-link-ca")
	fs.StringVar(&c.linkKey, "cluster-link-key", "", "the key (PEM) of -cluster-link-cert")
	fs.StringVar(&c.linkCA, "cluster-link-ca", "", "the certificate authority (PEM) that signed every node's -cluster-link-cert")
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
	var err error
	if cfg.LinkTLS, err = c.linkTLS(); err != nil {
		return nil, err
	}
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

// linkTLS is mutual TLS 1.3 for the media links from -cluster-link-cert,
// -key and -ca: each node presents its certificate and accepts only peers
// whose certificate the CA signed; a dialing node checks that the
// listener's certificate names the address it dialed. Nil without the
// flags.
func (c clusterOptions) linkTLS() (*cluster.LinkTLS, error) {
	if c.linkCert == "" && c.linkKey == "" && c.linkCA == "" {
		return nil, nil
	}
	if c.linkCert == "" || c.linkKey == "" || c.linkCA == "" {
		return nil, errors.New("-cluster-link-cert, -cluster-link-key and -cluster-link-ca go together")
	}
	if c.link == "" {
		return nil, errors.New("-cluster-link-cert needs -cluster-link")
	}
	cert, err := tls.LoadX509KeyPair(c.linkCert, c.linkKey)
	if err != nil {
		return nil, fmt.Errorf("-cluster-link-cert: %w", err)
	}
	ca, err := os.ReadFile(c.linkCA)
	if err != nil {
		return nil, fmt.Errorf("-cluster-link-ca: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca) {
		return nil, errors.New("-cluster-link-ca: no PEM certificate")
	}
	return &cluster.LinkTLS{
		Server: &tls.Config{Certificates: []tls.Certificate{cert}, ClientCAs: pool,
			ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS13},
		Client: &tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: pool, MinVersion: tls.VersionTLS13},
	}, nil
}
