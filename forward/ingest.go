package forward

// ingest turns a publisher's 16-bit sequence numbers and 32-bit timestamps
// into continuous 64-bit values, drops duplicates and packets out of the
// reorder window, and keeps timestamps non-decreasing in sequence order. It
// is owned by the track's ingest goroutine.
//
// A sequence jump of MaxDropout or more is accepted only when the next
// packet continues from it (RFC 3550 appendix A.1); the stream then goes on
// from the highest number seen, with no gap. A timestamp that goes back, or
// forward by more than the wall time since the last packet plus
// maxTSLead, is rebased onto wall time in the same way.
type ingest struct {
	window     uint64 // reorder window, a power of two
	maxDropout uint16
	clockRate  uint32

	started bool
	rawHigh uint64 // highest sequence number seen, unwrapped, before seqAdj
	high    uint64 // highest extended sequence number accepted
	seqAdj  uint64 // ext = raw + seqAdj

	rawTSHigh uint64 // timestamp of the highest packet, unwrapped, before tsAdj
	tsHigh    uint64 // extended timestamp of the highest packet
	tsAdj     uint64
	wallHigh  int64 // clock reading when the highest packet arrived

	badSeq int32 // RFC 3550 probation: the sequence number that confirms a jump; -1 none

	seen    []uint64 // bitset over the window: slot present
	ts      []uint64 // extended timestamp per slot
	tsFloor uint64   // highest timestamp of the packets that left the window
}

// maxTSLead is how far, in seconds, a timestamp may run ahead of wall time.
const maxTSLead = 5

func newIngest(window int, maxDropout uint16, clockRate uint32) ingest {
	return ingest{
		window:     uint64(window),
		maxDropout: maxDropout,
		clockRate:  clockRate,
		badSeq:     -1,
		seen:       make([]uint64, (window+63)/64),
		ts:         make([]uint64, window),
	}
}

// verdict is what ingest decided about one packet.
type verdict uint8

const (
	accepted verdict = iota
	duplicate
	outOfWindow
	badTimestamp
)

// push classifies a packet and returns its extended sequence number and
// timestamp. Only accepted packets change the state.
func (g *ingest) push(seq uint16, ts uint32, now int64) (ext, extTS uint64, v verdict) {
	if !g.started {
		g.started = true
		g.rawHigh = uint64(seq) + 1<<16 // room below for reordered packets
		g.high = g.rawHigh
		g.rawTSHigh = uint64(ts) + 1<<32
		g.tsHigh = g.rawTSHigh
		g.wallHigh = now
		g.mark(g.high, g.tsHigh)
		return g.high, g.tsHigh, accepted
	}
	udelta := seq - uint16(g.rawHigh)
	switch {
	case udelta == 0:
		return 0, 0, duplicate
	case udelta < g.maxDropout:
		g.badSeq = -1
		return g.advance(g.rawHigh+uint64(udelta), ts, now)
	case uint64(-udelta) < g.window: // behind, inside the window
		raw := g.rawHigh - uint64(-udelta)
		ext = raw + g.seqAdj
		if ext+g.window <= g.high || g.has(ext) {
			return 0, 0, duplicate
		}
		extTS = g.unwrapTS(ts)
		if !g.fits(ext, extTS) {
			return 0, 0, badTimestamp
		}
		g.mark(ext, extTS)
		return ext, extTS, accepted
	case int32(seq) == g.badSeq:
		// The jump is confirmed: go on from the highest, with no gap.
		g.badSeq = -1
		raw := g.rawHigh + uint64(udelta)
		g.seqAdj = g.high + 1 - raw
		g.rebaseTS(ts, now)
		return g.advance(raw, ts, now)
	default:
		g.badSeq = int32(seq + 1)
		return 0, 0, outOfWindow
	}
}

// advance accepts the new highest packet raw.
func (g *ingest) advance(raw uint64, ts uint32, now int64) (uint64, uint64, verdict) {
	ext := raw + g.seqAdj
	extTS := g.unwrapTS(ts)
	limit := g.tsHigh + uint64(g.clockRate)*maxTSLead + ticksSince(g.wallHigh, now, g.clockRate)
	if extTS < g.tsHigh || extTS > limit {
		g.rebaseTS(ts, now)
		extTS = g.unwrapTS(ts)
	}
	for s, n := g.high+1, uint64(0); s <= ext && n < g.window; s, n = s+1, n+1 {
		g.evict(s)
	}
	g.rawHigh, g.high = raw, ext
	g.rawTSHigh, g.tsHigh, g.wallHigh = extTS-g.tsAdj, extTS, now
	g.mark(ext, extTS)
	return ext, extTS, accepted
}

// unwrapTS extends ts to the 64-bit value nearest the highest packet's.
func (g *ingest) unwrapTS(ts uint32) uint64 {
	d := int32(ts - uint32(g.rawTSHigh))
	return g.rawTSHigh + uint64(int64(d)) + g.tsAdj
}

// rebaseTS makes ts follow the highest timestamp by the wall time elapsed.
func (g *ingest) rebaseTS(ts uint32, now int64) {
	want := g.tsHigh + ticksSince(g.wallHigh, now, g.clockRate)
	g.rawTSHigh = uint64(ts) + 1<<32
	g.tsAdj = want - g.rawTSHigh
}

// fits reports whether extTS lies between the timestamps of ext's nearest
// received neighbours inside the window.
func (g *ingest) fits(ext, extTS uint64) bool {
	lo := uint64(0)
	if g.high >= g.window {
		lo = g.high - g.window + 1
	}
	below := g.tsFloor // the packets that left the window are all lower
	for s := ext - 1; s >= lo && s < ext; s-- {
		if g.has(s) {
			below = g.ts[s&(g.window-1)]
			break
		}
	}
	if below > extTS {
		return false
	}
	for s := ext + 1; s <= g.high; s++ {
		if g.has(s) {
			return g.ts[s&(g.window-1)] >= extTS
		}
	}
	return true
}

func (g *ingest) has(s uint64) bool {
	i := s & (g.window - 1)
	return g.seen[i/64]&(1<<(i%64)) != 0
}

func (g *ingest) mark(s, ts uint64) {
	i := s & (g.window - 1)
	g.seen[i/64] |= 1 << (i % 64)
	g.ts[i] = ts
}

// evict frees s's slot for s, folding the timestamp of the packet that
// leaves the window into tsFloor.
func (g *ingest) evict(s uint64) {
	i := s & (g.window - 1)
	if g.seen[i/64]&(1<<(i%64)) != 0 {
		g.tsFloor = max(g.tsFloor, g.ts[i])
	}
	g.seen[i/64] &^= 1 << (i % 64)
}
