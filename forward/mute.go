package forward

import "time"

// Muting has one vocabulary across the call: a track has mute sources
// (who muted it) and one effective state (what its subscribers get). The
// states carry the same names as the channel's: MuteNone, MuteSelf,
// MuteAdmin.

// MuteSource is one independent layer of muting (docs/api.md) a track.
type MuteSource uint8

// Mute sources. Other bits are ignored. The channel folds every admin
// cause (an admin's mute of the kind, a cleared send bit, a kind no
// longer allowed) into SourceAdmin.
const (
	SourceSelf  MuteSource = 1 << iota // the publisher's own mute
	SourceAdmin                        // an admin cause: the track is not forwarded
)

// MuteState is what a track's subscribers get.
type MuteState uint8

// Mute states.
const (
	MuteNone  MuteState = iota // the publisher's media
	MuteSelf                   // empty frames: black video, silent audio
	MuteAdmin                  // nothing, after a short flush of empty media
)

func (s MuteState) String() string {
	switch s {
	case MuteNone:
		return "unmuted"
	case MuteSelf:
		return "muted"
	case MuteAdmin:
		return "muted by an admin"
	}
	return "MuteState(?)"
}

// StateOf is the effective state of a set of sources: an admin source
// wins, then a self mute.
func StateOf(sources MuteSource) MuteState {
	switch {
	case sources&SourceAdmin != 0:
		return MuteAdmin
	case sources&SourceSelf != 0:
		return MuteSelf
	}
	return MuteNone
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

// SetMute sets or clears one mute source and returns the effective state.
// The switch happens at once for audio and at the end of the publisher's
// current frame for video. Empty frames at the publisher's size are built
// here, off the packet path, before the new sources are stored: the
// section that applies them may be a publisher packet that comes before
// SetMute's own Pump, and it must find them (an admin mute's flush is sent
// once, when it is applied; without frames there it would never be sent).
func (t *Track) SetMute(src MuteSource, on bool) MuteState {
	t.mt.set(src, on)
	t.Pump()
	return t.MuteState()
}

// MuteState returns the effective state of the track's mute sources.
func (t *Track) MuteState() MuteState { return t.mt.state() }

// MuteSources returns the sources that mute the track now.
func (t *Track) MuteSources() MuteSource { return MuteSource(t.mt.sources.Load()) }

// Pump applies mute changes and sends the empty media that is due. While a
// track is muted something must call it at least every AudioFrame (a
// Pulse does); publisher packets pump too. It never waits for the
// section: a goroutine holding it does the work before leaving.
func (t *Track) Pump() {
	if t.mt.state() != MuteNone {
		t.mt.ensureFrames()
	}
	t.submit(&t.poked)
}

// poke is Pump's work, in the section.
func (t *Track) poke() {
	now := t.clock.Nanotime()
	t.mt.pump(now)
	t.notePulse()
	t.kf.out = t.keyFrameDue(now) || t.kf.out
}

// notePulse tells the track's pulse, in the section, when the muter starts
// or stops needing it. needPulse is stored before the pulse is loaded, and
// Pulse.Add stores the pulse before it loads needPulse, so one of them
// sees the other.
func (t *Track) notePulse() {
	need := t.mt.needsPulse()
	if need == t.pulsed {
		return
	}
	t.pulsed = need
	t.needPulse.Store(need)
	if p := t.pulse.Load(); need && p != nil {
		p.wake(t)
	}
}

// The track is its muter's emitter: generated packets go through the
// cache and the fan-out like the publisher's, in the section.

func (t *Track) emitGenerated(pkt []byte, p *pktInfo) {
	t.cache.put(p.ext, p.extTS, p.now, p.key, false, pkt)
	t.fanout(pkt, p)
	t.cnt.generated.Add(1)
}

func (t *Track) askPublisherKey() {
	t.kf.asked = false
	t.kf.wanted.Store(true)
}

func (t *Track) publisherSSRC() uint32 { return t.ssrc }
