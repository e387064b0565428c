package link

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"sync/atomic"

	pionrtp "github.com/pion/rtp"
	"github.com/pion/srtp/v3"

	"github.com/callcore/callcore/forward"
	"github.com/callcore/callcore/transport"
)

// relay is an offered track's one subscriber in one session: its writer
// sends the track's packets over the link.
type relay struct {
	id       string
	track    *forward.Track
	sub      *forward.Subscriber
	ssrc     uint32
	sentMute atomic.Uint32 // the mute sources last reported to the peer
	paused   bool          // the peer asked for a pause; guarded by the session's mu
}

// rtxPT picks the payload type of a track's retransmissions on the link.
func rtxPT(pt uint8) uint8 {
	if pt == 127 {
		return 126
	}
	return 127
}

// startRelay announces t to the peer and subscribes the link to it.
func (s *session) startRelay(id string, t *forward.Track) error {
	cfg := t.Config()
	s.mu.Lock()
	if _, dup := s.relayByID[id]; dup || s.shut.Load() {
		s.mu.Unlock()
		return nil
	}
	r := &relay{id: id, track: t, ssrc: s.nextSSRC}
	s.nextSSRC += 2 // the media SSRC and its RTX
	s.relayByID[id] = r
	s.mu.Unlock()
	mute := uint32(t.MuteSources())
	r.sentMute.Store(mute)
	rtx := &forward.RTX{SSRC: r.ssrc + 1, PayloadType: rtxPT(cfg.PayloadType)}
	err := s.c.send(&msg{T: msgTrack, ID: id, SSRC: r.ssrc, RTXSSRC: rtx.SSRC, RTXPT: rtx.PayloadType,
		Kind: uint8(cfg.Kind), Clock: cfg.ClockRate, PT: cfg.PayloadType, Mime: cfg.MimeType, Sources: mute})
	if err != nil {
		s.dropRelay(id)
		return err
	}
	w, err := s.newWriter(r)
	if err != nil {
		s.dropRelay(id)
		return err
	}
	var rb [6]byte
	_, _ = rand.Read(rb[:])
	sub, err := t.Subscribe(forward.SubscriberConfig{Writer: w, SSRC: r.ssrc, PayloadType: cfg.PayloadType, RTX: rtx,
		FirstSeq: binary.BigEndian.Uint16(rb[:]), FirstTimestamp: binary.BigEndian.Uint32(rb[2:])})
	if err != nil {
		s.dropRelay(id)
		return fmt.Errorf("link: subscribe %q: %w", id, err)
	}
	s.mu.Lock()
	if s.relayByID[id] != r { // withdrawn, or the session closed, meanwhile
		s.mu.Unlock()
		sub.Close()
		return nil
	}
	r.sub = sub
	sub.SetOpen(!r.paused) // a pause that came while subscribing
	m := make(map[uint32]*relay, len(s.relayByID))
	for _, x := range s.relayByID {
		if x.sub != nil {
			m[x.ssrc] = x
		}
	}
	s.relays.Store(&m)
	s.mu.Unlock()
	return nil
}

func (s *session) dropRelay(id string) *relay {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.relayByID[id]
	delete(s.relayByID, id)
	m := make(map[uint32]*relay, len(s.relayByID))
	for _, x := range s.relayByID {
		if x.sub != nil {
			m[x.ssrc] = x
		}
	}
	s.relays.Store(&m)
	return r
}

// stopRelay unsubscribes the link from a withdrawn track and tells the
// peer.
func (s *session) stopRelay(id string, tell bool) {
	if r := s.dropRelay(id); r != nil && r.sub != nil {
		r.sub.Close()
	}
	if tell {
		_ = s.c.send(&msg{T: msgEnd, ID: id})
	}
}

// writer is a relay's transport.RTPWriter: it protects each packet with
// its own SRTP context (same session key, SSRCs of its own, so no lock is
// shared with other tracks) and sends it to the peer. The core calls it
// from one goroutine at a time.
type writer struct {
	s   *session
	r   *relay
	ctx *srtp.Context
	buf []byte
	hdr pionrtp.Header
	out rawSender
}

func (s *session) newWriter(r *relay) (*writer, error) {
	ctx, err := newContext(s.local)
	if err != nil {
		return nil, err
	}
	w := &writer{s: s, r: r, ctx: ctx, buf: make([]byte, s.l.cfg.MaxPacketSize+64)}
	if err := w.out.init(s.conn); err != nil {
		return nil, err
	}
	return w, nil
}

// WriteRTP sends one packet over the link with one non-blocking system
// call (on Linux): when the socket buffer is full the packet is dropped
// and the error wraps transport.ErrBufferFull. It never calls back into
// the core.
func (w *writer) WriteRTP(header, payload []byte) error {
	s := w.s
	if s.shut.Load() {
		return transport.ErrClosed
	}
	n := len(header) + len(payload)
	if n > s.l.cfg.MaxPacketSize {
		s.l.cnt.oversized.Add(1)
		return fmt.Errorf("%w: %d bytes", ErrInvalidConfig, n)
	}
	if uint32(w.r.track.MuteSources()) != w.r.sentMute.Load() {
		s.pokeTick()
	}
	peer := s.peer.Load()
	if peer == nil {
		s.l.cnt.noPeer.Add(1)
		return ErrNotConnected
	}
	copy(w.buf, header)
	copy(w.buf[len(header):], payload)
	if _, err := w.hdr.Unmarshal(w.buf[:n]); err != nil {
		return err
	}
	out, err := w.ctx.EncryptRTP(w.buf, w.buf[:n], &w.hdr)
	if err != nil {
		return err
	}
	if err := w.out.send(out, *peer); err != nil {
		if errors.Is(err, transport.ErrBufferFull) {
			s.l.cnt.wouldBlock.Add(1)
		} else {
			s.l.cnt.sendErrors.Add(1)
		}
		return err
	}
	s.l.cnt.rtpOut.Add(1)
	return nil
}
