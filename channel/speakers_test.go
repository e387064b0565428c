package channel

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
)

func TestSpeakersAreAnEventInTheChannelsOrder(t *testing.T) {
	h := newHarness(t, Config{}, CreateOptions{Tracks: []TrackInfo{mic}})
	h.join("bob", mic)
	h.drain("own")
	h.drain("bob")

	h.must(h.c.SetSpeakers([]Speaker{{User: "bob", Level: 30}, {User: "own", Level: 50}, {User: "gone", Level: 40}}))
	h.must(h.c.SetSpeakers([]Speaker{{User: "bob", Level: 20}, {User: "own", Level: 60}})) // levels only: no event
	h.must(h.c.Leave("own"))
	h.must(h.c.SetSpeakers([]Speaker{{User: "own", Level: 10}, {User: "bob", Level: 20}})) // own left: bob alone
	h.must(h.c.SetSpeakers([]Speaker{{User: "bob", Level: 25}}))                           // the same: no event
	h.must(h.c.SetSpeakers(nil))

	evs, _ := h.drain("bob")
	eq(t, "bob's events", types(evs), []string{"5:cnl:speakers", "6:user:left:own", "7:cnl:speakers", "8:cnl:speakers"})
	if got := evs[0].Speakers; !slices.Equal(got, []Speaker{{User: "bob", Level: 30}, {User: "own", Level: 50}}) {
		t.Fatalf("speakers %+v: the inactive user must be left out, the order kept", got)
	}
	if got := evs[2].Speakers; !slices.Equal(got, []Speaker{{User: "bob", Level: 20}}) {
		t.Fatalf("speakers %+v, want bob alone", got)
	}
	if len(evs[3].Speakers) != 0 {
		t.Fatalf("speakers %+v, want none", evs[3].Speakers)
	}
	if evs[0].Type.String() != "cnl:speakers" {
		t.Fatalf("event name %q", evs[0].Type)
	}
}

func TestBadSpeakersAreRefusedAndChangeNothing(t *testing.T) {
	h := newHarness(t, Config{}, CreateOptions{Tracks: []TrackInfo{mic}})
	h.drain("own")
	seq := h.seq()
	for _, bad := range [][]Speaker{
		{{User: "", Level: 1}},
		{{User: "own", Level: 128}},
		{{User: "own", Level: -1}},
		{{User: "own"}, {User: "own"}},
		make([]Speaker, MaxBatch+1),
	} {
		if err := h.c.SetSpeakers(bad); !errors.Is(err, ErrInvalid) {
			t.Fatalf("SetSpeakers(%d speakers) = %v, want ErrInvalid", len(bad), err)
		}
	}
	if err := h.r.SetSpeakers("nope", nil); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown channel: %v", err)
	}
	if h.seq() != seq {
		t.Fatal("a refused SetSpeakers emitted an event")
	}
	h.must(h.c.Delete("own", ""))
	if err := h.c.SetSpeakers([]Speaker{{User: "own"}}); !errors.Is(err, ErrClosed) {
		t.Fatalf("deleted channel: %v", err)
	}
}

// configRecorder is a Media that also records ConfigChanged.
type configRecorder struct {
	NopMedia
	mu   sync.Mutex
	cfgs []CallConfig
}

func (r *configRecorder) ConfigChanged(ch string, cfg CallConfig) {
	r.mu.Lock()
	r.cfgs = append(r.cfgs, cfg)
	r.mu.Unlock()
}

func TestLastNIsValidatedAndToldToMedia(t *testing.T) {
	rec := &configRecorder{}
	r, err := NewRegistry(Config{Media: rec})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, _, err := r.Create("own", "x", CreateOptions{Config: CallConfig{LastN: -1}}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("lastN -1: %v", err)
	}
	if _, _, err := r.Create("own", "x", CreateOptions{Config: CallConfig{LastN: MaxLastN + 1}}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("lastN over the maximum: %v", err)
	}
	c, _, err := r.Create("own", "room", CreateOptions{Config: CallConfig{LastN: 2}})
	if err != nil {
		t.Fatal(err)
	}
	three := 3
	if err := c.UpdateConfig("own", ConfigPatch{LastN: &three}); err != nil {
		t.Fatal(err)
	}
	if err := c.Configure("own", CallConfig{LastN: -2}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("configure lastN -2: %v", err)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.cfgs) != 2 || rec.cfgs[0].LastN != 2 || rec.cfgs[1].LastN != 3 {
		t.Fatalf("ConfigChanged calls %+v, want lastN 2 (create) then 3", rec.cfgs)
	}
	rec.mu.Unlock()
	if _, err := c.Join(context.Background(), "bob", nil); err != nil {
		t.Fatal(err)
	}
	rec.mu.Lock()
	if len(rec.cfgs) != 3 || rec.cfgs[2].LastN != 3 {
		t.Fatalf("ConfigChanged calls %+v, want the configuration again at a join", rec.cfgs)
	}
	if c.Config().LastN != 3 {
		t.Fatalf("config %+v", c.Config())
	}
}
