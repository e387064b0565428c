// Package planetest holds what the media plane's tests and its adapters'
// tests share: a user's media connection on the memory transport, as a
// plane.Endpoint whose subscriptions end in memory sinks.
package planetest

import (
	"sync"
	"sync/atomic"

	"github.com/callcore/callcore/channel"
	"github.com/callcore/callcore/forward"
	"github.com/callcore/callcore/plane"
	"github.com/callcore/callcore/transport/memory"
)

// Endpoint is a plane.Endpoint on the memory transport: each track it is
// handed lands in one memory.Sink, named "from/name", with its own SSRC
// (counted up from the one NewEndpoint is given) and payload type 96.
type Endpoint struct {
	mu    sync.Mutex // guards the fields below
	ssrc  uint32
	sinks map[string]*memory.Sink
	recs  map[string]*Reception
}

// NewEndpoint returns an endpoint whose subscriptions' SSRCs start after
// ssrc.
func NewEndpoint(ssrc uint32) *Endpoint {
	return &Endpoint{ssrc: ssrc, sinks: map[string]*memory.Sink{}, recs: map[string]*Reception{}}
}

// Reception is a subscription that records whether the plane closed it.
type Reception struct {
	*forward.Subscriber
	closed atomic.Bool
}

// Close closes the subscriber and records it.
func (r *Reception) Close() error { r.closed.Store(true); return r.Subscriber.Close() }

// Closed reports whether Close was called.
func (r *Reception) Closed() bool { return r.closed.Load() }

// subscriber makes the sink and subscriber of from's track name.
func (e *Endpoint) subscriber(from, name string) (*forward.Subscriber, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.ssrc++
	s := &memory.Sink{}
	sub, err := forward.NewSubscriber(forward.SubscriberConfig{Writer: s, SSRC: e.ssrc, PayloadType: 96})
	if err != nil {
		return nil, err
	}
	e.sinks[from+"/"+name] = s
	return sub, nil
}

// Subscribe makes a sink receive from's track t.
func (e *Endpoint) Subscribe(from string, info channel.TrackInfo, t *forward.Track) (plane.Reception, error) {
	s, err := e.subscriber(from, info.Name)
	if err != nil {
		return nil, err
	}
	if err := s.SwitchTo(t); err != nil {
		s.Close()
		return nil, err
	}
	rc := &Reception{Subscriber: s}
	e.mu.Lock()
	e.recs[from+"/"+info.Name] = rc
	e.mu.Unlock()
	return rc, nil
}

// SubscribeLayers makes a sink receive from's layered track
// (plane.AttachLayers).
func (e *Endpoint) SubscribeLayers(from string, info channel.TrackInfo, l *forward.Layers, max forward.Layer) (plane.LayerReception, error) {
	s, err := e.subscriber(from, info.Name)
	if err != nil {
		return nil, err
	}
	rc, err := plane.AttachLayers(s, l, max)
	if err != nil {
		s.Close()
	}
	return rc, err
}

// Sink returns the sink of "from/name", nil if there is none.
func (e *Endpoint) Sink(name string) *memory.Sink {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.sinks[name]
}

// Reception returns the reception of the single track "from/name", nil if
// there is none.
func (e *Endpoint) Reception(name string) *Reception {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.recs[name]
}
