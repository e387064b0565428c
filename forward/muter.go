package forward

import (
	"sync/atomic"
	"time"

	"github.com/callcore/callcore/internal/rtpx"
)

// The muter is a track's empty media: a packet source of its own, next to
// the publisher. It decides, from the mute sources and the publisher's
// packets, when subscribers are fed which of the two, and it makes the
// empty media (black key and repeat frames, silent audio frames) with
// sequence numbers, timestamps and VP8 picture IDs of its own. It sends
// what it makes through an emitter, the track's fan-out, and never touches
// the packet the track is handling: the track asks it one question per
// publisher packet (does this packet go out?) and goes on.
//
// Ownership: the fields marked below are written by any goroutine; the
// rest belong to the track's exclusive section (section.go), where every
// method but the marked ones runs.

// emitter is what a muter needs of its track: somewhere to send the
// packets it makes and a way to ask the publisher for a key frame.
type emitter interface {
	// emitGenerated sends one generated packet, parsed into p.hdr, to
	// every subscriber.
	emitGenerated(pkt []byte, p *pktInfo)
	// askPublisherKey asks the publisher for a key frame (an unmute waits
	// for one).
	askPublisherKey()
	// publisherSSRC is the SSRC the generated packets carry.
	publisherSSRC() uint32
}

// muter is a track's empty-media source.
type muter struct {
	out       emitter
	cfg       MuteConfig
	mime      string
	codec     codec
	clockRate uint32
	pt        uint8
	cnt       *trackCounters

	// Written by any goroutine:
	sources atomic.Uint32            // MuteSource bits, set by Track.SetMute
	frames  atomic.Pointer[frameSet] // empty media, built off the packet path
	// beforeBuild, when set (by tests, before the track is used), runs
	// just before empty media is built, outside the section.
	beforeBuild func()
	size        atomic.Uint32 // the publisher's picture size, width<<16 | height; 0 unknown
	wantKey     atomic.Bool   // a subscriber needs a black key frame (set by deliveries)

	// Owned by the exclusive section:
	applied  MuteState // the state acted on
	onGen    bool      // subscribers are fed generated media
	epoch    uint32    // bumped at every switch of source
	armed    bool      // a mute waits for the end of the publisher's frame
	unmuting bool      // waiting for the publisher's key frame; empty media goes on
	tail     int       // repeat frames still to send after an admin mute's key frame

	ext uint64 // next generated sequence number, in a space of its own
	ts  uint64 // next generated timestamp
	due int64  // when the next generated frame is due

	lastMarker bool   // the publisher's last packet ended a frame
	lastTS     uint32 // and its timestamp
	lastAt     int64  // and when it came
	started    bool   // a publisher packet came

	pic      picState    // VP8 picture-ID continuity across switches
	hdr      rtpx.Header // a generated packet, parsed
	cur      pktInfo     // a generated packet being fanned out
	pkt      []byte      // scratch for a generated packet
	vp8      []byte      // scratch for a generated VP8 payload with a picture ID
	sps, pps []byte      // the publisher's last H.264 parameter sets
}

// genBase starts the generated sequence numbers far from the publisher's.
const genBase = 1 << 62

// adminTail is the number of repeat frames after an admin mute's black key
// frame (MuteConfig.Flush).
const adminTail = 2

// init sets the muter up for a track's configuration.
func (m *muter) init(out emitter, cfg *TrackConfig, cnt *trackCounters) {
	m.out, m.cfg, m.mime, m.codec = out, cfg.Mute, cfg.MimeType, codecOf(cfg.MimeType)
	m.clockRate, m.pt, m.cnt = cfg.ClockRate, cfg.PayloadType, cnt
}

// set sets or clears mute sources. Any goroutine.
//
// A muted state is stored only once the empty media exists: the section
// that applies it may be a publisher packet that comes before SetMute's
// own pump, and it must find the frames (an admin mute's flush is sent
// once, when it is applied; without frames then it would never be sent).
func (m *muter) set(src MuteSource, on bool) {
	src &= SourceSelf | SourceAdmin
	for {
		old := m.sources.Load()
		next := old &^ uint32(src)
		if on {
			next |= uint32(src)
		}
		if StateOf(MuteSource(next)) != MuteNone {
			m.ensureFrames() // built once; a retry finds them
		}
		if m.sources.CompareAndSwap(old, next) {
			return
		}
	}
}

// state is the effective state of the sources. Any goroutine.
func (m *muter) state() MuteState { return StateOf(MuteSource(m.sources.Load())) }

// askKey makes the next empty frame a black key frame. Any goroutine.
func (m *muter) askKey() { m.wantKey.Store(true) }

// ensureFrames builds the empty media at the publisher's size if the muter
// does not have it yet. Any goroutine, off the packet path.
func (m *muter) ensureFrames() {
	size := m.size.Load()
	w, h := int(size>>16), int(size&0xffff)
	if w == 0 {
		w, h = m.cfg.Width, m.cfg.Height
	}
	if fs := m.frames.Load(); fs != nil && fs.width == w && fs.height == h {
		return
	}
	if m.beforeBuild != nil {
		m.beforeBuild()
	}
	fs, err := buildFrames(m.mime, m.codec, w, h, m.cfg.AudioFrame)
	if err != nil {
		m.cnt.noEmptyMedia.Add(1)
		return
	}
	m.frames.Store(fs)
}

// sawSize notes the publisher's picture size, from its key frame.
func (m *muter) sawSize(w, h int) {
	if w < 1<<16 && h < 1<<16 {
		m.size.Store(uint32(w)<<16 | uint32(h))
	}
}

// feeding reports whether subscribers get the muter's media rather than the
// publisher's: a key-frame request is then the muter's to answer.
func (m *muter) feeding() bool { return m.onGen && !m.unmuting }

// needsPulse reports whether the muter must be pumped when the publisher
// sends nothing: a mute waiting for the end of a frame, empty media
// flowing, or an admin mute's flush not yet over.
func (m *muter) needsPulse() bool {
	return m.armed || (m.onGen && (m.applied != MuteAdmin || m.unmuting || m.tail > 0))
}

// publisher is told of one accepted publisher packet (marker, timestamp,
// whether it starts a key frame, its media) and reports whether it goes to
// the subscribers. It applies the mute state due at this packet and sends
// the empty media due; at an unmute, real media resumes exactly on the
// publisher's key frame, after the H.264 parameter sets when the key frame
// lacks them.
func (m *muter) publisher(now int64, marker bool, ts uint32, key bool, media []byte) bool {
	if m.codec == codecH264 && len(media) > 0 {
		m.keepParameterSets(media)
	}
	boundary := m.codec == codecOther || !m.started || m.lastMarker || ts != m.lastTS
	m.started, m.lastMarker, m.lastTS, m.lastAt = true, marker, ts, now
	m.apply(now, boundary)
	if !m.onGen {
		return true
	}
	if !m.unmuting || !key {
		m.cnt.mutedDrop.Add(1) // the publisher's media never reaches anyone while muted
		m.generate(now)
		return false
	}
	m.resumeOn(media, now)
	return true
}

// pump applies mute changes and sends the empty media due, with no
// publisher packet.
func (m *muter) pump(now int64) {
	boundary := m.codec == codecOther || !m.started || m.lastMarker || now-m.lastAt > int64(100*time.Millisecond)
	m.apply(now, boundary)
	m.generate(now)
}

// apply moves the muter toward the effective state. boundary says whether
// the publisher's current frame is complete.
func (m *muter) apply(now int64, boundary bool) {
	want := m.state()
	if want == m.applied {
		m.armed = false
		return
	}
	m.tail = 0 // an admin mute's tail ends with it
	if want == MuteNone {
		prev := m.applied
		m.applied, m.armed = MuteNone, false
		if m.onGen {
			// Empty media goes on until the publisher's key frame.
			m.unmuting = true
			m.out.askPublisherKey()
			if prev == MuteAdmin {
				m.due = now
				m.wantKey.Store(true)
			}
		}
		return
	}
	if m.applied == MuteNone && !m.onGen && !boundary {
		m.armed = true // video: at most one frame late, never half a frame
		return
	}
	if m.applied == MuteAdmin && want == MuteSelf {
		m.wantKey.Store(true) // empty frames again: they start on a black key frame
	}
	m.applied, m.armed, m.unmuting = want, false, false
	if !m.onGen {
		m.onGen = true
		m.epoch++
		m.ts = uint64(now) / 1000 * uint64(m.clockRate) / 1_000_000
		m.wantKey.Store(true)
	}
	m.due = now
	if want == MuteAdmin {
		m.flush(now)
	}
}

// flush sends the short goodbye of an admin mute: one black key frame
// (generate sends its tail of repeat frames), or Flush worth of silence.
func (m *muter) flush(now int64) {
	fs := m.frames.Load()
	if fs == nil {
		return
	}
	if m.codec == codecOther {
		n := max(1, int(m.cfg.Flush/m.cfg.AudioFrame))
		for range n {
			m.emit([][]byte{fs.silent}, true, now)
		}
		return
	}
	m.emit(fs.key, true, now)
	m.wantKey.Store(false) // every subscriber just got one
	m.tail, m.due = adminTail, now+int64(m.cfg.Flush)
}

// generate sends the empty frame that is due, if any.
func (m *muter) generate(now int64) {
	silent := m.applied == MuteAdmin && !m.unmuting
	if !m.onGen || (silent && m.tail == 0) || now < m.due {
		return
	}
	fs := m.frames.Load()
	if fs == nil {
		return
	}
	interval := int64(m.cfg.AudioFrame)
	switch {
	case silent: // an admin mute's tail
		m.tail--
		interval = int64(m.cfg.Flush)
	case m.codec != codecOther:
		interval = int64(time.Second) / int64(m.cfg.VideoRate)
	}
	m.due += interval
	if m.due <= now { // late (no pump for a while): no burst, keep the cadence from now
		m.due = now + interval
	}
	switch {
	case m.codec == codecOther:
		m.emit([][]byte{fs.silent}, true, now)
	case m.wantKey.Swap(false):
		m.emit(fs.key, true, now)
	default:
		m.emit(fs.repeat, false, now)
	}
}

// emit sends one generated frame: its sequence numbers and timestamps only
// meet a subscriber's numbering through a splice.
func (m *muter) emit(payloads [][]byte, key bool, now int64) {
	ts := m.ts
	if m.codec == codecOther {
		m.ts += uint64(m.cfg.AudioFrame) / 1000 * uint64(m.clockRate) / 1_000_000
	} else {
		m.ts = max(m.ts+1, uint64(now)/1000*uint64(m.clockRate)/1_000_000)
		ts = m.ts
	}
	var pic uint16
	vp8 := m.codec == codecVP8 && m.pic.seen
	if vp8 {
		pic = m.pic.next() // continue the publisher's picture IDs
	}
	for i, pl := range payloads {
		if vp8 {
			m.vp8 = genVP8Payload(m.vp8, pl, pic)
			pl = m.vp8
		}
		m.emitPacket(pl, ts+genBase, key && i == 0, i == len(payloads)-1 && m.codec != codecOther, now)
	}
}

// emitPacket builds one generated RTP packet and sends it.
func (m *muter) emitPacket(payload []byte, extTS uint64, key, marker bool, now int64) {
	ext := genBase + m.ext
	m.ext++
	ssrc := m.out.publisherSSRC()
	b := append(m.pkt[:0], 0x80, m.pt, byte(ext>>8), byte(ext),
		byte(extTS>>24), byte(extTS>>16), byte(extTS>>8), byte(extTS),
		byte(ssrc>>24), byte(ssrc>>16), byte(ssrc>>8), byte(ssrc))
	if marker {
		b[1] |= 0x80
	}
	b = append(b, payload...)
	m.pkt = b
	if rtpx.Parse(b, &m.hdr) != nil {
		return
	}
	m.cur = pktInfo{hdr: &m.hdr, ext: ext, extTS: extTS, now: now, payload: b[12:], key: key, epoch: m.epoch}
	m.out.emitGenerated(b, &m.cur)
}

// resumeOn switches the subscribers back to the publisher at its key frame.
// For H.264 its last parameter sets go first when the key frame does not
// carry them, so a decoder has them before the IDR.
func (m *muter) resumeOn(media []byte, now int64) {
	if m.codec == codecH264 && len(m.sps) > 0 && len(m.pps) > 0 && !hasSPS(media) {
		m.emitPacket(stapA(m.sps, m.pps), m.ts+genBase, false, false, now)
		m.cnt.parameterSetsResent.Add(1)
	}
	m.onGen, m.unmuting, m.tail = false, false, 0
	m.epoch++
	m.pic.resync = m.pic.seen
}

func hasSPS(media []byte) bool {
	found := false
	eachNAL(media, func(nal []byte) bool {
		found = nal[0]&0x1f == 7
		return !found
	})
	return found
}

// keepParameterSets remembers the publisher's last SPS and PPS.
func (m *muter) keepParameterSets(media []byte) {
	eachNAL(media, func(nal []byte) bool {
		switch nal[0] & 0x1f {
		case 7:
			m.sps = append(m.sps[:0], nal...)
		case 8:
			m.pps = append(m.pps[:0], nal...)
		}
		return true
	})
}
