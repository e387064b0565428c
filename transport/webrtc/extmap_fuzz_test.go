package webrtc

import (
	"strings"
	"testing"

	"github.com/pion/sdp/v3"
	pion "github.com/pion/webrtc/v4"
)

// extmapSeedOffer is a server offer as pion makes it: audio level at 1,
// mid, rid and repaired rid at 2 to 4, transport-cc at 5.
const extmapSeedOffer = "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0 1\r\n" +
	"m=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\n" +
	"a=extmap:2 urn:ietf:params:rtp-hdrext:sdes:mid\r\na=extmap:3 urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id\r\n" +
	"a=extmap:5 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01\r\na=rtpmap:96 VP8/90000\r\n" +
	"m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=mid:1\r\n" +
	"a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level\r\na=extmap:2 urn:ietf:params:rtp-hdrext:sdes:mid\r\n" +
	"a=extmap:5 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01\r\na=rtpmap:111 opus/48000/2\r\n"

// extmapSeedRemote is a client's answer to a video-only offer.
const extmapSeedRemote = "v=0\r\no=- 2 2 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0\r\n" +
	"m=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\n" +
	"a=extmap:5 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01\r\n" +
	"a=extmap:1/recvonly urn:ietf:params:rtp-hdrext:toffset\r\na=rtpmap:96 VP8/90000\r\n"

// FuzzWithoutProposedExtensionIDs checks withoutProposedExtensionIDs
// against its rule, on any pair of descriptions: what it returns keeps
// the offer's media sections and their other lines; a layer extension is
// left only in a section whose mid the client's description gave it; with
// a client description, every other extension is left only at the id the
// client's description gives it; without one, nothing but layer
// extensions is removed; and a second pass changes nothing.
func FuzzWithoutProposedExtensionIDs(f *testing.F) {
	f.Add(extmapSeedOffer, extmapSeedRemote, true)
	f.Add(extmapSeedOffer, "", false)
	f.Add(extmapSeedOffer, extmapSeedOffer, true)
	f.Fuzz(func(t *testing.T, offer, remoteSDP string, haveRemote bool) {
		var remote *pion.SessionDescription
		if haveRemote {
			remote = &pion.SessionDescription{Type: pion.SDPTypeAnswer, SDP: remoteSDP}
		}
		out := withoutProposedExtensionIDs(offer, remote)
		var in, got sdp.SessionDescription
		if in.UnmarshalString(offer) != nil || remote != nil && new(sdp.SessionDescription).UnmarshalString(remoteSDP) != nil {
			if out != offer {
				t.Fatal("an unparsable description changed the offer")
			}
			return
		}
		if out == offer {
			return
		}
		if err := got.UnmarshalString(out); err != nil {
			t.Fatalf("the result does not parse: %v", err)
		}
		layers := map[string]map[string]bool{} // mid → layer URIs the client gave it
		pairs := map[string]bool{}
		if remote != nil {
			var rd sdp.SessionDescription
			_ = rd.UnmarshalString(remoteSDP)
			for _, md := range rd.MediaDescriptions {
				mid, _ := md.Attribute(sdp.AttrKeyMID)
				for _, a := range md.Attributes {
					if uri := extmapURI(a); uri != "" {
						pairs[extmapID(a)+" "+uri] = true
						if layers[mid] == nil {
							layers[mid] = map[string]bool{}
						}
						layers[mid][uri] = true
					}
				}
			}
		}
		if len(got.MediaDescriptions) != len(in.MediaDescriptions) {
			t.Fatalf("%d media sections, want %d", len(got.MediaDescriptions), len(in.MediaDescriptions))
		}
		for i, md := range got.MediaDescriptions {
			mid, _ := md.Attribute(sdp.AttrKeyMID)
			var others, want []string
			for _, a := range md.Attributes {
				uri := extmapURI(a)
				switch {
				case uri == "":
					others = append(others, a.String())
				case layerURIs[uri] && !layers[mid][uri]:
					t.Fatalf("section %q keeps %s, which the client did not give it", mid, a.String())
				case !layerURIs[uri] && remote != nil && !pairs[extmapID(a)+" "+uri]:
					t.Fatalf("section %q keeps %s, an id the client's description does not give %s", mid, a.String(), uri)
				}
			}
			for _, a := range in.MediaDescriptions[i].Attributes {
				uri := extmapURI(a)
				if uri == "" {
					want = append(want, a.String())
				} else if remote == nil && !layerURIs[uri] && !hasAttr(md.Attributes, a) {
					t.Fatalf("without a client description, section %q lost %s", mid, a.String())
				}
			}
			if strings.Join(others, "\n") != strings.Join(want, "\n") {
				t.Fatalf("section %q's other lines changed:\n%q\nwant\n%q", mid, others, want)
			}
		}
		if again := withoutProposedExtensionIDs(out, remote); again != out {
			t.Fatal("a second pass changed the offer")
		}
	})
}

func hasAttr(as []sdp.Attribute, a sdp.Attribute) bool {
	for _, b := range as {
		if b.Key == a.Key && b.Value == a.Value {
			return true
		}
	}
	return false
}
