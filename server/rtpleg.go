package server

import (
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/callcore/callcore/channel"
	"github.com/callcore/callcore/forward"
	"github.com/callcore/callcore/plane"
	"github.com/callcore/callcore/plane/rtpplane"
	"github.com/callcore/callcore/plane/webrtcplane"
)

// mediaEndpoint is a stay's media connection in the plane: the user's
// WebRTC peer, and the RTP legs it asked for (rtpReceive), each beside the
// WebRTC subscription of the same track and gated with it, so the user's
// receive permission, lastN and preferences apply to both.
type mediaEndpoint struct {
	web webrtcplane.Endpoint

	mu     sync.Mutex // guards recs and closed; nothing is called under it
	recs   map[trackKey]*legs
	closed bool
}

var (
	_ plane.Endpoint = (*mediaEndpoint)(nil)
	// The WebRTC leg's bandwidth abilities are the legs': without them
	// the plane would never hear of the peer's bandwidth limit, nor give
	// the peer's allocation its priorities.
	_ plane.BandwidthLimited = (*legs)(nil)
	_ plane.Prioritized      = (*legs)(nil)
)

type trackKey struct{ from, name string }

func newMediaEndpoint(web webrtcplane.Endpoint) *mediaEndpoint {
	return &mediaEndpoint{web: web, recs: map[trackKey]*legs{}}
}

// legs is one track the user receives: its WebRTC reception and its RTP
// leg, if any. It is the plane's Reception of the track.
type legs struct {
	m     *mediaEndpoint
	key   trackKey
	info  channel.TrackInfo
	track *forward.Track  // the source: a single track,
	lay   *forward.Layers // or layers

	// mu guards the fields below. The plane calls SetOpen under its own
	// lock: mu is taken after it, and the legs' methods called under mu
	// take only their own leaf locks.
	mu     sync.Mutex
	web    plane.Reception
	rtp    plane.Reception
	open   bool
	max    forward.Layer
	closed bool
}

// Subscribe sends user from's track to the peer (and to an RTP leg later
// asked for).
func (m *mediaEndpoint) Subscribe(from string, info channel.TrackInfo, t *forward.Track) (plane.Reception, error) {
	rc, err := m.web.Subscribe(from, info, t)
	if err != nil {
		return nil, err
	}
	return m.keep(&legs{key: trackKey{from, info.Name}, info: info, track: t, web: rc, open: true, max: forward.LayerF})
}

// SubscribeLayers sends user from's layered track to the peer.
func (m *mediaEndpoint) SubscribeLayers(from string, info channel.TrackInfo, l *forward.Layers, max forward.Layer) (plane.LayerReception, error) {
	rc, err := m.web.SubscribeLayers(from, info, l, max)
	if err != nil {
		return nil, err
	}
	return m.keep(&legs{key: trackKey{from, info.Name}, info: info, lay: l, web: rc, open: true, max: max})
}

func (m *mediaEndpoint) keep(l *legs) (*legs, error) {
	l.m = m
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		l.web.Close()
		return nil, fmt.Errorf("%w: media connection closed", channel.ErrClosed)
	}
	m.recs[l.key] = l
	m.mu.Unlock()
	return l, nil
}

// route adds an RTP leg to the user's reception of from's track name.
func (m *mediaEndpoint) route(from, name string, out rtpplane.Output) (*rtpReceiveResult, error) {
	m.mu.Lock()
	l := m.recs[trackKey{from, name}]
	m.mu.Unlock()
	if l == nil {
		return nil, fmt.Errorf("%w: you do not receive %s/%s", channel.ErrNotFound, from, name)
	}
	codec := forward.TrackConfig{}
	if l.track != nil {
		codec = l.track.Config()
	} else {
		for _, t := range l.lay.Tracks() {
			if t != nil {
				codec = t.Config()
				break
			}
		}
	}
	ep := &rtpplane.Endpoint{Route: func(string, channel.TrackInfo, forward.TrackConfig) (rtpplane.Output, error) { return out, nil }}
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case l.closed:
		return nil, fmt.Errorf("%w: you do not receive %s/%s", channel.ErrNotFound, from, name)
	case l.rtp != nil:
		return nil, fmt.Errorf("%w: %s/%s is sent as RTP already", channel.ErrExists, from, name)
	}
	var rc plane.Reception
	var err error
	if l.lay != nil {
		rc, err = ep.SubscribeLayers(from, l.info, l.lay, l.max)
	} else {
		rc, err = ep.Subscribe(from, l.info, l.track)
	}
	if err != nil {
		return nil, fmt.Errorf("server: RTP leg: %w", err)
	}
	rc.SetOpen(l.open)
	l.rtp = rc
	res := &rtpReceiveResult{Kind: "video", Codec: rtpCodecName(codec.MimeType), ClockRate: codec.ClockRate,
		PayloadType: codec.PayloadType, SSRC: out.SSRC}
	if l.info.Kind == channel.Audio {
		res.Kind = "audio"
		if strings.EqualFold(codec.MimeType, "audio/opus") {
			res.Channels = 2
		}
	}
	return res, nil
}

// close closes the RTP legs; the WebRTC ones end with the peer.
func (m *mediaEndpoint) close() {
	m.mu.Lock()
	m.closed = true
	all := make([]*legs, 0, len(m.recs))
	for _, l := range m.recs {
		all = append(all, l)
	}
	m.mu.Unlock()
	for _, l := range all {
		l.mu.Lock()
		rc := l.rtp
		l.mu.Unlock()
		if rc != nil {
			_ = rc.Close()
		}
	}
}

// SetOpen opens or closes both legs' gates.
func (l *legs) SetOpen(open bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.open = open
	l.web.SetOpen(open)
	if l.rtp != nil {
		l.rtp.SetOpen(open)
	}
}

// SetMaxLayer moves both legs of a layered track.
func (l *legs) SetMaxLayer(max forward.Layer) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.max = max
	var err error
	for _, rc := range []plane.Reception{l.web, l.rtp} {
		if lr, ok := rc.(plane.LayerReception); ok {
			err = errors.Join(err, lr.SetMaxLayer(max))
		}
	}
	return err
}

// webLeg returns the WebRTC leg (set once, before the legs are shared).
func (l *legs) webLeg() plane.Reception {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.web
}

// BandwidthLimit is the WebRTC leg's: its peer's downlink estimate limits
// it, not the RTP leg.
func (l *legs) BandwidthLimit() (max forward.Layer, paused, limited bool) {
	if b, ok := l.webLeg().(plane.BandwidthLimited); ok {
		return b.BandwidthLimit()
	}
	return 0, false, false
}

// OnBandwidthLimit sets the WebRTC leg's function.
func (l *legs) OnBandwidthLimit(f func()) {
	if b, ok := l.webLeg().(plane.BandwidthLimited); ok {
		b.OnBandwidthLimit(f)
	}
}

// SetPriority sets the WebRTC leg's priority in its peer's allocation.
func (l *legs) SetPriority(p int) {
	if pr, ok := l.webLeg().(plane.Prioritized); ok {
		pr.SetPriority(p)
	}
}

// Close closes both legs.
func (l *legs) Close() error {
	l.mu.Lock()
	l.closed = true
	web, rtp := l.web, l.rtp
	l.mu.Unlock()
	l.m.mu.Lock()
	if l.m.recs[l.key] == l {
		delete(l.m.recs, l.key)
	}
	l.m.mu.Unlock()
	err := web.Close()
	if rtp != nil {
		err = errors.Join(err, rtp.Close())
	}
	return err
}

// claimRTP counts n more RTP streams of the stay (n < 0 gives them back),
// refusing past RTP.MaxStreams.
func (st *stay) claimRTP(n int) error {
	st.mu.Lock()
	defer st.mu.Unlock()
	if n > 0 && st.rtpStreams+n > st.srv.cfg.RTP.MaxStreams {
		return fmt.Errorf("%w: %w: %d of %d", channel.ErrInvalid, ErrRTPLimit, st.rtpStreams, st.srv.cfg.RTP.MaxStreams)
	}
	st.rtpStreams += n
	return nil
}

// keepRTP records an RTP publisher for the stay's end; false once ended.
func (st *stay) keepRTP(p *rtpplane.Publisher) bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.rtpEnded {
		return false
	}
	st.rtpPubs = append(st.rtpPubs, p)
	return true
}

// closeRTP stops the stay's RTP ingests and legs.
func (st *stay) closeRTP() {
	st.mu.Lock()
	st.rtpEnded = true
	pubs := st.rtpPubs
	st.rtpPubs = nil
	st.mu.Unlock()
	for _, p := range pubs {
		_ = p.Close()
	}
	if st.media != nil {
		st.media.close()
	}
}
