package webrtc

import (
	"testing"
	"time"

	"github.com/callcore/callcore/internal/piontest"
	"github.com/callcore/callcore/internal/poll"
	pion "github.com/pion/webrtc/v4"
)

// deadline bounds every wait in these tests.
const deadline = 20 * time.Second

// waitFor polls cond against the deadline.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	poll.Until(t, deadline, what, cond)
}

func newTestEngine(t testing.TB, cfg Config) *Engine {
	t.Helper()
	cfg.LoopbackOnly = true
	e, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// clientAPI is a plain pion client as an application would build it:
// default codecs and interceptors, forced onto 127.0.0.1.
func clientAPI(t testing.TB) *pion.API { return piontest.API(t) }

// client is a test client (piontest.Client) under the names these tests
// use: pc its PeerConnection.
type client struct {
	*piontest.Client
	pc *pion.PeerConnection
}

func newClient(t testing.TB, api *pion.API) *client {
	t.Helper()
	c := piontest.New(t, api)
	return &client{Client: c, pc: c.PC}
}

func (c *client) goRun(fn func()) { c.Go(fn) }

func (c *client) close(testing.TB) { c.Close() }

// setLocal sets a local description and waits for gathering (non-trickle).
func setLocal(t testing.TB, pc *pion.PeerConnection, d pion.SessionDescription) string {
	t.Helper()
	return piontest.SetLocal(t, pc, d)
}

// publish has the client offer what it publishes and the server answer.
func publish(t testing.TB, server *Peer, c *client) {
	t.Helper()
	offer, err := c.pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	ans, err := server.Answer(setLocal(t, c.pc, offer))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.pc.SetRemoteDescription(pion.SessionDescription{Type: pion.SDPTypeAnswer, SDP: ans}); err != nil {
		t.Fatal(err)
	}
}

// negotiate runs one server-initiated offer/answer with the client.
func negotiate(t testing.TB, server *Peer, c *client) {
	t.Helper()
	offer, err := server.Offer()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.pc.SetRemoteDescription(pion.SessionDescription{Type: pion.SDPTypeOffer, SDP: offer}); err != nil {
		t.Fatal(err)
	}
	ans, err := c.pc.CreateAnswer(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := server.SetAnswer(setLocal(t, c.pc, ans)); err != nil {
		t.Fatal(err)
	}
}
