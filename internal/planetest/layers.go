package planetest

import (
	"testing"

	"github.com/callcore/callcore/forward"
	"github.com/callcore/callcore/internal/layertest"
)

// LayerStreams makes the three synthetic VP8 layers (layertest) of one
// camera and a track of each, made by newTrack (forward.NewTrack with a
// clock, or a plane's NewTrack) from the layer's configuration; each
// stream is its track's Feedback, so a key-frame request reaches it. A
// stream sends a key frame every keyEvery frames.
func LayerStreams(t testing.TB, keyEvery int, newTrack func(forward.TrackConfig) (*forward.Track, error)) (streams [3]*layertest.Stream, tracks [3]*forward.Track) {
	t.Helper()
	for i := range streams {
		s, err := layertest.NewStream(i, uint16(2000*i), uint32(i)<<30, uint16(3000*i), keyEvery)
		if err != nil {
			t.Fatal(err)
		}
		tr, err := newTrack(forward.TrackConfig{Kind: forward.Video, ClockRate: 90000, PayloadType: layertest.PT,
			MimeType: "video/VP8", SSRC: s.SSRC, Feedback: s})
		if err != nil {
			t.Fatal(err)
		}
		streams[i], tracks[i] = s, tr
	}
	return streams, tracks
}
