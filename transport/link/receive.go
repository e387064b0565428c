package link

import (
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"strings"
	"time"

	pionrtcp "github.com/pion/rtcp"
	pionrtp "github.com/pion/rtp"
	"github.com/pion/srtp/v3"

	"github.com/callcore/callcore/forward"
	"github.com/callcore/callcore/internal/rtcpx"
)

// maxNACKGap is the largest gap in a track's link numbering that the
// receive loop NACKs; a longer one is left to the track's probation and
// its subscribers' key-frame requests.
const maxNACKGap = 128

// receiver is the receive goroutine's state.
type receiver struct {
	ctx  *srtp.Context
	buf  []byte
	hdr  pionrtp.Header
	chdr pionrtcp.Header
	out  []byte            // RTCP being built
	nack []rtcpx.NACK      // FCI entries being built
	seen [8]*relay         // relays a compound packet names
	drop func([]byte) bool // tests: drop a decrypted RTP packet on arrival
}

// inbound is a peer's track in this session: the forward.Track it feeds.
type inbound struct {
	rt      *RemoteTrack
	track   *forward.Track
	ssrc    uint32
	rtxSSRC uint32
	high    uint16              // highest link sequence number seen; owned by the receive goroutine
	started bool                // owned by the receive goroutine
	pend    [maxPending]pending // NACKed and not arrived yet; owned by the receive goroutine
	npend   int
}

// pending is a NACKed packet: when it was last asked for, and how often.
type pending struct {
	seq   uint16
	at    int64
	tries uint8
}

// NACK retries: a packet not arrived nackRetry after its NACK is asked for
// again, up to nackTries times in all; at most maxPending are tracked per
// track.
const (
	maxPending = 64
	nackRetry  = int64(40 * time.Millisecond)
	nackTries  = 3
)

// addInbound makes a forward.Track for a track the peer announced and
// splices the remote track's subscribers onto it.
func (s *session) addInbound(m *msg) error {
	if m.ID == "" || m.SSRC == 0 || m.RTXSSRC == 0 || m.RTXSSRC == m.SSRC {
		return ErrProtocol
	}
	codec := forward.TrackConfig{Kind: forward.Kind(m.Kind), ClockRate: m.Clock, PayloadType: m.PT, MimeType: m.Mime}
	cfg := codec
	cfg.SSRC = m.SSRC
	cfg.RTX = &forward.RTX{SSRC: m.RTXSSRC, PayloadType: m.RTXPT}
	cfg.Feedback = s
	cfg.FeedbackSSRC = s.fbSSRC
	cfg.MaxPacketSize = s.l.cfg.MaxPacketSize
	t, err := forward.NewTrack(cfg)
	if err != nil {
		return errors.Join(ErrProtocol, err)
	}
	rt, created := s.l.remote(m.ID, codec)
	rt.mute.Store(m.Sources)
	if !rt.attach(t) {
		t.Close()
		return nil
	}
	in := &inbound{rt: rt, track: t, ssrc: m.SSRC, rtxSSRC: m.RTXSSRC}
	s.mu.Lock()
	old := s.inByID[m.ID]
	s.inByID[m.ID] = in
	s.storeInbound()
	s.mu.Unlock()
	if old != nil && old.track != t {
		old.track.Close()
	}
	if rt.paused.Load() {
		if err := s.c.send(&msg{T: msgPause, ID: m.ID}); err != nil {
			return err
		}
	}
	if created && s.l.cfg.OnTrack != nil {
		s.l.cfg.OnTrack(rt)
	}
	return nil
}

// storeInbound rebuilds the SSRC map; s.mu is held.
func (s *session) storeInbound() {
	m := make(map[uint32]*inbound, 2*len(s.inByID))
	for _, in := range s.inByID {
		m[in.ssrc] = in
		m[in.rtxSSRC] = in
	}
	s.inbound.Store(&m)
}

func (s *session) removeInbound(id string) {
	s.mu.Lock()
	delete(s.inByID, id)
	s.storeInbound()
	s.mu.Unlock()
}

func (s *session) inboundIDs() map[string]struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := make(map[string]struct{}, len(s.inByID))
	for id := range s.inByID {
		ids[id] = struct{}{}
	}
	return ids
}

// receive reads the session's UDP socket until it is closed.
func (s *session) receive() {
	defer s.wg.Done()
	for {
		n, src, err := s.conn.ReadFromUDPAddrPort(s.rx.buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) || s.shut.Load() {
				return
			}
			s.l.cnt.readErrors.Add(1)
			continue
		}
		s.datagram(s.rx.buf[:n], netip.AddrPortFrom(src.Addr().Unmap(), src.Port()))
	}
}

// datagram checks, unprotects and dispatches one datagram. Everything
// refused is counted.
func (s *session) datagram(b []byte, src netip.AddrPort) {
	c := &s.l.cnt
	peer := s.peer.Load()
	if peer != nil && *peer != src {
		c.unknownSource.Add(1)
		return
	}
	if len(b) < 12 || b[0]>>6 != 2 {
		c.malformed.Add(1)
		return
	}
	if b[1] >= 192 && b[1] <= 223 { // RTCP (RFC 5761)
		p, err := s.rx.ctx.DecryptRTCP(b, b, &s.rx.chdr)
		if err != nil {
			countUnprotect(c, err)
			return
		}
		if peer == nil {
			s.latch(src)
		}
		c.rtcpIn.Add(1)
		s.feedback(p)
		return
	}
	p, err := s.rx.ctx.DecryptRTP(b, b, &s.rx.hdr)
	if err != nil {
		countUnprotect(c, err)
		return
	}
	if peer == nil {
		s.latch(src)
	}
	in := (*s.inbound.Load())[s.rx.hdr.SSRC]
	if in == nil {
		c.unknownSSRC.Add(1)
		return
	}
	if s.rx.drop != nil && s.rx.drop(p) {
		return
	}
	c.rtpIn.Add(1)
	if s.rx.hdr.SSRC == in.ssrc {
		s.arrived(in, s.rx.hdr.SequenceNumber)
		s.checkGap(in, s.rx.hdr.SequenceNumber)
	} else {
		c.rtxIn.Add(1)
		if h := s.rx.hdr.MarshalSize(); len(p) >= h+2 {
			s.arrived(in, binary.BigEndian.Uint16(p[h:]))
		}
	}
	if in.npend > 0 {
		s.retryNACKs(in)
	}
	if err := in.track.HandleRTP(p); err != nil {
		c.refused.Add(1)
	}
}

// latch makes src the peer's media address when none is known yet: only
// a packet that passed authentication with this session's keys gets here.
func (s *session) latch(src netip.AddrPort) {
	s.peer.CompareAndSwap(nil, &src)
}

func countUnprotect(c *counters, err error) {
	switch {
	case errors.Is(err, srtp.ErrFailedToVerifyAuthTag):
		c.authFailed.Add(1)
	case strings.HasSuffix(err.Error(), "duplicated packet"): // pion's replay error is unexported
		c.replayed.Add(1)
	default:
		c.malformed.Add(1)
	}
}

// checkGap NACKs the packets missing before seq on the link, at once.
func (s *session) checkGap(in *inbound, seq uint16) {
	if !in.started {
		in.started, in.high = true, seq
		return
	}
	d := int16(seq - in.high)
	if d <= 0 {
		return
	}
	if d > 1 && d <= maxNACKGap {
		now := time.Now().UnixNano()
		for q := in.high + 1; q != seq && in.npend < maxPending; q++ {
			in.pend[in.npend] = pending{seq: q, at: now, tries: 1}
			in.npend++
		}
		nk := s.rx.nack[:0]
		for first := in.high + 1; first != seq; {
			e := rtcpx.NACK{PID: first}
			first++
			for i := 0; i < 16 && first != seq; i++ {
				e.BLP |= 1 << i
				first++
			}
			nk = append(nk, e)
		}
		s.rx.nack = nk
		s.rx.out = rtcpx.AppendNACK(s.rx.out[:0], s.fbSSRC, in.ssrc, nk)
		if s.WriteRTCP(s.rx.out) == nil {
			s.l.cnt.nacksOut.Add(1)
		}
	}
	in.high = seq
}

// arrived forgets a NACKed packet that came.
func (s *session) arrived(in *inbound, seq uint16) {
	for i := 0; i < in.npend; i++ {
		if in.pend[i].seq == seq {
			in.npend--
			in.pend[i] = in.pend[in.npend]
			return
		}
	}
}

// retryNACKs asks again for packets NACKed nackRetry ago that did not
// come, and gives up on those asked nackTries times.
func (s *session) retryNACKs(in *inbound) {
	now := time.Now().UnixNano()
	nk := s.rx.nack[:0]
	for i := 0; i < in.npend; {
		pd := &in.pend[i]
		if now-pd.at < nackRetry {
			i++
			continue
		}
		if pd.tries >= nackTries || int16(in.high-pd.seq) > 512 {
			s.l.cnt.nackGaveUp.Add(1)
			in.npend--
			in.pend[i] = in.pend[in.npend]
			continue
		}
		pd.tries++
		pd.at = now
		nk = append(nk, rtcpx.NACK{PID: pd.seq})
		i++
	}
	s.rx.nack = nk
	if len(nk) == 0 {
		return
	}
	s.rx.out = rtcpx.AppendNACK(s.rx.out[:0], s.fbSSRC, in.ssrc, nk)
	if s.WriteRTCP(s.rx.out) == nil {
		s.l.cnt.nacksOut.Add(1)
		s.l.cnt.nackRetries.Add(uint64(len(nk)))
	}
}

// feedback hands a compound RTCP packet to each relay it names (NACK,
// PLI, FIR for one of this side's link SSRCs): the relay's subscriber
// answers NACKs from its track's cache and merges key-frame requests
// upstream.
func (s *session) feedback(p []byte) {
	relays := *s.relays.Load()
	seen := s.rx.seen[:0]
	for rest := p; len(rest) >= 4; {
		n := (int(binary.BigEndian.Uint16(rest[2:])) + 1) * 4
		if n > len(rest) {
			s.l.cnt.badFeedback.Add(1)
			return
		}
		pk := rest[:n]
		rest = rest[n:]
		if (pk[1] != rtcpx.TypeRTPFB && pk[1] != rtcpx.TypePSFB) || len(pk) < 12 {
			continue
		}
		media := binary.BigEndian.Uint32(pk[8:])
		if pk[1] == rtcpx.TypePSFB && pk[0]&0x1f == rtcpx.FormatFIR && len(pk) >= 16 {
			media = binary.BigEndian.Uint32(pk[12:])
		}
		r := relays[media]
		if r == nil {
			s.l.cnt.badFeedback.Add(1)
			continue
		}
		dup := false
		for _, x := range seen {
			dup = dup || x == r
		}
		if !dup && len(seen) < cap(seen) {
			seen = append(seen, r)
		}
	}
	for _, r := range seen {
		if r.sub.HandleRTCP(p) != nil {
			s.l.cnt.badFeedback.Add(1)
		}
	}
}
