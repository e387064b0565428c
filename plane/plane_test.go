package plane_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtp"
	"go.uber.org/goleak"

	"github.com/callcore/callcore/channel"
	"github.com/callcore/callcore/forward"
	"github.com/callcore/callcore/internal/clocktest"
	"github.com/callcore/callcore/internal/planetest"
	"github.com/callcore/callcore/permission"
	"github.com/callcore/callcore/plane"
	"github.com/callcore/callcore/transport/memory"
)

// endpoint is a user's media connection on the memory transport
// (planetest.Endpoint), and the tracks it publishes: made with the plane's
// NewTrack and handed over with Published, as a transport adapter does.
type endpoint struct {
	*planetest.Endpoint
	levels bool // its audio tracks carry the audio-level extension as ID 1

	mu    sync.Mutex // guards feeds
	feeds map[string]*forward.Track
}

func newEndpoint(ssrc uint32) *endpoint {
	return &endpoint{Endpoint: planetest.NewEndpoint(ssrc), feeds: map[string]*forward.Track{}}
}

// publish makes the track of the user's channel track name and hands it
// to the plane.
func (e *endpoint) publish(t testing.TB, pl *plane.Plane, ch, id, name string, kind channel.Kind) *forward.Track {
	t.Helper()
	cfg := forward.TrackConfig{Kind: forward.Video, ClockRate: 90000, PayloadType: 96, MimeType: "video/VP8"}
	if kind == channel.Audio {
		cfg = forward.TrackConfig{Kind: forward.Audio, ClockRate: 48000, PayloadType: 111, MimeType: "audio/opus"}
		if e.levels {
			cfg.Extensions = []forward.Extension{{ID: 1, URI: forward.URIAudioLevel}}
		}
	}
	tr, err := pl.NewTrack(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := pl.Published(ch, id, name, tr); err != nil {
		tr.Close()
		t.Fatal(err)
	}
	e.mu.Lock()
	e.feeds[name] = tr
	e.mu.Unlock()
	return tr
}

func (e *endpoint) sink(t *testing.T, name string) *memory.Sink {
	s := e.Sink(name)
	if s == nil {
		t.Fatalf("no subscription %s", name)
	}
	return s
}

func (e *endpoint) feed(name string) *forward.Track {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.feeds[name]
}

// camera sends VP8-like packets: three a frame, a key frame every ten.
type camera struct {
	seq   uint16
	frame int
	part  int
	sent  map[string]bool
}

func (c *camera) send(t *testing.T, clk *clocktest.Clock, tr *forward.Track, n int) {
	t.Helper()
	for range n {
		key := c.part == 0 && c.frame%10 == 0
		desc, tag := byte(0), byte(1)
		if c.part == 0 {
			desc = 0x10
		}
		if key {
			tag = 0
		}
		p := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 96, SequenceNumber: c.seq, Timestamp: uint32(c.frame * 3000),
			SSRC: 42, Marker: c.part == 2}, Payload: []byte{desc, tag, byte(c.seq), byte(c.seq >> 8), 0xC0}}
		b, err := p.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		c.sent[string(b[12:])] = true
		if err := tr.HandleRTP(b); err != nil {
			t.Fatal(err)
		}
		c.seq++
		if c.part++; c.part == 3 {
			c.part, c.frame = 0, c.frame+1
			clk.Advance(33 * time.Millisecond)
		}
	}
}

func payloads(t *testing.T, s *memory.Sink, from int) []rtp.Packet {
	var out []rtp.Packet
	for _, b := range s.Packets()[from:] {
		var p rtp.Packet
		if err := p.Unmarshal(b); err != nil {
			t.Fatal(err)
		}
		out = append(out, p)
	}
	return out
}

// newCall makes a plane on clk, a registry with it as Media, and a channel
// id created by owner. done closes the registry and the plane.
func newCall(t *testing.T, clk *clocktest.Clock, owner, id string) (*plane.Plane, *channel.Channel, func()) {
	t.Helper()
	return newCallWith(t, plane.Config{Clock: clk}, owner, id)
}

// newCallWith is newCall with the plane's config.
func newCallWith(t *testing.T, cfg plane.Config, owner, id string) (*plane.Plane, *channel.Channel, func()) {
	t.Helper()
	pl, err := plane.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	reg, err := channel.NewRegistry(channel.Config{Media: pl})
	if err != nil {
		pl.Close()
		t.Fatal(err)
	}
	done := func() { reg.Close(); pl.Close() }
	call, _, err := reg.Create(owner, id, channel.CreateOptions{})
	if err != nil {
		done()
		t.Fatal(err)
	}
	return pl, call, done
}

// TestChannelDrivesMedia runs a call through the channel API with the
// plane as its Media and real packets on the memory transport.
func TestChannelDrivesMedia(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	clk := &clocktest.Clock{}
	pl, call, done := newCall(t, clk, "alice", "call")
	defer done()
	eps := map[string]*endpoint{}
	for i, id := range []string{"alice", "bob", "carol", "pub"} {
		if id != "alice" {
			tracks := []channel.TrackInfo(nil)
			if id == "pub" {
				tracks = []channel.TrackInfo{{Name: "cam", Kind: channel.Video}}
			}
			if _, err := call.Join(context.Background(), id, tracks); err != nil {
				t.Fatal(err)
			}
		}
		eps[id] = newEndpoint(uint32(i * 100))
		if err := pl.Attach("call", id, eps[id]); err != nil {
			t.Fatal(err)
		}
	}
	cam := eps["pub"].publish(t, pl, "call", "pub", "cam", channel.Video)
	c := &camera{sent: map[string]bool{}}
	bob, carol := eps["bob"].sink(t, "pub/cam"), eps["carol"].sink(t, "pub/cam")

	c.send(t, clk, cam, 30)
	if bob.Len() != 30 || carol.Len() != 30 {
		t.Fatalf("receivers got %d and %d of 30", bob.Len(), carol.Len())
	}

	// recv cleared: nothing more reaches bob, carol goes on.
	if err := call.ModUsers("alice", []channel.UserMode{{ID: "bob", Mode: permission.Send}}); err != nil {
		t.Fatal(err)
	}
	c.send(t, clk, cam, 30)
	if bob.Len() != 30 || carol.Len() != 60 {
		t.Fatalf("recv cleared: bob has %d (want 30), carol %d (want 60)", bob.Len(), carol.Len())
	}
	// recv set again: bob resumes on a key frame.
	if err := call.ModUsers("alice", []channel.UserMode{{ID: "bob", Mode: permission.Send | permission.Recv}}); err != nil {
		t.Fatal(err)
	}
	c.send(t, clk, cam, 30)
	if got := payloads(t, bob, 30); len(got) == 0 || got[0].Payload[0]&0x10 == 0 || got[0].Payload[1]&1 != 0 {
		t.Fatal("bob did not resume on a key frame")
	}

	// Self mute: only empty media, no publisher payload.
	before := carol.Len()
	if err := call.MuteTracks("pub", []string{"cam"}, channel.Mute); err != nil {
		t.Fatal(err)
	}
	c.send(t, clk, cam, 30)
	for range 5 {
		clk.Advance(200 * time.Millisecond)
		cam.Pump()
	}
	muted := payloads(t, carol, before)
	if len(muted) < 5 {
		t.Fatalf("self mute: %d packets of empty media", len(muted))
	}
	for _, p := range muted[1:] { // the first may end the frame under way
		if c.sent[string(p.Payload)] {
			t.Fatal("self mute: a publisher payload was forwarded")
		}
	}
	if err := call.MuteTracks("pub", []string{"cam"}, channel.Unmute); err != nil {
		t.Fatal(err)
	}

	// Admin mute: a flush, then not one publisher packet.
	c.send(t, clk, cam, 30)
	before = carol.Len()
	if err := call.MuteUser("alice", "pub", channel.Video, channel.Mute, "moderated"); err != nil {
		t.Fatal(err)
	}
	c.send(t, clk, cam, 60)
	for range 5 {
		clk.Advance(200 * time.Millisecond)
		cam.Pump()
	}
	flushed := payloads(t, carol, before)
	frames := 0
	for _, p := range flushed {
		if c.sent[string(p.Payload)] {
			t.Fatal("admin mute: a publisher packet was forwarded")
		}
		if p.Marker {
			frames++
		}
	}
	if frames != 3 {
		t.Fatalf("admin mute: %d empty frames, want one black key frame and two repeat frames", frames)
	}
	if st := cam.Stats(); st.MutedDrop == 0 {
		t.Fatalf("stats %+v", st)
	}

	// The publisher leaves: its track and every subscription end.
	if err := call.Leave("pub"); err != nil {
		t.Fatal(err)
	}
	if err := cam.HandleRTP([]byte{0x80, 96, 0, 1, 0, 0, 0, 0, 0, 0, 0, 42, 0x10}); err == nil {
		t.Fatal("the publisher's track still takes packets after it left")
	}
}
