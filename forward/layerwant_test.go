package forward_test

import (
	"testing"
	"time"

	"github.com/callcore/callcore/forward"
	"github.com/callcore/callcore/transport/memory"
)

func wantedOf(l *forward.Layers) string {
	s := ""
	for i, w := range l.Wanted() {
		if w {
			s += forward.Layer(i).String()
		}
	}
	return s
}

// TestWantedLayersFollowTheSubscribers: a layer is wanted while a
// subscriber with an open gate is fed by it, switches to it or targets it,
// and for KeepWanted after; Check tells OnChange when that changes. No
// subscriber: nothing wanted; a switch up wants both layers until it is
// made, the old one for KeepWanted more; a closed gate wants nothing; a
// layer that stopped is still wanted by the subscriber that targets it,
// with the layer it was moved to.
func TestWantedLayersFollowTheSubscribers(t *testing.T) {
	changes := 0
	c := newLayeredWith(t, 1000, func(cfg *forward.LayersConfig) {
		cfg.OnChange = func() { changes++ }
	})
	step := func(n int, sending ...int) {
		for range n {
			c.tick(t, sending...)
			c.l.Check()
		}
	}
	expect := func(what, want string) {
		t.Helper()
		if got := wantedOf(c.l); got != want {
			t.Fatalf("%s: wanted %q, want %q", what, got, want)
		}
	}
	step(3)
	expect("no subscriber", "")
	var w memory.Sink
	s := c.subscribe(t, &w, 0x5151, forward.LayerQ)
	expect("a subscriber of q", "q")
	before := changes
	step(1)
	if changes != before+1 {
		t.Fatalf("Check told %d changes for the subscriber's arrival, want 1", changes-before)
	}
	step(2)
	if err := c.l.SetMax(s, forward.LayerF); err != nil {
		t.Fatal(err)
	}
	expect("switching q → f", "qf")
	step(1) // f's key frame, asked for by SetMax
	if cur, _, switching, _ := c.l.Layer(s); cur != forward.LayerF || switching {
		t.Fatalf("on %v (switching %v), want f", cur, switching)
	}
	expect("just switched to f", "qf")
	before = changes
	step(16) // 528 ms: past KeepWanted
	expect("KeepWanted after the switch", "f")
	if changes != before+1 {
		t.Fatalf("Check told %d changes for q's release, want 1", changes-before)
	}
	if err := c.l.SetMax(s, forward.LayerH); err != nil {
		t.Fatal(err)
	}
	expect("switching f → h", "hf")
	if err := c.l.SetMax(s, forward.LayerF); err != nil {
		t.Fatal(err)
	}
	expect("f → h called off, within KeepWanted", "hf")
	step(16)
	expect("KeepWanted after h was called off", "f")

	s.SetOpen(false)
	step(16)
	expect("a closed gate", "")
	s.SetOpen(true)
	expect("the gate open again", "f")

	// f stops: the subscriber moves to h (after StaleAfter) and still
	// targets f, which its publisher is to send again.
	step(40, 0, 1)
	if cur, _, _, _ := c.l.Layer(s); cur != forward.LayerH {
		t.Fatalf("on %v after f stopped, want h", cur)
	}
	expect("f stopped", "hf")

	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	expect("closed, within KeepWanted", "hf")
	step(16, 0, 1)
	expect("closed", "")
}

// TestWantedCountsLayersNotPresent: a layer that has not arrived is
// wanted, so that its publisher sends it.
func TestWantedCountsLayersNotPresent(t *testing.T) {
	c := newLayered(t, 1000)
	l, err := forward.NewLayers(forward.LayersConfig{Manual: true, Tracks: [forward.NumLayers]*forward.Track{forward.LayerQ: c.tracks[0]}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	if got := wantedOf(l); got != "hf" {
		t.Fatalf("wanted %q with q alone and no subscriber, want hf", got)
	}
	if _, err := forward.NewLayers(forward.LayersConfig{Tracks: l.Tracks(), KeepWanted: -time.Second}); err == nil {
		t.Fatal("a negative KeepWanted was accepted")
	}
}
