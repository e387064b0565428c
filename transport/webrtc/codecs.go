package webrtc

import (
	"strconv"
	"strings"

	"github.com/pion/interceptor"
	"github.com/pion/interceptor/pkg/nack"
	"github.com/pion/interceptor/pkg/report"
	"github.com/pion/interceptor/pkg/twcc"
	"github.com/pion/sdp/v3"
	pion "github.com/pion/webrtc/v4"

	"github.com/callcore/callcore/forward"
)

// URIAudioLevel is the audio level header extension (RFC 6464), forwarded
// from publishers to subscribers.
const URIAudioLevel = forward.URIAudioLevel

// The codecs negotiated, with their payload types (Chrome's). VP9 and AV1
// are not offered.
var videoFeedback = []pion.RTCPFeedback{
	{Type: "nack"}, {Type: "nack", Parameter: "pli"}, {Type: "ccm", Parameter: "fir"},
}

func codecList() []pion.RTPCodecParameters {
	h264 := func(pt pion.PayloadType, profile string) pion.RTPCodecParameters {
		return pion.RTPCodecParameters{PayloadType: pt, RTPCodecCapability: pion.RTPCodecCapability{
			MimeType: pion.MimeTypeH264, ClockRate: 90000, RTCPFeedback: videoFeedback,
			SDPFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=" + profile,
		}}
	}
	rtx := func(pt, apt pion.PayloadType) pion.RTPCodecParameters {
		return pion.RTPCodecParameters{PayloadType: pt, RTPCodecCapability: pion.RTPCodecCapability{
			MimeType: pion.MimeTypeRTX, ClockRate: 90000, SDPFmtpLine: "apt=" + strconv.Itoa(int(apt)),
		}}
	}
	return []pion.RTPCodecParameters{
		{PayloadType: 111, RTPCodecCapability: pion.RTPCodecCapability{
			MimeType: pion.MimeTypeOpus, ClockRate: 48000, Channels: 2, SDPFmtpLine: "minptime=10;useinbandfec=1;usedtx=1",
		}},
		{PayloadType: 0, RTPCodecCapability: pion.RTPCodecCapability{MimeType: pion.MimeTypePCMU, ClockRate: 8000}},
		{PayloadType: 8, RTPCodecCapability: pion.RTPCodecCapability{MimeType: pion.MimeTypePCMA, ClockRate: 8000}},
		{PayloadType: 96, RTPCodecCapability: pion.RTPCodecCapability{
			MimeType: pion.MimeTypeVP8, ClockRate: 90000, RTCPFeedback: videoFeedback,
		}},
		rtx(97, 96),
		h264(102, "42001f"), rtx(103, 102),
		h264(125, "42e01f"), rtx(107, 125),
	}
}

// mediaEngine registers the codecs and builds the interceptor registry.
// Interceptors kept: RTCP receiver reports, the NACK generator (asks
// publishers for lost packets) and TWCC feedback to publishers, each
// started only when the peer receives a stream (lazy.go). Not
// registered: pion's NACK responder (the core answers subscribers' NACKs
// from its shared cache), the stats interceptor, and the sender-report
// interceptor (the subscriptions send their own: reports.go).
func mediaEngine() (*pion.MediaEngine, *interceptor.Registry, error) {
	me := &pion.MediaEngine{}
	for _, c := range codecList() {
		kind := pion.RTPCodecTypeVideo
		if strings.HasPrefix(c.MimeType, "audio/") {
			kind = pion.RTPCodecTypeAudio
		}
		if err := me.RegisterCodec(c, kind); err != nil {
			return nil, nil, err
		}
	}
	if err := me.RegisterHeaderExtension(pion.RTPHeaderExtensionCapability{URI: URIAudioLevel},
		pion.RTPCodecTypeAudio); err != nil {
		return nil, nil, err
	}
	// mid, rid and repaired rid: pion needs them to take a publisher's
	// layers (rids) apart. They name the publisher's own streams and are
	// never forwarded (publishedExtensions), and the server's offers carry
	// only the ids a client gave them (withoutProposedExtensionIDs).
	if err := pion.ConfigureSimulcastExtensionHeaders(me); err != nil {
		return nil, nil, err
	}
	ir := &interceptor.Registry{}
	// Each binds its RTCP writer, and starts its ticker, only once the
	// peer receives a stream (lazy.go).
	gen, err := nack.NewGeneratorInterceptor()
	if err != nil {
		return nil, nil, err
	}
	ir.Add(onReceiveFactory{gen})
	// Receiver reports for what publishers send; sender reports are the
	// subscriptions' own (reports.go).
	rr, err := report.NewReceiverInterceptor()
	if err != nil {
		return nil, nil, err
	}
	ir.Add(onReceiveFactory{rr})
	// TWCC feedback to publishers: what pion.ConfigureTWCCSender does,
	// with the interceptor wrapped.
	for _, kind := range []pion.RTPCodecType{pion.RTPCodecTypeVideo, pion.RTPCodecTypeAudio} {
		me.RegisterFeedback(pion.RTCPFeedback{Type: pion.TypeRTCPFBTransportCC}, kind)
		if err := me.RegisterHeaderExtension(pion.RTPHeaderExtensionCapability{URI: sdp.TransportCCURI}, kind); err != nil {
			return nil, nil, err
		}
	}
	twccSender, err := twcc.NewSenderInterceptor()
	if err != nil {
		return nil, nil, err
	}
	ir.Add(onReceiveFactory{twccSender})
	return me, ir, nil
}

// supported reports whether the engine negotiates mime at all.
func supported(mime string) bool {
	for _, c := range codecList() {
		if strings.EqualFold(c.MimeType, mime) {
			return true
		}
	}
	return false
}

// remoteRejects reports whether the remote description has media sections
// of kind and none of them lists the codec mime: such a client cannot
// decode it.
func remoteRejects(desc *pion.SessionDescription, kind forward.Kind, mime string) bool {
	if desc == nil {
		return false
	}
	// Parse a copy: pion's cached parse of its own description is not ours
	// to write.
	parsed := &sdp.SessionDescription{}
	if err := parsed.UnmarshalString(desc.SDP); err != nil {
		return false
	}
	name := mime[strings.IndexByte(mime, '/')+1:]
	seen := false
	for _, m := range parsed.MediaDescriptions {
		if m.MediaName.Media != kind.String() {
			continue
		}
		seen = true
		for _, a := range m.Attributes {
			if a.Key != "rtpmap" {
				continue
			}
			// "96 VP8/90000"
			v := a.Value
			if i := strings.IndexByte(v, ' '); i >= 0 {
				v = v[i+1:]
			}
			if i := strings.IndexByte(v, '/'); i >= 0 {
				v = v[:i]
			}
			if strings.EqualFold(v, name) {
				return false
			}
		}
	}
	return seen
}

// extensions converts negotiated header extensions to the core's.
func extensions(params []pion.RTPHeaderExtensionParameter) []forward.Extension {
	out := make([]forward.Extension, 0, len(params))
	for _, p := range params {
		if p.ID > 0 && p.ID < 256 {
			out = append(out, forward.Extension{ID: uint8(p.ID), URI: p.URI})
		}
	}
	return out
}

// publishedExtensions are the extensions of a published stream the core
// may forward: mid, rid and repaired rid describe the publisher's
// transceiver and streams, not a subscriber's, and are left out (so the
// core strips them).
func publishedExtensions(params []pion.RTPHeaderExtensionParameter) []forward.Extension {
	out := extensions(params)
	kept := out[:0]
	for _, e := range out {
		switch e.URI {
		case sdp.SDESMidURI, sdp.SDESRTPStreamIDURI, sdp.SDESRepairRTPStreamIDURI:
		default:
			kept = append(kept, e)
		}
	}
	return kept
}

func kindOf(k pion.RTPCodecType) forward.Kind {
	if k == pion.RTPCodecTypeAudio {
		return forward.Audio
	}
	return forward.Video
}

// pickCodec finds mime in a binding's negotiated codecs, preferring one
// whose fmtp matches fmtp exactly (H.264 profiles).
func pickCodec(codecs []pion.RTPCodecParameters, mime string, clock uint32, fmtp string) (pion.RTPCodecParameters, bool) {
	var found pion.RTPCodecParameters
	ok := false
	for _, c := range codecs {
		if !strings.EqualFold(c.MimeType, mime) || c.ClockRate != clock {
			continue
		}
		if c.SDPFmtpLine == fmtp {
			return c, true
		}
		if !ok {
			found, ok = c, true
		}
	}
	return found, ok
}

// rtxFor returns the payload type of the RTX codec for pt, 0 if none.
func rtxFor(codecs []pion.RTPCodecParameters, pt pion.PayloadType) uint8 {
	want := "apt=" + strconv.Itoa(int(pt))
	for _, c := range codecs {
		if strings.EqualFold(c.MimeType, pion.MimeTypeRTX) && strings.Contains(c.SDPFmtpLine, want) {
			for _, f := range strings.Split(c.SDPFmtpLine, ";") {
				if strings.TrimSpace(f) == want {
					return uint8(c.PayloadType)
				}
			}
		}
	}
	return 0
}
