package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/callcore/callcore/channel"
	"github.com/callcore/callcore/plane"
	"github.com/callcore/callcore/relay"
	"github.com/callcore/callcore/transport/webrtc"
)

// Server is the reference call server: an http.Handler serving the
// signalling WebSocket at /ws, dev tokens at /dev/token (when enabled),
// /healthz, and the static demo page and SDK. It owns a channel registry,
// the media plane and the WebRTC engine.
type Server struct {
	cfg    Config
	log    *slog.Logger
	engine *webrtc.Engine
	turn   *relay.Server // the embedded TURN server, nil when off
	plane  *plane.Plane
	reg    *channel.Registry
	mux    *http.ServeMux

	mu       sync.Mutex
	closed   bool                             // guarded by mu
	sessions map[*session]struct{}            // guarded by mu
	stays    map[stayKey]*stay                // every stay, orphans included; guarded by mu
	byUser   map[string]map[*session]struct{} // authenticated sessions; guarded by mu
	perIP    map[string]int                   // open connections by remote address; guarded by mu
	// Request budgets: each user's, shared by its connections, and each
	// remote address's, spent by its connections and their auths.
	userBudgets, addrBudgets *budgets
	wg                       sync.WaitGroup // one per session
	stayWG                   sync.WaitGroup // the stays' pumps and negotiators
	drain                    drainState     // guarded by mu

	metrics *metrics  // the Prometheus side (metrics.go)
	hooks   *webhooks // nil without webhooks (webhook.go)

	stats counters

	// Warnings a client can cause, each written at most once a second.
	warnRefusedMedia, warnRefusedConn, warnRateLimited logEvery
}

// stayKey names a user's stay in a channel.
type stayKey struct{ channel, user string }

// counters are the server's lock-free counters.
type counters struct {
	connections, refusedConns, authFailures, invalid, rateLimited, takeovers, resumes, unannounced, excessStreams atomic.Uint64
	draining                                                                                                      atomic.Uint64
}

// Stats are the server's counters.
type Stats struct {
	// Connections is the number of WebSocket connections accepted (one
	// refused later, at auth, for MaxConnsPerUser is counted here too).
	Connections uint64
	// RefusedConns counts WebSocket connections refused for MaxConnsPerIP
	// or MaxConnsPerUser.
	RefusedConns uint64
	// AuthFailures counts connections refused for a bad, expired or
	// missing token.
	AuthFailures uint64
	// Invalid counts messages refused as malformed, unknown or oversized.
	Invalid uint64
	// RateLimited counts requests refused by the rate limit.
	RateLimited uint64
	// Takeovers counts joins that took a user's call over from another
	// connection.
	Takeovers uint64
	// Resumes counts stays taken over by a new connection after their
	// connection was lost.
	Resumes uint64
	// Unannounced counts published media tracks whose id no create, join
	// or addTracks announced: refused before anything was built for them.
	Unannounced uint64
	// ExcessStreams counts published media tracks refused past a peer's
	// bound on streams (webrtc.PeerConfig.MaxStreams).
	ExcessStreams uint64
	// Draining counts creates and joins refused with ErrDraining.
	Draining uint64
	// Sessions is the number of connections open now.
	Sessions int
}

// New builds a server from cfg. Close it with Shutdown.
func New(cfg Config) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	s := &Server{
		cfg:      cfg,
		log:      cfg.Logger,
		sessions: map[*session]struct{}{},
		stays:    map[stayKey]*stay{},
		byUser:   map[string]map[*session]struct{}{},
		perIP:    map[string]int{},

		userBudgets: newBudgets(cfg.RequestRate, cfg.RequestBurst),
		addrBudgets: newBudgets(cfg.AddrRequestRate, cfg.AddrRequestBurst),
		metrics:     newMetrics(),
	}
	engine, err := webrtc.New(cfg.WebRTC)
	if err != nil {
		return nil, err
	}
	if cfg.TURN.enabled() {
		if s.turn, err = startTURN(cfg, engine); err != nil {
			_ = engine.Close()
			return nil, err
		}
	}
	// The plane reports speakers to the registry, which takes the plane as
	// its Media: the registry is filled in once made.
	var speakersTo atomic.Pointer[channel.Registry]
	pl, err := plane.New(plane.Config{OnSpeakers: plane.SpeakerSinkFunc(func(ch string, sp []channel.Speaker) error {
		if r := speakersTo.Load(); r != nil {
			return r.SetSpeakers(ch, sp)
		}
		return nil
	}), OnLayer: s.tellLayer, OnLayersWanted: s.tellWanted})
	if err != nil {
		_ = engine.Close()
		_ = s.closeTURN()
		return nil, err
	}
	reg, err := channel.NewRegistry(channel.Config{
		Media:              pl,
		Notifier:           notifier{s},
		IdleTimeout:        cfg.IdleTimeout,
		JoinRequestTimeout: cfg.JoinRequestTimeout,
	})
	if err != nil {
		_ = pl.Close()
		_ = engine.Close()
		_ = s.closeTURN()
		return nil, err
	}
	speakersTo.Store(reg)
	if cfg.Cluster != nil {
		cfg.Cluster.UseMedia(pl)
	}
	s.engine, s.plane, s.reg = engine, pl, reg
	s.hooks = newWebhooks(cfg.Webhooks, s.log)
	s.mux = http.NewServeMux()
	s.mux.HandleFunc("GET /ws", s.serveWS)
	s.mux.HandleFunc("GET /readyz", s.serveReady)
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	if cfg.DevTokens {
		s.mux.HandleFunc("GET /dev/token", s.serveDevToken)
	}
	if cfg.Static != nil {
		s.mux.Handle("GET /", http.FileServerFS(cfg.Static))
	}
	return s, nil
}

// ServeHTTP serves the server's endpoints.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if s.cfg.LoopbackHostsOnly && !loopbackHost(r.Host) {
		http.Error(w, "this server answers loopback host names only", http.StatusMisdirectedRequest)
		return
	}
	s.mux.ServeHTTP(w, r)
}

// releaseIP gives back one connection of ip, with s.mu held.
func (s *Server) releaseIP(ip string) {
	if s.perIP[ip]--; s.perIP[ip] <= 0 {
		delete(s.perIP, ip)
	}
}

// remoteIP is the address part of a request's remote address.
func remoteIP(addr string) string {
	if h, _, err := net.SplitHostPort(addr); err == nil {
		return h
	}
	return addr
}

// loopbackHost reports whether a Host header names this machine's
// loopback: localhost or a loopback address, with or without a port.
func loopbackHost(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// closeTURN stops the embedded TURN server, if any.
func (s *Server) closeTURN() error {
	if s.turn == nil {
		return nil
	}
	return s.turn.Close()
}

// Registry returns the server's channels, for embedders that act on them
// directly (an admin console, tests).
func (s *Server) Registry() *channel.Registry { return s.reg }

// Stats returns the server's counters.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	n := len(s.sessions)
	s.mu.Unlock()
	return Stats{
		Connections:   s.stats.connections.Load(),
		RefusedConns:  s.stats.refusedConns.Load(),
		AuthFailures:  s.stats.authFailures.Load(),
		Invalid:       s.stats.invalid.Load(),
		RateLimited:   s.stats.rateLimited.Load(),
		Takeovers:     s.stats.takeovers.Load(),
		Resumes:       s.stats.resumes.Load(),
		Unannounced:   s.stats.unannounced.Load(),
		ExcessStreams: s.stats.excessStreams.Load(),
		Draining:      s.stats.draining.Load(),
		Sessions:      n,
	}
}

// Shutdown disconnects every client cleanly (a bye with reason
// "shutdown", or "drain" after a Drain whose limit passed; its user made
// to leave its channel, its media connection
// closed, the WebSocket closed with 1001), waits for them until ctx ends,
// and releases the channels, the media plane and the engine. New
// connections are refused from its start.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	reason := s.byeReason()
	sessions := make([]*session, 0, len(s.sessions))
	for ss := range s.sessions {
		sessions = append(sessions, ss)
	}
	s.mu.Unlock()
	for _, ss := range sessions {
		ss.bye(reason, websocket.StatusGoingAway)
	}
	s.mu.Lock()
	orphans := make([]*stay, 0, len(s.stays))
	for _, st := range s.stays {
		if st.orphaned {
			st.orphaned = false
			st.expiry.Stop()
			orphans = append(orphans, st)
		}
	}
	s.mu.Unlock()
	for _, st := range orphans {
		st.end(true)
	}
	done := make(chan struct{})
	go func() { s.wg.Wait(); s.stayWG.Wait(); close(done) }()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		err = ctx.Err()
		for _, ss := range sessions {
			ss.kill()
		}
		<-done
	}
	s.reg.Close()
	s.hooks.stop(ctx)
	err = errors.Join(err, s.plane.Close(), s.engine.Close(), s.closeTURN())
	s.log.Info("server stopped", "sessions", len(sessions))
	return err
}

// serveWS accepts a signalling WebSocket and runs its session.
func (s *Server) serveWS(w http.ResponseWriter, r *http.Request) {
	ip := remoteIP(r.RemoteAddr)
	addr := s.addrBudgets.acquire(ip)
	defer s.addrBudgets.release(ip, addr)
	s.mu.Lock()
	closed, full := s.closed, s.perIP[ip] >= s.cfg.MaxConnsPerIP
	if !closed && !full {
		s.perIP[ip]++
	}
	s.mu.Unlock()
	// A connection spends a token of its address's budget too.
	limited := !closed && !full && !s.addrBudgets.take(addr, time.Now())
	switch {
	case closed:
		http.Error(w, "server shutting down", http.StatusServiceUnavailable)
		return
	case full:
		s.stats.refusedConns.Add(1)
		s.metrics.refusedIP.Add(1)
		s.warnRefusedConn.warn(s.log, "connection refused: too many connections from this address", "remote", ip, "max", s.cfg.MaxConnsPerIP)
		http.Error(w, "too many connections from this address", http.StatusTooManyRequests)
		return
	}
	released := false // the address's count, given back with the session's removal
	defer func() {
		if !released {
			s.mu.Lock()
			s.releaseIP(ip)
			s.mu.Unlock()
		}
	}()
	if limited {
		s.stats.refusedConns.Add(1)
		s.warnRefusedConn.warn(s.log, "connection refused: rate limit of the address exceeded", "remote", ip)
		http.Error(w, "too many requests from this address", http.StatusTooManyRequests)
		return
	}
	conn, err := websocket.Accept(w, r, &websocket.AcceptOptions{
		OriginPatterns: s.cfg.OriginPatterns,
	})
	if err != nil {
		s.log.Info("websocket refused", "remote", r.RemoteAddr, "err", err)
		return // Accept has answered
	}
	conn.SetReadLimit(s.cfg.MaxMessageBytes)
	ss := newSession(s, conn, r.RemoteAddr, ip, addr)
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		_ = conn.Close(websocket.StatusGoingAway, "server shutting down")
		return
	}
	s.sessions[ss] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()
	s.stats.connections.Add(1)
	defer s.wg.Done()
	ss.run()
	s.mu.Lock()
	delete(s.sessions, ss)
	s.releaseIP(ip)
	released = true
	if set := s.byUser[ss.user]; set != nil {
		delete(set, ss)
		if len(set) == 0 {
			delete(s.byUser, ss.user)
		}
	}
	s.mu.Unlock()
}

// serveDevToken answers GET /dev/token?user=ID&create=1 with a token.
func (s *Server) serveDevToken(w http.ResponseWriter, r *http.Request) {
	user := r.URL.Query().Get("user")
	create := r.URL.Query().Get("create") == "1"
	tok, err := IssueToken(s.cfg.Secret, user, create, s.cfg.DevTokenTTL)
	if err != nil {
		http.Error(w, fmt.Sprintf("bad user: %v", err), http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(map[string]string{"token": tok})
}

// authenticated records that ss speaks for its user now; false (and
// counted) when the user has MaxConnsPerUser connections already.
func (s *Server) authenticated(ss *session) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	set := s.byUser[ss.user]
	if len(set) >= s.cfg.MaxConnsPerUser {
		s.stats.refusedConns.Add(1)
		return false
	}
	if set == nil {
		set = map[*session]struct{}{}
		s.byUser[ss.user] = set
	}
	set[ss] = struct{}{}
	return true
}

// claimStay records st as user's stay in its channel.
func (s *Server) claimStay(st *stay) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stays[stayKey{st.ch.ID(), st.user}] = st
}

// holder returns user's stay in channel ch, nil if none.
func (s *Server) holder(ch, user string) *stay {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stays[stayKey{ch, user}]
}

// releaseStay forgets st (it ended).
func (s *Server) releaseStay(st *stay) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if k := (stayKey{st.ch.ID(), st.user}); s.stays[k] == st {
		delete(s.stays, k)
		s.checkDrained()
	}
	if st.expiry != nil {
		st.expiry.Stop()
	}
	st.orphaned = false
}

// orphan keeps st alive for ResumeGrace after its session lost its
// connection: a new connection of the user may resume it. A server
// shutting down ends it instead.
func (s *Server) orphan(st *stay) {
	s.mu.Lock()
	if s.closed || s.stays[stayKey{st.ch.ID(), st.user}] != st {
		s.mu.Unlock()
		st.end(true)
		return
	}
	st.owner.Store(nil)
	st.orphaned = true
	st.expiry = time.AfterFunc(s.cfg.ResumeGrace, func() { s.expire(st) })
	s.mu.Unlock()
}

// expire ends an orphan nobody resumed.
func (s *Server) expire(st *stay) {
	s.mu.Lock()
	was := st.orphaned
	st.orphaned = false
	s.mu.Unlock()
	if was {
		st.log().Info("out of channel", "channel", st.ch.ID(), "why", "not resumed")
		st.end(true)
	}
}

// adopt hands user's orphaned stay in ch to ss, nil if there is none.
// With ss nil it takes the orphan away from its expiry, for ending it now.
func (s *Server) adopt(ch, user string, ss *session) *stay {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stays[stayKey{ch, user}]
	if st == nil || !st.orphaned {
		return nil
	}
	st.orphaned = false
	st.expiry.Stop()
	if ss != nil {
		st.owner.Store(ss)
	}
	return st
}

// notifier delivers newcall notifications to the user's open sessions.
type notifier struct{ s *Server }

// NewCall implements channel.Notifier.
func (n notifier) NewCall(ch, sender, user string) {
	n.s.mu.Lock()
	targets := make([]*session, 0, len(n.s.byUser[user]))
	for ss := range n.s.byUser[user] {
		targets = append(targets, ss)
	}
	n.s.mu.Unlock()
	for _, ss := range targets {
		ss.push("newcall", newcallPush{ChannelID: ch, SenderID: sender})
	}
}
