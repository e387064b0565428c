package link

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/callcore/callcore/forward"
)

// Link is one node's end of a link to another node. It carries the tracks
// offered on either side to the other, over successive sessions: every
// time the control connection is (re)established a session starts with
// fresh keys and a fresh UDP socket, and the far node's subscribers are
// spliced onto it.
type Link struct {
	cfg  Config
	ln   net.Listener // nil when dialing
	done chan struct{}
	idle chan struct{} // a session ended; wakes the linger goroutine
	wg   sync.WaitGroup
	cnt  counters

	mu      sync.Mutex // guards offers, remotes, sess, sessions, closed
	offers  map[string]*forward.Track
	remotes map[string]*RemoteTrack
	sess    *session // the current session, nil between sessions
	live    map[*session]struct{}
	pending map[net.Conn]struct{} // control connections still in their hello
	closed  bool
}

// New starts a link: it listens for its peer, or dials it (and redials
// after every drop) until Close.
func New(cfg Config) (*Link, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.setDefaults()
	l := &Link{cfg: cfg, done: make(chan struct{}), idle: make(chan struct{}, 1), offers: map[string]*forward.Track{},
		remotes: map[string]*RemoteTrack{}, live: map[*session]struct{}{}, pending: map[net.Conn]struct{}{}}
	if cfg.Listen != "" {
		ln, err := net.Listen("tcp", cfg.Listen)
		if err != nil {
			return nil, fmt.Errorf("link: listen: %w", err)
		}
		l.ln = ln
		l.wg.Add(2)
		go l.accept()
		go l.linger()
		return l, nil
	}
	l.wg.Add(2)
	go l.dial()
	go l.linger()
	return l, nil
}

// linger ends the peer's tracks once no session has been up for Linger
// after one ended.
func (l *Link) linger() {
	defer l.wg.Done()
	t := time.NewTimer(time.Hour)
	t.Stop()
	defer t.Stop()
	for {
		select {
		case <-l.done:
			return
		case <-l.idle:
			t.Reset(l.cfg.Linger)
		case <-t.C:
			if !l.Connected() {
				l.cnt.lingerEnded.Add(1)
				l.endRemotes(func(string) bool { return true })
			}
		}
	}
}

// Addr returns the control address the link listens on, or nil when it
// dials.
func (l *Link) Addr() net.Addr {
	if l.ln == nil {
		return nil
	}
	return l.ln.Addr()
}

// Connected reports whether a session is under way.
func (l *Link) Connected() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.sess != nil
}

func (l *Link) accept() {
	defer l.wg.Done()
	for {
		c, err := l.ln.Accept()
		if err != nil {
			select {
			case <-l.done:
				return
			default:
			}
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		if l.cfg.TLS != nil {
			c = tls.Server(c, l.cfg.TLS)
		}
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			l.run(c, false)
		}()
	}
}

func (l *Link) dial() {
	defer l.wg.Done()
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-l.done
		cancel()
	}()
	wait := 50 * time.Millisecond
	for {
		d := net.Dialer{Timeout: l.cfg.Timeout}
		c, err := d.DialContext(ctx, "tcp", l.cfg.Dial)
		if err == nil {
			l.cnt.dials.Add(1)
			if l.cfg.TLS != nil {
				c = tls.Client(c, l.cfg.TLS)
			}
			if l.run(c, true) {
				wait = 50 * time.Millisecond
			}
		} else {
			l.cnt.dialErrors.Add(1)
		}
		t := time.NewTimer(wait)
		select {
		case <-l.done:
			t.Stop()
			return
		case <-t.C:
		}
		wait = min(2*wait, l.cfg.Redial)
	}
}

// run runs one session on an established control connection until it
// ends; it reports whether the session got past the hello.
func (l *Link) run(c net.Conn, dialer bool) bool {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		c.Close()
		return false
	}
	l.pending[c] = struct{}{}
	l.mu.Unlock()
	s, err := newSession(l, c, dialer)
	l.mu.Lock()
	delete(l.pending, c)
	l.mu.Unlock()
	if err != nil {
		l.cnt.sessionErrors.Add(1)
		c.Close()
		return false
	}
	if !l.register(s) {
		s.close()
		return false
	}
	l.cnt.sessions.Add(1)
	s.serve()
	l.unregister(s)
	return true
}

// register makes s the current session, ending the one it replaces.
func (l *Link) register(s *session) bool {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return false
	}
	old := l.sess
	l.sess = s
	l.live[s] = struct{}{}
	l.mu.Unlock()
	if old != nil {
		old.close()
	}
	return true
}

func (l *Link) unregister(s *session) {
	s.close()
	l.mu.Lock()
	if l.sess == s {
		l.sess = nil
	}
	delete(l.live, s)
	l.mu.Unlock()
	select {
	case l.idle <- struct{}{}:
	default:
	}
}

func (l *Link) current() *session {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.sess
}

// Offer relays t to the peer under id, now and in every later session,
// until Withdraw or Close. The track is subscribed once per session, with
// the link as the subscriber's writer; its mute state follows it.
func (l *Link) Offer(id string, t *forward.Track) error {
	if id == "" || t == nil {
		return fmt.Errorf("%w: offer needs an ID and a track", ErrInvalidConfig)
	}
	l.mu.Lock()
	if _, dup := l.offers[id]; dup {
		l.mu.Unlock()
		return fmt.Errorf("%w: %q", ErrDuplicate, id)
	}
	l.offers[id] = t
	s := l.sess
	l.mu.Unlock()
	if s != nil {
		// A failed announcement means a broken control connection: the
		// session ends soon and the next one offers the track again.
		_ = s.startRelay(id, t)
	}
	return nil
}

// Withdraw stops relaying the track offered under id and tells the peer.
func (l *Link) Withdraw(id string) error {
	l.mu.Lock()
	if _, ok := l.offers[id]; !ok {
		l.mu.Unlock()
		return fmt.Errorf("%w: %q", ErrUnknownTrack, id)
	}
	delete(l.offers, id)
	s := l.sess
	l.mu.Unlock()
	if s != nil {
		s.stopRelay(id, true)
	}
	return nil
}

func (l *Link) offer(id string) *forward.Track {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.offers[id]
}

func (l *Link) snapshotOffers() map[string]*forward.Track {
	l.mu.Lock()
	defer l.mu.Unlock()
	m := make(map[string]*forward.Track, len(l.offers))
	for id, t := range l.offers {
		m[id] = t
	}
	return m
}

// Remote returns the peer's track offered under id, or nil.
func (l *Link) Remote(id string) *RemoteTrack {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.remotes[id]
}

// remote returns the remote track for id, creating it; created reports a
// new one.
func (l *Link) remote(id string, cfg forward.TrackConfig) (rt *RemoteTrack, created bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if rt = l.remotes[id]; rt != nil {
		return rt, false
	}
	rt = &RemoteTrack{l: l, id: id, cfg: cfg}
	l.remotes[id] = rt
	return rt, true
}

// endRemotes ends the remote tracks whose ID matches and calls
// OnTrackEnded for each, with no lock held.
func (l *Link) endRemotes(match func(id string) bool) {
	var ended []*RemoteTrack
	l.mu.Lock()
	for id, rt := range l.remotes {
		if match(id) {
			ended = append(ended, rt)
			delete(l.remotes, id)
		}
	}
	l.mu.Unlock()
	for _, rt := range ended {
		rt.end()
		if l.cfg.OnTrackEnded != nil {
			l.cfg.OnTrackEnded(rt)
		}
	}
}

// Close ends the session, stops listening or dialing, ends the remote
// tracks and waits for every goroutine of the link.
func (l *Link) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	live := make([]*session, 0, len(l.live))
	for s := range l.live {
		live = append(live, s)
	}
	for c := range l.pending {
		c.Close()
	}
	l.mu.Unlock()
	close(l.done)
	if l.ln != nil {
		l.ln.Close()
	}
	for _, s := range live {
		s.close()
	}
	l.wg.Wait()
	l.endRemotes(func(string) bool { return true })
	return nil
}
