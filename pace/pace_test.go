package pace

import (
	"encoding/binary"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"
)

// recorder is a Sender that records what it is sent; with batch, its
// sends reach the record only at flush (the scheduler's OnRound), as a
// batching sender's reach the wire.
type recorder struct {
	mu      sync.Mutex
	batch   bool
	held    []uint32
	seqs    []uint32
	at      []int64
	delay   []int64
	flushes int
}

func (r *recorder) Send(buf []byte, meta uint64, queued, now int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.batch {
		r.held = append(r.held, binary.BigEndian.Uint32(buf))
		return
	}
	r.seqs = append(r.seqs, binary.BigEndian.Uint32(buf))
	r.at = append(r.at, now)
	r.delay = append(r.delay, now-queued)
}

func (r *recorder) flush() {
	time.Sleep(100 * time.Microsecond) // a slow sendmmsg: what it holds is not on the wire yet
	r.mu.Lock()
	defer r.mu.Unlock()
	r.seqs = append(r.seqs, r.held...)
	r.held = r.held[:0]
	r.flushes++
}

func (r *recorder) len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.seqs)
}

// push queues a 4-byte packet carrying seq, due at due.
func push(t *testing.T, q *Queue, seq uint32, due, now int64) {
	t.Helper()
	slot := q.Slot()
	if slot == nil {
		t.Fatalf("queue full at %d", seq)
	}
	q.Push(len(binary.BigEndian.AppendUint32(slot, seq)), due, now, 0)
}

func TestBucketSpacesABurstAtItsRate(t *testing.T) {
	var b Bucket
	b.SetRate(125_000, 0) // 1 Mbit/s: a 1,250-byte packet takes 10 ms
	for i := range 10 {
		due, ok := b.Reserve(0, 1250, int64(time.Second))
		if !ok || due != int64(i)*10e6 {
			t.Fatalf("packet %d: due %d ok %v, want %d", i, due, ok, int64(i)*10e6)
		}
	}
	if d := b.Delay(0); d != 100e6 {
		t.Fatalf("delay %d, want 100 ms", d)
	}
}

func TestBucketLetsItsDepthThroughAtOnce(t *testing.T) {
	var b Bucket
	b.SetRate(125_000, int64(20*time.Millisecond)) // depth: two 10 ms packets ahead
	for i := range 3 {
		if due, _ := b.Reserve(0, 1250, int64(time.Second)); due != 0 {
			t.Fatalf("packet %d due %d, want at once", i, due)
		}
	}
	if due, _ := b.Reserve(0, 1250, int64(time.Second)); due != 10e6 {
		t.Fatalf("fourth packet due %d, want 10 ms", due)
	}
}

func TestBucketRefusesPastTheBoundAndReservesNothing(t *testing.T) {
	var b Bucket
	b.SetRate(125_000, 0)
	for range 10 {
		b.Reserve(0, 1250, int64(time.Second))
	}
	if _, ok := b.Reserve(0, 1250, 50e6); ok {
		t.Fatal("a packet 100 ms away was taken with a 50 ms bound")
	}
	if d := b.Delay(0); d != 100e6 {
		t.Fatalf("the refusal reserved: delay %d", d)
	}
}

func TestBucketChargeDelaysWhatFollowsButNeverWaits(t *testing.T) {
	var b Bucket
	b.SetRate(125_000, 0)
	b.Charge(0, 1250) // audio: out at once
	b.Charge(0, 1250)
	if due, _ := b.Reserve(0, 1250, int64(time.Second)); due != 20e6 {
		t.Fatalf("video after two audio packets due %d, want 20 ms", due)
	}
}

func TestBucketOffLetsEverythingThrough(t *testing.T) {
	var b Bucket
	for range 100 {
		if due, ok := b.Reserve(5, 1500, 0); !ok || due != 5 {
			t.Fatalf("off bucket: due %d ok %v", due, ok)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	if err := (Config{}).Validate(); err != nil {
		t.Fatal(err)
	}
	for _, c := range []Config{{Slot: time.Microsecond}, {Slots: 1}, {Slots: -3}, {Slot: 2 * time.Second}} {
		if _, err := New(c); err == nil {
			t.Errorf("%+v accepted", c)
		}
	}
}

// TestSchedulerSendsABurstAtTheBucketRate: a burst of 20 packets queued at
// once leaves at the bucket's rate, in order, each within a slot of its
// due time; then the wheel is empty, no timer is armed and the goroutine
// waits.
func TestSchedulerSendsABurstAtTheBucketRate(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	synctest.Test(t, func(t *testing.T) {
		var rounds atomic.Int32
		s, err := New(Config{OnRound: func() { rounds.Add(1) }})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		var b Bucket
		b.SetRate(125_000, 0) // 1,250 bytes each 10 ms
		rec := &recorder{}
		q := s.NewQueue(32, 64, rec)
		now := s.Now()
		for i := range 20 {
			due, _ := b.Reserve(now, 1250, int64(time.Second))
			push(t, q, uint32(i), due, now)
		}
		time.Sleep(250 * time.Millisecond) // fake time: the bubble's clock
		synctest.Wait()
		if rec.len() != 20 {
			t.Fatalf("%d packets sent, want 20", rec.len())
		}
		for i, seq := range rec.seqs {
			if seq != uint32(i) {
				t.Fatalf("packet %d sent as %d-th: order lost", seq, i)
			}
			want := now + int64(i)*10e6
			if d := rec.at[i] - want; d < -int64(time.Millisecond) || d > int64(time.Millisecond) {
				t.Fatalf("packet %d sent %v from its due time", i, time.Duration(d))
			}
		}
		if rounds.Load() != 20 { // one round for each packet: they are 10 ms apart
			t.Fatalf("%d rounds for 20 packets 10 ms apart", rounds.Load())
		}
		st := s.Stats()
		if st.Armed || st.Queues != 0 || q.Busy() || !st.Running {
			t.Fatalf("after the burst: %+v, busy %v", st, q.Busy())
		}
		w := st.Wakeups
		time.Sleep(10 * time.Second)
		synctest.Wait()
		if s.Stats().Wakeups != w {
			t.Fatalf("the idle goroutine woke %d times in 10 s", s.Stats().Wakeups-w)
		}
	})
}

// TestSchedulerServesManyQueuesEachInOrder: queues of different due
// times share the wheel; each keeps its order, and packets due beyond the
// wheel's span wait in it.
func TestSchedulerServesManyQueuesEachInOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, err := New(Config{Slots: 16})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		recs := make([]*recorder, 5)
		qs := make([]*Queue, 5)
		now := s.Now()
		for i := range qs {
			recs[i] = &recorder{}
			qs[i] = s.NewQueue(8, 16, recs[i])
			for j := range 8 {
				push(t, qs[i], uint32(j), now+int64(j*(i+1))*7e6, now)
			}
		}
		time.Sleep(time.Second)
		synctest.Wait()
		for i, r := range recs {
			if len(r.seqs) != 8 {
				t.Fatalf("queue %d: %d sent", i, len(r.seqs))
			}
			for j := range r.seqs {
				if r.seqs[j] != uint32(j) {
					t.Fatalf("queue %d out of order: %v", i, r.seqs)
				}
				if due := now + int64(j*(i+1))*7e6; r.at[j] < due-int64(time.Millisecond) {
					t.Fatalf("queue %d packet %d sent %v early", i, j, time.Duration(due-r.at[j]))
				}
			}
		}
		if st := s.Stats(); st.Armed || st.Queues != 0 {
			t.Fatalf("after: %+v", st)
		}
	})
}

func TestQueueFullRefusesASlot(t *testing.T) {
	s, _ := New(Config{})
	s.Close() // closed: registrations stay in the inbox, nothing is sent
	q := s.NewQueue(4, 8, &recorder{})
	for i := range 4 {
		push(t, q, uint32(i), 0, 0)
	}
	if q.Slot() != nil {
		t.Fatal("a full queue gave a slot")
	}
	if q.Len() != 4 || !q.Busy() {
		t.Fatalf("len %d", q.Len())
	}
}

// TestQueueNeverLetsAPacketOvertake: a producer sends directly whenever
// the queue is not busy and the bucket has room, and queues otherwise,
// while the scheduler sends the queue through a batching Sender flushed
// at each round's end (real time, real goroutines: run with -race). Every
// packet reaches the one log in the producer's order: a producer that
// found the queue empty never overtook the scheduler's last send, even
// one still held in its batch, and no packet was stranded.
func TestQueueNeverLetsAPacketOvertake(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	rec := &recorder{batch: true}
	s, err := New(Config{Slot: 200 * time.Microsecond, OnRound: rec.flush})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var b Bucket
	b.SetRate(4_000_000, int64(time.Millisecond)) // 1,000 bytes each 250 µs, 4 packets at once
	q := s.NewQueue(64, 16, rec)
	const n = 5000
	direct := 0
	for i := range n {
		now := s.Now()
		due, _ := b.Reserve(now, 1000, int64(time.Second))
		if !q.Busy() && due <= now {
			rec.mu.Lock()
			rec.seqs = append(rec.seqs, uint32(i)) // on the wire at once
			rec.mu.Unlock()
			direct++
		} else {
			for q.Slot() == nil { // full: wait for the scheduler (bounded by the deadline)
				if s.Now()-now > int64(5*time.Second) {
					t.Fatal("queue stayed full for 5 s")
				}
				time.Sleep(50 * time.Microsecond)
			}
			push(t, q, uint32(i), due, now)
		}
		if i%6 == 5 {
			// Bursts of 6, the last few queued, at gaps around the time
			// the queue takes to drain: the producer often finds it just
			// emptied, or about to be.
			time.Sleep(time.Duration(1000+(i*37)%1500) * time.Microsecond)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for rec.len() < n && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if rec.len() != n {
		t.Fatalf("%d of %d packets sent", rec.len(), n)
	}
	for i, seq := range rec.seqs {
		if seq != uint32(i) {
			t.Fatalf("log position %d holds packet %d: overtaken", i, seq)
		}
	}
	if direct == 0 || direct == n {
		t.Fatalf("%d of %d direct: the test did not mix the paths", direct, n)
	}
	t.Logf("%d direct, %d queued, %d wakeups, %d rounds", direct, n-direct, s.Stats().Wakeups, rec.flushes)
}
