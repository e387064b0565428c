package callload

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/callcore/callcore/server"
)

// signal is one signalling WebSocket (docs/protocol.md): requests with
// their answers, and the server's offers. Other pushes are read and
// dropped; bye is remembered.
type signal struct {
	conn   *websocket.Conn
	offers chan string // the server's offers' SDP, in order
	done   chan struct{}
	quit   chan struct{} // closed by close

	mu     sync.Mutex
	nextID uint64                 // guarded by mu
	waits  map[uint64]chan answer // guarded by mu
	err    error                  // why reading ended; guarded by mu, set before done closes
}

type answer struct {
	Type  string          `json:"type"`
	Data  json.RawMessage `json:"data"`
	Error *struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// codeError is the server's error answer to a request.
type codeError struct{ typ, code, msg string }

func (e *codeError) Error() string { return fmt.Sprintf("%s: %s: %s", e.typ, e.code, e.msg) }

// wsURL turns the server's http(s) URL into its /ws URL.
func wsURL(base string) (string, error) {
	u, err := url.Parse(base)
	if err != nil {
		return "", err
	}
	u.Scheme = strings.Replace(u.Scheme, "http", "ws", 1)
	u.Path = strings.TrimSuffix(u.Path, "/") + "/ws"
	return u.String(), nil
}

// dial connects and starts reading.
func dial(ctx context.Context, base string) (*signal, error) {
	u, err := wsURL(base)
	if err != nil {
		return nil, err
	}
	conn, _, err := websocket.Dial(ctx, u, nil)
	if err != nil {
		return nil, err
	}
	conn.SetReadLimit(4 << 20)
	s := &signal{conn: conn, offers: make(chan string, 16), done: make(chan struct{}), quit: make(chan struct{}), waits: map[uint64]chan answer{}}
	go s.read()
	return s, nil
}

func (s *signal) read() {
	defer close(s.done)
	for {
		_, data, err := s.conn.Read(context.Background())
		if err != nil {
			s.mu.Lock()
			s.err = err
			s.mu.Unlock()
			return
		}
		var m struct {
			ID uint64 `json:"id"`
			answer
		}
		if json.Unmarshal(data, &m) != nil {
			continue // not ours to judge: the run counts what arrives
		}
		if m.ID != 0 {
			s.mu.Lock()
			w := s.waits[m.ID]
			delete(s.waits, m.ID)
			s.mu.Unlock()
			if w != nil {
				w <- m.answer
			}
			continue
		}
		if m.Type == "offer" {
			var o struct {
				SDP string `json:"sdp"`
			}
			if json.Unmarshal(m.Data, &o) == nil {
				select {
				case s.offers <- o.SDP:
				case <-s.quit: // nobody answers offers any more
				}
			}
		}
	}
}

// call sends a request and waits for its answer, decoding a result into
// out (when not nil). An error answer is a *codeError.
func (s *signal) call(ctx context.Context, typ string, data, out any) error {
	s.mu.Lock()
	s.nextID++
	id := s.nextID
	w := make(chan answer, 1)
	s.waits[id] = w
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.waits, id)
		s.mu.Unlock()
	}()
	b, err := json.Marshal(map[string]any{"id": id, "type": typ, "data": data})
	if err != nil {
		return err
	}
	if err := s.conn.Write(ctx, websocket.MessageText, b); err != nil {
		return fmt.Errorf("%s: %w", typ, err)
	}
	select {
	case a := <-w:
		if a.Type == "error" && a.Error != nil {
			return &codeError{typ: typ, code: a.Error.Code, msg: a.Error.Message}
		}
		if out != nil {
			return json.Unmarshal(a.Data, out)
		}
		return nil
	case <-s.done:
		s.mu.Lock()
		defer s.mu.Unlock()
		return fmt.Errorf("%s: connection closed: %v", typ, s.err)
	case <-ctx.Done():
		return fmt.Errorf("%s: %w", typ, ctx.Err())
	}
}

// close ends the connection with a normal closure (the server makes the
// user leave) and waits for the reader.
func (s *signal) close() {
	close(s.quit)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	go func() { // Close waits for the server's close frame at most 5 s
		<-ctx.Done()
		_ = s.conn.CloseNow()
	}()
	_ = s.conn.Close(websocket.StatusNormalClosure, "")
	<-s.done
}

// tokens gives each participant its token: signed with the server's
// secret, or fetched from a demo server's /dev/token.
type tokens struct {
	secret []byte
	url    string
	client *http.Client
}

func (t tokens) get(ctx context.Context, user string) (string, error) {
	if len(t.secret) > 0 {
		return server.IssueToken(t.secret, user, true, 24*time.Hour)
	}
	u, err := url.Parse(t.url)
	if err != nil {
		return "", err
	}
	q := u.Query()
	q.Set("user", user)
	q.Set("create", "1")
	u.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return "", err
	}
	resp, err := t.client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("token from %s: %s", t.url, resp.Status)
	}
	var body struct {
		Token string `json:"token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || body.Token == "" {
		return "", errors.Join(fmt.Errorf("token from %s: no token in the answer", t.url), err)
	}
	return body.Token, nil
}
