package server

import (
	"sync"

	"github.com/callcore/callcore/forward"
)

// The layers push: a publisher learns which layers of its layered tracks
// have receivers, and its client stops encoding the others
// (docs/protocol.md, "layers").

// layersPush is the layers push: the layers of one of the connection's
// own tracks that are to be sent; the others are not wanted by anyone.
type layersPush struct {
	ChannelID string   `json:"channelId"`
	TrackName string   `json:"trackName"`
	Active    []string `json:"active"`
}

// wantedLayers is what a stay last told its client of the layers wanted
// of its tracks. mu is held while reading the plane and pushing, so that
// the pushes of one track go out in the order their states were read.
type wantedLayers struct {
	mu   sync.Mutex
	told map[string][forward.NumLayers]bool // by track name; guarded by mu
}

// tellWanted pushes the layers wanted of user id's track name to that
// user's session when they differ from the last ones pushed
// (plane.Config.OnLayersWanted). Changes are merged: the plane holds a
// layer wanted for a while after its last receiver left it, and nothing
// is pushed while nothing changed.
func (s *Server) tellWanted(ch, id, name string) {
	if st := s.holder(ch, id); st != nil {
		st.tellWanted(name)
	}
}

func (st *stay) tellWanted(name string) {
	w := &st.wanted
	w.mu.Lock()
	defer w.mu.Unlock()
	on, ok := st.srv.plane.WantedLayers(st.ch.ID(), st.user, name)
	ss := st.owner.Load()
	if !ok || ss == nil || st.ctx.Err() != nil {
		return
	}
	if last, told := w.told[name]; told && last == on {
		return
	}
	if w.told == nil {
		w.told = map[string][forward.NumLayers]bool{}
	}
	w.told[name] = on
	d := layersPush{ChannelID: st.ch.ID(), TrackName: name, Active: []string{}}
	for i, yes := range on {
		if yes {
			d.Active = append(d.Active, forward.Layer(i).String())
		}
	}
	ss.push("layers", d)
}

// retellWanted pushes the layers wanted of every track of the stay again
// (its session changed: the pushes to the lost one may not have arrived).
func (st *stay) retellWanted() {
	st.wanted.mu.Lock()
	names := make([]string, 0, len(st.wanted.told))
	for n := range st.wanted.told {
		names = append(names, n)
	}
	st.wanted.told = nil
	st.wanted.mu.Unlock()
	for _, n := range names {
		st.tellWanted(n)
	}
}

// forget drops what was told of removed tracks: one published again under
// the same name is told afresh.
func (w *wantedLayers) forget(names []string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, n := range names {
		delete(w.told, n)
	}
}
