package callload

import (
	"encoding/binary"
	"testing"
)

// seqModel is the reference: every extended sequence number seen, and the
// newest, with 16-bit numbers extended to the one nearest the newest.
type seqModel struct {
	seen    map[int64]bool
	max     int64
	started bool
}

func (m *seqModel) add(seq uint16) (seqKind, int) {
	if !m.started {
		m.started, m.max, m.seen = true, int64(seq), map[int64]bool{int64(seq): true}
		return seqNew, 0
	}
	e := m.max + int64(int16(seq-uint16(m.max))) // half way round reads as old
	switch {
	case e > m.max:
		gap := int(e - m.max - 1)
		m.max = e
		m.seen[e] = true
		return seqNew, gap
	case m.max-e >= seqWindowSize:
		return seqOld, 0
	case m.seen[e]:
		return seqDup, 0
	}
	m.seen[e] = true
	return seqLate, 0
}

// FuzzSeqWindow checks the window against the model on any sequence of
// sequence numbers.
func FuzzSeqWindow(f *testing.F) {
	f.Add([]byte{0, 1, 0, 2, 0, 1, 0, 5, 0, 3, 0, 3})
	f.Add([]byte{0xff, 0xfe, 0xff, 0xff, 0, 0, 0xff, 0xff, 0, 1})
	f.Add([]byte{0, 0, 8, 0, 0, 1, 4, 0, 0x80, 0, 0, 2})
	f.Fuzz(func(t *testing.T, b []byte) {
		var w seqWindow
		var m seqModel
		for i := 0; i+1 < len(b); i += 2 {
			seq := binary.BigEndian.Uint16(b[i:])
			k, g := w.add(seq)
			mk, mg := m.add(seq)
			if k != mk || g != mg {
				t.Fatalf("packet %d (seq %d): window says %d gap %d, model %d gap %d", i/2, seq, k, g, mk, mg)
			}
		}
	})
}

// TestSeqWindow: new packets with their gaps, a repair, duplicates, and
// a wrap of the 16-bit numbers.
func TestSeqWindow(t *testing.T) {
	var w seqWindow
	for _, c := range []struct {
		seq  uint16
		kind seqKind
		gap  int
	}{
		{65533, seqNew, 0}, {65534, seqNew, 0}, {1, seqNew, 2}, {65535, seqLate, 0}, {65535, seqDup, 0},
		{1, seqDup, 0}, {0, seqLate, 0}, {2000, seqNew, 1998}, {1500, seqLate, 0}, {500, seqOld, 0},
	} {
		if k, g := w.add(c.seq); k != c.kind || g != c.gap {
			t.Errorf("seq %d: %d gap %d, want %d gap %d", c.seq, k, g, c.kind, c.gap)
		}
	}
}
