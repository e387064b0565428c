package pace

import (
	"encoding/binary"
	"testing"
)

// refBucket is the reference model of a Bucket: a level of tokens in ns
// (at most depth; below 0 a debt), refilled by the time passed.
type refBucket struct {
	level, at, depth int64
}

func (r *refBucket) advance(now int64) {
	r.level = min(r.depth, r.level+(now-r.at))
	r.at = now
}

// FuzzBucket drives a Bucket and its reference model with the same
// reservations, charges and rate changes at increasing times: the due
// times, refusals and delays agree.
func FuzzBucket(f *testing.F) {
	f.Add(int64(125_000), int64(5e6), []byte{0, 10, 1, 2, 0, 0, 3, 40, 2, 1, 200, 7})
	f.Add(int64(1), int64(0), []byte{0, 255, 255, 1, 0, 0})
	f.Fuzz(func(t *testing.T, rate, depth int64, ops []byte) {
		rate = 1 + abs(rate)%100_000_000
		depth = abs(depth) % 1e9
		var b Bucket
		b.SetRate(rate, depth)
		ref := refBucket{level: depth, depth: depth}
		now := int64(0)
		for len(ops) >= 4 {
			op, dt, size, bound := ops[0], int64(ops[1]), int(ops[2])*8, int64(ops[3])*1e6
			ops = ops[4:]
			now += dt * 100_000
			ref.advance(now)
			c := cost(size, b.Rate())
			switch op % 4 {
			case 0, 1:
				due, ok := b.Reserve(now, size, bound)
				wantDue := now + max(0, -ref.level)
				if wantOK := wantDue-now <= bound; ok != wantOK || ok && due != wantDue {
					t.Fatalf("reserve %d bytes at %d (bound %d): got %d %v, model %d %v", size, now, bound, due, ok, wantDue, wantOK)
				}
				if ok {
					ref.level -= c
				}
			case 2:
				b.Charge(now, size)
				ref.level -= c
			case 3: // a new rate, same depth: the backlog in ns is kept
				b.SetRate(1+int64(size)*1000, depth)
			}
			if d, want := b.Delay(now), max(0, -ref.level); d != want {
				t.Fatalf("delay %d, model %d", d, want)
			}
		}
	})
}

func abs(v int64) int64 {
	if v < 0 {
		return -v
	}
	return v
}

// FuzzQueue drives a Queue with pushes and the scheduler's sends (on the
// test's goroutine: the scheduler is closed, so registrations stay in
// its inbox) against a FIFO model: the same packets leave in the same
// order, a full queue refuses, Busy is the model's length, and the queue
// registers exactly when its first packet goes in after being empty.
func FuzzQueue(f *testing.F) {
	f.Add(uint8(4), []byte{0, 0, 0, 0, 0, 1, 3, 0, 1, 255})
	f.Add(uint8(1), []byte{0, 0, 1, 0, 0, 1, 0})
	f.Fuzz(func(t *testing.T, n uint8, ops []byte) {
		s, err := New(Config{})
		if err != nil {
			t.Fatal(err)
		}
		s.Close()
		q := s.NewQueue(int(n%16)+1, 8, nil)
		rec := &recorder{}
		q.sender = rec
		var model []uint32 // due time = the packet's number
		var next uint32
		registered := false
		for _, op := range ops {
			if op%2 == 0 { // push
				slot := q.Slot()
				if (slot == nil) != (len(model) == q.cap()) {
					t.Fatalf("slot %v with %d of %d queued", slot != nil, len(model), q.cap())
				}
				if slot == nil {
					continue
				}
				q.Push(len(binary.BigEndian.AppendUint32(slot, next)), int64(next), 0, 0)
				model = append(model, next)
				next++
				got := s.inbox.Swap(nil) == q
				if got != (len(model) == 1) {
					t.Fatalf("registered %v on the push making %d queued", got, len(model))
				}
				if got {
					if registered {
						t.Fatal("registered twice")
					}
					registered = true
				}
			} else if registered { // the scheduler sends what is due by limit
				limit := int64(model[0]) + int64(op>>1)%4 - 1
				rec.seqs = rec.seqs[:0]
				q.sendDue(limit, 0)
				if q.Len() != len(model) {
					t.Fatalf("sent packets released before the round's end: len %d, model %d", q.Len(), len(model))
				}
				var want []uint32
				for len(model) > 0 && int64(model[0]) <= limit {
					want, model = append(want, model[0]), model[1:]
				}
				due, left := q.release()
				if len(rec.seqs) != len(want) {
					t.Fatalf("sent %v, model %v", rec.seqs, want)
				}
				for i := range want {
					if rec.seqs[i] != want[i] {
						t.Fatalf("sent %v, model %v", rec.seqs, want)
					}
				}
				if left != (len(model) > 0) || left && due != int64(model[0]) {
					t.Fatalf("left %v next %d, model %v", left, due, model)
				}
				registered = left
			}
			if q.Busy() != (len(model) > 0) || q.Len() != len(model) {
				t.Fatalf("busy %v len %d, model %d", q.Busy(), q.Len(), len(model))
			}
		}
	})
}
