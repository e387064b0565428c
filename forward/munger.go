package forward

// munger maps one source's extended sequence numbers and timestamps onto one
// subscriber's output stream. It is a pure state machine, owned by the
// goroutine that forwards to the subscriber; FuzzMunger checks it against a
// reference model.
//
// The output is made of segments. A segment starts at a splice (the first
// packet, a resume after a closed gate, a switch of source) and maps input
// to output by offsets: out = in + offset. Packets withheld on purpose while
// they are the newest (padding, a closed gate's last packets, frames skipped
// for a key frame) lower the offset of everything after them, so they leave
// no gap; a withheld packet that arrives late cannot be taken back out of
// the numbering and is forwarded instead (see withhold). Upstream loss keeps
// its gap, so a subscriber's NACK can be answered.
type munger struct {
	started bool
	splice  bool // the next packet starts a new segment

	segStart uint64 // first input sequence number of the segment
	lastIn   uint64 // newest input sequence number seen in the segment
	lastOut  uint64 // output sequence number of lastIn, or of the newest sent
	lastTS   uint64 // highest output timestamp sent
	lastWall int64  // clock reading when lastTS was first sent

	seqOff uint64 // out = in + seqOff (mod 2^64) for in >= the newest change
	tsOff  uint64 // outTS = inTS + tsOff (mod 2^64) in this segment

	// changes records offset changes inside the segment, oldest first, so
	// that a reordered packet is numbered as it would have been in order.
	changes [maxChanges]offsetChange
	nchg    int
	lost    uint64 // input below which changes were forgotten (0: none)
}

const maxChanges = 32

type offsetChange struct {
	from uint64 // first input sequence number the offset applies to
	off  uint64 // the offset before this change
}

// init sets the first output sequence number and timestamp.
func (m *munger) init(seq uint16, ts uint32) {
	m.lastOut = uint64(seq) - 1 + 1<<16 // 1<<16 keeps it above 0 on wrap
	m.lastTS = uint64(ts) + 1<<32
	m.splice = true
}

// requestSplice makes the next packet start a new segment.
func (m *munger) requestSplice() { m.splice = true }

// next maps a packet that is to be sent. It returns ok false when the packet
// belongs to an earlier segment or is older than the offsets remembered.
// clockRate converts wall time into timestamp ticks at a splice.
func (m *munger) next(in, ts uint64, now int64, clockRate uint32) (out, outTS uint64, ok bool) {
	if m.splice {
		m.startSegment(in, ts, now, clockRate)
	}
	if in < m.segStart {
		return 0, 0, false
	}
	if in > m.lastIn {
		out = in + m.seqOff
		outTS = ts + m.tsOff
		m.lastIn, m.lastOut = in, out
		if outTS > m.lastTS {
			m.lastTS, m.lastWall = outTS, now
		}
		return out, outTS, true
	}
	off, ok := m.offsetAt(in)
	if !ok {
		return 0, 0, false
	}
	out, outTS = in+off, ts+m.tsOff
	// When the newest input was withheld after this packet's place had been
	// numbered, a splice must start after it, in number and in time.
	m.lastOut = max(m.lastOut, out)
	if outTS > m.lastTS {
		m.lastTS, m.lastWall = outTS, now
	}
	return out, outTS, true
}

// startSegment splices: the packet (in, ts) is sent right after the last
// one, and its timestamp is advanced by the wall time since then.
func (m *munger) startSegment(in, ts uint64, now int64, clockRate uint32) {
	outTS := m.lastTS
	if m.started {
		outTS += ticksSince(m.lastWall, now, clockRate)
	}
	m.started, m.splice = true, false
	m.segStart = in
	m.lastIn = in - 1
	m.seqOff = m.lastOut + 1 - in
	m.tsOff = outTS - ts
	m.nchg, m.lost = 0, 0
}

// ticksSince converts the wall time from then to now into at least one
// timestamp tick, so timestamps always move forward across a splice.
func ticksSince(then, now int64, clockRate uint32) uint64 {
	d := now - then
	if d <= 0 {
		return 1
	}
	t := uint64(d) / 1000 * uint64(clockRate) / 1_000_000
	if t == 0 {
		return 1
	}
	return t
}

// withhold reports whether the packet in may be left out without leaving a
// gap, and if so numbers what follows as if it had never been sent. A
// packet that is not the newest already has a place in the numbering; the
// caller must forward it.
func (m *munger) withhold(in uint64) bool {
	if !m.started || m.splice {
		return true // nothing of the coming segment is numbered yet
	}
	if in < m.segStart {
		return true // dropped anyway by next
	}
	if in <= m.lastIn {
		return false
	}
	m.closeOver(in, m.lastIn+1)
	m.lastIn = in
	return true
}

// closeOver lowers the offset of every packet after in, which is left out
// of the numbering. run is the first input of the run of packets left out
// that in ends, when they share one change.
func (m *munger) closeOver(in, run uint64) {
	if m.nchg > 0 && m.changes[m.nchg-1].from == run && in == run {
		m.changes[m.nchg-1].from = in + 1
	} else {
		if m.nchg == maxChanges {
			m.lost = m.changes[0].from
			copy(m.changes[:], m.changes[1:])
			m.nchg--
		}
		m.changes[m.nchg] = offsetChange{from: in + 1, off: m.seqOff}
		m.nchg++
	}
	m.seqOff--
}

// unsend takes back the newest packet, numbered out, which its subscriber
// could not take: it is left out of the numbering as a withheld packet is.
// A packet that was not the newest keeps its number (a gap).
func (m *munger) unsend(in, out uint64) bool {
	if in != m.lastIn || out != m.lastOut {
		return false
	}
	m.closeOver(in, in)
	m.lastOut--
	return true
}

// inverse maps an output sequence number of the current segment back to
// its input. Numbers before the segment, past the newest, or older than
// the offsets remembered have none.
func (m *munger) inverse(out uint64) (uint64, bool) {
	if !m.started || m.splice || out > m.lastOut {
		return 0, false
	}
	off := m.seqOff
	for i := m.nchg - 1; i >= -1; i-- {
		start := m.segStart
		if i >= 0 {
			start = m.changes[i].from
		} else if m.lost != 0 {
			start = m.lost
		}
		if in := out - off; in >= start && in >= m.segStart && in <= m.lastIn {
			return in, true
		}
		if i < 0 {
			break
		}
		off = m.changes[i].off
	}
	return 0, false
}

// offsetAt returns the offset that applied to in when it was the newest.
func (m *munger) offsetAt(in uint64) (uint64, bool) {
	if m.lost != 0 && in < m.lost {
		return 0, false
	}
	off := m.seqOff
	for i := m.nchg - 1; i >= 0 && in < m.changes[i].from; i-- {
		off = m.changes[i].off
	}
	return off, true
}
