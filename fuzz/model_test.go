package fuzz

// The reference model of FuzzMunger, written from the definitions:
//
//   - A track accepts a packet unless it repeats one it has, falls behind
//     its 512-number window, or jumps 3000 or more ahead without the next
//     packet confirming the jump (RFC 3550 A.1); a confirmed jump goes on
//     from the highest number with no gap.
//   - A reordered packet is accepted only if its timestamp lies between
//     those of the nearest accepted packets below and above it.
//   - A timestamp is the nearest 64-bit value to the highest packet's; an
//     in-order one that goes back, or runs ahead of wall time by more than
//     5 s, is replaced by the highest timestamp plus the wall time elapsed.
//   - A subscriber's output is a list of segments. A segment starts at the
//     first packet after a join, a reopened gate or a switch; its numbers
//     follow the highest number sent so far, and its first timestamp follows
//     the highest timestamp sent by the wall time since that timestamp was
//     first sent. Inside it, a packet's number is
//     its distance from the segment's first packet, less the packets with
//     no media left out while they were the newest (the set W), which is
//     what "no gap" means. Its timestamp keeps its distance from the first
//     packet's.
//
// The model uses maps and plain integers; it shares no code with forward.

const (
	cacheSize  = 512
	clockRate  = 90000
	window     = 512
	maxDropout = 3000
)

func ticks(then, now int64) int64 {
	d := now - then
	if d <= 0 {
		return 1
	}
	if t := d / 1000 * clockRate / 1_000_000; t > 0 {
		return t
	}
	return 1
}

type trackModel struct {
	started  bool
	rawHigh  uint16
	high     int64
	seen     map[int64]int64 // ext -> ext timestamp, inside the window
	floor    int64           // highest timestamp of packets that left the window
	badSeq   int
	rawTS    uint32 // raw timestamp of the highest packet
	tsHigh   int64
	wallHigh int64
}

func newTrackModel() *trackModel { return &trackModel{seen: map[int64]int64{}, badSeq: -1} }

// push returns the packet's extended number and timestamp when accepted.
func (m *trackModel) push(seq uint16, ts uint32, now int64) (int64, int64, bool) {
	if !m.started {
		m.started = true
		m.rawHigh, m.high, m.rawTS, m.tsHigh, m.wallHigh = seq, 1<<20, ts, 1<<40, now
		m.seen[m.high] = m.tsHigh
		return m.high, m.tsHigh, true
	}
	ahead := int(uint16(seq - m.rawHigh))
	behind := 65536 - ahead
	switch {
	case ahead == 0:
		return 0, 0, false
	case ahead < maxDropout:
		m.badSeq = -1
		return m.advance(m.high+int64(ahead), seq, ts, now, false)
	case behind < window:
		ext := m.high - int64(behind)
		if _, dup := m.seen[ext]; dup {
			return 0, 0, false
		}
		extTS := m.tsHigh + int64(int32(ts-m.rawTS))
		if !m.fits(ext, extTS) {
			return 0, 0, false
		}
		m.seen[ext] = extTS
		return ext, extTS, true
	case int(seq) == m.badSeq:
		m.badSeq = -1
		return m.advance(m.high+1, seq, ts, now, true)
	default:
		m.badSeq = int(seq + 1)
		return 0, 0, false
	}
}

func (m *trackModel) advance(ext int64, seq uint16, ts uint32, now int64, rebase bool) (int64, int64, bool) {
	extTS := m.tsHigh + int64(int32(ts-m.rawTS))
	limit := m.tsHigh + clockRate*5 + ticks(m.wallHigh, now)
	if rebase || extTS < m.tsHigh || extTS > limit {
		extTS = m.tsHigh + ticks(m.wallHigh, now)
	}
	for e, t := range m.seen {
		if e <= ext-window {
			m.floor = max(m.floor, t)
			delete(m.seen, e)
		}
	}
	m.rawHigh, m.high, m.rawTS, m.tsHigh, m.wallHigh = seq, ext, ts, extTS, now
	m.seen[ext] = extTS
	return ext, extTS, true
}

// fits: between the nearest received neighbours' timestamps.
func (m *trackModel) fits(ext, extTS int64) bool {
	below := m.floor
	for e := ext - 1; e > m.high-window; e-- {
		if t, ok := m.seen[e]; ok {
			below = t
			break
		}
	}
	if below > extTS {
		return false
	}
	for e := ext + 1; e <= m.high; e++ {
		if t, ok := m.seen[e]; ok {
			return t >= extTS
		}
	}
	return true
}

type outPkt struct {
	seq uint16
	ts  uint32
	id  uint32

	outExt, inExt int64
	seg           int  // the segment it was sent in
	rtx           bool // a retransmission
}

type subModel struct {
	open    bool
	wasShut bool // a packet came while the gate was closed
	splice  bool

	maxOut   int64 // highest output number used
	lastTS   int64 // highest output timestamp sent
	lastWall int64 // when lastTS was first sent
	started  bool

	segStart, segBase, newest int64
	tsOff                     int64
	withheld                  map[int64]bool
	seg                       int

	fail bool     // the next write fails
	out  []outPkt // what the subscriber's writer takes, in order
}

func newSubModel(firstSeq uint16, firstTS uint32) *subModel {
	return &subModel{open: true, splice: true, maxOut: int64(firstSeq) - 1 + 1<<16, lastTS: int64(firstTS)}
}

func (s *subModel) switched() { s.splice = true }

func (s *subModel) deliver(ext, extTS int64, padding bool, id uint32, now int64) {
	if !s.open {
		s.wasShut = true
		return
	}
	if s.wasShut { // the segment ends at the first packet after reopening
		s.wasShut, s.splice = false, true
	}
	if s.splice {
		if padding {
			return // nothing numbered yet: left out for free
		}
		s.splice = false
		outTS := s.lastTS
		if s.started {
			outTS += ticks(s.lastWall, now)
		}
		s.started = true
		s.seg++
		s.segStart, s.segBase, s.newest = ext, s.maxOut+1, ext-1
		s.tsOff = outTS - extTS
		s.withheld = map[int64]bool{}
	}
	if ext < s.segStart {
		return
	}
	if padding && ext > s.newest {
		s.withheld[ext] = true
		s.newest = ext
		return
	}
	n := ext - s.segStart
	for w := range s.withheld {
		if w < ext {
			n--
		}
	}
	out := s.segBase + n
	if extTS+s.tsOff > s.lastTS {
		s.lastTS, s.lastWall = extTS+s.tsOff, now
	}
	if s.fail {
		// The writer refused it: the newest is left out of the numbering
		// as a withheld packet is; an older one keeps its number.
		s.fail = false
		if ext > s.newest {
			s.withheld[ext] = true
			s.newest = ext
			s.maxOut = max(s.maxOut, out-1)
		} else {
			s.maxOut = max(s.maxOut, out)
		}
		return
	}
	s.newest = max(s.newest, ext)
	s.maxOut = max(s.maxOut, out)
	s.out = append(s.out, outPkt{seq: uint16(out), ts: uint32(extTS + s.tsOff), id: id, outExt: out, inExt: ext, seg: s.seg})
}

// nack answers a NACK for seq: the packet whose input has that number in
// the current segment (a withheld packet has none), while the input is
// still in the track's cache, and while the gate is open and no splice is
// pending. inputs holds the track's accepted packets; cached says whether
// one is still in the cache.
func (s *subModel) nack(seq uint16, cached func(int64) bool, inputs map[int64]outPkt) {
	if !s.open || s.splice || !s.started {
		return
	}
	target := s.maxOut + int64(int16(seq-uint16(s.maxOut)))
	out := s.segBase
	for ext := s.segStart; ext <= s.newest; ext++ {
		if s.withheld[ext] {
			continue
		}
		if out == target {
			in, ok := inputs[ext]
			if !ok || !cached(ext) {
				return // lost upstream, or no longer cached
			}
			if s.fail {
				s.fail = false
				return
			}
			s.out = append(s.out, outPkt{seq: seq, ts: uint32(in.inExt + s.tsOff), id: in.id, rtx: true})
			return
		}
		out++
	}
}
