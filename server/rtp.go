package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"strings"

	"github.com/callcore/callcore/channel"
	"github.com/callcore/callcore/forward"
	"github.com/callcore/callcore/plane/rtpplane"
	"github.com/callcore/callcore/transport/rtp"
)

// RTP participants: a user brings a plain RTP source into its channel as
// its tracks (rtpPublish), or has a channel's track sent to it as plain
// RTP (rtpReceive). docs/protocol.md describes the requests.

// RTPConfig enables RTP participants.
type RTPConfig struct {
	// Addr is the IP address of the server's media interface: rtpPublish
	// opens a port pair there for each track, and rtpReceive sends from
	// it. Empty: both requests are refused (ErrRTPDisabled).
	Addr string
	// Announce is the address rtpPublish tells the client to send to.
	// Default Addr.
	Announce string
	// Targets are the networks rtpReceive may send to. Default loopback
	// only (127.0.0.0/8 and ::1): a server that sends media to any
	// address a client names is a traffic reflector.
	Targets []netip.Prefix
	// MaxStreams bounds the RTP streams, published and received, one
	// user's stay opens (counted until it ends). Default 8.
	MaxStreams int
}

func (c RTPConfig) withDefaults() RTPConfig {
	if c.Announce == "" {
		c.Announce = c.Addr
	}
	if len(c.Targets) == 0 {
		c.Targets = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}
	}
	if c.MaxStreams == 0 {
		c.MaxStreams = 8
	}
	return c
}

// Validate reports whether the config, with defaults applied, is usable.
func (c RTPConfig) Validate() error {
	c = c.withDefaults()
	if c.Addr == "" {
		return nil
	}
	if _, err := netip.ParseAddr(c.Addr); err != nil {
		return fmt.Errorf("%w: RTP.Addr %q is not an IP address", ErrInvalidConfig, c.Addr)
	}
	if _, err := netip.ParseAddr(c.Announce); err != nil {
		return fmt.Errorf("%w: RTP.Announce %q is not an IP address", ErrInvalidConfig, c.Announce)
	}
	if c.MaxStreams < 1 {
		return fmt.Errorf("%w: RTP.MaxStreams %d", ErrInvalidConfig, c.MaxStreams)
	}
	return nil
}

// Errors of RTP participants. Match them with errors.Is; they reach the
// client as Invalid (ErrRTPDisabled, ErrRTPLimit) and UnAuthorized
// (ErrRTPTarget).
var (
	// ErrRTPDisabled: the server has no RTP.Addr.
	ErrRTPDisabled = errors.New("server: RTP participants are not enabled")
	// ErrRTPTarget: rtpReceive named an address outside RTP.Targets.
	ErrRTPTarget = errors.New("server: RTP target not allowed")
	// ErrRTPLimit: the stay has RTP.MaxStreams streams already.
	ErrRTPLimit = errors.New("server: too many RTP streams")
)

// rtpCodec is a codec an RTP participant may send: its payload type is
// the one announced.
type rtpCodec struct {
	kind      channel.Kind
	mime      string
	clockRate uint32
	channels  int
	pt        uint8
}

var rtpCodecs = map[string]rtpCodec{
	"VP8":  {channel.Video, "video/VP8", 90000, 0, 96},
	"H264": {channel.Video, "video/H264", 90000, 0, 102},
	"opus": {channel.Audio, "audio/opus", 48000, 2, 111},
}

// rtpCodecName is the protocol's name of a track's MIME type.
func rtpCodecName(mime string) string {
	for name, c := range rtpCodecs {
		if strings.EqualFold(c.mime, mime) {
			return name
		}
	}
	return strings.TrimPrefix(strings.TrimPrefix(mime, "video/"), "audio/")
}

type rtpTrackData struct {
	Name  string `json:"name"`
	Kind  string `json:"kind"`
	Codec string `json:"codec"`
}

type rtpPublishData struct {
	Tracks []rtpTrackData `json:"tracks"`
	// SRTP names a protection profile (AES_CM_128_HMAC_SHA1_80 or
	// AEAD_AES_128_GCM): each stream gets fresh keys, announced inline.
	SRTP string `json:"srtp"`
}

// rtpKeys are the SRTP keys of one stream, as a=crypto and ffmpeg's
// -srtp_out_suite and -srtp_out_params take them.
type rtpKeys struct {
	Profile string `json:"profile"`
	Inline  string `json:"inline"`
}

// rtpStream is one stream of an rtpPublish or rtpReceive answer.
type rtpStream struct {
	Name        string   `json:"name,omitempty"`
	Kind        string   `json:"kind"`
	Codec       string   `json:"codec"`
	ClockRate   uint32   `json:"clockRate"`
	Channels    int      `json:"channels,omitempty"`
	PayloadType uint8    `json:"payloadType"`
	SSRC        uint32   `json:"ssrc"`
	Address     string   `json:"address"`
	Port        int      `json:"port"`
	RTCPPort    int      `json:"rtcpPort"`
	SRTP        *rtpKeys `json:"srtp,omitempty"`
}

// rtpReceiveResult is what an rtpReceive leg sends: the receiver's SDP.
type rtpReceiveResult struct {
	Kind        string `json:"kind"`
	Codec       string `json:"codec"`
	ClockRate   uint32 `json:"clockRate"`
	Channels    int    `json:"channels,omitempty"`
	PayloadType uint8  `json:"payloadType"`
	SSRC        uint32 `json:"ssrc"`
}

type rtpPublishResult struct {
	Streams []rtpStream `json:"streams"`
}

type rtpReceiveData struct {
	UserID    string `json:"userId"`
	TrackName string `json:"trackName"`
	Address   string `json:"address"`
	RTCPMux   bool   `json:"rtcpMux"`
}

// rtpEnabled refuses the requests when the server has no RTP address.
func (s *Server) rtpEnabled() error {
	if s.cfg.RTP.Addr == "" {
		return fmt.Errorf("%w: %w", channel.ErrInvalid, ErrRTPDisabled)
	}
	return nil
}

// opRTPPublish adds the user's tracks to the channel, each fed by an RTP
// ingest on a port of the server's media address, and answers with what
// the sender must send: address, ports, SSRC and payload type.
func (ss *session) opRTPPublish(st *stay, data json.RawMessage) (any, error) {
	if err := ss.srv.rtpEnabled(); err != nil {
		return nil, err
	}
	var d rtpPublishData
	if err := decodeStrict(data, &d); err != nil {
		return nil, err
	}
	if len(d.Tracks) == 0 {
		return nil, fmt.Errorf("%w: rtpPublish needs tracks", ErrInvalidMessage)
	}
	var profile rtp.Profile
	if d.SRTP != "" {
		p, err := rtp.ParseProfile(d.SRTP)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", channel.ErrInvalid, err)
		}
		profile = p
	}
	tracks := make([]channel.TrackInfo, 0, len(d.Tracks))
	streams := make([]rtpplane.Stream, 0, len(d.Tracks))
	out := rtpPublishResult{Streams: make([]rtpStream, 0, len(d.Tracks))}
	for _, t := range d.Tracks {
		k, err := kindFromWire(t.Kind)
		if err != nil {
			return nil, err
		}
		if !validName(t.Name) {
			return nil, fmt.Errorf("%w: track name %q has whitespace or control characters", channel.ErrInvalid, t.Name)
		}
		name := t.Codec
		if name == "" {
			name = map[channel.Kind]string{channel.Video: "VP8", channel.Audio: "opus"}[k]
		}
		c, ok := rtpCodecs[name]
		if !ok || c.kind != k {
			return nil, fmt.Errorf("%w: codec %q for a %s track (VP8, H264 or opus)", channel.ErrInvalid, t.Codec, t.Kind)
		}
		fk := forward.Video
		if k == channel.Audio {
			fk = forward.Audio
		}
		ssrc := rand.Uint32()&0x7fffffff | 1 // below 2^31: encoders whose option is a signed int take it
		res := rtpStream{Name: t.Name, Kind: t.Kind, Codec: name, ClockRate: c.clockRate,
			Channels: c.channels, PayloadType: c.pt, SSRC: ssrc, Address: ss.srv.cfg.RTP.Announce}
		in := rtp.IngestConfig{Addr: net.JoinHostPort(ss.srv.cfg.RTP.Addr, "0")}
		if profile != 0 {
			keys, err := rtp.NewKeys(profile)
			if err != nil {
				return nil, fmt.Errorf("server: SRTP keys: %w", err)
			}
			in.SRTP = keys
			res.SRTP = &rtpKeys{Profile: profile.String(), Inline: keys.Inline()}
		}
		tracks = append(tracks, channel.TrackInfo{Name: t.Name, Kind: k})
		streams = append(streams, rtpplane.Stream{Name: t.Name,
			Track:  forward.TrackConfig{Kind: fk, MimeType: c.mime, ClockRate: c.clockRate, PayloadType: c.pt, SSRC: ssrc},
			Ingest: in})
		out.Streams = append(out.Streams, res)
	}
	if err := st.claimRTP(len(streams)); err != nil {
		return nil, err
	}
	if err := st.ch.AddTracks(ss.user, tracks); err != nil {
		st.claimRTP(-len(streams))
		return nil, err
	}
	pub, err := rtpplane.Publish(ss.srv.plane, st.ch.ID(), ss.user, streams)
	if err != nil {
		st.claimRTP(-len(streams))
		names := make([]string, len(tracks))
		for i, t := range tracks {
			names[i] = t.Name
		}
		_ = st.ch.RemoveTracks(ss.user, names)
		return nil, fmt.Errorf("server: RTP ingest: %w", err)
	}
	if !st.keepRTP(pub) {
		_ = pub.Close()
		return nil, fmt.Errorf("%w: the stay ended", channel.ErrClosed)
	}
	for i := range out.Streams {
		a, _ := pub.Addr(out.Streams[i].Name)
		r, _ := pub.RTCPAddr(out.Streams[i].Name)
		out.Streams[i].Port, out.Streams[i].RTCPPort = int(a.Port()), int(r.Port())
	}
	return out, nil
}

// opRTPReceive sends another user's track, which the user receives, as
// RTP to an address it names (within RTP.Targets), with the user's
// receive permission and the track's mute applied as to its WebRTC copy.
func (ss *session) opRTPReceive(st *stay, data json.RawMessage) (any, error) {
	if err := ss.srv.rtpEnabled(); err != nil {
		return nil, err
	}
	var d rtpReceiveData
	if err := decodeStrict(data, &d); err != nil {
		return nil, err
	}
	to, err := netip.ParseAddrPort(d.Address)
	if err != nil || to.Port() == 0 {
		return nil, fmt.Errorf("%w: address %q is not IP:port", channel.ErrInvalid, d.Address)
	}
	to = netip.AddrPortFrom(to.Addr().Unmap(), to.Port())
	if !ss.srv.rtpTarget(to.Addr()) {
		return nil, fmt.Errorf("%w: %w: %v", channel.ErrUnauthorized, ErrRTPTarget, to.Addr())
	}
	if err := st.claimRTP(1); err != nil {
		return nil, err
	}
	out := rtpplane.Output{SSRC: rand.Uint32() | 1, Egress: rtp.EgressConfig{Remote: to, RTCPMux: d.RTCPMux,
		Addr: net.JoinHostPort(ss.srv.cfg.RTP.Addr, "0")}}
	res, err := st.media.route(d.UserID, d.TrackName, out)
	if err != nil {
		st.claimRTP(-1)
		return nil, err
	}
	return res, nil
}

// rtpTarget reports whether rtpReceive may send to a.
func (s *Server) rtpTarget(a netip.Addr) bool {
	for _, p := range s.cfg.RTP.Targets {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
