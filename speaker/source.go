package speaker

import "sync/atomic"

// ringLen is how many levels a Source keeps: 2.56 s of 20 ms packets,
// 1.28 s of 10 ms ones.
const ringLen = 128

// A Source is one audio track of a Detector. Its Level method is the
// packet path: lock-free, allocation-free, safe for concurrent use.
type Source struct {
	key   string    // immutable
	det   *Detector // immutable
	order int       // immutable: when the source was added, for stable ties

	// Written by Level, read by the Group's goroutine.
	count   atomic.Uint64          // levels stored so far
	slots   [ringLen]atomic.Uint64 // ms<<8 | voiced<<7 | volume
	removed atomic.Bool            // set once by Remove

	// Guarded by det.mu.
	muted   bool
	sinceMs int64 // levels stamped before this are ignored (unmute time)

	// Owned by the Group's goroutine.
	floor     uint8 // noise floor (volume)
	floorNext uint8 // lowest volume seen since floorAt
	floorAt   int64 // ms of the last floor rise
	floorSet  bool
	floorSeen bool // some frame was covered since floorAt
	act       activity
}

// Key returns the key the source was added with.
func (s *Source) Key() string { return s.key }

// Level records the RFC 6464 audio level of one packet: level in -dBov
// (0 the loudest, 127 silence), voiced its V flag, now a reading of the
// Group's clock when the packet arrived. It refuses a level above 127 with
// ErrLevel and a removed source with ErrRemoved, and counts both in
// Detector.Refused. It takes no lock and allocates nothing.
func (s *Source) Level(level uint8, voiced bool, now int64) error {
	if level > 127 {
		s.det.refused.Add(1)
		return ErrLevel
	}
	if s.removed.Load() {
		s.det.refused.Add(1)
		return ErrRemoved
	}
	vol := uint64(127 - level)
	if voiced {
		vol |= 0x80
	}
	n := s.count.Add(1) - 1
	s.slots[n%ringLen].Store(uint64(max(now, 0)/1e6)<<8 | vol)
	if 127-level >= wakeVolume && !s.det.active.Load() {
		s.det.wake()
	}
	return nil
}

// frames rebuilds the volumes of the last numFrames frames before nowMs
// (newest first) from the stored levels: packets are placed by arrival
// time, several in one frame keep the loudest, a gap of up to
// maxGapFrames takes the quieter of its neighbours (late packets, longer
// packets), longer gaps and levels before sinceMs are silence. When the
// newest level is no older than the gap allowance, frame 0 is its frame,
// so a decision between two packets does not see a silent frame. It
// returns how many frames the stored levels cover: older ones are unknown
// (silent, but not evidence of the noise floor).
func (s *Source) frames(f *[numFrames]uint8, nowMs, sinceMs int64, voiceFlag bool) (covered int) {
	*f = [numFrames]uint8{}
	n := s.count.Load()
	var base int64
	prev := -1
	for k := uint64(0); k < min(n, ringLen); k++ {
		e := s.slots[(n-1-k)%ringLen].Load()
		t := int64(e >> 8)
		if t < sinceMs {
			return prev + 1
		}
		vol := uint8(e & 0x7f)
		if voiceFlag && e&0x80 == 0 {
			vol = 0
		}
		if prev < 0 {
			base = nowMs
			if nowMs-t <= maxGapFrames*frameMs {
				base = t
			}
		}
		pos := max(int((base-t+frameMs/2)/frameMs), prev, 0)
		if pos >= numFrames {
			if prev >= 0 && pos-prev-1 <= maxGapFrames {
				for i := prev + 1; i < numFrames; i++ {
					f[i] = min(f[prev], vol)
				}
			}
			return numFrames
		}
		if pos == prev {
			f[pos] = max(f[pos], vol)
			continue
		}
		if prev >= 0 && pos-prev-1 <= maxGapFrames {
			for i := prev + 1; i < pos; i++ {
				f[i] = min(f[prev], vol)
			}
		}
		f[pos] = vol
		prev = pos
	}
	return prev + 1
}

// updateFloor lowers the noise floor to the quietest frame at once and
// raises it to the quietest volume of the last floorWindowMs when that
// was higher and some level was stored in that time: a steady noise is gated after that long, while the pauses
// of speech keep a talker's floor low (minimum statistics).
func (s *Source) updateFloor(f *[numFrames]uint8, covered int, nowMs int64) {
	lowest := uint8(127)
	for _, v := range f[:covered] {
		lowest = min(lowest, v)
	}
	if !s.floorSet {
		s.floorSet, s.floorAt, s.floorNext = true, nowMs, 127
	}
	s.floor = min(s.floor, lowest)
	s.floorNext = min(s.floorNext, lowest)
	s.floorSeen = s.floorSeen || covered > 0
	if nowMs-s.floorAt >= floorWindowMs {
		// A window without levels (a source that sent nothing) is no
		// evidence: raising the floor to 127 would make the first sound
		// after it the floor, and a steady sound would never count.
		if s.floorSeen {
			s.floor = s.floorNext
		}
		s.floorNext, s.floorAt, s.floorSeen = 127, nowMs, false
	}
}
