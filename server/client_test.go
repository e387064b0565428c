package server

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/callcore/callcore/transport/webrtc"
)

// deadline bounds every wait in these tests.
const deadline = 10 * time.Second

var testSecret = []byte("0123456789abcdef0123456789abcdef")

// testServer is a Server behind an httptest server on loopback.
type testServer struct {
	*Server
	http *httptest.Server
}

func newTestServer(t testing.TB, tweak func(*Config)) *testServer {
	t.Helper()
	cfg := Config{
		Secret:    testSecret,
		DevTokens: true,
		WebRTC:    webrtc.Config{LoopbackOnly: true},
		// A lost connection's stay waits this long to be resumed: short,
		// so that tests of drops see the user leave promptly.
		ResumeGrace: 200 * time.Millisecond,
		Logger:      slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	if tweak != nil {
		tweak(&cfg)
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ts := &testServer{Server: s, http: httptest.NewServer(s)}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), deadline)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		ts.http.Close()
	})
	return ts
}

func (ts *testServer) wsURL() string { return "ws" + strings.TrimPrefix(ts.http.URL, "http") + "/ws" }

func token(t testing.TB, user string, create bool) string {
	t.Helper()
	tok, err := IssueToken(testSecret, user, create, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// client is a raw protocol client: it sends requests and sorts what the
// server sends into answers (by id) and pushes.
type client struct {
	t      testing.TB
	conn   *websocket.Conn
	mu     sync.Mutex
	nextID uint64
	waits  map[uint64]chan reply
	pushes chan push
	done   chan struct{}
	closed error // why the connection ended; set before done closes
}

type reply struct {
	Type  string          `json:"type"`
	Data  json.RawMessage `json:"data"`
	Error *wireError      `json:"error"`
}

type push struct {
	Type string          `json:"type"`
	Data json.RawMessage `json:"data"`
}

// dial connects without authenticating.
func dial(t testing.TB, ts *testServer) *client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	conn, _, err := websocket.Dial(ctx, ts.wsURL(), nil)
	if err != nil {
		t.Fatal(err)
	}
	conn.SetReadLimit(1 << 20)
	c := &client{t: t, conn: conn, waits: map[uint64]chan reply{}, pushes: make(chan push, 1024), done: make(chan struct{})}
	go c.read()
	t.Cleanup(func() { _ = conn.CloseNow(); <-c.done })
	return c
}

// login connects and authenticates as user.
func login(t testing.TB, ts *testServer, user string, create bool) *client {
	t.Helper()
	c := dial(t, ts)
	if _, code := c.call("auth", authData{Token: token(t, user, create)}); code != "" {
		t.Fatalf("auth as %s: %s", user, code)
	}
	return c
}

func (c *client) read() {
	defer close(c.done)
	for {
		_, data, err := c.conn.Read(context.Background())
		if err != nil {
			c.closed = err
			return
		}
		var m struct {
			ID uint64 `json:"id"`
			reply
		}
		if err := json.Unmarshal(data, &m); err != nil {
			c.t.Errorf("server sent bad JSON %q: %v", data, err)
			continue
		}
		if m.ID != 0 {
			c.mu.Lock()
			w := c.waits[m.ID]
			delete(c.waits, m.ID)
			c.mu.Unlock()
			if w == nil { // the answer to a raw message
				c.keep(push{Type: m.Type, Data: data})
				continue
			}
			w <- m.reply
			continue
		}
		if m.Type == "result" || m.Type == "error" {
			// an error to a request whose id could not be read
			c.keep(push{Type: m.Type, Data: data})
			continue
		}
		c.keep(push{Type: m.Type, Data: m.Data})
	}
}

// keep queues a push for the test; a client whose test does not read its
// pushes (benchmarks) drops them rather than stop reading answers.
func (c *client) keep(p push) {
	select {
	case c.pushes <- p:
	default:
	}
}

// send sends a request and returns the channel its answer arrives on.
func (c *client) send(typ string, data any) chan reply {
	c.mu.Lock()
	c.nextID++
	id := c.nextID
	w := make(chan reply, 1)
	c.waits[id] = w
	c.mu.Unlock()
	b, err := json.Marshal(map[string]any{"id": id, "type": typ, "data": data})
	if err != nil {
		c.t.Fatal(err)
	}
	c.raw(b)
	return w
}

// raw sends a message as is.
func (c *client) raw(b []byte) {
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	if err := c.conn.Write(ctx, websocket.MessageText, b); err != nil {
		c.t.Logf("write: %v", err)
	}
}

// call sends a request and waits for its answer: the result's data, or
// the error's code.
func (c *client) call(typ string, data any) (json.RawMessage, string) {
	c.t.Helper()
	w := c.send(typ, data)
	select {
	case r := <-w:
		if r.Type == "error" {
			return nil, r.Error.Code
		}
		return r.Data, ""
	case <-c.done:
		select { // an answer that came just before the close
		case r := <-w:
			if r.Type == "error" {
				return nil, r.Error.Code
			}
			return r.Data, ""
		default:
		}
		return nil, "connection closed: " + errString(c.closed)
	case <-time.After(deadline):
		c.t.Fatalf("no answer to %s", typ)
		return nil, ""
	}
}

// must calls and fails the test on an error.
func (c *client) must(typ string, data any) json.RawMessage {
	c.t.Helper()
	r, code := c.call(typ, data)
	if code != "" {
		c.t.Fatalf("%s: %s", typ, code)
	}
	return r
}

// want calls and checks the error code.
func (c *client) want(code, typ string, data any) {
	c.t.Helper()
	if _, got := c.call(typ, data); got != code {
		c.t.Fatalf("%s %v: got %q, want %q", typ, data, got, code)
	}
}

// event waits for the next event push named name whose data satisfies
// match (nil: any), skipping other pushes.
func (c *client) event(name string, match func(eventData) bool) eventData {
	c.t.Helper()
	timeout := time.After(deadline)
	for {
		select {
		case p := <-c.pushes:
			if p.Type != "event" {
				continue
			}
			var e struct {
				eventData
				Users json.RawMessage `json:"users"`
			}
			if err := json.Unmarshal(p.Data, &e); err != nil {
				c.t.Fatal(err)
			}
			e.eventData.Users = e.Users
			if e.Event == name && (match == nil || match(e.eventData)) {
				return e.eventData
			}
		case <-timeout:
			c.t.Fatalf("no %s event", name)
			return eventData{}
		}
	}
}

// pushOf waits for the next push of type typ.
func (c *client) pushOf(typ string) json.RawMessage {
	c.t.Helper()
	timeout := time.After(deadline)
	for {
		select {
		case p := <-c.pushes:
			if p.Type == typ {
				return p.Data
			}
		case <-timeout:
			c.t.Fatalf("no %s push", typ)
			return nil
		}
	}
}

// waitClosed waits for the server to close the connection and returns its
// close status.
func (c *client) waitClosed() websocket.StatusCode {
	c.t.Helper()
	select {
	case <-c.done:
		return websocket.CloseStatus(c.closed)
	case <-time.After(deadline):
		c.t.Fatal("the server did not close the connection")
		return 0
	}
}

func errString(err error) string {
	if err == nil {
		return "<nil>"
	}
	return err.Error()
}

// get fetches a URL from the test server.
func (ts *testServer) get(t *testing.T, path string) (int, string) {
	t.Helper()
	resp, err := http.Get(ts.http.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
