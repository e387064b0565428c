package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"syscall"
	"time"

	"github.com/coder/websocket"
)

// session is one client's WebSocket: it authenticates the client, answers
// its requests in order (a join that waits for an admin runs beside them)
// and writes answers and pushes through one writer goroutine.
//
// The read loop (run) owns the request handling; the writer goroutine owns
// conn's writes; mu guards the stay and joining, which the read loop, a
// waiting join, the stay's event pump and another session's takeover
// change.
type session struct {
	srv  *Server
	conn *websocket.Conn
	log  *slog.Logger

	ctx    context.Context // ends when the session ends
	cancel context.CancelFunc
	out    chan outMsg // answers and pushes, in order, for the writer
	wg     sync.WaitGroup

	user   string // set once by auth, before any other request is read
	claims Claims

	mu      sync.Mutex
	stay    *stay              // the current channel stay; guarded by mu
	joining context.CancelFunc // a join or create in progress; guarded by mu
	ending  bool               // a close has been queued; guarded by mu
	done    bool               // the session is ending: no new stay; guarded by mu

	ip       string  // the remote address, the key of addrBudget
	addr     *budget // the address's request budget, shared by its connections
	budget   *budget // the user's request budget, shared by its connections; set by auth
	refusals bucket  // refusals allowed before the connection is closed; read loop only

	expiry *time.Timer // ends the session when its token expires; guarded by mu

	inflight map[uint64]inflight // requests being answered, for the metrics; guarded by mu
}

// outMsg is one message for the writer; a nonzero close ends the
// connection with that status after the message.
type outMsg struct {
	a      answer
	close  websocket.StatusCode
	reason string
}

func newSession(s *Server, conn *websocket.Conn, remote, ip string, addr *budget) *session {
	ctx, cancel := context.WithCancel(context.Background())
	return &session{
		srv:      s,
		conn:     conn,
		log:      s.log.With("remote", remote),
		ctx:      ctx,
		cancel:   cancel,
		out:      make(chan outMsg, s.cfg.SendQueue),
		ip:       ip,
		addr:     addr,
		refusals: newBucket(float64(s.cfg.MaxRefusals)/s.cfg.RefusalWindow.Seconds(), s.cfg.MaxRefusals),
	}
}

// run serves the session until the connection ends, then makes its user
// leave its channel, lets the writer send what is queued (bounded by
// WriteTimeout) and waits for the session's goroutines.
func (ss *session) run() {
	written := make(chan struct{})
	ss.wg.Add(2)
	go func() { defer ss.wg.Done(); defer close(written); ss.writeLoop() }()
	go func() { defer ss.wg.Done(); ss.keepalive() }()
	err := ss.readLoop()
	ss.log.Debug("session ends", "user", ss.user, "err", err)
	ss.mu.Lock()
	ss.done = true // a join completing from now on ends its stay at once
	lost := !ss.ending && connectionLost(err)
	st := ss.stay
	ss.mu.Unlock()
	ss.cancelJoin()
	if st != nil && lost {
		// The connection failed rather than closed: the stay waits for
		// the user to come back (join with resume).
		ss.mu.Lock()
		ss.stay = nil
		ss.mu.Unlock()
		ss.log.Info("connection lost: the stay waits to be resumed", "channel", st.ch.ID())
		ss.srv.orphan(st)
	} else {
		ss.endStay(true, "connection closed")
	}
	ss.closeWith(websocket.StatusNormalClosure, "")
	select {
	case <-written:
	case <-time.After(ss.srv.cfg.WriteTimeout):
	}
	ss.cancel()
	ss.wg.Wait()
	_ = ss.conn.CloseNow()
	ss.mu.Lock()
	if ss.expiry != nil {
		ss.expiry.Stop()
	}
	ss.mu.Unlock()
	if ss.budget != nil {
		ss.srv.userBudgets.release(ss.user, ss.budget)
	}
}

// connectionLost reports whether a read failed because the connection was
// lost (reset, cut, or killed for not answering pings) rather than closed
// by either side or refused for bad input.
func connectionLost(err error) bool {
	return websocket.CloseStatus(err) == -1 &&
		(errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) ||
			errors.Is(err, syscall.ECONNRESET) || errors.Is(err, context.Canceled))
}

// readLoop authenticates the client, then reads and handles requests
// until the connection fails or the session is ended.
//
// Every message after auth spends a token of the user's budget (shared
// with its other connections; the auth and the connection itself spent
// the remote address's); one past it is refused at the cost of finding
// its id (quickID), not decoded. A refusal, for the budget or for a malformed
// message, spends one of the connection's MaxRefusals a RefusalWindow:
// past them the connection is closed.
func (ss *session) readLoop() error {
	if err := ss.authenticate(); err != nil {
		return err
	}
	for {
		typ, data, err := ss.conn.Read(ss.ctx)
		if err != nil {
			return err
		}
		if typ != websocket.MessageText {
			ss.srv.stats.invalid.Add(1)
			ss.closeWith(websocket.StatusUnsupportedData, "text messages only")
			return ErrInvalidMessage
		}
		now := time.Now()
		if !ss.srv.userBudgets.take(ss.budget, now) {
			ss.srv.stats.rateLimited.Add(1)
			if !ss.refusals.take(now) {
				ss.srv.warnRateLimited.warn(ss.log, "connection closed: rate limit exceeded", "user", ss.user)
				ss.closeWith(websocket.StatusPolicyViolation, "rate limit exceeded")
				return ErrRateLimited
			}
			ss.reply(quickID(data), nil, fmt.Errorf("%w: at most %g requests a second", ErrRateLimited, ss.srv.cfg.RequestRate))
			continue
		}
		var req request
		if err := decodeStrict(data, &req); err != nil || req.ID == 0 || req.Type == "" {
			ss.srv.stats.invalid.Add(1)
			if err == nil {
				err = fmt.Errorf("%w: a request needs a positive id and a type", ErrInvalidMessage)
			}
			if !ss.refusals.take(now) {
				ss.srv.warnRateLimited.warn(ss.log, "connection closed: too many invalid messages", "user", ss.user)
				ss.closeWith(websocket.StatusPolicyViolation, "too many invalid messages")
				return err
			}
			ss.reply(idOf(data), nil, err)
			continue
		}
		ss.begin(req)
		ss.handle(req)
	}
}

// authenticate reads the first message, which must be a valid auth, within
// AuthTimeout: past it the connection is closed with 4001 (a timer closes
// it; a read deadline would make the library close it without the code).
func (ss *session) authenticate() error {
	timer := time.AfterFunc(ss.srv.cfg.AuthTimeout, func() {
		ss.srv.stats.authFailures.Add(1)
		ss.closeWith(4001, "no auth in time")
	})
	typ, data, err := ss.conn.Read(ss.ctx)
	if !timer.Stop() {
		if err == nil {
			err = fmt.Errorf("%w: no auth in time", ErrUnauthenticated)
		}
		return err // closed with 4001
	}
	if err != nil {
		return err
	}
	var req request
	var a authData
	if !ss.srv.addrBudgets.take(ss.addr, time.Now()) {
		ss.srv.stats.rateLimited.Add(1)
		err := fmt.Errorf("%w: too many requests from this address", ErrRateLimited)
		ss.reply(quickID(data), nil, err)
		ss.srv.warnRateLimited.warn(ss.log, "auth refused: rate limit of the address exceeded")
		ss.closeWith(websocket.StatusPolicyViolation, "rate limit exceeded")
		return err
	}
	err = decodeStrict(data, &req)
	switch {
	case err != nil || typ != websocket.MessageText:
		ss.srv.stats.invalid.Add(1)
		err = fmt.Errorf("%w: the first message must be auth", ErrUnauthenticated)
	case req.Type != "auth" || req.ID == 0:
		err = fmt.Errorf("%w: the first message must be auth", ErrUnauthenticated)
	default:
		if err = decodeStrict(req.Data, &a); err == nil {
			ss.claims, err = verifyToken(ss.srv.cfg.Secret, a.Token, time.Now())
		}
	}
	if err != nil {
		ss.srv.stats.authFailures.Add(1)
		if !errors.Is(err, ErrUnauthenticated) {
			err = fmt.Errorf("%w: %w", ErrUnauthenticated, err)
		}
		ss.reply(req.ID, nil, err)
		ss.closeWith(4001, "unauthenticated")
		return err
	}
	ss.user = ss.claims.Subject
	ss.log = ss.log.With("user", ss.user)
	if !ss.srv.authenticated(ss) {
		err := fmt.Errorf("%w: %d connections of this user open already", ErrRateLimited, ss.srv.cfg.MaxConnsPerUser)
		ss.srv.warnRefusedConn.warn(ss.log, "connection refused: too many connections of this user", "max", ss.srv.cfg.MaxConnsPerUser)
		ss.reply(req.ID, nil, err)
		ss.closeWith(websocket.StatusPolicyViolation, "too many connections for this user")
		return err
	}
	ss.budget = ss.srv.userBudgets.acquire(ss.user)
	ss.armExpiry()
	ss.reply(req.ID, ss.authResult(), nil)
	ss.log.Info("authenticated")
	return nil
}

// authResult is the answer to an auth.
func (ss *session) authResult() authResult {
	ice := ss.srv.engine.ICEServers()
	if t, ok := ss.srv.turnServer(ss.user, ss.claims.ExpiresAt.Time); ok {
		ice = append(ice, t)
	}
	return authResult{UserID: ss.user, CanCreate: ss.claims.Create, ICEServers: ice,
		ExpiresAt: ss.claims.ExpiresAt.Unix()}
}

// armExpiry (re)sets the timer that ends the session when its token
// expires: the client renews it with another auth before then.
func (ss *session) armExpiry() {
	d := time.Until(ss.claims.ExpiresAt.Time) + tokenLeeway
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.expiry == nil {
		ss.expiry = time.AfterFunc(d, func() {
			ss.srv.stats.authFailures.Add(1)
			ss.log.Info("token expired")
			ss.bye("token expired", 4001)
		})
		return
	}
	ss.expiry.Reset(d)
}

// renew takes a fresh token for the session's user (an auth after the
// first): the session then lives until the new token expires.
func (ss *session) renew(req request) {
	var a authData
	err := decodeStrict(req.Data, &a)
	var c Claims
	if err == nil {
		c, err = verifyToken(ss.srv.cfg.Secret, a.Token, time.Now())
	}
	if err == nil && c.Subject != ss.user {
		err = fmt.Errorf("%w: a token for another user: a connection has one identity", ErrInvalidMessage)
	}
	if err != nil {
		ss.srv.stats.authFailures.Add(1)
		ss.reply(req.ID, nil, err)
		return
	}
	ss.claims = c // the read loop's, as every request's handling
	ss.armExpiry()
	ss.reply(req.ID, ss.authResult(), nil)
}

// writeLoop writes the session's messages in order until it ends.
func (ss *session) writeLoop() {
	for {
		select {
		case <-ss.ctx.Done():
			return
		case m := <-ss.out:
			if m.a.Type != "" {
				b, err := json.Marshal(m.a)
				if err != nil {
					ss.log.Error("encoding a message", "type", m.a.Type, "err", err)
					continue
				}
				ctx, cancel := context.WithTimeout(ss.ctx, ss.srv.cfg.WriteTimeout) // ss.ctx ends only after run has waited for the writer
				err = ss.conn.Write(ctx, websocket.MessageText, b)
				cancel()
				if err != nil {
					ss.kill()
					return
				}
			}
			if m.close != 0 {
				_ = ss.conn.Close(m.close, m.reason) // the read loop fails and run ends the session
				return
			}
		}
	}
}

// keepalive pings the client and ends the session when it stops
// answering.
func (ss *session) keepalive() {
	t := time.NewTicker(ss.srv.cfg.PingInterval)
	defer t.Stop()
	for {
		select {
		case <-ss.ctx.Done():
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(ss.ctx, ss.srv.cfg.PingTimeout)
			err := ss.conn.Ping(ctx)
			cancel()
			if err != nil {
				ss.log.Info("keepalive failed", "err", err)
				ss.kill()
				return
			}
		}
	}
}

// enqueue hands m to the writer without blocking; a client whose queue is
// full is too slow and is disconnected.
func (ss *session) enqueue(m outMsg) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.ending {
		return
	}
	if m.close != 0 {
		ss.ending = true
	}
	select {
	case ss.out <- m:
	default:
		ss.ending = true
		ss.log.Warn("client too slow: disconnected")
		go ss.kill()
	}
}

// reply answers request id with data, or with err's code.
func (ss *session) reply(id uint64, data any, err error) {
	ss.answered(id, err)
	if err != nil {
		ss.enqueue(outMsg{a: answer{ID: id, Type: "error", Error: &wireError{Code: codeOf(err), Message: err.Error()}}})
		return
	}
	if data == nil {
		data = struct{}{}
	}
	ss.enqueue(outMsg{a: answer{ID: id, Type: "result", Data: data}})
}

// push sends an unsolicited message.
func (ss *session) push(typ string, data any) {
	ss.enqueue(outMsg{a: answer{Type: typ, Data: data}})
}

// closeWith closes the connection with code after what is queued.
func (ss *session) closeWith(code websocket.StatusCode, reason string) {
	ss.enqueue(outMsg{close: code, reason: reason})
}

// bye tells the client why it is being disconnected, makes its user leave
// its channel and closes the connection with code.
func (ss *session) bye(reason string, code websocket.StatusCode) {
	ss.cancelJoin()
	ss.endStay(true, reason)
	ss.enqueue(outMsg{a: answer{Type: "bye", Data: reasonData{Reason: reason}}, close: code, reason: reason})
}

// kill ends the session at once.
func (ss *session) kill() {
	ss.cancel()
	_ = ss.conn.CloseNow()
}

// idOf digs a request id out of a message that failed to decode, so that
// its error can be matched to it; 0 when there is none.
func idOf(data []byte) uint64 {
	var v struct {
		ID uint64 `json:"id"`
	}
	if json.Unmarshal(data, &v) != nil {
		return 0
	}
	return v.ID
}
