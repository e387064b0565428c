package forward

import (
	"sync"
	"sync/atomic"
)

// The exclusive section. A track's media state has one owner at a time,
// the goroutine holding the section: gen is odd while it is held, taken
// with one compare-and-swap from even. Nobody waits in a loop for it:
//
//   - Work other than a publisher packet (a subscriber's NACKs and PLI, a
//     pump, a key-frame request, a barrier) is a task, pushed onto the
//     track's queue (a lock-free stack). The pusher then tries to take the
//     section; if it is free, it runs the queue itself; if not, the owner
//     runs the task before it is done, and the pusher goes on at once.
//   - A publisher packet finding the section held pushes a waiter task and
//     sleeps on its channel; the owner hands it the section (gen stays odd
//     and moves by two) after running the tasks queued before it.
//
// Proof obligations, kept by leave and drain:
//
//  1. A pushed task is never stranded. The pusher pushes, then tries to
//     take the section; the owner releases (gen to even), then loads the
//     queue. Go's atomics are sequentially consistent, so either the
//     pusher's compare-and-swap sees the release and the pusher runs the
//     queue, or the owner's load sees the task and the owner tries to take
//     the section again; whoever takes it runs the queue before leaving.
//  2. The section passes only from owner to owner: by release and a
//     compare-and-swap, or by a handoff, which never releases it.
//  3. A task is on one queue at most once (its queued flag); the owner
//     reads its link before clearing the flag, and the task's own data is
//     taken under its owner's small lock, so a task pushed again while it
//     runs is run again, never lost.
//  4. A waiter that takes the section by itself while its task is queued
//     cancels the task; the owner that finds it drops it.
//
// With nothing queued, leaving costs one atomic add and one atomic load.

type taskKind uint8

const (
	taskPoke     taskKind = iota // mute changes, empty media due, key-frame requests due
	taskFeedback                 // a subscriber's NACKs and key-frame request
	taskWaiter                   // a publisher packet waiting for the section
	taskBarrier                  // someone waiting for the section to be left
	taskPad                      // a subscriber's padding (padding.go)
)

// task is one piece of work for a track's exclusive section.
type task struct {
	next   *task       // link in the queue, written by the pusher before it publishes
	queued atomic.Bool // on a queue now
	cancel atomic.Bool // taskWaiter: it took the section by itself
	kind   taskKind
	sub    *Subscriber   // taskFeedback, taskPad
	wake   chan struct{} // taskWaiter: the section is handed over; taskBarrier: it ran
}

var waiters = sync.Pool{New: func() any { return &task{kind: taskWaiter, wake: make(chan struct{}, 1)} }}

// tryAcquire takes the section if it is free.
func (t *Track) tryAcquire() bool {
	g := t.gen.Load()
	return g%2 == 0 && t.gen.CompareAndSwap(g, g+1)
}

// push puts tk on the queue.
func (t *Track) push(tk *task) {
	for {
		old := t.queue.Load()
		tk.next = old
		if t.queue.CompareAndSwap(old, tk) {
			return
		}
	}
}

// submit hands tk to the section: run now by the caller when the section
// is free, else by its owner before it is left. It never waits.
func (t *Track) submit(tk *task) {
	if tk.queued.CompareAndSwap(false, true) {
		t.push(tk)
	}
	if t.tryAcquire() {
		t.leave(false)
	} else {
		t.cnt.delegated.Add(1)
	}
}

// acquire takes the section for a publisher packet, sleeping (not spinning)
// until an owner hands it over when it is held.
func (t *Track) acquire() {
	if t.tryAcquire() {
		return
	}
	w := waiters.Get().(*task)
	w.queued.Store(true)
	t.push(w)
	if t.tryAcquire() {
		w.cancel.Store(true) // the queue is ours to run: drain drops it
		return
	}
	<-w.wake
	waiters.Put(w)
	t.cnt.handoffs.Add(1)
}

// leave runs what was queued and leaves the section, or hands it to a
// waiting packet. ask says an upstream key-frame request is due; it goes,
// with any the tasks made due, after the section is left.
func (t *Track) leave(ask bool) {
	for {
		ask = ask || t.kf.out
		t.kf.out = false
		t.gen.Add(1)
		if t.queue.Load() == nil || !t.tryAcquire() {
			break
		}
		if w := t.drain(); w != nil {
			ask = ask || t.kf.out
			t.kf.out = false
			t.gen.Add(2) // held still, by w: the generation moves
			w.wake <- struct{}{}
			break
		}
	}
	if ask {
		t.sendPLI()
	}
}

// drain runs the tasks queued so far, in the order they came, in the
// section. It returns the first waiting packet found, to hand the section
// to; later waiters go back on the queue for it.
func (t *Track) drain() (first *task) {
	var fifo *task
	for tk := t.queue.Swap(nil); tk != nil; {
		n := tk.next
		tk.next, fifo = fifo, tk
		tk = n
	}
	var more []*task
	for tk := fifo; tk != nil; {
		n := tk.next
		switch {
		case tk.kind != taskWaiter:
			tk.queued.Store(false)
			t.run(tk)
		case tk.cancel.Load():
			tk.cancel.Store(false)
			tk.queued.Store(false)
			waiters.Put(tk)
		case first == nil:
			tk.queued.Store(false)
			first = tk
		default:
			more = append(more, tk) // rare: two publisher goroutines on one track
		}
		tk = n
	}
	for _, tk := range more {
		t.push(tk)
	}
	return first
}

// run runs one task in the section.
func (t *Track) run(tk *task) {
	switch tk.kind {
	case taskPoke:
		t.poke()
	case taskFeedback:
		tk.sub.answer(t)
	case taskBarrier:
		tk.wake <- struct{}{}
	case taskPad:
		tk.sub.pad(t)
	}
}

// barrier returns once the section held now, if any, has been left. It
// must not be called from inside the section (a writer's WriteRTP).
func (t *Track) barrier() {
	b := &task{kind: taskBarrier, wake: make(chan struct{}, 1)}
	t.submit(b)
	<-b.wake
}

// quiescent reports whether the section held when gen read g was left.
func (t *Track) quiescent(g uint64) bool { return g%2 == 0 || t.gen.Load() != g }
