package forward

import (
	"encoding/binary"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/callcore/callcore/internal/rtpx"
	"github.com/callcore/callcore/transport"
)

// Track is one published stream fanned out to its subscribers.
//
// HandleRTP is the packet path. It must be called from one goroutine at a
// time (the publisher transport's read loop, the ingest goroutine), which
// owns the fields marked "ingest". Subscribers are added and removed from
// any goroutine without blocking it: the subscriber set is an immutable
// snapshot behind an atomic pointer, replaced whole under mu.
type Track struct {
	cfg   TrackConfig
	clock Clock

	mu   sync.Mutex             // guards replacing subs; never held on the packet path
	subs atomic.Pointer[subSet] // read by the ingest goroutine without locks
	gen  atomic.Uint64          // odd while HandleRTP runs: lets a detach wait out an in-flight packet
	shut atomic.Bool            // set by Close
	cnt  trackCounters          // written by the ingest goroutine, read by anyone

	in   ingest      // ingest
	ssrc uint32      // ingest: the publisher's SSRC once known
	hdr  rtpx.Header // ingest: scratch for Parse
}

// subSet is one immutable snapshot of a track's subscribers.
type subSet struct {
	entries  []subEntry
	profiles []*profile          // distinct extension mappings
	flushers []transport.Flusher // distinct flush points
}

type subEntry struct {
	sub  *Subscriber
	prof *profile
}

// profile is a header layout shared by the subscribers that negotiated the
// same extension IDs. buf is written only by the ingest goroutine.
type profile struct {
	remap [256]uint8
	buf   []byte
	n     int // header length in buf for the current packet
}

// NewTrack returns a track with no subscribers.
func NewTrack(cfg TrackConfig) (*Track, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.setDefaults()
	t := &Track{
		cfg:   cfg,
		clock: cfg.Clock,
		ssrc:  cfg.SSRC,
		in:    newIngest(cfg.ReorderWindow, uint16(cfg.MaxDropout), cfg.ClockRate),
	}
	t.subs.Store(&subSet{})
	return t, nil
}

// Config returns the track's configuration with defaults applied.
func (t *Track) Config() TrackConfig { return t.cfg }

// HandleRTP takes one RTP packet from the publisher and hands it, rewritten,
// to every subscriber. pkt is not retained. Packets that are refused are
// counted and reported with an error wrapping one of the package's
// sentinels; nothing is forwarded for them.
func (t *Track) HandleRTP(pkt []byte) error {
	t.gen.Add(1)
	defer t.gen.Add(1)
	if t.shut.Load() {
		return ErrClosed
	}
	t.cnt.packetsIn.Add(1)
	if err := t.admit(pkt); err != nil {
		return err
	}
	h := &t.hdr
	now := t.clock.Nanotime()
	ext, extTS, v := t.in.push(h.Seq, h.Timestamp, now)
	if v != accepted {
		return t.refuse(v)
	}
	t.cnt.bytesIn.Add(uint64(len(pkt)))
	noMedia := h.PayloadLen(pkt) == 0
	if noMedia {
		t.cnt.padding.Add(1)
	}
	set := t.subs.Load()
	for _, p := range set.profiles {
		p.n = buildHeader(p, pkt, h)
	}
	payload := pkt[h.HeaderLen:]
	for i := range set.entries {
		e := &set.entries[i]
		e.sub.deliver(e.prof, payload, ext, extTS, noMedia, now, t.cfg.ClockRate)
	}
	for _, f := range set.flushers {
		_ = f.Flush()
	}
	return nil
}

// admit parses and checks a packet against the track's configuration.
func (t *Track) admit(pkt []byte) error {
	if len(pkt) > t.cfg.MaxPacketSize {
		t.cnt.oversized.Add(1)
		return fmt.Errorf("%w: %d bytes", ErrOversized, len(pkt))
	}
	if err := rtpx.Parse(pkt, &t.hdr); err != nil {
		t.cnt.malformed.Add(1)
		return fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if t.ssrc == 0 {
		t.ssrc = t.hdr.SSRC
	}
	if t.hdr.SSRC != t.ssrc {
		t.cnt.unknownSSRC.Add(1)
		return ErrUnknownSSRC
	}
	if t.hdr.PayloadType != t.cfg.PayloadType {
		t.cnt.unknownPT.Add(1)
		return ErrUnknownPayloadType
	}
	return nil
}

func (t *Track) refuse(v verdict) error {
	switch v {
	case duplicate:
		t.cnt.duplicate.Add(1)
		return ErrDuplicate
	case outOfWindow:
		t.cnt.outOfWindow.Add(1)
		return ErrOutOfWindow
	default:
		t.cnt.badTimestamp.Add(1)
		return ErrTimestamp
	}
}

// buildHeader writes into p.buf the header the profile's subscribers get,
// before their own SSRC, payload type, sequence number and timestamp are
// patched in, and returns its length.
func buildHeader(p *profile, pkt []byte, h *rtpx.Header) int {
	fixed := 12 + 4*int(h.CSRCCount)
	copy(p.buf, pkt[:fixed])
	if h.ExtProfile == 0 {
		return fixed
	}
	n := rtpx.RewriteExtensions(p.buf[fixed:], pkt[h.ExtStart:h.ExtEnd], h.ExtProfile, &p.remap)
	if n == 0 {
		p.buf[0] &^= 0x10
	}
	return fixed + n
}

// quiescent reports whether a packet in flight when gen read g has finished.
func (t *Track) quiescent(g uint64) bool { return g%2 == 0 || t.gen.Load() != g }

// Subscribe creates a subscriber and attaches it to the track.
func (t *Track) Subscribe(cfg SubscriberConfig) (*Subscriber, error) {
	s, err := NewSubscriber(cfg)
	if err != nil {
		return nil, err
	}
	if err := s.SwitchTo(t); err != nil {
		return nil, err
	}
	return s, nil
}

// add puts s into the subscriber set. It reports false on a closed track.
func (t *Track) add(s *Subscriber) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.shut.Load() {
		return false
	}
	old := t.subs.Load()
	list := make([]*Subscriber, 0, len(old.entries)+1)
	for _, e := range old.entries {
		list = append(list, e.sub)
	}
	t.subs.Store(t.index(append(list, s)))
	return true
}

// remove takes s out of the subscriber set and returns the generation to
// wait out before s may be used by another goroutine.
func (t *Track) remove(s *Subscriber) uint64 {
	t.mu.Lock()
	old := t.subs.Load()
	list := make([]*Subscriber, 0, len(old.entries))
	for _, e := range old.entries {
		if e.sub != s {
			list = append(list, e.sub)
		}
	}
	t.subs.Store(t.index(list))
	t.mu.Unlock()
	return t.gen.Load()
}

// index builds a snapshot with the distinct profiles and flushers of subs.
// Profiles are new in every snapshot, so the ingest goroutine never shares
// a header buffer with a snapshot it is not using.
func (t *Track) index(subs []*Subscriber) *subSet {
	set := &subSet{entries: make([]subEntry, len(subs))}
	for i, s := range subs {
		e := &set.entries[i]
		e.sub = s
		remap := remapTable(t.cfg.Extensions, s.cfg.Extensions)
		for _, p := range set.profiles {
			if p.remap == remap {
				e.prof = p
				break
			}
		}
		if e.prof == nil {
			e.prof = &profile{remap: remap, buf: make([]byte, t.cfg.MaxPacketSize+8)}
			set.profiles = append(set.profiles, e.prof)
		}
		if b, ok := s.cfg.Writer.(transport.Batcher); ok {
			f := b.Batch()
			known := false
			for _, g := range set.flushers {
				known = known || g == f
			}
			if !known {
				set.flushers = append(set.flushers, f)
			}
		}
	}
	return set
}

// Close stops the track: HandleRTP refuses packets from now on, and its
// subscribers are detached (they may be switched to another track). Close
// returns once no packet is in flight.
func (t *Track) Close() error {
	t.mu.Lock()
	t.shut.Store(true)
	old := t.subs.Swap(&subSet{})
	t.mu.Unlock()
	g := t.gen.Load()
	for !t.quiescent(g) {
		runtime.Gosched()
	}
	for _, e := range old.entries {
		e.sub.src.CompareAndSwap(t, nil)
	}
	return nil
}

// Subscribers returns how many subscribers are attached.
func (t *Track) Subscribers() int { return len(t.subs.Load().entries) }

var _ transport.RTPHandler = (*Track)(nil)

func putHeader(b []byte, pt uint8, seq uint16, ts, ssrc uint32) {
	b[1] = b[1]&0x80 | pt
	binary.BigEndian.PutUint16(b[2:], seq)
	binary.BigEndian.PutUint32(b[4:], ts)
	binary.BigEndian.PutUint32(b[8:], ssrc)
}
