package memory

import (
	"sync"

	"github.com/callcore/callcore/transport"
)

// queue delivers packets from a goroutine of its own. Buffers circulate
// between free and full, so steady use allocates nothing and put never
// blocks.
type queue struct {
	to   transport.RTPWriter
	free chan *qItem
	full chan *qItem
	stop chan struct{}
	once sync.Once
	done sync.WaitGroup
}

type qItem struct {
	buf []byte
	hl  int
}

const queueBuf = 1500

func newQueue(n int, to transport.RTPWriter) *queue {
	q := &queue{to: to, free: make(chan *qItem, n), full: make(chan *qItem, n), stop: make(chan struct{})}
	for range n {
		q.free <- &qItem{buf: make([]byte, 0, queueBuf)}
	}
	q.done.Add(1)
	go q.run()
	return q
}

func (q *queue) put(header, payload []byte) error {
	if len(header)+len(payload) > queueBuf {
		return transport.ErrBufferFull
	}
	select {
	case it := <-q.free:
		it.buf = append(append(it.buf[:0], header...), payload...)
		it.hl = len(header)
		q.full <- it // never blocks: there are as many places as buffers
		return nil
	default:
		return transport.ErrBufferFull
	}
}

func (q *queue) run() {
	defer q.done.Done()
	for {
		select {
		case <-q.stop:
			return
		case it := <-q.full:
			_ = q.to.WriteRTP(it.buf[:it.hl], it.buf[it.hl:])
			q.free <- it
		}
	}
}

func (q *queue) close() {
	q.once.Do(func() { close(q.stop) })
	q.done.Wait()
}
