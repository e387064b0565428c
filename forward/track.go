package forward

import (
	"encoding/binary"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/callcore/callcore/internal/rtcpx"
	"github.com/callcore/callcore/internal/rtpx"
	"github.com/callcore/callcore/transport"
)

// Track is one published stream fanned out to its subscribers.
//
// Everything that changes a track's media state runs in the track's
// exclusive section (section.go): HandleRTP (the publisher transport's
// read loop) takes it with one compare-and-swap; a subscriber's NACK and
// key-frame requests, pumps and key-frame requests are handed to whoever
// holds it. The packet path never contends with another track or
// subscriber, and subscribers are added and removed without entering it:
// the subscriber set is an immutable snapshot behind an atomic pointer,
// replaced whole under mu.
type Track struct {
	cfg   TrackConfig
	codec codec
	clock Clock

	mu    sync.Mutex             // guards replacing subs; never held on the packet path
	subs  atomic.Pointer[subSet] // read in the exclusive section without locks
	gen   atomic.Uint64          // odd while a goroutine is in the exclusive section
	queue atomic.Pointer[task]   // work handed to the section (section.go)
	poked task                   // the track's own taskPoke
	pulse atomic.Pointer[Pulse]  // the pulse it was added to, if any
	// needPulse: the muter generates empty media and must be pumped when
	// the publisher sends nothing. Written by the section when it changes.
	needPulse atomic.Bool
	shut      atomic.Bool               // set by Close
	learnt    atomic.Uint32             // the publisher's SSRC once known, for RTCP sent outside the section
	cnt       trackCounters             // written in the exclusive section, read by anyone
	mt        muter                     // the empty media (muter.go): its own fields say who writes them
	levels    atomic.Pointer[levelSink] // where audio levels go; nil none (SetLevels)
	levelID   uint8                     // immutable: the audio-level extension's ID, 0 when not read

	// Owned by the exclusive section:
	in      ingest
	ssrc    uint32      // the publisher's SSRC once known
	hdr     rtpx.Header // scratch for Parse
	cache   *cache
	unwrap  []byte  // scratch for a packet unwrapped from RTX
	main    *fanCtx // scratch of the goroutine that runs the section
	cur     pktInfo // the packet being fanned out
	kf      keyFrames
	par     parallel          // parallel fan-out state
	pulsed  bool              // needPulse as last stored
	nack    nackGen           // upstream NACKs
	fbBuf   [fbMax]rtcpx.NACK // a subscriber's NACKs being answered
	lastAdj uint64            // the ingest's sequence adjustment at the last packet: a change is a resync, not loss
	viaRTX  bool              // the packet being handled was unwrapped from RTX
	desc    [8]byte           // a rewritten VP8 payload descriptor
	lvlOff  int64             // levelTime's offset from RTP time to the clock; 0 before the first level
}

// keyFrames is a track's key-frame state, owned by the exclusive section.
type keyFrames struct {
	seen    uint64 // extended sequence number of the newest key-frame start that arrived
	last    uint64 // the newest key-frame start forwarded, in source epoch epoch; 0 none
	lastAt  int64
	epoch   uint32
	wanted  atomic.Bool // a subscriber waits for a key frame (set by fan-out workers too)
	askedAt int64       // when the last request went upstream
	asked   bool        // a request went upstream and no key frame came since
	pending bool        // a request waits for the interval since the last one to pass
	out     bool        // a request is to go upstream once the section is left
}

// subSet is one immutable snapshot of a track's subscribers.
type subSet struct {
	entries  []subEntry
	profiles []*profile          // distinct extension mappings
	flushers []transport.Flusher // distinct flush points
}

type subEntry struct {
	sub  *Subscriber
	prof int // index into profiles
}

// profile is a header-extension mapping shared by the subscribers that
// negotiated the same IDs.
type profile struct {
	remap [256]uint8
}

// pktInfo is what the core learnt of the packet being fanned out.
type pktInfo struct {
	hdr          *rtpx.Header // the packet's header, parsed
	ext, extTS   uint64
	noMedia, key bool
	now          int64
	desc         []byte // a rewritten start of the payload, sent as part of the header; nil if none
	payload      []byte // the rest of the payload
	epoch        uint32 // the muter's source epoch the packet belongs to
}

// NewTrack returns a track with no subscribers.
func NewTrack(cfg TrackConfig) (*Track, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.setDefaults()
	t := &Track{
		cfg:    cfg,
		codec:  codecOf(cfg.MimeType),
		clock:  cfg.Clock,
		ssrc:   cfg.SSRC,
		in:     newIngest(cfg.ReorderWindow, uint16(cfg.MaxDropout), cfg.ClockRate),
		cache:  newCache(cfg.CacheSize, cfg.MaxPacketSize),
		unwrap: make([]byte, cfg.MaxPacketSize),
		main:   newFanCtx(cfg.MaxPacketSize),
	}
	t.kf.askedAt = math.MinInt64 / 2 // the first request goes at once
	t.poked.kind = taskPoke
	t.mt.init(t, &t.cfg, &t.cnt)
	t.learnt.Store(cfg.SSRC)
	t.subs.Store(&subSet{})
	if cfg.Kind == Audio {
		for _, e := range cfg.Extensions {
			if e.URI == URIAudioLevel {
				t.levelID = e.ID
			}
		}
	}
	t.SetLevels(cfg.Levels)
	return t, nil
}

// Config returns the track's configuration with defaults applied.
func (t *Track) Config() TrackConfig { return t.cfg }

// HandleRTP takes one RTP packet from the publisher and hands it, rewritten,
// to every subscriber. pkt is not retained. Packets that are refused are
// counted and reported with an error wrapping one of the package's
// sentinels; nothing is forwarded for them.
func (t *Track) HandleRTP(pkt []byte) error {
	if t.shut.Load() {
		return ErrClosed
	}
	t.acquire()
	ask, err := t.handle(pkt)
	var nack []byte
	if t.cfg.NACKUpstream && err == nil {
		nack = t.nacksDue(t.cur.now)
	}
	t.leave(ask)
	if nack != nil && t.cfg.Feedback != nil {
		_ = t.cfg.Feedback.WriteRTCP(nack) // t.nack.out is only written by this goroutine
	}
	return err
}

// handle is HandleRTP inside the exclusive section. It reports whether a
// key-frame request is to go upstream.
func (t *Track) handle(pkt []byte) (ask bool, err error) {
	t.cnt.packetsIn.Add(1)
	pkt, err = t.admit(pkt)
	if err != nil {
		return false, err
	}
	h := &t.hdr
	now := t.clock.Nanotime()
	prev, started := t.in.high, t.in.started
	ext, extTS, v := t.in.push(h.Seq, h.Timestamp, now)
	if v != accepted {
		return false, t.refuse(v)
	}
	if t.cfg.NACKUpstream && started && ext > prev+1 && t.in.seqAdj == t.lastAdj {
		t.nack.lost(prev, ext)
	}
	t.lastAdj = t.in.seqAdj
	t.cnt.bytesIn.Add(uint64(len(pkt)))
	p := &t.cur
	*p = pktInfo{hdr: h, ext: ext, extTS: extTS, now: now, payload: pkt[h.HeaderLen:]}
	media := pkt[h.HeaderLen : len(pkt)-h.PaddingLen]
	p.noMedia = len(media) == 0
	if p.noMedia {
		t.cnt.padding.Add(1)
	}
	p.key = !p.noMedia && (t.codec == codecOther || startsKeyFrame(t.codec, media))
	if p.key && t.codec != codecOther {
		t.sawKeyFrame(ext, now, media)
	}
	t.cache.put(ext, extTS, now, p.key, p.noMedia, pkt)
	sink, level, voiced := t.readLevel(pkt, p.noMedia)
	sent := t.mt.publisher(now, h.Marker, h.Timestamp, p.key, media)
	t.notePulse()
	if sink != nil {
		if !sent {
			level, voiced = 127, false // the muter's silence replaces the packet
		}
		sink.l.Level(level, voiced, t.levelTime(extTS, now))
	}
	if !sent { // muted: the muter feeds the subscribers
		return t.keyFrameDue(now), nil
	}
	p.epoch = t.mt.epoch
	t.cache.markSent(ext, p.epoch)
	if p.key && t.codec != codecOther {
		t.forwardedKeyFrame(p)
	}
	if t.codec == codecVP8 && !p.noMedia {
		p.desc, p.payload = t.mt.pic.mapPicture(&t.desc, p.payload)
		if p.desc != nil {
			t.cache.setPicOff(ext, t.mt.pic.off)
		}
	}
	t.fanout(pkt, p)
	return t.keyFrameDue(now), nil
}

// levelSink boxes a Levels for an atomic pointer.
type levelSink struct{ l Levels }

// SetLevels makes l take the audio levels of the track's packets from the
// next packet on (nil stops them). It has no effect on a video track or
// one whose publisher did not negotiate URIAudioLevel. Safe for concurrent
// use with the packet path.
func (t *Track) SetLevels(l Levels) {
	if l == nil {
		t.levels.Store(nil)
		return
	}
	t.levels.Store(&levelSink{l: l})
}

// readLevel reads the audio level of the packet in t.hdr, when the track
// reads levels and someone takes them. Retransmissions and packets without
// media or without a level are left out.
func (t *Track) readLevel(pkt []byte, noMedia bool) (*levelSink, uint8, bool) {
	if t.levelID == 0 || noMedia || t.viaRTX {
		return nil, 0, false
	}
	sink := t.levels.Load()
	if sink == nil {
		return nil, 0, false
	}
	level, voiced, err := rtpx.AudioLevel(pkt, &t.hdr, t.levelID)
	if err != nil {
		t.cnt.noLevel.Add(1)
		return nil, 0, false
	}
	return sink, level, voiced
}

// levelTime places a level on the publisher's own timeline: its packet's
// RTP time, offset to the clock by the least delay seen, so that a level
// lands in the frame its audio belongs to however late or bunched up the
// packet arrived (a loaded sender, network or server sends and reads
// packets in bursts, and placing them by arrival empties frames the
// speaker detection then counts as silence). Never later than now. A
// timeline that falls a second behind arrival (clock drift, a timestamp
// rebased by ingest) is anchored again at this packet.
func (t *Track) levelTime(extTS uint64, now int64) int64 {
	rate := uint64(t.cfg.ClockRate)
	media := int64(extTS/rate)*1e9 + int64(extTS%rate*1e9/rate)
	off := now - media
	if t.lvlOff == 0 || off < t.lvlOff || off-t.lvlOff > int64(time.Second) {
		t.lvlOff = off
	}
	return media + t.lvlOff
}

// sawKeyFrame notes a publisher's key frame and its picture size.
func (t *Track) sawKeyFrame(ext uint64, now int64, media []byte) {
	if ext > t.kf.seen {
		// A key frame answers every request so far: whoever waited is
		// served by it.
		t.kf.seen, t.kf.asked, t.kf.pending = ext, false, false
		t.cnt.keyFrames.Add(1)
	}
	if w, h, ok := frameSize(t.codec, media); ok {
		t.mt.sawSize(w, h)
	}
}

// forwardedKeyFrame notes the start of a key frame that is being fanned
// out: a joining subscriber may be given the run from it. Key frames that
// came while the track was muted were never forwarded and do not count.
func (t *Track) forwardedKeyFrame(p *pktInfo) {
	k := &t.kf
	if p.ext > k.last || k.epoch != p.epoch {
		k.last, k.lastAt, k.epoch = p.ext, p.now, p.epoch
	}
}

// fanout hands the packet in t.hdr to every subscriber, then flushes.
func (t *Track) fanout(pkt []byte, p *pktInfo) {
	set := t.subs.Load()
	if t.par.use(t, set) {
		t.fanoutParallel(set, pkt, p)
	} else {
		t.main.fanout(t, set, 0, len(set.entries), pkt, p)
	}
	for _, f := range set.flushers {
		_ = f.Flush()
	}
}

// admit parses and checks a packet against the track's configuration, and
// unwraps it when it comes on the RTX stream. It returns the packet to
// forward, parsed into t.hdr.
func (t *Track) admit(pkt []byte) ([]byte, error) {
	if len(pkt) > t.cfg.MaxPacketSize {
		t.cnt.oversized.Add(1)
		return nil, fmt.Errorf("%w: %d bytes", ErrOversized, len(pkt))
	}
	t.viaRTX = false
	if err := rtpx.Parse(pkt, &t.hdr); err != nil {
		t.cnt.malformed.Add(1)
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if r := t.cfg.RTX; r != nil && t.hdr.SSRC == r.SSRC {
		return t.unwrapRTX(pkt)
	}
	if t.ssrc == 0 {
		t.ssrc = t.hdr.SSRC
		t.learnt.Store(t.ssrc)
	}
	if t.hdr.SSRC != t.ssrc {
		t.cnt.unknownSSRC.Add(1)
		return nil, ErrUnknownSSRC
	}
	if t.hdr.PayloadType != t.cfg.PayloadType {
		t.cnt.unknownPT.Add(1)
		return nil, ErrUnknownPayloadType
	}
	return pkt, nil
}

// unwrapRTX rebuilds the original packet from an RFC 4588 retransmission:
// the original sequence number is the payload's first two bytes.
func (t *Track) unwrapRTX(pkt []byte) ([]byte, error) {
	h := &t.hdr
	if h.PayloadType != t.cfg.RTX.PayloadType {
		t.cnt.unknownPT.Add(1)
		return nil, ErrUnknownPayloadType
	}
	body := pkt[h.HeaderLen : len(pkt)-h.PaddingLen]
	if len(body) < 2 || t.ssrc == 0 {
		t.cnt.rtxPadding.Add(1) // probing padding, or nothing to attach it to
		return nil, ErrNoMedia
	}
	t.cnt.rtxIn.Add(1)
	t.viaRTX = true
	osn := binary.BigEndian.Uint16(body)
	b := t.unwrap[:0]
	b = append(b, pkt[:h.HeaderLen]...)
	b[0] &^= 0x20 // the RTX packet's padding is its own
	b[1] = b[1]&0x80 | t.cfg.PayloadType
	binary.BigEndian.PutUint16(b[2:], osn)
	binary.BigEndian.PutUint32(b[8:], t.ssrc)
	b = append(b, body[2:]...)
	if err := rtpx.Parse(b, &t.hdr); err != nil {
		t.cnt.malformed.Add(1)
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	return b, nil
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

// keyFrameDue merges the key-frame needs of the subscribers into one
// request upstream, at most one per KeyFrameInterval whatever comes back:
// a need that arrives sooner waits (pending) and goes at the end of the
// interval, unless a key frame comes first. A request is repeated at that
// interval until a key frame comes, so a lost request leaves nobody frozen.
func (t *Track) keyFrameDue(now int64) bool {
	k := &t.kf
	if k.wanted.Load() {
		// A need set between the load and the store is merged into this
		// one. Audio never asks: every packet is a place to start. Video
		// of a format the core does not parse passes its subscribers'
		// requests on: their decoders know when they need a key frame.
		k.wanted.Store(false)
		k.pending = t.cfg.Kind == Video
	}
	if !k.pending && !k.asked {
		return false
	}
	if now-k.askedAt < int64(t.cfg.KeyFrameInterval) {
		return false
	}
	k.asked, k.pending, k.askedAt = true, false, now
	return true
}

// sendPLI sends a key-frame request upstream, outside the section.
func (t *Track) sendPLI() {
	t.cnt.keyFrameRequestsOut.Add(1)
	if t.cfg.Feedback == nil {
		return
	}
	var buf [12]byte
	_ = t.cfg.Feedback.WriteRTCP(rtcpx.AppendPLI(buf[:0], t.cfg.FeedbackSSRC, t.learnt.Load()))
}

// RequestKeyFrame asks the publisher for a key frame, merged with and
// throttled like the subscribers' requests. It never waits for the
// section: a goroutine holding it makes the request.
func (t *Track) RequestKeyFrame() {
	t.kf.wanted.Store(true)
	t.submit(&t.poked)
}

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

// remove takes s out of the subscriber set.
func (t *Track) remove(s *Subscriber) {
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
}

// index builds a snapshot with the distinct profiles and flushers of subs.
func (t *Track) index(subs []*Subscriber) *subSet {
	set := &subSet{entries: make([]subEntry, len(subs))}
	for i, s := range subs {
		e := &set.entries[i]
		e.sub, e.prof = s, -1
		remap := remapTable(t.cfg.Extensions, s.cfg.Extensions)
		for j, p := range set.profiles {
			if p.remap == remap {
				e.prof = j
				break
			}
		}
		if e.prof < 0 {
			e.prof = len(set.profiles)
			set.profiles = append(set.profiles, &profile{remap: remap})
		}
		s.prof.Store(set.profiles[e.prof])
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
	t.barrier()
	for _, e := range old.entries {
		e.sub.src.CompareAndSwap(t, nil)
	}
	return nil
}

// Subscribers returns how many subscribers are attached.
func (t *Track) Subscribers() int { return len(t.subs.Load().entries) }

var (
	_ transport.RTPHandler = (*Track)(nil)
)

func putHeader(b []byte, pt uint8, seq uint16, ts, ssrc uint32) {
	b[1] = b[1]&0x80 | pt
	binary.BigEndian.PutUint16(b[2:], seq)
	binary.BigEndian.PutUint32(b[4:], ts)
	binary.BigEndian.PutUint32(b[8:], ssrc)
}
