package webrtc

import (
	"regexp"
	"strings"
	"testing"

	"github.com/pion/sdp/v3"
	pion "github.com/pion/webrtc/v4"
	"go.uber.org/goleak"

	"github.com/callcore/callcore/forward"
)

// layerExtmap matches an extmap line of mid, rid or repaired rid.
var layerExtmap = regexp.MustCompile(`a=extmap:(\d+)\S* (` + regexp.QuoteMeta(sdp.SDESMidURI) + `|` +
	regexp.QuoteMeta(sdp.SDESRTPStreamIDURI) + `|` + regexp.QuoteMeta(sdp.SDESRepairRTPStreamIDURI) + `)`)

// The server's offers carry mid, rid and repaired rid only where the
// client offered them, with the client's ids: ids of the server's own
// choosing collide with ids a browser gave other extensions in an offer
// it rolled back, and the browser then refuses every later offer.
func TestServerOffersProposeNoLayerExtensionIDs(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	engine := newTestEngine(t, Config{})
	defer engine.Close()
	server, err := NewPeer(PeerConfig{Engine: engine})
	if err != nil {
		t.Fatal(err)
	}
	defer server.Close()
	c := newClient(t, simulcastClientAPI(t))
	defer c.close(t)

	// No video negotiated yet: the server's video section proposes none.
	if _, err := server.Subscribe(newTrack(t, forward.Video, pion.MimeTypeVP8, 90000, 96), PublishInfo{}); err != nil {
		t.Fatal(err)
	}
	offer, err := server.Offer()
	if err != nil {
		t.Fatal(err)
	}
	if m := layerExtmap.FindAllString(offer, -1); len(m) > 0 {
		t.Fatalf("the server's first offer proposes %q", m)
	}
	if err := server.SetAnswer(answerOffer(t, c, offer)); err != nil {
		t.Fatal(err)
	}
}

func TestServerOffersKeepThePublishersLayerExtensionIDs(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	engine := newTestEngine(t, Config{})
	defer engine.Close()
	server, err := NewPeer(PeerConfig{Engine: engine})
	if err != nil {
		t.Fatal(err)
	}
	defer server.Close()
	c := newClient(t, simulcastClientAPI(t))
	defer c.close(t)

	// The client publishes video with mid and rid at ids of its own: the
	// server keeps them, with those ids, in its next offer.
	cam, err := pion.NewTrackLocalStaticRTP(pion.RTPCodecCapability{MimeType: pion.MimeTypeVP8}, "cam", "c")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.pc.AddTransceiverFromTrack(cam, pion.RTPTransceiverInit{Direction: pion.RTPTransceiverDirectionSendonly}); err != nil {
		t.Fatal(err)
	}
	publish(t, server, c)
	want := map[string]string{}
	for _, m := range layerExtmap.FindAllStringSubmatch(c.pc.LocalDescription().SDP, -1) {
		want[m[2]] = m[1]
	}
	if len(want) == 0 {
		t.Fatal("the client offered no mid or rid: the test proves nothing")
	}
	if _, err := server.Subscribe(newTrack(t, forward.Audio, pion.MimeTypeOpus, 48000, 111), PublishInfo{}); err != nil {
		t.Fatal(err)
	}
	offer, err := server.Offer()
	if err != nil {
		t.Fatal(err)
	}
	got := layerExtmap.FindAllStringSubmatch(offer, -1)
	if len(got) == 0 {
		t.Fatalf("the server's offer dropped the publisher's mid and rid:\n%s", offer)
	}
	for _, m := range got {
		if want[m[2]] != m[1] {
			t.Fatalf("the server's offer maps %s to id %s; the client gave it %q", m[2], m[1], want[m[2]])
		}
	}
	if err := server.SetAnswer(answerOffer(t, c, offer)); err != nil {
		t.Fatal(err)
	}
}

// extmapPair matches an extmap line: its id and URI.
var extmapPair = regexp.MustCompile(`a=extmap:(\d+)\S* (\S+)`)

// Once the client has a description, the server's offers give an
// extension only the id the client gave it: after a video-only
// negotiation, the first audio section proposes no audio level at pion's
// id 1, which Chrome may hold for another extension of an offer it rolled
// back (it then refuses the server's offer, "RTP extension ID
// reassignment not supported", and the peer stays broken). The client's
// answer is accepted.
func TestServerOffersProposeNoExtensionIDsOfTheirOwn(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	engine := newTestEngine(t, Config{})
	defer engine.Close()
	server, err := NewPeer(PeerConfig{Engine: engine})
	if err != nil {
		t.Fatal(err)
	}
	defer server.Close()
	c := newClient(t, simulcastClientAPI(t))
	defer c.close(t)

	if _, err := server.Subscribe(newTrack(t, forward.Video, pion.MimeTypeVP8, 90000, 96), PublishInfo{}); err != nil {
		t.Fatal(err)
	}
	negotiate(t, server, c)
	given := map[string]bool{}
	for _, m := range extmapPair.FindAllStringSubmatch(c.pc.LocalDescription().SDP, -1) {
		given[m[1]+" "+m[2]] = true
	}
	if _, err := server.Subscribe(newTrack(t, forward.Audio, pion.MimeTypeOpus, 48000, 111), PublishInfo{}); err != nil {
		t.Fatal(err)
	}
	offer, err := server.Offer()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(offer, "m=audio") {
		t.Fatalf("the server's offer has no audio section:\n%s", offer)
	}
	for _, m := range extmapPair.FindAllStringSubmatch(offer, -1) {
		if !given[m[1]+" "+m[2]] {
			t.Errorf("the server's offer proposes id %s for %s; the client's description does not give it", m[1], m[2])
		}
	}
	if err := server.SetAnswer(answerOffer(t, c, offer)); err != nil {
		t.Fatal(err)
	}
}
