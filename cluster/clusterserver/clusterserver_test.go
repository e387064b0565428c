package clusterserver

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"go.uber.org/goleak"

	"github.com/callcore/callcore/cluster"
	"github.com/callcore/callcore/server"
	"github.com/callcore/callcore/transport/webrtc"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var secret = []byte("0123456789abcdef0123456789abcdef")

// startServers starts a NATS server and n call servers, each with its
// node, behind httptest servers on loopback; admins are their admin
// handlers.
func startServers(t *testing.T, n int) (hss []*httptest.Server, admins []http.Handler) {
	t.Helper()
	hss, admins, _ = startNodes(t, n)
	return hss, admins
}

// startNodes is startServers that also returns the nodes; they carry
// media across nodes over links on loopback.
func startNodes(t *testing.T, n int) (hss []*httptest.Server, admins []http.Handler, nodes []*cluster.Node) {
	t.Helper()
	eng, err := cluster.StartEmbedded(cluster.EmbeddedConfig{Name: "nats", StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(eng.Shutdown)
	for i := range n {
		node, err := cluster.Start(cluster.Config{Node: fmt.Sprintf("n%d", i), URL: eng.ClientURL(), TTL: time.Second, LinkAddr: "127.0.0.1"})
		if err != nil {
			t.Fatal(err)
		}
		nodes = append(nodes, node)
		t.Cleanup(node.Close)
		srv, err := server.New(server.Config{
			Secret: secret, WebRTC: webrtc.Config{LoopbackOnly: true}, Cluster: Of(node),
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		})
		if err != nil {
			t.Fatal(err)
		}
		hs := httptest.NewServer(srv)
		admins = append(admins, srv.AdminHandler())
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := srv.Shutdown(ctx); err != nil {
				t.Errorf("shutdown: %v", err)
			}
			hs.Close()
		})
		hss = append(hss, hs)
	}
	return hss, admins, nodes
}

// wsClient speaks the server's protocol: requests answered by id, event
// pushes kept in order.
type wsClient struct {
	t      *testing.T
	conn   *websocket.Conn
	mu     sync.Mutex // guards next, waits
	next   uint64
	waits  map[uint64]chan answer
	events chan eventPush
	done   chan struct{}
}

type answer struct {
	ID    uint64          `json:"id"`
	Type  string          `json:"type"`
	Data  json.RawMessage `json:"data"`
	Error *struct {
		Code string `json:"code"`
	} `json:"error"`
}

type eventPush struct {
	Event  string `json:"event"`
	Seq    uint64 `json:"seq"`
	UserID string `json:"userId"`
	Mute   string `json:"mutedBy"`
}

func connect(t *testing.T, hs *httptest.Server, user string) *wsClient {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	conn, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(hs.URL, "http")+"/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	conn.SetReadLimit(1 << 20)
	c := &wsClient{t: t, conn: conn, waits: map[uint64]chan answer{}, events: make(chan eventPush, 256), done: make(chan struct{})}
	go c.read()
	t.Cleanup(func() { _ = conn.CloseNow(); <-c.done })
	tok, err := server.IssueToken(secret, user, true, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	c.call("auth", map[string]any{"token": tok})
	return c
}

func (c *wsClient) read() {
	defer close(c.done)
	for {
		_, b, err := c.conn.Read(context.Background())
		if err != nil {
			return
		}
		var a answer
		if json.Unmarshal(b, &a) != nil {
			continue
		}
		if a.ID != 0 {
			c.mu.Lock()
			w := c.waits[a.ID]
			c.mu.Unlock()
			if w != nil {
				w <- a
			}
			continue
		}
		if a.Type == "event" {
			var ev eventPush
			if json.Unmarshal(a.Data, &ev) == nil {
				c.events <- ev
			}
		}
	}
}

// call sends a request and returns its answer's data; it fails the test
// on an error answer.
func (c *wsClient) call(typ string, data any) json.RawMessage {
	c.t.Helper()
	a := c.try(typ, data)
	if a.Error != nil {
		c.t.Fatalf("%s: %s", typ, a.Error.Code)
	}
	return a.Data
}

func (c *wsClient) try(typ string, data any) answer {
	c.t.Helper()
	c.mu.Lock()
	c.next++
	id := c.next
	w := make(chan answer, 1)
	c.waits[id] = w
	c.mu.Unlock()
	b, _ := json.Marshal(map[string]any{"id": id, "type": typ, "data": data})
	ctx, cancel := context.WithTimeout(c.t.Context(), 15*time.Second)
	defer cancel()
	if err := c.conn.Write(ctx, websocket.MessageText, b); err != nil {
		c.t.Fatal(err)
	}
	select {
	case a := <-w:
		return a
	case <-ctx.Done():
		c.t.Fatalf("%s: no answer", typ)
		return answer{}
	}
}

// until reads events until one numbered at least seq.
func (c *wsClient) until(seq uint64) []eventPush {
	c.t.Helper()
	var out []eventPush
	timeout := time.After(10 * time.Second)
	for {
		select {
		case ev := <-c.events:
			out = append(out, ev)
			if ev.Seq >= seq {
				return out
			}
		case <-timeout:
			c.t.Fatalf("no event %d: got %+v", seq, out)
		}
	}
}

type usersAnswer struct {
	Seq   uint64 `json:"seq"`
	Users []struct {
		ID     string `json:"id"`
		Tracks []struct {
			Name  string `json:"name"`
			Muted bool   `json:"muted"`
		} `json:"tracks"`
	} `json:"users"`
}

// Three call servers, each with its node, one user on each in one
// channel: they see the same events with the same numbers, getUsers
// answers the same on every server, and the admin on the first server
// mutes the publisher on the third.
func TestUsersOnThreeServersShareOneChannel(t *testing.T) {
	hs, admins := startServers(t, 3)
	alice := connect(t, hs[0], "alice")
	bob := connect(t, hs[1], "bob")
	carol := connect(t, hs[2], "carol")
	alice.call("create", map[string]any{"channelId": "room"})
	bob.call("join", map[string]any{"channelId": "room"})
	carol.call("join", map[string]any{"channelId": "room", "tracks": []any{map[string]any{"name": "mic", "kind": "audio", "trackId": "t1"}}})
	if a := bob.try("create", map[string]any{"channelId": "room"}); a.Error == nil || a.Error.Code != "Exists" {
		t.Fatalf("second create of the channel: %+v", a)
	}
	alice.call("muteUser", map[string]any{"userId": "carol", "kind": "audio", "state": true, "reason": "noise"})

	// The mute reaches carol's server through the stream.
	var got usersAnswer
	deadline := time.Now().Add(5 * time.Second)
	for {
		must(t, json.Unmarshal(carol.call("getUsers", nil), &got))
		if len(got.Users) == 3 && len(got.Users[2].Tracks) == 1 && got.Users[2].Tracks[0].Muted {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("carol's server never saw the mute: %+v", got)
		}
		select { // poll gently: requests spend the user's budget
		case <-time.After(50 * time.Millisecond):
		case <-t.Context().Done():
			t.Fatal(t.Context().Err())
		}
	}
	last := got.Seq
	ea, eb, ec := alice.until(last), bob.until(last), carol.until(last)
	for _, evs := range [][]eventPush{eb, ec} {
		if fmt.Sprint(evs) != fmt.Sprint(ea[len(ea)-len(evs):]) {
			t.Fatalf("events differ:\n alice %+v\n other %+v", ea, evs)
		}
	}
	if m := ec[len(ec)-1]; m.Event != "track:mute" || m.UserID != "carol" || m.Mute != "alice" {
		t.Fatalf("carol's last event %+v, want her track muted by alice", m)
	}
	want := string(carol.call("getUsers", nil))
	for _, c := range []*wsClient{alice, bob} {
		if got := string(c.call("getUsers", nil)); got != want {
			t.Fatalf("getUsers differs:\n %s\n %s", got, want)
		}
	}
	// Each server's admin /metrics has its node's counters: the first
	// runs the channel and served the others' operations.
	rec := httptest.NewRecorder()
	admins[0].ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body := rec.Body.String()
	for _, want := range []string{`callcore_cluster_channels_owned{node="n0"} 1`, `callcore_cluster_operations_served_total{node="n0"}`, `callcore_cluster_events_published_total{node="n0"}`} {
		if !strings.Contains(body, want) {
			t.Errorf("n0's metrics lack %s", want)
		}
	}
	if strings.Contains(body, `callcore_cluster_operations_served_total{node="n0"} 0`) {
		t.Error("n0 served no operation")
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
