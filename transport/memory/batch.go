package memory

import "sync"

// Batch queues the packets of several pipes and delivers them together at
// Flush, like a socket that sends one fan-out with one sendmmsg. Its
// buffers are reused, so steady use allocates nothing.
type Batch struct {
	mu      sync.Mutex // guards all fields
	buf     []byte
	items   []batchItem
	flushes uint64
}

type batchItem struct {
	p              *Pipe
	start, hl, end int
}

func (b *Batch) queue(p *Pipe, header, payload []byte) {
	b.mu.Lock()
	start := len(b.buf)
	b.buf = append(append(b.buf, header...), payload...)
	b.items = append(b.items, batchItem{p: p, start: start, hl: len(header), end: len(b.buf)})
	b.mu.Unlock()
}

// Flush delivers every queued packet to its pipe's far end, in order.
func (b *Batch) Flush() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.flushes++
	var first error
	for _, it := range b.items {
		pkt := b.buf[it.start:it.end]
		if err := it.p.cfg.RTP.WriteRTP(pkt[:it.hl], pkt[it.hl:]); err != nil && first == nil {
			first = err
		}
	}
	b.buf, b.items = b.buf[:0], b.items[:0]
	return first
}

// Flushes returns how many times Flush was called.
func (b *Batch) Flushes() uint64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.flushes
}
