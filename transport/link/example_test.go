package link_test

import (
	"fmt"
	"time"

	"github.com/callcore/callcore/forward"
	"github.com/callcore/callcore/transport"
	"github.com/callcore/callcore/transport/link"
)

// Two nodes in one process: node A offers a track, node B sees it and a
// local subscriber joins it.
func Example() {
	track, _ := forward.NewTrack(forward.TrackConfig{Kind: forward.Audio, ClockRate: 48000,
		PayloadType: 111, MimeType: "audio/opus"})
	defer track.Close()

	a, _ := link.New(link.Config{Listen: "127.0.0.1:0"})
	defer a.Close()
	_ = a.Offer("alice/mic", track)

	got := make(chan *link.RemoteTrack, 1)
	b, _ := link.New(link.Config{Dial: a.Addr().String(), OnTrack: func(rt *link.RemoteTrack) { got <- rt }})
	defer b.Close()

	select {
	case rt := <-got:
		sink := forward.SubscriberConfig{SSRC: 0x5EED, PayloadType: 111,
			Writer: transport.RTPWriterFunc(func(h, p []byte) error { return nil })}
		if _, err := rt.Subscribe(sink); err != nil {
			fmt.Println(err)
		}
		fmt.Println("B forwards", rt.ID(), rt.Config().MimeType)
	case <-time.After(20 * time.Second):
		fmt.Println("no track")
	}
	// Output: B forwards alice/mic audio/opus
}
