package server

import (
	"context"
	"errors"
	"net/http"
)

// ErrDraining refuses a create or a join while the server drains: the
// calls in progress go on, new ones belong on another server. Its code on
// the wire is CodeDraining.
var ErrDraining = errors.New("server: draining: no new calls here")

// CodeDraining is the wire code of ErrDraining.
const CodeDraining = "Draining"

// Reasons given in the bye that ends a connection.
const (
	// ReasonShutdown: the server is stopping.
	ReasonShutdown = "shutdown"
	// ReasonDrain: the server drained and its drain limit passed before
	// the client's call ended.
	ReasonDrain = "drain"
)

// drainState is the server's drain. Its fields are guarded by Server.mu.
type drainState struct {
	on      bool          // Drain has begun: no new calls
	expired bool          // Drain's limit passed with calls left
	done    chan struct{} // closed when on and no stay is left
}

// Drain stops the server taking new calls: from now on a create, or a
// join of a channel the user is not in already (resuming or taking over
// its own stay stays possible), is refused with ErrDraining, and /readyz
// answers 503 while /healthz still answers 200. The calls in progress go
// on; Drain returns nil once none is left (every stay ended, orphans
// included), or ctx's error when ctx ends first. Shutdown follows it: the
// connections it ends after an expired drain are told ReasonDrain.
func (s *Server) Drain(ctx context.Context) error {
	s.mu.Lock()
	if !s.drain.on {
		s.drain.on = true
		s.drain.done = make(chan struct{})
		s.checkDrained()
	}
	done := s.drain.done
	n := len(s.stays)
	s.mu.Unlock()
	s.log.Info("draining: no new calls", "stays", n)
	select {
	case <-done:
		s.log.Info("drained: no call left")
		return nil
	case <-ctx.Done():
		s.mu.Lock()
		s.drain.expired = true
		n = len(s.stays)
		s.mu.Unlock()
		s.log.Warn("drain limit reached: ending the calls left", "stays", n)
		return ctx.Err()
	}
}

// Draining reports whether Drain has begun.
func (s *Server) Draining() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.drain.on
}

// checkDrained closes the drain's done once no stay is left; s.mu is held.
func (s *Server) checkDrained() {
	if s.drain.on && len(s.stays) == 0 {
		select {
		case <-s.drain.done:
		default:
			close(s.drain.done)
		}
	}
}

// byeReason is the reason Shutdown gives; s.mu is held.
func (s *Server) byeReason() string {
	if s.drain.expired {
		return ReasonDrain
	}
	return ReasonShutdown
}

// admit refuses a new stay while the server drains: a create, or a join
// by a user who holds no stay in channel ch (a resume or a takeover of its
// own call goes on).
func (s *Server) admit(create bool, ch, user string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.drain.on || (!create && s.stays[stayKey{ch, user}] != nil) {
		return nil
	}
	s.stats.draining.Add(1)
	return ErrDraining
}

// serveReady answers /readyz: 200 while the server takes new calls, 503
// once it drains or shuts down.
func (s *Server) serveReady(w http.ResponseWriter, _ *http.Request) {
	s.mu.Lock()
	ready := !s.drain.on && !s.closed
	s.mu.Unlock()
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if !ready {
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte("draining\n"))
		return
	}
	_, _ = w.Write([]byte("ok\n"))
}
