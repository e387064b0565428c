package plane_test

import (
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/callcore/callcore/channel"
	"github.com/callcore/callcore/forward"
	"github.com/callcore/callcore/plane"
)

// prioEndpoint is an endpoint whose receptions record the priority the
// plane gives them (plane.Prioritized), by "publisher/track".
type prioEndpoint struct {
	*endpoint

	mu   sync.Mutex // guards prio
	prio map[string]int
}

type prioReception struct {
	plane.Reception
	e    *prioEndpoint
	name string
}

func (r *prioReception) SetPriority(p int) {
	r.e.mu.Lock()
	r.e.prio[r.name] = p
	r.e.mu.Unlock()
}

func (e *prioEndpoint) Subscribe(from string, info channel.TrackInfo, t *forward.Track) (plane.Reception, error) {
	rc, err := e.endpoint.Subscribe(from, info, t)
	if err != nil {
		return nil, err
	}
	return &prioReception{Reception: rc, e: e, name: from + "/" + info.Name}, nil
}

// priority returns the priority given to the reception of name, and
// whether one was given.
func (e *prioEndpoint) priority(name string) (int, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	p, ok := e.prio[name]
	return p, ok
}

// TestVideoPriorityFollowsPreferenceScreenAndSpeakers: the plane orders
// a viewer's video receptions for its transport's allocation as an
// explicit receive preference, then a screen share, then the current
// speakers' tracks (the dominant first), then the rest; the order
// follows the talker, and audio is given none.
func TestVideoPriorityFollowsPreferenceScreenAndSpeakers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newSpeakerCall(t, 0)
		if err := c.call.AddTracks("cat", []channel.TrackInfo{{Name: plane.ScreenTrack, Kind: channel.Video}}); err != nil {
			t.Fatal(err)
		}
		c.eps["cat"].publish(t, c.pl, "room", "cat", plane.ScreenTrack, channel.Video)
		who := ""
		c.run(500*time.Millisecond, talker(&who, 127)) // nobody talks
		prio := func(name string) int {
			t.Helper()
			p, ok := c.prio.priority(name)
			if !ok {
				t.Fatalf("no priority given to %s", name)
			}
			return p
		}
		if _, ok := c.prio.priority("ann/mic"); ok {
			t.Fatal("a priority given to audio")
		}
		if a, b, cc, s := prio("ann/cam"), prio("ben/cam"), prio("cat/cam"), prio("cat/screen"); a != b || b != cc || s <= a {
			t.Fatalf("nobody talks: cams %d %d %d, screen %d", a, b, cc, s)
		}

		who = "ben"
		c.run(time.Second, talker(&who, 30))
		if c.dominantAt("ben", 0) < 0 {
			t.Fatalf("ben not dominant: %v", c.events)
		}
		ann, ben, screen := prio("ann/cam"), prio("ben/cam"), prio("cat/screen")
		if ben <= ann || screen <= ben {
			t.Fatalf("ben speaks: ann %d, ben %d, screen %d", ann, ben, screen)
		}

		// ann takes over, ben still among the speakers or not: ann's
		// camera goes above ben's.
		who = "ann"
		from := time.Since(c.start)
		c.run(time.Second, talker(&who, 30))
		if c.dominantAt("ann", from) < 0 {
			t.Fatalf("ann not dominant: %v", c.events)
		}
		if ann, ben, screen := prio("ann/cam"), prio("ben/cam"), prio("cat/screen"); ann <= ben || screen <= ann {
			t.Fatalf("ann speaks: ann %d, ben %d, screen %d", ann, ben, screen)
		}

		// An explicit preference for cat's camera puts it above all.
		if err := c.pl.SetPreference("room", "viewer", "cat", "cam", plane.Preference{MaxHeight: 180}); err != nil {
			t.Fatal(err)
		}
		if cat, screen, ann := prio("cat/cam"), prio("cat/screen"), prio("ann/cam"); cat <= screen || cat <= ann {
			t.Fatalf("a preference for cat's camera: cat %d, screen %d, ann %d", cat, screen, ann)
		}
	})
}
