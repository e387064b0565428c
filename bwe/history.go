package bwe

import "sync/atomic"

// historySize is the number of send records a History keeps: at 1,000
// packets a second, four seconds of them, more than any feedback is late.
const historySize = 4096

// History records what one transport sends: for each transport-wide
// sequence number, the send time and size. Record is called on the packet
// path by any number of goroutines at once: it takes no lock and does not
// allocate. Each record is one 64-bit word (the sequence number's low 16
// bits as a tag, the size, the send time in µs modulo 2^32), so a reader
// sees a record whole or not at all.
type History struct {
	next  atomic.Uint32 // the next transport-wide sequence number (low 16 bits sent)
	clock Clock
	ring  [historySize]atomic.Uint64
	// probe tags the records of probe packets: the sequence number in the
	// high 16 bits, the probe cluster id in the low 16; 0 for media.
	probe [historySize]atomic.Uint32
}

// NewHistory returns an empty history whose send times come from clock.
func NewHistory(clock Clock) *History { return &History{clock: clock} }

// Record takes the next transport-wide sequence number for a packet of
// size bytes sent now, records it, and returns the number to write in the
// packet's transport-wide sequence number extension.
func (h *History) Record(size int) uint16 {
	seq := uint16(h.next.Add(1) - 1)
	h.Put(seq, size, h.clock.Nanotime())
	return seq
}

// Next takes the next transport-wide sequence number without recording
// it; Put records it once the packet is sent.
func (h *History) Next() uint16 { return uint16(h.next.Add(1) - 1) }

// Put records the packet seq, of size bytes, sent at now (ns).
func (h *History) Put(seq uint16, size int, now int64) {
	size = min(max(size, 0), 0xffff)
	us := uint32(now / 1000)
	i := int(seq) % historySize
	if h.probe[i].Load() != 0 {
		h.probe[i].Store(0)
	}
	h.ring[i].Store(uint64(seq)<<48 | uint64(size)<<32 | uint64(us))
}

// RecordProbe is Record for a packet of probe cluster id (not 0): the
// estimator measures the rate the cluster was delivered at.
func (h *History) RecordProbe(size int, id uint16) uint16 {
	seq := uint16(h.next.Add(1) - 1)
	h.PutProbe(seq, size, h.clock.Nanotime(), id)
	return seq
}

// PutProbe is Put for a packet of probe cluster id; id 0 is Put.
func (h *History) PutProbe(seq uint16, size int, now int64, id uint16) {
	if id == 0 {
		h.Put(seq, size, now)
		return
	}
	i := int(seq) % historySize
	h.probe[i].Store(uint32(seq)<<16 | uint32(id))
	size = min(max(size, 0), 0xffff)
	us := uint32(now / 1000)
	h.ring[i].Store(uint64(seq)<<48 | uint64(size)<<32 | uint64(us))
}

// probeOf returns the probe cluster of seq, 0 for a media packet.
func (h *History) probeOf(seq uint16) uint16 {
	v := h.probe[int(seq)%historySize].Load()
	if uint16(v>>16) != seq {
		return 0
	}
	return uint16(v)
}

// lookup returns the record of seq: its send time (µs modulo 2^32) and
// size, ok false when it was never recorded or has been overwritten.
func (h *History) lookup(seq uint16) (sent uint32, size int, ok bool) {
	v := h.ring[int(seq)%historySize].Load()
	if v == 0 || uint16(v>>48) != seq {
		return 0, 0, false
	}
	return uint32(v), int(v >> 32 & 0xffff), true
}

// Clock gives monotonic time in nanoseconds. Tests inject a manual one.
type Clock interface {
	Nanotime() int64
}
