package webrtc

import (
	"strings"

	"github.com/pion/sdp/v3"
	pion "github.com/pion/webrtc/v4"
)

// layerURIs are the extensions that name a publisher's own streams (mid,
// rid, repaired rid). The engine registers them to take a publisher's
// layers apart; the server never sends them.
var layerURIs = map[string]bool{
	sdp.SDESMidURI:               true,
	sdp.SDESRTPStreamIDURI:       true,
	sdp.SDESRepairRTPStreamIDURI: true,
}

// withoutProposedExtensionIDs removes from the server's offer, as sent to the
// client (the local description keeps them: pion refuses a changed local
// offer), the header extensions whose ids the server chose itself:
//   - the mid, rid and repaired rid extensions of every media section
//     whose mid the client's last description (remote, nil before any)
//     did not give them. The server keeps them where a publisher offered
//     them, with the publisher's ids; pion numbers them from 2 when the
//     client has no video negotiated yet, and the server never sends them.
//   - once the client has a description, every other extension at an id
//     the client's description does not give that extension (audio level
//     in the first audio section after a video-only negotiation: pion
//     proposes its id 1). The client's answer then leaves it out of that
//     section, and the server does not send it there.
//
// Chrome refuses an offer that gives an id another meaning than one of
// its own offers did, even one it rolled back (Glare), and that breaks the
// peer for good. Before the client's first description the server's
// offer is sent as pion made it (a browser that rolled back its first
// offer takes it). It returns offer unchanged when it cannot parse either.
func withoutProposedExtensionIDs(offer string, remote *pion.SessionDescription) string {
	var sd sdp.SessionDescription
	if err := sd.UnmarshalString(offer); err != nil {
		return offer
	}
	given := map[string]map[string]bool{} // mid → layer URIs the client gave it
	ids := map[string]bool{}              // "id uri" pairs of the client's description
	if remote != nil {
		var rd sdp.SessionDescription
		if err := rd.UnmarshalString(remote.SDP); err != nil {
			return offer
		}
		for _, md := range rd.MediaDescriptions {
			mid, _ := md.Attribute(sdp.AttrKeyMID)
			for _, a := range md.Attributes {
				uri := extmapURI(a)
				if uri == "" {
					continue
				}
				ids[extmapID(a)+" "+uri] = true
				if layerURIs[uri] {
					if given[mid] == nil {
						given[mid] = map[string]bool{}
					}
					given[mid][uri] = true
				}
			}
		}
	}
	changed := false
	for _, md := range sd.MediaDescriptions {
		mid, _ := md.Attribute(sdp.AttrKeyMID)
		kept := md.Attributes[:0]
		for _, a := range md.Attributes {
			uri := extmapURI(a)
			if layerURIs[uri] && !given[mid][uri] ||
				uri != "" && !layerURIs[uri] && remote != nil && !ids[extmapID(a)+" "+uri] {
				changed = true
				continue
			}
			kept = append(kept, a)
		}
		md.Attributes = kept
	}
	if !changed {
		return offer
	}
	out, err := sd.Marshal()
	if err != nil {
		return offer
	}
	return string(out)
}

// extmapURI returns the URI of an extmap attribute ("id[/direction] uri
// [attributes]"), or "" for any other attribute.
func extmapURI(a sdp.Attribute) string {
	if a.Key != sdp.AttrKeyExtMap {
		return ""
	}
	f := strings.Fields(a.Value)
	if len(f) < 2 {
		return ""
	}
	return f[1]
}

// extmapID returns the id of an extmap attribute, without its direction.
func extmapID(a sdp.Attribute) string {
	id, _, _ := strings.Cut(a.Value, " ")
	id, _, _ = strings.Cut(id, "/")
	return id
}
