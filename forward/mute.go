package forward

import (
	"sync/atomic"
	"time"
)

// MuteSource is one of the independent layers of muting (docs/api.md) a track.
type MuteSource uint8

// Mute sources. Any of the last three means "not forwarded"; otherwise a
// self mute means "empty frames".
const (
	MuteSelf           MuteSource = 1 << iota // the publisher's own mute (muteTracks)
	MuteAdmin                                 // an admin mute of the track's kind (muteUser)
	MuteSendCleared                           // the publisher's send bit is cleared
	MuteKindNotAllowed                        // the channel no longer allows the kind
)

// MuteState is what a track's subscribers get.
type MuteState uint8

// Mute states.
const (
	Unmuted     MuteState = iota // the publisher's media
	MutedEmpty                   // empty frames: black video, silent audio
	MutedSilent                  // nothing, after a short flush of empty media
)

func (s MuteState) String() string {
	switch s {
	case Unmuted:
		return "unmuted"
	case MutedEmpty:
		return "muted"
	case MutedSilent:
		return "muted by an admin"
	}
	return "MuteState(?)"
}

// StateOf is the effective state of a set of sources.
func StateOf(sources MuteSource) MuteState {
	switch {
	case sources&(MuteAdmin|MuteSendCleared|MuteKindNotAllowed) != 0:
		return MutedSilent
	case sources&MuteSelf != 0:
		return MutedEmpty
	}
	return Unmuted
}

// MuteConfig sets how a muted track's empty media flows.
type MuteConfig struct {
	// VideoRate is the rate of repeat frames while self-muted, per second.
	// Default 5.
	VideoRate int
	// AudioFrame is the duration of one silent audio frame, the cadence
	// kept while self-muted. Default 20 ms.
	AudioFrame time.Duration
	// Width and Height are the size of the black frames until a key frame
	// of the publisher shows its own. Default 640×360.
	Width, Height int
	// Flush is how much silence subscribers get when an admin mute starts,
	// before nothing. Default 100 ms. Video gets one black key frame and
	// then adminTail repeat frames Flush apart: a packet of the key frame
	// lost on the way then shows as a gap before the stream stops, and the
	// subscriber's NACK gets it again from the retransmission cache (a
	// lost last packet followed by nothing would leave the subscriber on
	// the publisher's last picture).
	Flush time.Duration
}

func (c *MuteConfig) setDefaults() {
	if c.VideoRate == 0 {
		c.VideoRate = 5
	}
	if c.AudioFrame == 0 {
		c.AudioFrame = 20 * time.Millisecond
	}
	if c.Width == 0 {
		c.Width, c.Height = 640, 360
	}
	if c.Flush == 0 {
		c.Flush = 100 * time.Millisecond
	}
}

// muteState is a track's muter, owned by its exclusive section except where
// marked.
type muteState struct {
	applied  MuteState // the state acted on
	onGen    bool      // subscribers are fed generated media
	epoch    uint32    // bumped at every switch of source
	armed    bool      // a mute waits for the end of the publisher's frame
	unmuting bool      // waiting for the publisher's key frame; empty media goes on
	tail     int       // repeat frames still to send after an admin mute's key frame
	pulsed   bool      // needPulse as last stored

	ext     uint64      // next generated sequence number, in a space of its own
	ts      uint64      // next generated timestamp
	due     int64       // when the next generated frame is due
	wantKey atomic.Bool // a subscriber needs a black key frame (set by deliveries)

	lastMarker bool   // the publisher's last packet ended a frame
	lastTS     uint32 // and its timestamp
	lastAt     int64  // and when it came
	started    bool   // a publisher packet came

	pkt      []byte // scratch for a generated packet
	vp8      []byte // scratch for a generated VP8 payload with a picture ID
	sps, pps []byte // the publisher's last H.264 parameter sets
}

// genBase starts the generated sequence numbers far from the publisher's.
const genBase = 1 << 62

// adminTail is the number of repeat frames after an admin mute's black key
// frame (MuteConfig.Flush).
const adminTail = 2

// SetMute sets or clears one mute source and returns the effective state.
// The switch happens at once for audio and at the end of the publisher's
// current frame for video. Empty frames at the publisher's size are built
// here, off the packet path.
func (t *Track) SetMute(src MuteSource, on bool) MuteState {
	for {
		old := t.mute.Load()
		next := old &^ uint32(src)
		if on {
			next |= uint32(src)
		}
		if t.mute.CompareAndSwap(old, next) {
			break
		}
	}
	t.Pump()
	return t.MuteState()
}

// MuteState returns the effective state of the track's mute sources.
func (t *Track) MuteState() MuteState { return StateOf(MuteSource(t.mute.Load())) }

// MuteSources returns the sources that mute the track now.
func (t *Track) MuteSources() MuteSource { return MuteSource(t.mute.Load()) }

// Pump applies mute changes and sends the empty media that is due. While a
// track is muted something must call it at least every AudioFrame (a
// Pulse does); publisher packets pump too. It never waits for the
// section: a goroutine holding it does the work before leaving.
func (t *Track) Pump() {
	if StateOf(MuteSource(t.mute.Load())) != Unmuted {
		t.ensureFrames()
	}
	t.submit(&t.poked)
}

// poke is Pump's work, in the section.
func (t *Track) poke() {
	now := t.clock.Nanotime()
	g := &t.mt
	boundary := t.codec == codecOther || !g.started || g.lastMarker || now-g.lastAt > int64(100*time.Millisecond)
	t.applyMute(now, boundary)
	t.generate(now)
	t.notePulse()
	t.kf.out = t.keyFrameDue(now) || t.kf.out
}

// notePulse tells the track's pulse, in the section, when the track starts
// or stops generating empty media: a mute waiting for the end of a frame,
// empty media flowing, or an admin mute's flush not yet over. needPulse is
// stored before the pulse is loaded, and Pulse.Add stores the pulse before
// it loads needPulse, so one of them sees the other.
func (t *Track) notePulse() {
	g := &t.mt
	need := g.armed || (g.onGen && (g.applied != MutedSilent || g.unmuting || g.tail > 0))
	if need == g.pulsed {
		return
	}
	g.pulsed = need
	t.needPulse.Store(need)
	if p := t.pulse.Load(); need && p != nil {
		p.wake(t)
	}
}

// ensureFrames builds the empty media at the publisher's size if the track
// does not have it yet.
func (t *Track) ensureFrames() {
	size := t.size.Load()
	w, h := int(size>>16), int(size&0xffff)
	if w == 0 {
		w, h = t.cfg.Mute.Width, t.cfg.Mute.Height
	}
	if fs := t.frames.Load(); fs != nil && fs.width == w && fs.height == h {
		return
	}
	fs, err := buildFrames(t.cfg.MimeType, t.codec, w, h, t.cfg.Mute.AudioFrame)
	if err != nil {
		t.cnt.noEmptyMedia.Add(1)
		return
	}
	t.frames.Store(fs)
}

// applyMute moves the muter toward the effective state, in the section.
// boundary says whether the publisher's current frame is complete.
func (t *Track) applyMute(now int64, boundary bool) {
	g := &t.mt
	want := StateOf(MuteSource(t.mute.Load()))
	if want == g.applied {
		g.armed = false
		return
	}
	g.tail = 0 // an admin mute's tail ends with it
	if want == Unmuted {
		prev := g.applied
		g.applied, g.armed = Unmuted, false
		if g.onGen {
			// Empty media goes on until the publisher's key frame.
			g.unmuting = true
			t.kf.asked = false
			t.kf.wanted.Store(true)
			if prev == MutedSilent {
				g.due = now
				g.wantKey.Store(true)
			}
		}
		return
	}
	if g.applied == Unmuted && !g.onGen && !boundary {
		g.armed = true // video: at most one frame late, never half a frame
		return
	}
	if g.applied == MutedSilent && want == MutedEmpty {
		g.wantKey.Store(true) // empty frames again: they start on a black key frame
	}
	g.applied, g.armed, g.unmuting = want, false, false
	if !g.onGen {
		g.onGen = true
		g.epoch++
		g.ts = uint64(now) / 1000 * uint64(t.cfg.ClockRate) / 1_000_000
		g.wantKey.Store(true)
	}
	g.due = now
	if want == MutedSilent {
		t.flush(now)
	}
}

// flush sends the short goodbye of an admin mute: one black key frame
// (generate sends its tail of repeat frames), or Flush worth of silence.
func (t *Track) flush(now int64) {
	fs := t.frames.Load()
	if fs == nil {
		return
	}
	if t.codec == codecOther {
		n := max(1, int(t.cfg.Mute.Flush/t.cfg.Mute.AudioFrame))
		for range n {
			t.emit([][]byte{fs.silent}, true, now)
		}
		return
	}
	t.emit(fs.key, true, now)
	t.mt.wantKey.Store(false) // every subscriber just got one
	t.mt.tail, t.mt.due = adminTail, now+int64(t.cfg.Mute.Flush)
}

// generate sends the empty frame that is due, if any.
func (t *Track) generate(now int64) {
	g := &t.mt
	silent := g.applied == MutedSilent && !g.unmuting
	if !g.onGen || (silent && g.tail == 0) || now < g.due {
		return
	}
	fs := t.frames.Load()
	if fs == nil {
		return
	}
	interval := int64(t.cfg.Mute.AudioFrame)
	switch {
	case silent: // an admin mute's tail
		g.tail--
		interval = int64(t.cfg.Mute.Flush)
	case t.codec != codecOther:
		interval = int64(time.Second) / int64(t.cfg.Mute.VideoRate)
	}
	g.due += interval
	if g.due <= now { // late (no pump for a while): no burst, keep the cadence from now
		g.due = now + interval
	}
	switch {
	case t.codec == codecOther:
		t.emit([][]byte{fs.silent}, true, now)
	case g.wantKey.Swap(false):
		t.emit(fs.key, true, now)
	default:
		t.emit(fs.repeat, false, now)
	}
}

// emit sends one generated frame to every subscriber, as a packet source of
// its own: its sequence numbers and timestamps only meet a subscriber's
// numbering through a splice.
func (t *Track) emit(payloads [][]byte, key bool, now int64) {
	g := &t.mt
	ts := g.ts
	if t.codec == codecOther {
		g.ts += uint64(t.cfg.Mute.AudioFrame) / 1000 * uint64(t.cfg.ClockRate) / 1_000_000
	} else {
		g.ts = max(g.ts+1, uint64(now)/1000*uint64(t.cfg.ClockRate)/1_000_000)
		ts = g.ts
	}
	var pic uint16
	if t.codec == codecVP8 && t.pic.seen {
		pic = t.nextGenPicture() // continue the publisher's picture IDs
	}
	for i, pl := range payloads {
		if t.codec == codecVP8 && t.pic.seen {
			g.vp8 = genVP8Payload(g.vp8, pl, pic)
			pl = g.vp8
		}
		t.emitPacket(pl, genBase+g.ext, ts+genBase, key && i == 0, i == len(payloads)-1 && t.codec != codecOther, now)
		g.ext++
	}
}

// emitPacket sends one generated RTP packet through the fan-out.
func (t *Track) emitPacket(payload []byte, ext, extTS uint64, key, marker bool, now int64) {
	g := &t.mt
	b := append(g.pkt[:0], 0x80, t.cfg.PayloadType, byte(ext>>8), byte(ext),
		byte(extTS>>24), byte(extTS>>16), byte(extTS>>8), byte(extTS),
		byte(t.ssrc>>24), byte(t.ssrc>>16), byte(t.ssrc>>8), byte(t.ssrc))
	if marker {
		b[1] |= 0x80
	}
	b = append(b, payload...)
	g.pkt = b
	if t.parse(b) != nil {
		return
	}
	p := &t.cur
	*p = pktInfo{ext: ext, extTS: extTS, now: now, payload: b[12:], key: key, epoch: g.epoch}
	t.cache.put(ext, extTS, now, key, false, b)
	t.fanout(b, p)
	t.cnt.generated.Add(1)
}
