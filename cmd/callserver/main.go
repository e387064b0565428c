// Command callserver is callcore's reference call server: the call API over
// a signalling WebSocket, media over WebRTC, a demo page at / and the
// browser SDK at /sdk/calls.js. With no flags it serves on 127.0.0.1:8080
// in demo mode (a random token secret, tokens for anyone at /dev/token).
//
//	go run ./cmd/callserver
//	go run ./cmd/callserver -addr :443 -tls-cert cert.pem -tls-key key.pem \
//	    -secret-file secret -udp-port 3478 -ice-tcp-port 7881 -public-ip 203.0.113.7
//
// Every flag can be given as an environment variable: CALLSERVER_ and the
// flag's name in capitals with - as _ (CALLSERVER_ADDR, CALLSERVER_SECRET).
package main

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/callcore/callcore/cluster"
	"github.com/callcore/callcore/cluster/clusterserver"
	"github.com/callcore/callcore/server"
	"github.com/callcore/callcore/transport/webrtc"
	"github.com/callcore/callcore/web"
)

func main() {
	// The first SIGINT or SIGTERM drains and shuts down; a second one
	// stops at once.
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	now := make(chan struct{})
	go func() {
		<-sigs
		stop()
		<-sigs
		close(now)
	}()
	if err := run(ctx, now, os.Args[1:], os.Getenv, os.Stderr, nil); err != nil {
		fmt.Fprintln(os.Stderr, "callserver:", err)
		os.Exit(1)
	}
}

// options are the command line.
type options struct {
	addr, tlsCert, tlsKey         string
	secret, secretFile            string
	dev                           bool
	udpPort, portMin, portMax     int
	tcpPort                       int
	turn                          turnOptions
	publicIP, listenIP, iceServer string
	loopback                      bool
	noCongestion, noPacing        bool
	noProbing                     bool
	origins, logLevel             string
	drainTimeout                  time.Duration
	adminAddr, logFormat          string
	webhookURLs, webhookSecret    string
	webhookSecretFile             string
	webhookQueue                  int
	rtpAddr, rtpAnnounce          string
	limits                        limits
	cluster                       clusterOptions
}

// turnOptions are the embedded TURN server's flags.
type turnOptions struct {
	udpPort, tcpPort, tlsPort int
	host                      string
	ttl                       time.Duration
}

// limits are the server's limits, each a flag (server.Config's fields of
// the same names; 0 keeps the server's default).
type limits struct {
	maxConnsPerIP, maxConnsPerUser, requestBurst, addrRequestBurst, maxRefusals, sendQueue int
	maxMessageBytes                                                                        int64
	requestRate, addrRequestRate                                                           float64
	resumeGrace, grace, idleTimeout, joinRequestTimeout, authTimeout, refusalWindow        time.Duration
	pingInterval, pingTimeout, writeTimeout                                                time.Duration
}

func parse(args []string, getenv func(string) string) (options, error) {
	var o options
	fs := flag.NewFlagSet("callserver", flag.ContinueOnError)
	fs.StringVar(&o.addr, "addr", "127.0.0.1:8080", "HTTP listen address")
	fs.StringVar(&o.tlsCert, "tls-cert", "", "TLS certificate file (PEM); serves HTTPS with -tls-key")
	fs.StringVar(&o.tlsKey, "tls-key", "", "TLS key file (PEM)")
	fs.StringVar(&o.secret, "secret", "", "token secret (HS256, at least 32 bytes); prefer -secret-file")
	fs.StringVar(&o.secretFile, "secret-file", "", "file holding the token secret")
	fs.BoolVar(&o.dev, "dev", false, "serve /dev/token even with a secret (never in production)")
	fs.IntVar(&o.udpPort, "udp-port", 0, "serve all WebRTC media on this one UDP port (0: a port per peer)")
	fs.IntVar(&o.portMin, "udp-port-min", 0, "lowest UDP port for media without -udp-port")
	fs.IntVar(&o.portMax, "udp-port-max", 0, "highest UDP port for media without -udp-port")
	fs.StringVar(&o.publicIP, "public-ip", "", "public IP(s) to advertise, comma-separated (1:1 NAT)")
	fs.StringVar(&o.listenIP, "udp-ip", "", "IP the single UDP port and the ICE-TCP port listen on (default all)")
	fs.IntVar(&o.turn.udpPort, "turn-udp-port", 0, "serve the embedded TURN server over UDP on this port (0: off); needs -udp-port and -turn-host")
	fs.IntVar(&o.turn.tcpPort, "turn-tcp-port", 0, "serve the embedded TURN server over TCP on this port (0: off)")
	fs.IntVar(&o.turn.tlsPort, "turn-tls-port", 0, "serve the embedded TURN server over TLS on this port, with -tls-cert and -tls-key (0: off)")
	fs.StringVar(&o.turn.host, "turn-host", "", "the host name (matching -tls-cert) or address clients reach the TURN server at")
	fs.DurationVar(&o.turn.ttl, "turn-credential-ttl", 0, "longest life of the TURN credentials handed to a client (0: until its token expires)")
	fs.IntVar(&o.tcpPort, "ice-tcp-port", 0, "also offer ICE over TCP on this one TCP port, for clients whose network blocks UDP (0: off)")
	fs.StringVar(&o.iceServer, "ice-servers", "", "STUN/TURN URLs for clients, comma-separated; user:pass@ before a TURN host sets credentials")
	fs.BoolVar(&o.loopback, "ice-loopback", false, "ICE on 127.0.0.1 only (tests and single-machine demos)")
	fs.BoolVar(&o.noPacing, "no-pacing", false, "send subscribers' video as fast as it is forwarded, without pacing it to their estimates")
	fs.BoolVar(&o.noProbing, "no-probing", false, "never probe a subscriber's downlink with padding: a limited stream moves up only as its estimate grows by itself")
	fs.BoolVar(&o.noCongestion, "no-congestion-control", false, "send every subscriber everything it subscribed to, without estimating its downlink (to measure what congestion control costs)")
	fs.StringVar(&o.origins, "origins", "", "extra allowed page origins (host patterns), comma-separated")
	fs.StringVar(&o.logLevel, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&o.adminAddr, "admin-addr", "", "listen address of the admin endpoints: /metrics (Prometheus) and /debug/pprof/ (off when empty; keep it private)")
	fs.StringVar(&o.webhookURLs, "webhook-urls", "", "URLs that receive the channels' lifecycle as signed POSTs, comma-separated")
	fs.StringVar(&o.webhookSecret, "webhook-secret", "", "the webhooks' signing secret (at least 16 bytes); prefer -webhook-secret-file")
	fs.StringVar(&o.webhookSecretFile, "webhook-secret-file", "", "file holding the webhooks' signing secret")
	fs.IntVar(&o.webhookQueue, "webhook-queue", 0, "webhook events waiting per URL before new ones are dropped (0: 1024)")
	fs.StringVar(&o.logFormat, "log-format", "text", "text or json")
	fs.StringVar(&o.rtpAddr, "rtp-addr", "", "IP on which RTP participants get their ports (rtpPublish, rtpReceive; off when empty)")
	fs.StringVar(&o.rtpAnnounce, "rtp-announce", "", "IP announced to RTP participants (default -rtp-addr)")
	l := &o.limits
	fs.IntVar(&l.maxConnsPerIP, "max-conns-per-ip", 0, "WebSocket connections open at once from one address (0: 64)")
	fs.IntVar(&l.maxConnsPerUser, "max-conns-per-user", 0, "authenticated connections of one user at once (0: 16)")
	fs.Int64Var(&l.maxMessageBytes, "max-message-bytes", 0, "largest signalling message a client may send (0: 256 KiB)")
	fs.Float64Var(&l.requestRate, "request-rate", 0, "requests a second per user, over all its connections, refilled (0: 20)")
	fs.IntVar(&l.requestBurst, "request-burst", 0, "requests a user may send at once (0: 40)")
	fs.Float64Var(&l.addrRequestRate, "addr-request-rate", 0, "connections and auths a second from one address, refilled (0: 100)")
	fs.IntVar(&l.addrRequestBurst, "addr-request-burst", 0, "connections and auths one address may make at once (0: 200)")
	fs.IntVar(&l.maxRefusals, "max-refusals", 0, "rate-limited or invalid messages in -refusal-window before a connection is closed (0: 20)")
	fs.DurationVar(&l.refusalWindow, "refusal-window", 0, "the window of -max-refusals (0: 10s)")
	fs.IntVar(&l.sendQueue, "send-queue", 0, "messages waiting for a slow client before it is disconnected (0: 512)")
	fs.DurationVar(&l.resumeGrace, "resume-grace", 0, "how long a call outlives a lost WebSocket, to be resumed (0: 15s)")
	fs.DurationVar(&l.grace, "media-grace", 0, "how long a media connection may stay lost before its user leaves (0: 30s)")
	fs.DurationVar(&l.idleTimeout, "idle-close", 0, "close a channel with no active user after this long (0: never)")
	fs.DurationVar(&l.joinRequestTimeout, "join-request-timeout", 0, "how long a join request waits for an admin (0: 30s)")
	fs.DurationVar(&l.authTimeout, "auth-timeout", 0, "how long a new connection has to authenticate (0: 10s)")
	fs.DurationVar(&l.pingInterval, "ping-interval", 0, "WebSocket keepalive ping interval (0: 15s)")
	fs.DurationVar(&l.pingTimeout, "ping-timeout", 0, "close a connection whose pong takes longer (0: 15s)")
	fs.DurationVar(&l.writeTimeout, "write-timeout", 0, "bound on one write to a client (0: 10s)")
	fs.DurationVar(&o.drainTimeout, "drain-timeout", 30*time.Second, "on SIGTERM, how long calls in progress may go on while no new ones are taken (0: end them at once)")
	o.cluster.register(fs)
	// Environment first, so that flags override it.
	var envErr error
	fs.VisitAll(func(f *flag.Flag) {
		key := "CALLSERVER_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v := getenv(key); v != "" {
			if err := f.Value.Set(v); err != nil && envErr == nil {
				envErr = fmt.Errorf("%s: %w", key, err)
			}
		}
	})
	if envErr != nil {
		return o, envErr
	}
	return o, fs.Parse(args)
}

// config turns the options into the server's config; demo reports that
// tokens are served to anyone.
func (o options) config(log *slog.Logger) (cfg server.Config, demo bool, err error) {
	secret := []byte(o.secret)
	if o.secretFile != "" {
		b, err := os.ReadFile(o.secretFile)
		if err != nil {
			return cfg, false, err
		}
		secret = []byte(strings.TrimSpace(string(b)))
	}
	if len(secret) == 0 {
		if !loopbackAddr(o.addr) && !o.dev {
			return cfg, false, errors.New("no token secret: give -secret-file (demo mode without one is for loopback addresses only, or add -dev)")
		}
		secret = make([]byte, 32)
		_, _ = rand.Read(secret)
		demo = true
	}
	cfg = server.Config{
		Secret:            secret,
		DevTokens:         demo || o.dev,
		LoopbackHostsOnly: demo && loopbackAddr(o.addr),
		Static:            web.FS,
		Logger:            log,
		WebRTC: webrtc.Config{
			UDPPort:      o.udpPort,
			TCPPort:      o.tcpPort,
			ListenIP:     o.listenIP,
			PortMin:      uint16(o.portMin),
			PortMax:      uint16(o.portMax),
			LoopbackOnly: o.loopback,

			NoCongestionControl: o.noCongestion,
			NoPacing:            o.noPacing,
			NoProbing:           o.noProbing,
		},
	}
	l := o.limits
	cfg.MaxConnsPerIP, cfg.MaxConnsPerUser, cfg.MaxMessageBytes = l.maxConnsPerIP, l.maxConnsPerUser, l.maxMessageBytes
	cfg.RequestRate, cfg.RequestBurst, cfg.MaxRefusals, cfg.SendQueue = l.requestRate, l.requestBurst, l.maxRefusals, l.sendQueue
	cfg.AddrRequestRate, cfg.AddrRequestBurst, cfg.RefusalWindow = l.addrRequestRate, l.addrRequestBurst, l.refusalWindow
	cfg.ResumeGrace, cfg.Grace, cfg.IdleTimeout, cfg.JoinRequestTimeout = l.resumeGrace, l.grace, l.idleTimeout, l.joinRequestTimeout
	cfg.AuthTimeout, cfg.PingInterval, cfg.PingTimeout, cfg.WriteTimeout = l.authTimeout, l.pingInterval, l.pingTimeout, l.writeTimeout
	if urls := splitList(o.webhookURLs); len(urls) > 0 {
		secret := []byte(o.webhookSecret)
		if o.webhookSecretFile != "" {
			b, err := os.ReadFile(o.webhookSecretFile)
			if err != nil {
				return cfg, false, err
			}
			secret = []byte(strings.TrimSpace(string(b)))
		}
		cfg.Webhooks = server.WebhookConfig{URLs: urls, Secret: secret, Queue: o.webhookQueue}
	}
	if o.drainTimeout < 0 {
		return cfg, false, errors.New("-drain-timeout must not be negative")
	}
	if o.adminAddr != "" && o.adminAddr == o.addr && !strings.HasSuffix(o.addr, ":0") {
		return cfg, false, errors.New("-admin-addr must not be the public -addr")
	}
	if o.portMin < 0 || o.portMax > 65535 || o.portMin > o.portMax {
		return cfg, false, fmt.Errorf("bad UDP port range %d-%d", o.portMin, o.portMax)
	}
	if t := o.turn; t.udpPort != 0 || t.tcpPort != 0 || t.tlsPort != 0 {
		cfg.TURN = server.TURNConfig{UDPPort: t.udpPort, TCPPort: t.tcpPort, TLSPort: t.tlsPort,
			Host: t.host, ListenIP: o.listenIP, CredentialTTL: t.ttl}
		if t.tlsPort != 0 {
			cert, err := tls.LoadX509KeyPair(o.tlsCert, o.tlsKey)
			if err != nil {
				return cfg, false, fmt.Errorf("-turn-tls-port: %w", err)
			}
			cfg.TURN.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		}
	}
	cfg.WebRTC.NAT1To1IPs = splitList(o.publicIP)
	cfg.OriginPatterns = splitList(o.origins)
	cfg.RTP.Addr, cfg.RTP.Announce = o.rtpAddr, o.rtpAnnounce
	for _, u := range splitList(o.iceServer) {
		cfg.WebRTC.ICEServers = append(cfg.WebRTC.ICEServers, iceServer(u))
	}
	return cfg, demo, cfg.Validate()
}

// until is a context that ends after d, or when now is closed.
func until(now <-chan struct{}, d time.Duration) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	go func() {
		select {
		case <-now:
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx, cancel
}

// iceServer parses "turn:user:pass@host:port" or a plain STUN/TURN URL.
func iceServer(u string) webrtc.ICEServer {
	scheme, rest, ok := strings.Cut(u, ":")
	if cred, host, found := strings.Cut(rest, "@"); ok && found {
		user, pass, _ := strings.Cut(cred, ":")
		return webrtc.ICEServer{URLs: []string{scheme + ":" + host}, Username: user, Credential: pass}
	}
	return webrtc.ICEServer{URLs: []string{u}}
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// loopbackAddr reports whether a listen address is on loopback only.
func loopbackAddr(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// run serves until ctx ends (main: SIGINT or SIGTERM), then drains (no
// new calls; the calls in progress go on for up to -drain-timeout, or
// until now is closed: main's second signal) and shuts down gracefully
// (each client told why, bounded by 10 s). Logs go to logw; ready, when set, is told the listening
// address.
func run(ctx context.Context, now <-chan struct{}, args []string, getenv func(string) string, logw io.Writer, ready func(addr string)) error {
	o, err := parse(args, getenv)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(o.logLevel)); err != nil {
		return fmt.Errorf("-log-level: %w", err)
	}
	var h slog.Handler
	switch o.logFormat {
	case "text":
		h = slog.NewTextHandler(logw, &slog.HandlerOptions{Level: level})
	case "json":
		h = slog.NewJSONHandler(logw, &slog.HandlerOptions{Level: level})
	default:
		return fmt.Errorf("-log-format %q: text or json", o.logFormat)
	}
	log := slog.New(h)
	cfg, demo, err := o.config(log)
	if err != nil {
		return err
	}
	ccfg, err := o.cluster.config()
	if err != nil {
		return err
	}
	if ccfg != nil {
		node, err := cluster.Start(*ccfg)
		if err != nil {
			return fmt.Errorf("cluster: %w", err)
		}
		defer node.Close() // after the server's shutdown: its users leave first
		cfg.Cluster = clusterserver.Of(node)
		log.Info("cluster node", "node", node.ID(), "nats", ccfg.URL, "embedded", ccfg.Embedded != nil)
	}
	srv, err := server.New(cfg)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", o.addr)
	if err != nil {
		_ = srv.Shutdown(context.Background())
		return err
	}
	hs := &http.Server{Handler: srv, ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	scheme := "http"
	if o.tlsCert != "" || o.tlsKey != "" {
		scheme = "https"
	}
	log.Info("callserver listening", "url", scheme+"://"+ln.Addr().String()+"/", "demo", demo, "devTokens", cfg.DevTokens)

	errc := make(chan error, 2)
	var admin *http.Server
	if o.adminAddr != "" {
		aln, err := net.Listen("tcp", o.adminAddr)
		if err != nil {
			_ = ln.Close()
			_ = srv.Shutdown(context.Background())
			return fmt.Errorf("-admin-addr: %w", err)
		}
		admin = &http.Server{Handler: srv.AdminHandler(), ReadHeaderTimeout: 10 * time.Second, ErrorLog: hs.ErrorLog}
		log.Info("admin listening", "url", "http://"+aln.Addr().String()+"/", "metrics", "/metrics", "pprof", "/debug/pprof/")
		go func() { errc <- admin.Serve(aln) }()
	}
	if ready != nil {
		ready(ln.Addr().String())
	}
	go func() {
		if scheme == "https" {
			errc <- hs.ServeTLS(ln, o.tlsCert, o.tlsKey)
		} else {
			errc <- hs.Serve(ln)
		}
	}()
	select {
	case err = <-errc:
	case <-ctx.Done():
		if o.drainTimeout > 0 {
			log.Info("draining: no new calls; a second signal stops at once", "limit", o.drainTimeout)
			dctx, cancel := until(now, o.drainTimeout)
			_ = srv.Drain(dctx) // it logs how it ended
			cancel()
		}
		log.Info("shutting down")
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// Sessions first (they are hijacked connections http.Server does not
	// wait for), then the HTTP server.
	err = errors.Join(err, srv.Shutdown(sctx), hs.Shutdown(sctx))
	if admin != nil {
		err = errors.Join(err, admin.Shutdown(sctx))
	}
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}
