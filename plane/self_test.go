package plane_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/callcore/callcore/channel"
	"github.com/callcore/callcore/forward"
	"github.com/callcore/callcore/internal/clocktest"
	"github.com/callcore/callcore/permission"
	"github.com/callcore/callcore/plane"
	"github.com/callcore/callcore/transport/memory"
)

// selfEndpoint is a transport that makes its own tracks and subscriptions,
// as a WebRTC peer does once negotiation is done.
type selfEndpoint struct {
	mu    sync.Mutex // guards sinks and recs
	ssrc  uint32
	sinks map[string]*memory.Sink
	recs  map[string]*reception
}

type reception struct {
	*forward.Subscriber
	closed bool
}

func (r *reception) Close() error { r.closed = true; return r.Subscriber.Close() }

func (e *selfEndpoint) Publish(channel.TrackInfo) (forward.TrackConfig, error) {
	return forward.TrackConfig{}, plane.ErrPublishedByTransport
}
func (e *selfEndpoint) Feed(string, *forward.Track) {}
func (e *selfEndpoint) Receive(string, channel.TrackInfo) (forward.SubscriberConfig, error) {
	panic("Receive called on a SelfSubscriber")
}
func (e *selfEndpoint) Received(string, string, *forward.Subscriber) {
	panic("Received called on a SelfSubscriber")
}

func (e *selfEndpoint) Subscribe(from string, info channel.TrackInfo, t *forward.Track) (plane.Reception, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.ssrc++
	sink := &memory.Sink{}
	s, err := t.Subscribe(forward.SubscriberConfig{Writer: sink, SSRC: e.ssrc, PayloadType: 96})
	if err != nil {
		return nil, err
	}
	name := from + "/" + info.Name
	e.sinks[name], e.recs[name] = sink, &reception{Subscriber: s}
	return e.recs[name], nil
}

func (e *selfEndpoint) get(name string) (*memory.Sink, *reception) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.sinks[name], e.recs[name]
}

// TestTransportMadeTracks: a transport that publishes and subscribes by
// itself (ErrPublishedByTransport, SelfSubscriber, Plane.Published) gets
// the same media effects from the channel.
func TestTransportMadeTracks(t *testing.T) {
	clk := &clocktest.Clock{}
	pl, call, done := newCall(t, clk, "host", "c")
	defer done()
	if _, err := call.Join(context.Background(), "pub", []channel.TrackInfo{{Name: "cam", Kind: channel.Video}}); err != nil {
		t.Fatal(err)
	}
	if _, err := call.Join(context.Background(), "viewer", nil); err != nil {
		t.Fatal(err)
	}
	viewer := &selfEndpoint{sinks: map[string]*memory.Sink{}, recs: map[string]*reception{}}
	for id, ep := range map[string]plane.Endpoint{"pub": &selfEndpoint{sinks: map[string]*memory.Sink{}, recs: map[string]*reception{}}, "viewer": viewer} {
		if err := pl.Attach("c", id, ep); err != nil {
			t.Fatal(err)
		}
	}
	if _, rec := viewer.get("pub/cam"); rec != nil {
		t.Fatal("subscribed before the transport published the track")
	}
	// The publisher's transport makes the track when its media arrives.
	cam, err := forward.NewTrack(forward.TrackConfig{Kind: forward.Video, ClockRate: 90000, PayloadType: 96, MimeType: "video/VP8", Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	if err := pl.Published("c", "pub", "mic", cam); !errors.Is(err, plane.ErrUnknownTrack) {
		t.Fatalf("a track the channel does not list: %v", err)
	}
	if err := pl.Published("c", "pub", "cam", cam); err != nil {
		t.Fatal(err)
	}
	sink, rec := viewer.get("pub/cam")
	if rec == nil {
		t.Fatal("the viewer's transport was not asked to subscribe")
	}
	c := &camera{sent: map[string]bool{}}
	c.send(t, clk, cam, 30)
	if sink.Len() != 30 {
		t.Fatalf("viewer got %d of 30", sink.Len())
	}
	if err := call.ModUsers("host", []channel.UserMode{{ID: "viewer", Mode: permission.Send}}); err != nil {
		t.Fatal(err)
	}
	c.send(t, clk, cam, 30)
	if sink.Len() != 30 {
		t.Fatalf("recv cleared: viewer got %d more", sink.Len()-30)
	}
	before := sink.Len()
	if err := call.ModUsers("host", []channel.UserMode{{ID: "viewer", Mode: permission.Default}}); err != nil {
		t.Fatal(err)
	}
	if err := call.MuteUser("host", "pub", channel.Video, channel.Mute, ""); err != nil {
		t.Fatal(err)
	}
	c.send(t, clk, cam, 30)
	clk.Advance(time.Second)
	cam.Pump()
	for _, p := range payloads(t, sink, before) {
		if c.sent[string(p.Payload)] {
			t.Fatal("admin mute: a publisher packet was forwarded")
		}
	}
	if err := call.Leave("viewer"); err != nil {
		t.Fatal(err)
	}
	if _, rec := viewer.get("pub/cam"); !rec.closed {
		t.Fatal("the viewer left but its reception was not closed")
	}
}
