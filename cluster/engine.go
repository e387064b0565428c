package cluster

import (
	"fmt"
	"net/url"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
)

// EmbeddedConfig configures a NATS server with JetStream run inside the
// process: one binary needs nothing else, and tests need nothing
// installed. Servers started with Routes to each other form one NATS
// cluster whose JetStream assets are replicated by its own consensus.
type EmbeddedConfig struct {
	// Name is the server's name, unique in its NATS cluster (required).
	Name string
	// StoreDir is where JetStream keeps its files (required).
	StoreDir string
	// Host is the address clients and routes listen on. Default
	// 127.0.0.1.
	Host string
	// Port is the client port. Default (0): a free port.
	Port int
	// ClusterPort is the port other servers route to. Default (0): a free
	// port. Ignored unless Cluster is set.
	ClusterPort int
	// Cluster is the NATS cluster's name: set it to accept routes. Empty:
	// a lone server.
	Cluster string
	// Routes are other servers' route URLs (nats://host:port). A server
	// learns the rest of the cluster from any one of them.
	Routes []string
	// Ready bounds the wait for the server to accept clients. Default 10 s.
	Ready time.Duration
}

// Validate reports a bad configuration with an error wrapping ErrInvalid.
func (c EmbeddedConfig) Validate() error {
	switch {
	case c.Name == "":
		return fmt.Errorf("%w: embedded server needs a name", ErrInvalid)
	case c.StoreDir == "":
		return fmt.Errorf("%w: embedded server needs a store directory", ErrInvalid)
	case c.Port < 0 || c.Port > 65535 || c.ClusterPort < 0 || c.ClusterPort > 65535:
		return fmt.Errorf("%w: embedded server port out of range", ErrInvalid)
	case len(c.Routes) > 0 && c.Cluster == "":
		return fmt.Errorf("%w: routes need a cluster name", ErrInvalid)
	case c.Ready < 0:
		return fmt.Errorf("%w: negative Ready", ErrInvalid)
	}
	for _, r := range c.Routes {
		if _, err := url.Parse(r); err != nil {
			return fmt.Errorf("%w: route %q: %v", ErrInvalid, r, err)
		}
	}
	return nil
}

// Embedded is a running NATS server.
type Embedded struct {
	srv *natsserver.Server
}

// StartEmbedded starts a NATS server with JetStream and waits until it
// accepts clients.
func StartEmbedded(cfg EmbeddedConfig) (*Embedded, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Host == "" {
		cfg.Host = "127.0.0.1"
	}
	if cfg.Ready == 0 {
		cfg.Ready = 10 * time.Second
	}
	port := cfg.Port
	if port == 0 {
		port = -1 // the server picks a free port
	}
	opts := &natsserver.Options{
		ServerName: cfg.Name,
		Host:       cfg.Host,
		Port:       port,
		NoLog:      true,
		NoSigs:     true,
		JetStream:  true,
		StoreDir:   cfg.StoreDir,
	}
	if cfg.Cluster != "" {
		cp := cfg.ClusterPort
		if cp == 0 {
			cp = -1
		}
		opts.Cluster = natsserver.ClusterOpts{Name: cfg.Cluster, Host: cfg.Host, Port: cp}
		for _, r := range cfg.Routes {
			u, err := url.Parse(r)
			if err != nil {
				return nil, fmt.Errorf("%w: route %q: %v", ErrInvalid, r, err)
			}
			opts.Routes = append(opts.Routes, u)
		}
	}
	srv, err := natsserver.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("cluster: nats server: %w", err)
	}
	srv.Start()
	if !srv.ReadyForConnections(cfg.Ready) {
		srv.Shutdown()
		srv.WaitForShutdown()
		return nil, fmt.Errorf("%w: nats server %q not ready within %v", ErrUnavailable, cfg.Name, cfg.Ready)
	}
	return &Embedded{srv: srv}, nil
}

// ClientURL is the URL nodes connect to.
func (e *Embedded) ClientURL() string { return e.srv.ClientURL() }

// RouteURL is the URL other servers route to (empty for a lone server).
func (e *Embedded) RouteURL() string {
	a := e.srv.ClusterAddr()
	if a == nil {
		return ""
	}
	return "nats://" + a.String()
}

// Shutdown stops the server and waits for its goroutines to end.
func (e *Embedded) Shutdown() {
	e.srv.Shutdown()
	e.srv.WaitForShutdown()
}
