package callload

// seqWindowSize is how far back (in sequence numbers) a track's window
// tells a late packet from a duplicate.
const seqWindowSize = 1024

// seqKind is what a received packet is to its track.
type seqKind int

const (
	seqNew  seqKind = iota // newer than any before (gap: how many it skipped)
	seqLate                // older than the newest, not seen before: reordered or repaired
	seqDup                 // seen before
	seqOld                 // older than the window: late or duplicate, no telling
)

// seqWindow sorts one track's RTP sequence numbers. The zero value is
// ready; one goroutine owns it.
type seqWindow struct {
	started bool
	last    uint16                     // the newest sequence number
	seen    [seqWindowSize / 64]uint64 // bit s%seqWindowSize: s arrived, for s in (last-seqWindowSize, last]
}

// add records seq and says what it is; gap is the sequence numbers a
// new packet skipped.
func (w *seqWindow) add(seq uint16) (kind seqKind, gap int) {
	if !w.started {
		w.started, w.last = true, seq
		w.set(seq)
		return seqNew, 0
	}
	d := seq - w.last
	switch {
	case d == 0:
		return seqDup, 0
	case d < 0x8000:
		if d >= seqWindowSize {
			w.seen = [seqWindowSize / 64]uint64{}
		} else {
			for s := w.last + 1; s != seq; s++ {
				w.seen[s%seqWindowSize/64] &^= 1 << (s % 64)
			}
		}
		w.last = seq
		w.set(seq)
		return seqNew, int(d) - 1
	}
	if w.last-seq >= seqWindowSize {
		return seqOld, 0
	}
	if w.seen[seq%seqWindowSize/64]&(1<<(seq%64)) != 0 {
		return seqDup, 0
	}
	w.set(seq)
	return seqLate, 0
}

func (w *seqWindow) set(s uint16) { w.seen[s%seqWindowSize/64] |= 1 << (s % 64) }
