// Package memory is an in-process transport: pipes that carry RTP and RTCP
// between the core and test peers, with hooks that drop, duplicate, reorder
// and delay packets, and sinks that record or count what arrives.
//
// A Pipe with no Hook hands each packet straight to its far end without a
// copy, so benchmarks measure the core and not the transport. With a Hook,
// packets are copied so they can be held back, repeated or delayed.
package memory

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/callcore/callcore/transport"
)

// ErrInvalidConfig is returned by PipeConfig.Validate.
var ErrInvalidConfig = errors.New("memory: invalid config")

// Action says what a pipe does with one packet.
type Action struct {
	Drop  bool          // never deliver it
	Extra int           // deliver this many duplicates after it
	After int           // deliver it only after this many later packets (reordering)
	Delay time.Duration // deliver it once Now has advanced this much (needs Now)
}

// Hook decides the fate of packet n (counted from 0 per pipe).
type Hook func(n uint64, pkt []byte) Action

// PipeConfig configures a pipe.
type PipeConfig struct {
	// RTP is the far end for RTP packets. Required.
	RTP transport.RTPWriter
	// RTCP is the far end for RTCP packets. Optional: without it RTCP is
	// refused with transport.ErrClosed.
	RTCP transport.RTCPWriter
	// Hook conditions RTP packets. Nil delivers every packet at once.
	Hook Hook
	// Now is the clock for Delay actions. Required when Hook may delay.
	Now func() time.Duration
	// Batch, when set, queues packets until its Flush, as a socket that
	// sends a whole fan-out in one system call would.
	Batch *Batch
	// Queue, when above 0, makes the pipe deliver from a goroutine of its
	// own through a queue of that many packets of up to 1500 bytes (the one
	// being delivered included). A full
	// queue refuses packets with transport.ErrBufferFull, as a socket
	// whose peer cannot keep up does; WriteRTP never blocks.
	Queue int
}

// Validate reports whether the config is usable.
func (c PipeConfig) Validate() error {
	if c.RTP == nil {
		return fmt.Errorf("%w: nil RTP far end", ErrInvalidConfig)
	}
	if c.Queue < 0 || c.Queue > 1<<16 {
		return fmt.Errorf("%w: queue %d", ErrInvalidConfig, c.Queue)
	}
	if c.Queue > 0 && c.Batch != nil {
		return fmt.Errorf("%w: a pipe has a queue or a batch, not both", ErrInvalidConfig)
	}
	return nil
}

// Pipe carries packets one way. WriteRTP and WriteRTCP may be called from
// any goroutine; the far end may be called from the goroutine of a writer
// or of Pump, so it must be safe for that.
type Pipe struct {
	cfg    PipeConfig
	closed atomic.Bool
	n      atomic.Uint64 // RTP packets given to the hook

	scratch []byte // the packet shown to the hook; owned by the writing goroutine

	mu   sync.Mutex // guards held; never held while calling the far end
	held []heldPacket

	q *queue // nil without Queue
}

type heldPacket struct {
	pkt   []byte
	hl    int           // header length
	after int           // later packets still to pass it
	due   time.Duration // earliest delivery time, when delayed
	timed bool
}

// NewPipe returns an open pipe.
func NewPipe(cfg PipeConfig) (*Pipe, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	p := &Pipe{cfg: cfg}
	if cfg.Queue > 0 {
		p.q = newQueue(cfg.Queue, cfg.RTP)
	}
	return p, nil
}

// far hands one packet on: to the queue, the batch or the far end.
func (p *Pipe) far(header, payload []byte) error {
	switch {
	case p.q != nil:
		return p.q.put(header, payload)
	case p.cfg.Batch != nil:
		p.cfg.Batch.queue(p, header, payload)
		return nil
	}
	return p.cfg.RTP.WriteRTP(header, payload)
}

// WriteRTP carries one packet to the far end, as the hook decides.
func (p *Pipe) WriteRTP(header, payload []byte) error {
	if p.closed.Load() {
		return transport.ErrClosed
	}
	if p.cfg.Hook == nil {
		return p.far(header, payload)
	}
	n := p.n.Add(1) - 1
	p.scratch = append(append(p.scratch[:0], header...), payload...)
	a := p.cfg.Hook(n, p.scratch)
	p.mu.Lock()
	if a.Extra == 0 && a.After == 0 && a.Delay == 0 && len(p.held) == 0 {
		// Nothing held, nothing to hold: no copy.
		p.mu.Unlock()
		if a.Drop {
			return nil
		}
		return p.far(header, payload)
	}
	pkt := append([]byte(nil), p.scratch...)
	var due []heldPacket
	// This packet passes the ones held behind it; those it was the last to
	// pass go right after it.
	var passed []heldPacket
	keep := p.held[:0]
	for _, h := range p.held {
		if !h.timed && h.after > 0 {
			if h.after--; h.after == 0 {
				passed = append(passed, h)
				continue
			}
		}
		keep = append(keep, h)
	}
	p.held = keep
	if !a.Drop {
		h := heldPacket{pkt: pkt, hl: len(header), after: a.After}
		if a.Delay > 0 && p.cfg.Now != nil {
			h.timed, h.due = true, p.cfg.Now()+a.Delay
		}
		for i := 0; i <= a.Extra; i++ {
			p.held = append(p.held, h)
		}
	}
	p.held = append(p.held, passed...)
	due = p.takeDue(due)
	p.mu.Unlock()
	return p.deliver(due)
}

// Pump delivers the delayed packets that are due now.
func (p *Pipe) Pump() error {
	p.mu.Lock()
	due := p.takeDue(nil)
	p.mu.Unlock()
	return p.deliver(due)
}

// takeDue removes the packets that may go now, in order. Called with mu.
func (p *Pipe) takeDue(due []heldPacket) []heldPacket {
	var now time.Duration
	if p.cfg.Now != nil {
		now = p.cfg.Now()
	}
	keep := p.held[:0]
	for _, h := range p.held {
		if (h.timed && h.due <= now) || (!h.timed && h.after == 0) {
			due = append(due, h)
		} else {
			keep = append(keep, h)
		}
	}
	for i := len(keep); i < len(p.held); i++ {
		p.held[i] = heldPacket{}
	}
	p.held = keep
	return due
}

func (p *Pipe) deliver(due []heldPacket) error {
	var first error
	for _, h := range due {
		err := p.far(h.pkt[:h.hl], h.pkt[h.hl:])
		if first == nil {
			first = err
		}
	}
	return first
}

// Held returns how many packets the pipe is holding back.
func (p *Pipe) Held() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.held)
}

// WriteRTCP carries one RTCP packet to the far end at once.
func (p *Pipe) WriteRTCP(pkt []byte) error {
	if p.closed.Load() || p.cfg.RTCP == nil {
		return transport.ErrClosed
	}
	return p.cfg.RTCP.WriteRTCP(pkt)
}

// Batch implements transport.Batcher when the pipe has a Batch.
func (p *Pipe) Batch() transport.Flusher {
	if p.cfg.Batch == nil {
		return nopFlusher{}
	}
	return p.cfg.Batch
}

// Close makes the pipe refuse packets and drops those it holds. With a
// queue, it waits for the delivering goroutine, which first finishes the
// packet it is delivering.
func (p *Pipe) Close() error {
	p.closed.Store(true)
	p.mu.Lock()
	p.held = nil
	p.mu.Unlock()
	if p.q != nil {
		p.q.close()
	}
	return nil
}

type nopFlusher struct{}

func (nopFlusher) Flush() error { return nil }

var (
	_ transport.RTPWriter  = (*Pipe)(nil)
	_ transport.RTCPWriter = (*Pipe)(nil)
	_ transport.Batcher    = (*Pipe)(nil)
)

// Into adapts an RTPHandler, such as a forward.Track, into the far end of a
// pipe: each packet is handed over whole. When the header and payload are
// not contiguous they are joined in a buffer reused across calls, so calls
// must not overlap.
func Into(h transport.RTPHandler) transport.RTPWriter {
	var buf []byte
	return transport.RTPWriterFunc(func(header, payload []byte) error {
		if len(header) == 0 {
			return h.HandleRTP(payload)
		}
		buf = append(append(buf[:0], header...), payload...)
		return h.HandleRTP(buf)
	})
}
