package forward

import (
	"runtime"
	"sync"
	"sync/atomic"
)

// Subscriber is one subscriber's output stream of one track: its own SSRC,
// payload type, extension IDs, sequence numbers and timestamps. It is fed by
// the ingest goroutine of the track it is attached to, and can be switched
// to another track (a splice) with its numbering continuous.
type Subscriber struct {
	cfg SubscriberConfig

	mu  sync.Mutex            // serialises SwitchTo and Close; never held on the packet path
	src atomic.Pointer[Track] // the track feeding it, nil when detached

	// handoff, when set, names the track that fed the subscriber before the
	// current one and the generation to wait out: until that packet is
	// done, the new track leaves the subscriber alone.
	handoff atomic.Pointer[handoff]
	open    atomic.Bool // the gate: closed means nothing is sent
	shut    atomic.Bool

	m       munger // owned by the feeding track's ingest goroutine
	wasShut bool   // owned likewise: the gate was closed at the last packet
	cnt     subCounters
}

type handoff struct {
	from *Track
	gen  uint64
}

// NewSubscriber returns a detached subscriber with an open gate.
func NewSubscriber(cfg SubscriberConfig) (*Subscriber, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Subscriber{cfg: cfg}
	s.m.init(cfg.FirstSeq, cfg.FirstTimestamp)
	s.open.Store(true)
	return s, nil
}

// SwitchTo attaches the subscriber to t, detaching it from its current
// track. The next packet it gets starts a new segment: its sequence number
// follows the last one sent, and its timestamp advances by the wall time
// since then. Neither track's packet path is blocked.
func (s *Subscriber) SwitchTo(t *Track) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.shut.Load() {
		return ErrClosed
	}
	old := s.src.Load()
	if old == t {
		return nil
	}
	if old != nil {
		// A handoff still settling must finish before it is replaced, or
		// its track could deliver alongside the new one.
		if h := s.handoff.Load(); h != nil {
			for !h.from.quiescent(h.gen) {
				runtime.Gosched()
			}
		}
		g := old.remove(s)
		s.handoff.Store(&handoff{from: old, gen: g})
	}
	s.src.Store(t)
	if !t.add(s) {
		s.src.Store(nil)
		return ErrClosed
	}
	return nil
}

// SetOpen opens or closes the subscriber's gate. While it is closed nothing
// is sent; when it opens again, the stream resumes with a splice, so the
// subscriber sees no gap.
func (s *Subscriber) SetOpen(open bool) { s.open.Store(open) }

// Open reports whether the gate is open.
func (s *Subscriber) Open() bool { return s.open.Load() }

// Close detaches the subscriber and returns once no packet is being
// delivered to it.
func (s *Subscriber) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.shut.Swap(true) {
		return nil
	}
	if t := s.src.Swap(nil); t != nil {
		g := t.remove(s)
		for !t.quiescent(g) {
			runtime.Gosched()
		}
	}
	return nil
}

// deliver rewrites one packet for the subscriber and hands it to its
// writer. It runs on the feeding track's ingest goroutine.
func (s *Subscriber) deliver(p *profile, payload []byte, ext, extTS uint64, noMedia bool, now int64, clockRate uint32) {
	if h := s.handoff.Load(); h != nil {
		if !h.from.quiescent(h.gen) {
			s.cnt.dropHandoff.Add(1)
			return
		}
		s.handoff.Store(nil)
		s.m.requestSplice()
	}
	if !s.open.Load() {
		s.wasShut = true
		s.cnt.dropGate.Add(1)
		return
	}
	if s.wasShut {
		s.wasShut = false
		s.m.requestSplice()
	}
	if noMedia && s.m.withhold(ext) {
		s.cnt.withheld.Add(1)
		return
	}
	out, outTS, ok := s.m.next(ext, extTS, now, clockRate)
	if !ok {
		s.cnt.dropStale.Add(1)
		return
	}
	hdr := p.buf[:p.n]
	putHeader(hdr, s.cfg.PayloadType, uint16(out), uint32(outTS), s.cfg.SSRC)
	if err := s.cfg.Writer.WriteRTP(hdr, payload); err != nil {
		s.cnt.dropWrite.Add(1)
		return
	}
	s.cnt.packets.Add(1)
	s.cnt.bytes.Add(uint64(len(hdr) + len(payload)))
}
