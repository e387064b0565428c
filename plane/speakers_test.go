package plane_test

import (
	"context"
	"slices"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/pion/rtp"

	"github.com/callcore/callcore/channel"
	"github.com/callcore/callcore/forward"
	"github.com/callcore/callcore/internal/clocktest"
	"github.com/callcore/callcore/plane"
)

// mic sends 20 ms Opus-like packets with an audio level.
type mic struct{ seq uint16 }

func (m *mic) send(t *testing.T, tr *forward.Track, level uint8) {
	t.Helper()
	p := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 111, SequenceNumber: m.seq, Timestamp: uint32(m.seq) * 960, SSRC: 7},
		Payload: []byte{0xfc, byte(m.seq), 0x33}}
	if err := p.SetExtension(1, []byte{0x80 | level}); err != nil {
		t.Fatal(err)
	}
	b, err := p.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if err := tr.HandleRTP(b); err != nil {
		t.Fatal(err)
	}
	m.seq++
}

// speakerCall is a channel of three publishers (mic and cam) and one
// viewer, on a plane that reports speakers to the registry, in a synctest
// bubble: time is the bubble's, so the speaker Group's ticker and the
// packets' pacing are exact.
type speakerCall struct {
	t      *testing.T
	pl     *plane.Plane
	call   *channel.Channel
	eps    map[string]*endpoint
	mics   map[string]*mic
	cams   map[string]*camera
	viewer *channel.Subscription
	// prio is the viewer's endpoint: it records the priority the plane
	// gives each of its receptions.
	prio   *prioEndpoint
	start  time.Time
	events []speakersAt
}

type speakersAt struct {
	at    time.Duration
	users []string
}

func newSpeakerCall(t *testing.T, lastN int) *speakerCall {
	var reg atomic.Pointer[channel.Registry]
	pl, err := plane.New(plane.Config{OnSpeakers: plane.SpeakerSinkFunc(func(ch string, s []channel.Speaker) error {
		return reg.Load().SetSpeakers(ch, s)
	})})
	if err != nil {
		t.Fatal(err)
	}
	r, err := channel.NewRegistry(channel.Config{Media: pl})
	if err != nil {
		t.Fatal(err)
	}
	reg.Store(r)
	t.Cleanup(func() { r.Close(); pl.Close() })
	call, viewer, err := r.Create("viewer", "room", channel.CreateOptions{Config: channel.CallConfig{LastN: lastN}})
	if err != nil {
		t.Fatal(err)
	}
	c := &speakerCall{t: t, pl: pl, call: call, viewer: viewer, eps: map[string]*endpoint{}, mics: map[string]*mic{}, cams: map[string]*camera{}, start: time.Now()}
	for i, id := range []string{"viewer", "ann", "ben", "cat"} {
		if id != "viewer" {
			if _, err := call.Join(context.Background(), id, []channel.TrackInfo{{Name: "mic", Kind: channel.Audio}, {Name: "cam", Kind: channel.Video}}); err != nil {
				t.Fatal(err)
			}
			c.mics[id], c.cams[id] = &mic{}, &camera{sent: map[string]bool{}}
		}
		c.eps[id] = newEndpoint(uint32(i * 100))
		c.eps[id].levels = true
		var ep plane.Endpoint = c.eps[id]
		if id == "viewer" {
			c.prio = &prioEndpoint{endpoint: c.eps[id], prio: map[string]int{}}
			ep = c.prio
		}
		if err := pl.Attach("room", id, ep); err != nil {
			t.Fatal(err)
		}
		if id != "viewer" {
			c.eps[id].publish(t, pl, "room", id, "mic", channel.Audio)
			c.eps[id].publish(t, pl, "room", id, "cam", channel.Video)
		}
	}
	return c
}

// run sends 20 ms of audio (each publisher at the level talk gives it)
// and one video packet per publisher, for d, collecting the viewer's
// cnl:speakers events.
func (c *speakerCall) run(d time.Duration, talk func(id string) uint8) {
	unused := &clocktest.Clock{}
	for end := time.Now().Add(d); time.Now().Before(end); {
		for _, id := range []string{"ann", "ben", "cat"} {
			c.mics[id].send(c.t, c.eps[id].feed("mic"), talk(id))
			c.cams[id].send(c.t, unused, c.eps[id].feed("cam"), 1)
		}
		time.Sleep(20 * time.Millisecond)
		synctest.Wait()
		for {
			select {
			case ev := <-c.viewer.C():
				if ev.Type == channel.EventSpeakers {
					var users []string
					for _, s := range ev.Speakers {
						users = append(users, s.User)
					}
					c.events = append(c.events, speakersAt{time.Since(c.start), users})
				}
				continue
			default:
			}
			break
		}
	}
}

// dominantAt returns when id first became dominant at or after from, -1
// if it did not.
func (c *speakerCall) dominantAt(id string, from time.Duration) time.Duration {
	for _, e := range c.events {
		if e.at >= from && len(e.users) > 0 && e.users[0] == id {
			return e.at
		}
	}
	return -1
}

// video returns how many video packets the viewer received from each
// publisher.
func (c *speakerCall) video() map[string]int {
	out := map[string]int{}
	for _, id := range []string{"ann", "ben", "cat"} {
		out[id] = c.eps["viewer"].sink(c.t, id+"/cam").Len()
	}
	return out
}

func grew(before, after map[string]int) []string {
	var ids []string
	for _, id := range []string{"ann", "ben", "cat"} {
		if after[id] > before[id] {
			ids = append(ids, id)
		}
	}
	return ids
}

func talker(who *string, loud uint8) func(string) uint8 {
	return func(id string) uint8 {
		if id == *who {
			return loud
		}
		return 127
	}
}

// TestDominantSpeakerAndLastNFollowTheTalker: the viewer's cnl:speakers
// names each talker within a second, a muted talker loses it, and with
// lastN 1 the viewer receives only the current speaker's video.
func TestDominantSpeakerAndLastNFollowTheTalker(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newSpeakerCall(t, 1)
		who := ""
		c.run(time.Second, talker(&who, 127)) // nobody talks
		if len(c.events) != 0 {
			t.Fatalf("speakers while everyone is silent: %v", c.events)
		}

		for _, next := range []string{"ben", "cat", "ann"} {
			who = next
			from := time.Since(c.start)
			c.run(time.Second, talker(&who, 30))
			at := c.dominantAt(who, from)
			if at < 0 {
				t.Fatalf("%s talks from %v: not dominant within a second; events %v", who, from, c.events)
			}
			t.Logf("%s dominant %v after it started talking", who, at-from)
			// Its video resumes on the next key frame; the others are
			// paused for the viewer.
			c.run(700*time.Millisecond, talker(&who, 30))
			before := c.video()
			c.run(time.Second, talker(&who, 30))
			if got := grew(before, c.video()); !slices.Equal(got, []string{who}) {
				t.Fatalf("with lastN 1 and %s speaking, the viewer receives video of %v", who, got)
			}
		}

		// ann is muted while she goes on talking: she loses the role and
		// leaves the speakers.
		from := time.Since(c.start)
		if err := c.call.MuteTracks("ann", []string{"mic"}, channel.Mute); err != nil {
			t.Fatal(err)
		}
		c.run(time.Second, talker(&who, 30))
		last := c.events[len(c.events)-1]
		if last.at < from || slices.Contains(last.users, "ann") {
			t.Fatalf("ann muted at %v: speakers %v", from, c.events)
		}
		t.Logf("muted ann left the speakers %v after the mute", last.at-from)
	})
}

func TestNoLastNForwardsEveryVideo(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newSpeakerCall(t, 0)
		who := "ben"
		c.run(time.Second, talker(&who, 30))
		before := c.video()
		c.run(time.Second, talker(&who, 30))
		if got := grew(before, c.video()); len(got) != 3 {
			t.Fatalf("without lastN the viewer receives video of %v, want all three", got)
		}
		if c.dominantAt("ben", 0) < 0 {
			t.Fatalf("events %v", c.events)
		}
	})
}
