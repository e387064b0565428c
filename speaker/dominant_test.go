package speaker

import (
	"testing"
)

func TestDominantFollowsWhoTalksWithinOneSecond(t *testing.T) {
	s := newSim(t, "ann", "bob", "cid")
	s.run(6000, talking(map[string][][2]int64{"ann": {{0, 3000}}, "bob": {{3000, 6000}}}))
	a, b := s.firstDominant("ann", 0), s.firstDominant("bob", 3000)
	if a < 0 || a > 1000 || b < 0 || b-3000 > 1000 {
		t.Fatalf("ann dominant at %d ms (talks from 0), bob at %d ms (talks from 3000); changes %v", a, b, s.changes)
	}
	t.Logf("latency: ann %d ms, bob %d ms after starting to talk", a, b-3000)
	if hasKey(s.orderAt(6000), "cid") {
		t.Fatalf("silent cid is in the order %v", s.orderAt(6000))
	}
}

func TestCoughDoesNotTakeDominance(t *testing.T) {
	for _, tc := range []struct {
		name  string
		cough int64 // ms
		pause bool  // ann pauses 150 ms around the cough
	}{
		{"while talking", 2000, false},
		{"in a pause", 2000, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newSim(t, "ann", "bob")
			s.run(5000, func(key string, ms int64) int {
				if key == "bob" {
					if ms >= tc.cough && ms < tc.cough+200 {
						return loud
					}
					return silent
				}
				if tc.pause && ms >= tc.cough-20 && ms < tc.cough+130 {
					return silent
				}
				return speech(ms)
			})
			s.dominantThroughout("ann", 1000, 5000)
			if !hasKey(s.orderAt(tc.cough+300), "bob") {
				t.Logf("bob's cough did not even make him a speaker: %v", s.orderAt(tc.cough+300))
			}
		})
	}
}

func TestKeyClicksNeverMakeASpeaker(t *testing.T) {
	s := newSim(t, "ann", "bob")
	clicks := func(ms int64) int {
		if (ms/frameMs)%7 == 0 || (ms/frameMs)%7 == 1 { // 40 ms clicks every 140 ms
			return 10
		}
		return silent
	}
	// ann talks for 2 s then stays silent; bob types throughout.
	s.run(8000, func(key string, ms int64) int {
		if key == "bob" {
			return clicks(ms)
		}
		if ms < 2000 {
			return speech(ms)
		}
		return silent
	})
	s.dominantThroughout("ann", 1000, 8000)
	for _, c := range s.changes {
		if hasKey(c.order, "bob") {
			t.Fatalf("at %d ms typing bob is in the order %v", c.ms, c.order)
		}
	}
	// Clicks alone, with no dominant speaker yet, make none either.
	s2 := newSim(t, "bob")
	s2.run(3000, func(string, int64) int { return 0 })
	s3 := newSim(t, "bob")
	s3.run(5000, func(_ string, ms int64) int { return clicks(ms) })
	if len(s3.changes) != 0 {
		t.Fatalf("clicks alone reported %v", s3.changes)
	}
	if s2.dominantAt(3000) != "bob" {
		t.Fatalf("a steady loud source is not dominant: %v", s2.changes)
	}
}

func TestMutedSpeakerLosesDominance(t *testing.T) {
	s := newSim(t, "ann", "bob")
	both := func(key string, ms int64) int { return speech(ms + int64(len(key))*100) }
	s.run(2000, talking(map[string][][2]int64{"ann": {{0, 2000}}}))
	if s.dominantAt(2000) != "ann" {
		t.Fatalf("ann not dominant: %v", s.changes)
	}
	if err := s.d.SetMuted("ann", true); err != nil {
		t.Fatal(err)
	}
	// ann goes on talking (self-muted with levels still sent), bob talks.
	s.run(2000, both)
	if o := s.orderAt(s.nowMs); len(o) == 0 || o[0].Key != "bob" || hasKey(o, "ann") {
		t.Fatalf("after muting ann the order is %v", o)
	}
	for _, c := range s.changes {
		if c.ms > 2000 && c.ms <= 2100 && hasKey(c.order, "ann") {
			t.Fatalf("muted ann still in the order %v at the first decision after the mute", c.order)
		}
	}
	if at := s.firstDominant("bob", 2000); at < 0 || at-2000 > 1000 {
		t.Fatalf("bob (talking from the mute at 2000 ms) dominant at %d ms", at)
	}
	// Unmuted, ann's levels from while she was muted do not count: she
	// comes back only by talking after the unmute (while bob stops).
	if err := s.d.SetMuted("ann", false); err != nil {
		t.Fatal(err)
	}
	s.run(200, func(key string, ms int64) int {
		return map[string]int{"ann": silent, "bob": speech(ms)}[key]
	})
	if hasKey(s.orderAt(s.nowMs), "ann") {
		t.Fatalf("ann speaks right after unmute from old levels: %v", s.orderAt(s.nowMs))
	}
	start := s.nowMs
	s.run(2000, talking(map[string][][2]int64{"ann": {{start, start + 2000}}}))
	if at := s.firstDominant("ann", start); at < 0 || at-start > 1000 {
		t.Fatalf("unmuted ann dominant at %d ms after talking from %d", at, start)
	}
}

func TestAlternatingSpeakersEachTakeOver(t *testing.T) {
	s := newSim(t, "ann", "bob")
	s.run(8000, talking(map[string][][2]int64{
		"ann": {{0, 2000}, {4000, 6000}},
		"bob": {{2000, 4000}, {6000, 8000}},
	}))
	for i, turn := range []struct {
		key  string
		from int64
	}{{"ann", 0}, {"bob", 2000}, {"ann", 4000}, {"bob", 6000}} {
		at := s.firstDominant(turn.key, turn.from)
		if at < 0 || at-turn.from > 1000 {
			t.Fatalf("turn %d: %s dominant at %d ms, talks from %d; changes %v", i, turn.key, at, turn.from, s.changes)
		}
		s.dominantThroughout(turn.key, at, turn.from+2000)
	}
}

func TestOverlappingSpeakersAreBothInTheOrder(t *testing.T) {
	s := newSim(t, "ann", "bob", "cid")
	s.run(3000, talking(map[string][][2]int64{"ann": {{0, 3000}}, "bob": {{1000, 3000}}}))
	o := s.orderAt(3000)
	if len(o) != 2 || o[0].Key != "ann" || o[1].Key != "bob" {
		t.Fatalf("order %v, want ann (dominant, first to talk) then bob", o)
	}
	for _, sp := range o {
		if sp.Level < 30 || sp.Level > 40 {
			t.Fatalf("%s level %d dBov, want the talking level 30..40", sp.Key, sp.Level)
		}
	}
}

func TestRemovedDominantLeavesTheOrder(t *testing.T) {
	s := newSim(t, "ann", "bob")
	s.run(2000, talking(map[string][][2]int64{"ann": {{0, 2000}}, "bob": {{1500, 4000}}}))
	if s.dominantAt(2000) != "ann" {
		t.Fatalf("ann not dominant: %v", s.changes)
	}
	s.remove("ann")
	s.run(300, talking(map[string][][2]int64{"bob": {{0, 4000}}}))
	if o := s.orderAt(s.nowMs); len(o) != 1 || o[0].Key != "bob" {
		t.Fatalf("after removing ann the order is %v", o)
	}
}

// A source that sent nothing for longer than the noise floor's window (a
// microphone disabled since the join) and then plays a steady sound takes
// over from a speaker who stopped: a time without levels is no evidence
// of the noise floor, so the floor does not rise to the first sound heard.
func TestSourceSilentForLongTakesOverWithASteadySound(t *testing.T) {
	s := newSim(t, "ann", "bob")
	const enable = floorWindowMs + 1000
	s.run(enable+3000, func(key string, ms int64) int {
		switch {
		case key == "ann" && ms < enable:
			return speech(ms)
		case key == "bob" && ms >= enable:
			return 37 // a steady tone
		}
		return noLvl // ann's microphone off, bob's not yet on
	})
	if at := s.firstDominant("ann", 0); at < 0 || at > 1000 {
		t.Fatalf("ann dominant at %d ms; changes %v", at, s.changes)
	}
	if at := s.firstDominant("bob", enable); at < 0 || at-enable > 1000 {
		t.Fatalf("bob, playing a steady tone from %d ms, dominant at %d ms; orders since: %v", enable, at, s.changes)
	}
}
