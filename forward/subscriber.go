package forward

import (
	"sync"
	"sync/atomic"

	"github.com/callcore/callcore/internal/rtcpx"
)

// Subscriber is one subscriber's output stream of one track: its own SSRC,
// payload type, extension IDs, sequence numbers and timestamps. It is fed in
// the exclusive section of the track it is attached to, and can be switched
// to another track (a splice) with its numbering continuous. It starts, and
// starts again after a pause or a switch, on a key frame.
type Subscriber struct {
	cfg SubscriberConfig

	mu  sync.Mutex            // serialises SwitchTo and Close; never held on the packet path
	src atomic.Pointer[Track] // the track feeding it, nil when detached

	// handoff, when set, names the track that fed the subscriber before the
	// current one and the generation to wait out: until that track has
	// left the exclusive section it was in, the new track leaves the
	// subscriber alone.
	handoff atomic.Pointer[handoff]
	prof    atomic.Pointer[profile] // its extension mapping in the current snapshot
	open    atomic.Bool             // the gate: closed means nothing is sent
	shut    atomic.Bool
	// pend is a layer switch waiting for its target's key frame; lay is
	// set for a subscriber of a Layers (layerswitch.go), nil otherwise.
	pend atomic.Pointer[pending]
	lay  *layerState

	// Owned by the feeding track's exclusive section:
	m       munger
	wasShut bool   // the gate was closed at the last packet
	waitKey bool   // nothing is sent until a key frame starts
	stalled bool   // its writer refused the last packet: no replay until one passes
	epoch   uint32 // the muter's source epoch of its current segment
	rtxSeq  uint16 // next sequence number on the RTX stream
	rtx     rtxCredit

	cnt subCounters // next to the fields the packet path touches

	// Feedback handed to the track's section: fbMu guards fbNACKs, fbN and
	// fbKeys, and is taken only by HandleRTCP and by the section answering
	// (never on the packet path, no callback under it).
	fbMu    sync.Mutex
	fbNACKs [fbMax]rtcpx.NACK
	fbN     int
	fbKeys  int // key-frame requests
	fbTask  task

	// Padding asked for by Pad (padding.go): the count and size, taken
	// by the section.
	padN, padSize atomic.Uint32
	padTask       task

	// Owned by the goroutine calling HandleRTCP:
	feedback rtcpx.Feedback
	nackBuf  [maxNACKs]rtcpx.NACK
	budgeted bool   // the buckets below have started
	kfBudget bucket // PLI and FIR
	nkBudget bucket // NACKed sequence numbers
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
	cfg.setDefaults()
	s := &Subscriber{cfg: cfg, waitKey: true, rtx: newRTXCredit(cfg.RetransmitPercent, cfg.RetransmitBurst)}
	s.fbTask.kind, s.fbTask.sub = taskFeedback, s
	s.padTask.kind, s.padTask.sub = taskPad, s
	s.m.init(cfg.FirstSeq, cfg.FirstTimestamp)
	s.open.Store(true)
	return s, nil
}

// SwitchTo attaches the subscriber to t, detaching it from its current
// track. It starts on t's next key frame (or the cached run from the last
// one): its sequence number follows the last one sent, and its timestamp
// advances by the wall time since then. Neither track's packet path is
// blocked.
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
		if h := s.handoff.Load(); h != nil && !h.from.quiescent(h.gen) {
			h.from.barrier()
		}
		old.remove(s)
		// src goes nil before the old track's generation is read, so a
		// section of it that starts later sees the subscriber gone; the
		// handoff is set before src names t, so t's section sees it.
		s.src.Store(nil)
		s.handoff.Store(&handoff{from: old, gen: old.gen.Load()})
	}
	s.src.Store(t)
	if !t.add(s) {
		s.src.Store(nil)
		return ErrClosed
	}
	return nil
}

// SetOpen opens or closes the subscriber's gate. While it is closed nothing
// is sent; when it opens again, the stream resumes on a key frame with a
// splice, so the subscriber sees no gap.
func (s *Subscriber) SetOpen(open bool) { s.open.Store(open) }

// Open reports whether the gate is open.
func (s *Subscriber) Open() bool { return s.open.Load() }

// Close detaches the subscriber and returns once no packet is being
// delivered to it.
func (s *Subscriber) Close() error {
	if s.lay != nil {
		s.lay.owner.forget(s) // out of every layer's snapshot first
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.shut.Swap(true) {
		return nil
	}
	if t := s.src.Swap(nil); t != nil {
		t.remove(s)
		t.barrier()
	}
	return nil
}

// restart makes the next packet start a new segment, on a key frame.
func (s *Subscriber) restart() {
	s.m.requestSplice()
	s.waitKey = true
	if s.lay != nil {
		s.lay.resync = true
	}
}

// deliver rewrites one packet for the subscriber and hands it to its
// writer, in the feeding track's exclusive section.
func (s *Subscriber) deliver(t *Track, fc *fanCtx, prof int, p *pktInfo) {
	if s.lay != nil && s.src.Load() != t && !s.candidate(t, p) {
		return // a layer that does not feed it
	}
	if h := s.handoff.Load(); h != nil {
		if !h.from.quiescent(h.gen) {
			s.cnt.dropHandoff.Add(1)
			return
		}
		s.handoff.Store(nil)
		s.restart()
	}
	if !s.open.Load() {
		s.wasShut = true
		s.cnt.dropGate.Add(1)
		return
	}
	if s.wasShut {
		s.wasShut = false
		s.restart()
	}
	if s.epoch != p.epoch { // the track switched between its publisher and empty media
		s.epoch = p.epoch
		s.restart()
	}
	if s.waitKey && !s.start(t, fc, p) {
		return
	}
	if p.noMedia && s.m.withhold(p.ext) {
		s.cnt.withheld.Add(1)
		return
	}
	if s.lay != nil && t.codec == codecH264 && s.m.splice && p.key && !s.parameterSets(t, fc, prof, p) {
		return
	}
	out, outTS, ok := s.m.next(p.ext, p.extTS, p.now, t.cfg.ClockRate)
	if !ok {
		s.cnt.dropStale.Add(1)
		return
	}
	hdr := fc.hdrs[prof][:fc.lens[prof]]
	putHeader(hdr, s.cfg.PayloadType, uint16(out), uint32(outTS), s.cfg.SSRC)
	payload := p.payload
	if s.lay != nil && t.codec == codecVP8 {
		hdr, payload = s.layerVP8(fc, hdr, len(p.desc), payload)
	}
	if err := s.cfg.Writer.WriteRTP(hdr, payload); err != nil {
		s.writeFailed(t, p.ext, out)
		return
	}
	if s.stalled {
		s.stalled = false
	}
	s.rtx.forwarded()
	s.cnt.packets.Add(1)
	s.cnt.bytes.Add(uint64(len(hdr) + len(payload)))
}

// start reports whether a waiting subscriber starts with packet p: on a
// key frame, or after the cached run from the last key frame is replayed.
// Otherwise it asks for a key frame.
func (s *Subscriber) start(t *Track, fc *fanCtx, p *pktInfo) bool {
	generated := p.ext >= genBase
	if p.key || (!p.noMedia && !generated && !s.stalled && t.replay(s, fc, p)) {
		s.waitKey = false
		return true
	}
	s.cnt.dropWaitKey.Add(1)
	if generated {
		t.mt.askKey() // a black key frame, not the publisher's
	} else {
		t.kf.wanted.Store(true)
	}
	return false
}

// writeFailed handles a writer that could not take a packet: the number is
// taken back so the stream stays continuous, and video waits for a key
// frame, since the frames after a lost one cannot be decoded. Audio loses
// that one packet.
func (s *Subscriber) writeFailed(t *Track, in, out uint64) {
	s.cnt.dropWrite.Add(1)
	s.stalled = true
	s.m.unsend(in, out)
	if t.codec != codecOther {
		s.restart()
		t.kf.wanted.Store(true)
	}
}

// Config returns the subscriber's configuration.
func (s *Subscriber) Config() SubscriberConfig { return s.cfg }
