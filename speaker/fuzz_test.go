package speaker

import (
	"slices"
	"testing"
)

// fuzzSources is the number of sources FuzzSpeakers plays with.
const fuzzSources = 4

// maxFuzzFrames keeps a run under the noise floor's first rise
// (floorWindowMs), so every source's floor stays at zero and a frame's
// raw volume is what the detector counts.
const maxFuzzFrames = floorWindowMs/frameMs - 2*numFrames

// model is the oracle's view of one source: the raw volume of every frame
// it sent since it was added or unmuted, newest last.
type model struct {
	present, muted bool
	vols           []uint8
}

// window returns the volumes of the last numFrames frames, newest first;
// frames before the history are silent.
func (m *model) window() [numFrames]uint8 {
	var w [numFrames]uint8
	for i := 0; i < numFrames && i < len(m.vols); i++ {
		w[i] = m.vols[len(m.vols)-1-i]
	}
	return w
}

// fullBlocks counts the 100 ms blocks of the window whose 5 frames all
// have volume 80 or more (-dBov 47 or less).
func fullBlocks(w [numFrames]uint8) int {
	n := 0
	for b := 0; b < numBlocks; b++ {
		if !slices.ContainsFunc(w[b*blockLen:(b+1)*blockLen], func(v uint8) bool { return v < 80 }) {
			n++
		}
	}
	return n
}

// loudNow reports whether the newest frame is audible on the immediate
// horizon (volume 40 or more) and one of the last 5 is loud (80 or more).
func loudNow(w [numFrames]uint8) bool {
	return w[0] >= wakeVolume && slices.ContainsFunc(w[:blockLen], func(v uint8) bool { return v >= 80 })
}

// FuzzSpeakers plays fuzzed levels, mutes and removals for four sources
// sending one level per 20 ms, a decision every 300 ms, and checks after
// every decision, against a model that keeps each source's raw levels:
//
//   - the order has no duplicate and holds only present, unmuted sources;
//   - the sources after the first are exactly the present, unmuted ones
//     with a whole loud block (5 frames of volume >= 80, aligned on the
//     newest frame) within the last second;
//   - the order is empty only when no such source exists;
//   - when the dominant speaker changes while the old one is still
//     present and unmuted, the new one is loud now (newest frame volume
//     >= 40 and a frame >= 80 among its last 5) and the old one is not
//     (no frame >= 80 among its last 5), and the new one has more loud
//     blocks in the window: the dominant speaker is the one who spoke
//     most recently among those who spoke for long enough;
//   - when the old dominant speaker is gone (removed, muted) or there was
//     none, the new one has the most loud blocks of all.
//
// Input: a byte 0xf0+i toggles the mute of source i, 0xf4+i removes it (or
// adds it back); any other byte starts a frame whose next four bytes are
// the four sources' levels in -dBov (mod 128).
func FuzzSpeakers(f *testing.F) {
	talk := func(frames int, lv ...byte) []byte {
		var b []byte
		for range frames {
			b = append(b, 0, lv[0], lv[1], lv[2], lv[3])
		}
		return b
	}
	f.Add(append(talk(60, 30, 127, 127, 127), talk(60, 127, 35, 127, 127)...))
	f.Add(append(append(talk(60, 30, 127, 127, 127), 0xf0), talk(60, 30, 35, 127, 127)...))
	f.Add(append(append(talk(60, 30, 30, 127, 127), 0xf4), talk(60, 127, 30, 20, 127)...))
	f.Add(talk(120, 30, 20, 127, 60))
	f.Fuzz(func(t *testing.T, in []byte) {
		s := newSim(t, "s0", "s1", "s2", "s3")
		keys := slices.Clone(s.keys)
		m := make([]model, fuzzSources)
		for i := range m {
			m[i].present = true
		}
		var prev []Speaker
		frames := 0
		for len(in) > 0 && frames < maxFuzzFrames {
			c := in[0]
			in = in[1:]
			switch {
			case c >= 0xf0 && c < 0xf4:
				i := int(c - 0xf0)
				if m[i].present {
					m[i].muted = !m[i].muted
					m[i].vols = nil
					if err := s.d.SetMuted(keys[i], m[i].muted); err != nil {
						t.Fatal(err)
					}
				}
				continue
			case c >= 0xf4 && c < 0xf8:
				i := int(c - 0xf4)
				if m[i].present {
					s.remove(keys[i])
				} else {
					src, err := s.d.Add(keys[i])
					if err != nil {
						t.Fatal(err)
					}
					s.src[keys[i]] = src
					s.keys = append(s.keys, keys[i])
				}
				m[i] = model{present: !m[i].present}
				continue
			}
			var lv [fuzzSources]int
			for i := range lv {
				if len(in) > 0 {
					lv[i], in = int(in[0]%128), in[1:]
				} else {
					lv[i] = silent
				}
				if m[i].present {
					m[i].vols = append(m[i].vols, uint8(127-lv[i]))
				}
			}
			n := len(s.changes)
			s.run(frameMs, func(key string, _ int64) int { return lv[slices.Index(keys, key)] })
			frames++
			if s.nowMs%300 != 0 {
				continue
			}
			order := s.d.Speakers()
			if len(s.changes) > n {
				order = s.changes[len(s.changes)-1].order
			}
			checkOrder(t, s.nowMs, keys, m, prev, order)
			prev = order
		}
	})
}

// checkOrder checks FuzzSpeakers' invariants for one decision.
func checkOrder(t *testing.T, ms int64, keys []string, m []model, prev, order []Speaker) {
	t.Helper()
	idx := func(key string) int { return slices.Index(keys, key) }
	speaking := func(i int) bool { return m[i].present && !m[i].muted && fullBlocks(m[i].window()) > 0 }
	seen := map[string]bool{}
	for j, sp := range order {
		i := idx(sp.Key)
		if i < 0 || seen[sp.Key] || !m[i].present || m[i].muted {
			t.Fatalf("%d ms: order %v: %s is a duplicate, absent or muted", ms, order, sp.Key)
		}
		seen[sp.Key] = true
		if j > 0 && !speaking(i) {
			t.Fatalf("%d ms: order %v: %s has no loud block in the last second", ms, order, sp.Key)
		}
	}
	for i := range m {
		if speaking(i) && !seen[keys[i]] {
			t.Fatalf("%d ms: order %v misses %s, loud for a whole block", ms, order, keys[i])
		}
	}
	if len(order) == 0 || len(prev) > 0 && prev[0].Key == order[0].Key {
		return
	}
	nw := m[idx(order[0].Key)].window()
	if len(prev) > 0 {
		if o := idx(prev[0].Key); m[o].present && !m[o].muted {
			ow := m[o].window()
			if !loudNow(nw) || slices.ContainsFunc(ow[:blockLen], func(v uint8) bool { return v >= 80 }) ||
				fullBlocks(nw) <= fullBlocks(ow) {
				t.Fatalf("%d ms: %s took over from %s: new %v, old %v", ms, order[0].Key, prev[0].Key, nw[:blockLen], ow[:blockLen])
			}
			return
		}
	}
	for i := range m {
		if speaking(i) && fullBlocks(m[i].window()) > fullBlocks(nw) {
			t.Fatalf("%d ms: %s became dominant with %d loud blocks, %s has %d", ms, order[0].Key, fullBlocks(nw), keys[i], fullBlocks(m[i].window()))
		}
	}
}
