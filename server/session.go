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

	inflight map[uint64]inflight // requests being answered, for the metrics; guarded by mu

	bucket bucket // read loop only
}

// outMsg is one message for the writer; a nonzero close ends the
// connection with that status after the message.
type outMsg struct {
	a      answer
	close  websocket.StatusCode
	reason string
}

func newSession(s *Server, conn *websocket.Conn, remote string) *session {
	ctx, cancel := context.WithCancel(context.Background())
	return &session{
		srv:    s,
		conn:   conn,
		log:    s.log.With("remote", remote),
		ctx:    ctx,
		cancel: cancel,
		out:    make(chan outMsg, s.cfg.SendQueue),
		bucket: newBucket(s.cfg.RequestRate, s.cfg.RequestBurst),
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
func (ss *session) readLoop() error {
	if err := ss.authenticate(); err != nil {
		return err
	}
	refusals, invalid := 0, 0 // in a row
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
		// Every message spends a token, the malformed ones too.
		if !ss.bucket.take(time.Now()) {
			ss.srv.stats.rateLimited.Add(1)
			if refusals++; refusals >= ss.srv.cfg.MaxRefusals {
				ss.closeWith(websocket.StatusPolicyViolation, "rate limit exceeded")
				return ErrRateLimited
			}
			ss.reply(idOf(data), nil, fmt.Errorf("%w: at most %g requests a second", ErrRateLimited, ss.srv.cfg.RequestRate))
			continue
		}
		refusals = 0
		var req request
		if err := decodeStrict(data, &req); err != nil || req.ID == 0 || req.Type == "" {
			ss.srv.stats.invalid.Add(1)
			if err == nil {
				err = fmt.Errorf("%w: a request needs a positive id and a type", ErrInvalidMessage)
			}
			if invalid++; invalid >= ss.srv.cfg.MaxRefusals {
				ss.closeWith(websocket.StatusPolicyViolation, "too many invalid messages")
				return err
			}
			ss.reply(idOf(data), nil, err)
			continue
		}
		invalid = 0
		ss.begin(req)
		ss.handle(req)
	}
}

// authenticate reads the first message, which must be a valid auth.
func (ss *session) authenticate() error {
	ctx, cancel := context.WithTimeout(ss.ctx, ss.srv.cfg.AuthTimeout)
	defer cancel()
	typ, data, err := ss.conn.Read(ctx)
	if err != nil {
		if ctx.Err() != nil && ss.ctx.Err() == nil {
			ss.srv.stats.authFailures.Add(1)
			ss.closeWith(4001, "no auth in time")
		}
		return err
	}
	var req request
	var a authData
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
		ss.reply(req.ID, nil, err)
		ss.closeWith(websocket.StatusPolicyViolation, "too many connections for this user")
		return err
	}
	ss.reply(req.ID, authResult{UserID: ss.user, CanCreate: ss.claims.Create, ICEServers: ss.srv.engine.ICEServers()}, nil)
	ss.log.Info("authenticated")
	return nil
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

// bucket is a token bucket: burst tokens, refilled at rate a second.
type bucket struct {
	rate, burst, tokens float64
	last                time.Time
}

func newBucket(rate float64, burst int) bucket {
	return bucket{rate: rate, burst: float64(burst), tokens: float64(burst)}
}

// take spends a token, reporting false when there is none.
func (b *bucket) take(t time.Time) bool {
	if !b.last.IsZero() {
		b.tokens = min(b.burst, b.tokens+t.Sub(b.last).Seconds()*b.rate)
	}
	b.last = t
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}
