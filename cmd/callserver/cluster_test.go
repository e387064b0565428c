package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/callcore/callcore/cluster"
	"github.com/callcore/callcore/internal/poll"
	"github.com/callcore/callcore/internal/testcert"
	"github.com/callcore/callcore/transport/link"
	"github.com/coder/websocket"
	"go.uber.org/goleak"
)

// Three callservers started with the -cluster flags, each with its
// embedded NATS server routed to the others: a call created on the first
// is joined through the third, and the creator sees the join numbered as
// the joiner's answer says.
func TestRunThreeClusterNodes(t *testing.T) {
	leaks := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, leaks) })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	begin := time.Now()
	ports := freePorts(t, 3)
	var routes []string
	for _, p := range ports {
		routes = append(routes, fmt.Sprintf("nats://127.0.0.1:%d", p))
	}
	addrs := make([]string, 3)
	addrcs := make([]chan string, 3)
	dones := make([]chan error, 3)
	for i := range 3 {
		addrcs[i], dones[i] = make(chan string, 1), make(chan error, 1)
		args := []string{"-addr", "127.0.0.1:0", "-ice-loopback", "-drain-timeout", "0", "-dev",
			"-cluster-node", fmt.Sprintf("n%d", i), "-cluster-port", fmt.Sprint(ports[i]),
			"-cluster-routes", strings.Join(routes, ","), "-cluster-replicas", "3", "-cluster-store", t.TempDir()}
		go func() { dones[i] <- run(ctx, nil, args, noEnv, io.Discard, func(a string) { addrcs[i] <- a }) }()
	}
	defer func() {
		cancel()
		stop := time.Now()
		defer func() { t.Logf("nodes stopped in %v", time.Since(stop)) }()
		for i, done := range dones {
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("run %d: %v", i, err)
				}
			case <-time.After(30 * time.Second):
				t.Errorf("run %d did not return", i)
			}
		}
	}()
	// Each node waits for the engine's quorum (two of the three NATS
	// servers) before it listens.
	for i := range 3 {
		select {
		case addrs[i] = <-addrcs[i]:
		case err := <-dones[i]:
			dones[i] <- err
			t.Fatalf("run %d: %v", i, err)
		case <-time.After(60 * time.Second):
			t.Fatalf("node %d not up", i)
		}
	}
	t.Logf("nodes up after %v", time.Since(begin))
	alice := wsLogin(t, ctx, addrs[0], "alice")
	bob := wsLogin(t, ctx, addrs[2], "bob")
	alice.send(t, `{"id":2,"type":"create","data":{"channelId":"c"}}`)
	alice.waitFor(t, `"event":"cnl:create"`)
	bob.send(t, `{"id":2,"type":"join","data":{"channelId":"c"}}`)
	bob.waitFor(t, `"event":"user:join"`)
	got := alice.waitFor(t, `"event":"user:join"`)
	if !strings.Contains(got, `"seq":2`) || !strings.Contains(got, `"userId":"bob"`) {
		t.Fatalf("alice saw %s", got)
	}
}

type wsConn struct {
	ctx  context.Context
	conn *websocket.Conn
}

func wsLogin(t *testing.T, ctx context.Context, addr, user string) *wsConn {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/dev/token?user=" + user + "&create=1")
	if err != nil {
		t.Fatal(err)
	}
	var tok struct{ Token string }
	err = json.NewDecoder(resp.Body).Decode(&tok)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	conn, _, err := websocket.Dial(ctx, "ws://"+addr+"/ws", &websocket.DialOptions{HTTPHeader: http.Header{"Origin": {"http://" + addr}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.CloseNow() })
	c := &wsConn{ctx: ctx, conn: conn}
	c.send(t, `{"id":1,"type":"auth","data":{"token":"`+tok.Token+`"}}`)
	c.waitFor(t, `"id":1`)
	return c
}

func (c *wsConn) send(t *testing.T, m string) {
	t.Helper()
	if err := c.conn.Write(c.ctx, websocket.MessageText, []byte(m)); err != nil {
		t.Fatal(err)
	}
}

// waitFor reads until a message containing s, and returns it.
func (c *wsConn) waitFor(t *testing.T, s string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(c.ctx, 20*time.Second)
	defer cancel()
	for {
		_, b, err := c.conn.Read(ctx)
		if err != nil {
			t.Fatalf("waiting for %s: %v", s, err)
		}
		if strings.Contains(string(b), `"error"`) {
			t.Fatalf("error answer: %s", b)
		}
		if strings.Contains(string(b), s) {
			return string(b)
		}
	}
}

// freePorts returns n loopback TCP ports that were free a moment ago.
func freePorts(t *testing.T, n int) []int {
	t.Helper()
	var ports []int
	var ls []net.Listener
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	for _, l := range ls {
		l.Close()
	}
	return ports
}

// The -cluster-link-cert, -key and -ca flags give the media links mutual
// TLS: the configs they make complete a link's handshake on loopback, the
// dialer checking that the listener's certificate names the address it
// dialed; flags given alone, or a file that is no PEM, are refused.
func TestClusterLinkTLSFlags(t *testing.T) {
	cert := testcert.New(t)
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	certFile, keyFile := write("node.pem", cert.CertPEM), write("node.key", cert.KeyPEM)
	notPEM := write("ca.txt", []byte("not a certificate"))
	base := []string{"-cluster-node", "n1", "-cluster-nats", "nats://127.0.0.1:4222"}
	config := func(args ...string) (*cluster.Config, error) {
		o, err := parse(append(append([]string(nil), base...), args...), noEnv)
		if err != nil {
			t.Fatal(err)
		}
		return o.cluster.config()
	}
	for _, bad := range [][]string{
		{"-cluster-link", "127.0.0.1", "-cluster-link-cert", certFile},
		{"-cluster-link-cert", certFile, "-cluster-link-key", keyFile, "-cluster-link-ca", certFile},
		{"-cluster-link", "127.0.0.1", "-cluster-link-cert", certFile, "-cluster-link-key", keyFile, "-cluster-link-ca", notPEM},
		{"-cluster-link", "127.0.0.1", "-cluster-link-cert", keyFile, "-cluster-link-key", keyFile, "-cluster-link-ca", certFile},
	} {
		if _, err := config(bad...); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
	cfg, err := config("-cluster-link", "127.0.0.1", "-cluster-link-cert", certFile, "-cluster-link-key", keyFile, "-cluster-link-ca", certFile)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.LinkTLS == nil {
		t.Fatal("no link TLS")
	}
	srv, err := link.New(link.Config{Listen: "127.0.0.1:0", TLS: cfg.LinkTLS.Server})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	cli, err := link.New(link.Config{Dial: srv.Addr().String(), TLS: cfg.LinkTLS.Client})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	poll.Until(t, 10*time.Second, "a session over the flags' TLS", func() bool { return cli.Connected() && srv.Connected() })
}
