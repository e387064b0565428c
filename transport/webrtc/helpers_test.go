package webrtc

import (
	"sync"
	"testing"
	"time"

	pion "github.com/pion/webrtc/v4"

	"github.com/callcore/callcore/internal/pionloop"
)

// deadline bounds every wait in these tests.
const deadline = 20 * time.Second

// waitFor polls cond against the deadline.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	end := time.Now().Add(deadline)
	for !cond() {
		if time.Now().After(end) {
			t.Fatalf("timed out after %v waiting for %s", deadline, what)
		}
		time.Sleep(2 * time.Millisecond) // polling a condition against a deadline
	}
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
func clientAPI(t testing.TB) *pion.API {
	t.Helper()
	api, err := pionloop.ClientAPI()
	if err != nil {
		t.Fatal(err)
	}
	return api
}

// client is a test client: a pion PeerConnection and the goroutines it
// runs, which close waits for.
type client struct {
	pc *pion.PeerConnection
	wg sync.WaitGroup
}

func newClient(t testing.TB, api *pion.API) *client {
	t.Helper()
	pc, err := api.NewPeerConnection(pion.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	return &client{pc: pc}
}

func (c *client) goRun(fn func()) {
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		fn()
	}()
}

func (c *client) close(t testing.TB) {
	t.Helper()
	if err := c.pc.GracefulClose(); err != nil {
		t.Error(err)
	}
	c.wg.Wait()
}

// setLocal sets a local description and waits for gathering (non-trickle).
func setLocal(t testing.TB, pc *pion.PeerConnection, d pion.SessionDescription) string {
	t.Helper()
	g := pion.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(d); err != nil {
		t.Fatal(err)
	}
	select {
	case <-g:
	case <-time.After(deadline):
		t.Fatal("ICE gathering did not complete")
	}
	return pc.LocalDescription().SDP
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
