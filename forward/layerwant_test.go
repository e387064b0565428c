package forward_test

import (
	"testing"
	"time"

	"github.com/callcore/callcore/forward"
	"github.com/callcore/callcore/internal/layertest"
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
// and for KeepWanted after; the lowest always. Check tells OnChange when
// that changes. No subscriber: q alone; a switch up wants both layers
// until it is made, the old one for KeepWanted more; a closed gate wants
// q alone; a layer that stopped is still wanted by the subscriber that
// targets it, with the layer it was moved to.
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
	expect("no subscriber", "q")
	var w memory.Sink
	s := c.subscribe(t, &w, 0x5151, forward.LayerH)
	expect("a subscriber of h", "qh")
	before := changes
	step(1)
	if changes != before+1 {
		t.Fatalf("Check told %d changes for the subscriber's arrival, want 1", changes-before)
	}
	step(2)
	if err := c.l.SetMax(s, forward.LayerF); err != nil {
		t.Fatal(err)
	}
	expect("switching h → f", "qhf")
	step(1) // f's key frame, asked for by SetMax
	if cur, _, switching, _ := c.l.Layer(s); cur != forward.LayerF || switching {
		t.Fatalf("on %v (switching %v), want f", cur, switching)
	}
	expect("just switched to f", "qhf")
	before = changes
	step(16) // 528 ms: past KeepWanted
	expect("KeepWanted after the switch", "qf")
	if changes != before+1 {
		t.Fatalf("Check told %d changes for h's release, want 1", changes-before)
	}
	if err := c.l.SetMax(s, forward.LayerH); err != nil {
		t.Fatal(err)
	}
	expect("switching f → h", "qhf")
	if err := c.l.SetMax(s, forward.LayerF); err != nil {
		t.Fatal(err)
	}
	expect("f → h called off, within KeepWanted", "qhf")
	step(16)
	expect("KeepWanted after h was called off", "qf")

	s.SetOpen(false)
	step(16)
	expect("a closed gate", "q")
	s.SetOpen(true)
	expect("the gate open again", "qf")

	// f stops: the subscriber moves to h (after StaleAfter) and still
	// targets f, which its publisher is to send again.
	step(40, 0, 1)
	if cur, _, _, _ := c.l.Layer(s); cur != forward.LayerH {
		t.Fatalf("on %v after f stopped, want h", cur)
	}
	expect("f stopped", "qhf")

	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	expect("closed, within KeepWanted", "qhf")
	step(16, 0, 1)
	expect("closed", "q")
}

// TestWantedCountsLayersNotPresent: a layer that has not arrived is
// wanted, so that its publisher sends it; the lowest present always is.
func TestWantedCountsLayersNotPresent(t *testing.T) {
	c := newLayered(t, 1000)
	l, err := forward.NewLayers(forward.LayersConfig{Manual: true, Tracks: [forward.NumLayers]*forward.Track{forward.LayerH: c.tracks[1]}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	if got := wantedOf(l); got != "qhf" {
		t.Fatalf("wanted %q with h alone and no subscriber, want qhf", got)
	}
	if _, err := forward.NewLayers(forward.LayersConfig{Tracks: l.Tracks(), KeepWanted: -time.Second}); err == nil {
		t.Fatal("a negative KeepWanted was accepted")
	}
}

// TestSwitchToAStoppedLayerWaitsForIt: a subscriber on f whose max drops
// to h while h is stopped (its publisher stopped it for having no
// receiver) keeps f until h sends again and moves straight onto h's key
// frame, never dipping to q; a subscriber whose own layer stopped moves
// to the best live one at once, as before.
func TestSwitchToAStoppedLayerWaitsForIt(t *testing.T) {
	c := newLayered(t, 1000)
	var w memory.Sink
	s := c.subscribe(t, &w, 0x5151, forward.LayerF)
	step := func(n int, sending ...int) {
		for range n {
			c.tick(t, sending...)
			c.l.Check()
		}
	}
	step(3)
	step(40, 0, 2) // h stops: taken as stopped after StaleAfter
	if err := c.l.SetMax(s, forward.LayerH); err != nil {
		t.Fatal(err)
	}
	if cur, next, switching, _ := c.l.Layer(s); cur != forward.LayerF || !switching || next != forward.LayerH {
		t.Fatalf("on %v, switching %v to %v; want on f, switching to h", cur, switching, next)
	}
	if got := wantedOf(c.l); got != "qhf" {
		t.Fatalf("wanted %q, want qhf", got)
	}
	step(10, 0, 2)
	if cur, _, _, _ := c.l.Layer(s); cur != forward.LayerF {
		t.Fatalf("on %v while h is stopped, want f", cur)
	}
	step(5) // h is back: its first frame is the key frame the switch asked for
	if cur, _, switching, _ := c.l.Layer(s); cur != forward.LayerH || switching {
		t.Fatalf("on %v (switching %v) once h is back, want h", cur, switching)
	}
	out := read(t, &w)
	sw, err := layertest.Continuity(out)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range out {
		if o.Layer == 0 {
			t.Fatal("a packet of q: the switch dipped to q")
		}
	}
	if len(sw) != 1 || out[sw[0]].Layer != 1 {
		t.Fatalf("switches at %v, want one, to h", sw)
	}
	if _, _, err := layertest.Decode(out, sw[0]); err != nil {
		t.Fatal(err)
	}
}

// TestHeldLayerIsReleasedWithNoSubscriber: with no subscriber, a layer
// that stops being the lowest (a lower one arrived) is released once
// KeepWanted has passed, found and told by the watcher, which sleeps
// otherwise.
func TestHeldLayerIsReleasedWithNoSubscriber(t *testing.T) {
	c := newLayered(t, 1000)
	changed := make(chan struct{}, 16)
	l, err := forward.NewLayers(forward.LayersConfig{
		Tracks:     [forward.NumLayers]*forward.Track{forward.LayerH: c.tracks[1], forward.LayerF: c.tracks[2]},
		Clock:      forward.NewSystemClock(),
		StaleAfter: 40 * time.Millisecond,
		KeepWanted: 50 * time.Millisecond,
		OnChange: func() {
			select {
			case changed <- struct{}{}:
			default:
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	if got := wantedOf(l); got != "qh" {
		t.Fatalf("wanted %q with h and f, want qh (q not arrived, h the lowest)", got)
	}
	if err := l.AddLayer(forward.LayerQ, c.tracks[0]); err != nil {
		t.Fatal(err)
	}
	if got := wantedOf(l); got != "qh" {
		t.Fatalf("wanted %q just after q arrived, want qh (h held)", got)
	}
	end := time.Now().Add(5 * time.Second)
	for wantedOf(l) != "q" {
		select {
		case <-changed:
		case <-time.After(time.Until(end)):
			t.Fatalf("wanted %q 5 s after q arrived, want q", wantedOf(l))
		}
	}
}
