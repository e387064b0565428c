package forward

// Which layers are wanted: a layer nobody receives need not be encoded.
// Its owner (the plane) tells the publisher, which stops sending it; the
// layer then goes stale (Check) and comes back live when a subscriber
// wants it again and the publisher resumes it. A layer counts as wanted
// while a subscriber with an open gate
//
//   - is fed by it (the current layer of a switch made before it breaks),
//   - is switching to it (the switch waits for its key frame), or
//   - would get it if every layer present were live (its target, Nearest):
//     a layer stopped because nobody wanted it is asked for again before
//     any subscriber can move to it.
//
// A layer not present yet is wanted too, so that it arrives and becomes
// known, and so is the lowest layer present, always: a joining subscriber
// starts at once on its cached key frame, and a publisher keeps sending
// at least two layers whenever a higher one is wanted (Chromium adapts the
// picture size of a layer it sends alone to its bitrate, which would
// break choosing layers by their height). A layer stays wanted for
// KeepWanted after it was last wanted.

// wantState is what Layers keeps of the layers wanted, guarded by
// Layers.mu.
type wantState struct {
	at      [NumLayers]int64 // when the layer was last wanted; 0 never
	checked [NumLayers]bool  // the layers wanted at the last check
}

// Wanted reports, by Layer, the layers that should be sent: those a
// subscriber with an open gate receives, switches to or targets, those
// wanted within the last KeepWanted, those not present and the lowest
// present. A change found
// by Check is told to OnChange; a change made by SetMax or Attach is seen
// by calling Wanted after it.
func (l *Layers) Wanted() [NumLayers]bool {
	now := l.cfg.Clock.Nanotime()
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.wanted(now)
}

// wanted is Wanted with l.mu held; it notes when each layer was wanted.
func (l *Layers) wanted(now int64) (w [NumLayers]bool) {
	mark := func(t *Track) {
		if i := l.layerOf(t); i < NumLayers {
			w[i] = true
		}
	}
	for s, sel := range l.subs {
		if !s.open.Load() || s.shut.Load() {
			continue
		}
		w[l.nearest(sel.max)] = true
		mark(s.src.Load())
		if pd := s.pend.Load(); pd != nil {
			mark(pd.to)
		}
	}
	lowest := true
	for i, t := range l.cfg.Tracks {
		switch {
		case t != nil && lowest:
			lowest = false
			w[i] = true
			l.want.at[i] = now
		case t == nil:
			w[i] = true
		case w[i]:
			l.want.at[i] = now
		case l.want.at[i] != 0 && now-l.want.at[i] < int64(l.cfg.KeepWanted):
			w[i] = true
		}
	}
	return w
}

// holding reports whether a layer present but the lowest was wanted at
// the last check: the watcher keeps checking until KeepWanted has passed
// for it. Called with l.mu held.
func (l *Layers) holding() bool {
	lowest := true
	for i, t := range l.cfg.Tracks {
		if t == nil {
			continue
		}
		if !lowest && l.want.checked[i] {
			return true
		}
		lowest = false
	}
	return false
}

// Nearest returns the layer a subscriber wanting up to max would get if
// every layer present were live: the highest present within max, else the
// lowest present.
func (l *Layers) Nearest(max Layer) Layer {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.nearest(max)
}

// nearest is Nearest with l.mu held.
func (l *Layers) nearest(max Layer) Layer {
	pick := -1
	for i := NumLayers - 1; i >= 0; i-- {
		if l.cfg.Tracks[i] == nil {
			continue
		}
		if Layer(i) <= max {
			return Layer(i)
		}
		pick = i
	}
	if pick < 0 {
		return 0 // unreachable: Validate wants a track
	}
	return Layer(pick)
}
