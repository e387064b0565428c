package callload

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync/atomic"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"
	"github.com/pion/webrtc/v4/pkg/media/ivfreader"

	"github.com/callcore/callcore/mute"
)

// mtu is the largest RTP packet the publishers send, as browsers do.
const mtu = 1200

// frameSource gives a publisher's video frames in order: a VP8 frame
// (RFC 6386, without the RTP payload descriptor) and how long it shows.
// wantKey asks for a key frame, when the source can make one.
type frameSource interface {
	next(wantKey bool) (frame []byte, d time.Duration, err error)
	interval() time.Duration // a frame's duration, for skipping one
	close()
}

// synthetic is the built-in stream: black key frames and repeat frames
// (package mute), zero-padded after the last partition to the size the
// bit rate gives a frame (decoders read a partition's bits and ignore
// what follows).
type synthetic struct {
	key, delta []byte // read only, shared by the publishers
	keyEvery   int    // frames; 0: only on request
	d          time.Duration
	n          int // frames made
}

// syntheticFrames builds the padded frames once for the run.
func syntheticFrames(cfg Config) (key, delta []byte, err error) {
	key, err = mute.BlackKeyFrame(mute.MimeTypeVP8, cfg.Width, cfg.Height)
	if err != nil {
		return nil, nil, err
	}
	delta, err = mute.RepeatFrame(mute.MimeTypeVP8, cfg.Width, cfg.Height)
	if err != nil {
		return nil, nil, err
	}
	size := cfg.Bitrate / 8 / cfg.FPS
	pad := func(b []byte) []byte {
		if len(b) >= size {
			return b
		}
		return append(b, make([]byte, size-len(b))...)
	}
	return pad(key), pad(delta), nil
}

func newSynthetic(cfg Config, key, delta []byte) *synthetic {
	d := time.Second / time.Duration(cfg.FPS)
	return &synthetic{key: key, delta: delta, d: d, keyEvery: int(cfg.KeyInterval / d)}
}

func (s *synthetic) next(wantKey bool) ([]byte, time.Duration, error) {
	key := wantKey || s.n == 0 || s.keyEvery > 0 && s.n%s.keyEvery == 0
	s.n++
	if key {
		return s.key, s.d, nil
	}
	return s.delta, s.d, nil
}

func (s *synthetic) interval() time.Duration { return s.d }
func (s *synthetic) close()                  {}

// ivf sends a VP8 IVF file's frames in a loop, one per tick of the file's
// time base. It cannot make key frames on request.
type ivf struct {
	f *os.File
	r *ivfreader.IVFReader
	d time.Duration
}

// openIVF opens a VP8 IVF file; errors wrap ErrSource.
func openIVF(path string) (*ivf, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrSource, err)
	}
	r, h, err := ivfreader.NewWith(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%w: %s: %v", ErrSource, path, err)
	}
	if h.FourCC != "VP80" {
		f.Close()
		return nil, fmt.Errorf("%w: %s: codec %q, want VP80", ErrSource, path, h.FourCC)
	}
	// The header's time base is TimebaseNumerator/TimebaseDenominator
	// seconds: a frame a tick.
	d := time.Duration(uint64(time.Second) * uint64(h.TimebaseNumerator) / uint64(h.TimebaseDenominator))
	if d < time.Second/MaxFPS || d > time.Second {
		f.Close()
		return nil, fmt.Errorf("%w: %s: time base %d/%d s is not a frame rate", ErrSource, path, h.TimebaseNumerator, h.TimebaseDenominator)
	}
	v := &ivf{f: f, r: r, d: d}
	if _, _, err := v.next(false); err != nil { // one frame at least
		f.Close()
		return nil, err
	}
	if err := v.rewind(); err != nil {
		f.Close()
		return nil, err
	}
	return v, nil
}

func (v *ivf) rewind() error {
	if _, err := v.f.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("%w: %v", ErrSource, err)
	}
	r, _, err := ivfreader.NewWith(v.f)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrSource, err)
	}
	v.r = r
	return nil
}

func (v *ivf) next(bool) ([]byte, time.Duration, error) {
	for range 2 {
		frame, _, err := v.r.ParseNextFrame()
		if err == nil && len(frame) > 0 {
			return frame, v.d, nil
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, 0, fmt.Errorf("%w: %s: %v", ErrSource, v.f.Name(), err)
		}
		if err := v.rewind(); err != nil {
			return nil, 0, err
		}
	}
	return nil, 0, fmt.Errorf("%w: %s: no frames", ErrSource, v.f.Name())
}

func (v *ivf) interval() time.Duration { return v.d }
func (v *ivf) close()                  { v.f.Close() }

// sendVideo paces src's frames in real time into the publisher's video
// track, packetized as RFC 7741 VP8 (picture ids on, the S bit on each
// frame's first packet, the marker on its last) until ctx ends.
// While g is held it skips frames, keeping its clock.
func (p *participant) sendVideo(ctx context.Context, g *gate, src frameSource) error {
	defer src.close()
	pk := rtp.NewPacketizer(mtu, 96, 0, &codecs.VP8Payloader{EnablePictureID: true}, rtp.NewRandomSequencer(), 90000)
	return pace(ctx, func() (time.Duration, error) {
		if !g.enter() {
			d := src.interval()
			pk.SkipSamples(uint32(d * 90000 / time.Second))
			return d, nil
		}
		defer g.leave()
		frame, d, err := src.next(p.keyReq.Swap(false))
		if err != nil {
			return 0, err
		}
		for _, pkt := range pk.Packetize(frame, uint32(d*90000/time.Second)) {
			if p.video.WriteRTP(pkt) == nil {
				p.sent.Add(1)
			}
		}
		return d, nil
	})
}

// sendAudio sends 20 ms Opus frames of silence until ctx ends.
func (p *participant) sendAudio(ctx context.Context, g *gate) error {
	frame, err := mute.SilentFrame(mute.MimeTypeOpus, 20*time.Millisecond)
	if err != nil {
		return err
	}
	pk := rtp.NewPacketizer(mtu, 111, 0, &codecs.OpusPayloader{}, rtp.NewRandomSequencer(), 48000)
	return pace(ctx, func() (time.Duration, error) {
		if !g.enter() {
			pk.SkipSamples(960)
			return 20 * time.Millisecond, nil
		}
		defer g.leave()
		for _, pkt := range pk.Packetize(frame, 960) {
			if p.audio.WriteRTP(pkt) == nil {
				p.sent.Add(1)
			}
		}
		return 20 * time.Millisecond, nil
	})
}

// pace calls send at the times its own results schedule, from now until
// ctx ends; a sender more than a second behind starts over from now
// rather than burst.
func pace(ctx context.Context, send func() (time.Duration, error)) error {
	next := time.Now()
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if ctx.Err() != nil { // both were ready: the end wins
			return nil
		}
		d, err := send()
		if err != nil {
			return err
		}
		next = next.Add(d)
		if time.Until(next) < -time.Second {
			next = time.Now()
		}
		t.Reset(time.Until(next))
	}
}

// gate lets the runner stop every publisher between packets: while it is
// held, senders skip their frames (their clocks go on), so that the
// measuring window starts with nothing in flight and ends with what was
// sent known exactly.
type gate struct {
	held atomic.Bool
	busy atomic.Int64 // senders between enter and leave
}

// enter reports whether a sender may send now; if so it must call leave
// when done.
func (g *gate) enter() bool {
	g.busy.Add(1)
	if g.held.Load() {
		g.busy.Add(-1)
		return false
	}
	return true
}

func (g *gate) leave() { g.busy.Add(-1) }

// hold stops the senders and waits (at most a second) for those sending
// to finish.
func (g *gate) hold(ctx context.Context) {
	g.held.Store(true)
	end := time.Now().Add(time.Second)
	for g.busy.Load() != 0 && time.Now().Before(end) {
		if sleep(ctx, time.Millisecond) != nil {
			return
		}
	}
}

// release lets the senders go on.
func (g *gate) release() { g.held.Store(false) }
