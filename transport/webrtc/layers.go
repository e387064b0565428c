package webrtc

import (
	"github.com/callcore/callcore/forward"
)

// LayerOf maps a publisher's rid to its layer: q, h and f (quarter, half
// and full size).
func LayerOf(rid string) (forward.Layer, bool) {
	switch rid {
	case "q":
		return forward.LayerQ, true
	case "h":
		return forward.LayerH, true
	case "f":
		return forward.LayerF, true
	}
	return 0, false
}

// layered is what a subscription of a layered source keeps: the layers
// and the highest layer wanted (guarded by the subscription's openMu).
type layered struct {
	l   *forward.Layers
	max forward.Layer
}

// SubscribeLayers sends a source published as layers (forward.Layers) to
// the peer's user as one track, fed by one layer at a time: the best up
// to max (SetMaxLayer changes it; the switch waits for the new layer's key
// frame while the current one flows). A layered subscription sends
// through pion's write path, not a track's batch: its layers are fanned
// out by different goroutines.
func (p *Peer) SubscribeLayers(l *forward.Layers, max forward.Layer, info PublishInfo) (*Subscription, error) {
	var track *forward.Track
	for _, t := range l.Tracks() {
		if t != nil {
			track = t
			break
		}
	}
	return p.subscribe(track, info, &layered{l: l, max: max})
}

// SetMaxLayer sets the highest layer a layered subscription wants. Before
// the client's answer binds the track it only takes note.
func (s *Subscription) SetMaxLayer(max forward.Layer) error {
	if s.layers == nil {
		return ErrNotLayered
	}
	s.openMu.Lock()
	defer s.openMu.Unlock()
	s.layers.max = max
	if fs := s.sub.Load(); fs != nil {
		return s.layers.l.SetMax(fs, min(max, s.bw.max))
	}
	return nil
}

// Layer returns the layer a layered subscription's packets come from now,
// and false for a subscription of one track, or before the client's
// answer binds it.
func (s *Subscription) Layer() (forward.Layer, bool) {
	fs := s.sub.Load()
	if s.layers == nil || fs == nil {
		return 0, false
	}
	cur, _, _, err := s.layers.l.Layer(fs)
	return cur, err == nil
}

// attach attaches the bound subscriber to its source, with openMu held.
func (s *Subscription) attach(fs *forward.Subscriber) error {
	if s.layers != nil {
		return s.layers.l.Attach(fs, min(s.layers.max, s.bw.max))
	}
	return fs.SwitchTo(s.track)
}
