// Package piontest is the pion client the tests of every package use: a
// PeerConnection on loopback whose goroutines its Close waits for, the
// API variants the tests need (simulcast headers, the audio-level
// extension), a recorder of what it receives, a VP8 sender and a
// publisher of three synthetic VP8 layers with rids q, h and f.
//
// It is for tests only: every failure ends the test (t.Fatal).
package piontest

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/interceptor"
	pion "github.com/pion/webrtc/v4"

	"github.com/callcore/callcore/forward"
	"github.com/callcore/callcore/internal/pionloop"
	"github.com/callcore/callcore/internal/poll"
)

// Deadline bounds every wait of this package.
var Deadline = 20 * time.Second

// Option adds a capability to the client API.
type Option int

const (
	// Simulcast registers the mid and rid header extensions a client
	// needs to send layers.
	Simulcast Option = iota + 1
	// AudioLevel registers the audio-level extension (RFC 6464) for audio.
	AudioLevel
)

// API is a plain pion client as an application would build it (pion's
// default codecs and interceptors) confined to loopback, with opts.
func API(t testing.TB, opts ...Option) *pion.API {
	t.Helper()
	me := &pion.MediaEngine{}
	if err := me.RegisterDefaultCodecs(); err != nil {
		t.Fatal(err)
	}
	for _, o := range opts {
		var err error
		switch o {
		case Simulcast:
			err = pion.ConfigureSimulcastExtensionHeaders(me)
		case AudioLevel:
			err = me.RegisterHeaderExtension(pion.RTPHeaderExtensionCapability{URI: forward.URIAudioLevel}, pion.RTPCodecTypeAudio)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	ir := &interceptor.Registry{}
	if err := pion.RegisterDefaultInterceptors(me, ir); err != nil {
		t.Fatal(err)
	}
	se := pion.SettingEngine{}
	pionloop.Restrict(&se)
	return pion.NewAPI(pion.WithMediaEngine(me), pion.WithInterceptorRegistry(ir), pion.WithSettingEngine(se))
}

// Client is a pion PeerConnection and the goroutines run for it, which
// Close waits for. It closes itself when the test ends.
type Client struct {
	PC *pion.PeerConnection
	T  testing.TB

	wg     sync.WaitGroup
	closed atomic.Bool
}

// New returns a client of api (API's when nil).
func New(t testing.TB, api *pion.API) *Client {
	t.Helper()
	return NewWith(t, api, pion.Configuration{})
}

// NewWith is New with a configuration (ICE servers, transport policy).
func NewWith(t testing.TB, api *pion.API, conf pion.Configuration) *Client {
	t.Helper()
	if api == nil {
		api = API(t)
	}
	pc, err := api.NewPeerConnection(conf)
	if err != nil {
		t.Fatal(err)
	}
	c := &Client{PC: pc, T: t}
	t.Cleanup(c.Close)
	return c
}

// Go runs fn on a goroutine Close waits for.
func (c *Client) Go(fn func()) {
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		fn()
	}()
}

// Close closes the PeerConnection gracefully and waits for the client's
// goroutines; it does nothing the second time.
func (c *Client) Close() {
	if c.closed.Swap(true) {
		return
	}
	if err := c.PC.GracefulClose(); err != nil {
		c.T.Error(err)
	}
	c.wg.Wait()
}

// SetLocal sets a local description and returns it once ICE gathering is
// complete (no trickle).
func (c *Client) SetLocal(d pion.SessionDescription) string {
	c.T.Helper()
	return SetLocal(c.T, c.PC, d)
}

// SetLocal sets pc's local description and returns it once ICE gathering
// is complete (no trickle).
func SetLocal(t testing.TB, pc *pion.PeerConnection, d pion.SessionDescription) string {
	t.Helper()
	g := pion.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(d); err != nil {
		t.Fatal(err)
	}
	select {
	case <-g:
	case <-time.After(Deadline):
		t.Fatal("ICE gathering did not complete")
	}
	return pc.LocalDescription().SDP
}

// Offer creates an offer and returns it once gathered.
func (c *Client) Offer() string {
	c.T.Helper()
	o, err := c.PC.CreateOffer(nil)
	if err != nil {
		c.T.Fatal(err)
	}
	return c.SetLocal(o)
}

// Answer takes the remote offer and returns the gathered answer.
func (c *Client) Answer(offer string) string {
	c.T.Helper()
	if err := c.PC.SetRemoteDescription(pion.SessionDescription{Type: pion.SDPTypeOffer, SDP: offer}); err != nil {
		c.T.Fatal(err)
	}
	a, err := c.PC.CreateAnswer(nil)
	if err != nil {
		c.T.Fatal(err)
	}
	return c.SetLocal(a)
}

// SetAnswer takes the remote answer to the client's offer.
func (c *Client) SetAnswer(answer string) {
	c.T.Helper()
	if err := c.PC.SetRemoteDescription(pion.SessionDescription{Type: pion.SDPTypeAnswer, SDP: answer}); err != nil {
		c.T.Fatal(err)
	}
}

// WaitFor polls cond until it holds, failing the test after Deadline.
func WaitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	poll.Until(t, Deadline, what, cond)
}
