package plane_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/callcore/callcore/channel"
	"github.com/callcore/callcore/forward"
	"github.com/callcore/callcore/internal/clocktest"
	"github.com/callcore/callcore/permission"
	"github.com/callcore/callcore/plane"
)

// TestTransportMadeTracks: a track a transport made on its own clock is
// taken by Published only for a track the channel lists, subscribes the
// attached viewer through its Endpoint, and gets the channel's media
// effects (receive permission, admin mute); the viewer leaving closes its
// reception.
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
	viewer := newEndpoint(100)
	for id, ep := range map[string]plane.Endpoint{"pub": newEndpoint(0), "viewer": viewer} {
		if err := pl.Attach("c", id, ep); err != nil {
			t.Fatal(err)
		}
	}
	if viewer.Reception("pub/cam") != nil {
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
	sink := viewer.Sink("pub/cam")
	if viewer.Reception("pub/cam") == nil {
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
	if !viewer.Reception("pub/cam").Closed() {
		t.Fatal("the viewer left but its reception was not closed")
	}
}
