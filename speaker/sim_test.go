package speaker

import (
	"slices"
	"testing"
	"time"
)

// Levels of the synthetic traces, in -dBov.
const (
	silent = 127
	loud   = 20 // a cough, a click
	noLvl  = -1 // no packet in this frame
)

// sim drives a Detector frame by frame with a manual time: every 20 ms
// each source may send one level, and every Interval the Group decides,
// exactly as its goroutine would (tick).
type sim struct {
	t       testing.TB
	g       *Group
	d       *Detector
	src     map[string]*Source
	keys    []string
	nowMs   int64
	changes []change
}

// change is one OnChange call and when it happened.
type change struct {
	ms    int64
	order []Speaker
}

func newSim(t testing.TB, keys ...string) *sim {
	t.Helper()
	s := &sim{t: t, src: map[string]*Source{}, keys: keys}
	g, err := newGroup(Config{Clock: clockFunc(func() int64 { return s.nowMs * 1e6 })})
	if err != nil {
		t.Fatal(err)
	}
	s.g = g
	s.d, err = g.NewDetector(DetectorConfig{OnChange: func(o []Speaker) {
		s.changes = append(s.changes, change{s.nowMs, o})
	}})
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if s.src[k], err = s.d.Add(k); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

// remove removes key from the Detector and the trace.
func (s *sim) remove(key string) {
	s.t.Helper()
	if err := s.d.Remove(key); err != nil {
		s.t.Fatal(err)
	}
	s.keys = slices.DeleteFunc(s.keys, func(k string) bool { return k == key })
}

// clockFunc adapts a function to Clock.
type clockFunc func() int64

func (f clockFunc) Nanotime() int64 { return f() }

// run plays durMs of audio: level(key, ms) gives each source's level at
// each 20 ms frame (noLvl for no packet).
func (s *sim) run(durMs int64, level func(key string, ms int64) int) {
	s.t.Helper()
	interval := int64(s.g.cfg.Interval / time.Millisecond)
	for end := s.nowMs + durMs; s.nowMs < end; {
		for _, k := range s.keys {
			if l := level(k, s.nowMs); l >= 0 {
				if err := s.src[k].Level(uint8(l), true, s.nowMs*1e6); err != nil {
					s.t.Fatalf("Level(%s, %d): %v", k, l, err)
				}
			}
		}
		s.nowMs += frameMs
		if s.nowMs%interval == 0 {
			s.g.adopt()
			s.g.tick(s.nowMs * 1e6)
		}
	}
}

// orderAt returns the order reported last at or before ms.
func (s *sim) orderAt(ms int64) []Speaker {
	var o []Speaker
	for _, c := range s.changes {
		if c.ms <= ms {
			o = c.order
		}
	}
	return o
}

// dominantAt returns the dominant speaker's key at ms ("" for none).
func (s *sim) dominantAt(ms int64) string {
	if o := s.orderAt(ms); len(o) > 0 {
		return o[0].Key
	}
	return ""
}

// firstDominant returns when key first became dominant at or after ms, or
// -1.
func (s *sim) firstDominant(key string, ms int64) int64 {
	for _, c := range s.changes {
		if c.ms >= ms && len(c.order) > 0 && c.order[0].Key == key {
			return c.ms
		}
	}
	if s.dominantAt(ms) == key {
		return ms
	}
	return -1
}

// dominantThroughout fails unless key is dominant at every decision in
// [from, to].
func (s *sim) dominantThroughout(key string, from, to int64) {
	s.t.Helper()
	for _, c := range s.changes {
		if c.ms > from && c.ms <= to && (len(c.order) == 0 || c.order[0].Key != key) {
			s.t.Fatalf("at %d ms the order became %v; %s should have stayed dominant", c.ms, c.order, key)
		}
	}
	if s.dominantAt(from) != key {
		s.t.Fatalf("at %d ms %s is not dominant (order %v)", from, key, s.orderAt(from))
	}
}

// speech is a talker's level at ms: 30 to 40 dBov with a short dip
// between syllables (one frame in nine at 60 dBov), deterministic.
func speech(ms int64) int {
	f := ms / frameMs
	if f%9 == 8 {
		return 60
	}
	return 30 + int(f*7%11)
}

// talking returns a trace where each key talks in its [from, to) spans
// (ms) and is silent otherwise.
func talking(spans map[string][][2]int64) func(string, int64) int {
	return func(key string, ms int64) int {
		for _, sp := range spans[key] {
			if ms >= sp[0] && ms < sp[1] {
				return speech(ms)
			}
		}
		return silent
	}
}

func keysOf(o []Speaker) []string {
	k := make([]string, len(o))
	for i, s := range o {
		k[i] = s.Key
	}
	return k
}

func hasKey(o []Speaker, key string) bool {
	return slices.Contains(keysOf(o), key)
}
