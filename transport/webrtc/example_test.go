package webrtc_test

import (
	"fmt"

	"github.com/callcore/callcore/forward"
	"github.com/callcore/callcore/transport/webrtc"
)

func ExampleNewPeer() {
	engine, err := webrtc.New(webrtc.Config{LoopbackOnly: true})
	if err != nil {
		panic(err)
	}
	defer engine.Close()
	peer, err := webrtc.NewPeer(webrtc.PeerConfig{
		Engine: engine,
		OnPublish: func(t *forward.Track, info webrtc.PublishInfo) {
			// Subscribe the other users' peers: other.Subscribe(t, info).
		},
		OnNegotiationNeeded: func() {
			// Hand peer.Offer() to the signalling goroutine; its answer
			// goes to peer.SetAnswer.
		},
	})
	if err != nil {
		panic(err)
	}
	// answer, err := peer.Answer(clientOffer)
	fmt.Println(peer.Status())
	if err := peer.Close(); err != nil {
		panic(err)
	}
	// Output: connecting
}
