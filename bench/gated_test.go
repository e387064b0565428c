package bench

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/callcore/callcore/channel"
	"github.com/callcore/callcore/forward"
	"github.com/callcore/callcore/plane"
	"github.com/callcore/callcore/transport/memory"
)

// counterEndpoint is a user's media connection whose subscriptions end in
// memory.Counter sinks.
type counterEndpoint struct {
	mu     sync.Mutex // guards the fields below
	ssrc   uint32
	counts []*memory.Counter
}

func (e *counterEndpoint) subscriber() (*forward.Subscriber, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	c := &memory.Counter{}
	e.counts = append(e.counts, c)
	return forward.NewSubscriber(forward.SubscriberConfig{Writer: c, SSRC: e.ssrc, PayloadType: subPT, Extensions: subExts})
}

func (e *counterEndpoint) Subscribe(_ string, _ channel.TrackInfo, t *forward.Track) (plane.Reception, error) {
	s, err := e.subscriber()
	if err != nil {
		return nil, err
	}
	if err := s.SwitchTo(t); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

func (e *counterEndpoint) SubscribeLayers(_ string, _ channel.TrackInfo, l *forward.Layers, max forward.Layer) (plane.LayerReception, error) {
	s, err := e.subscriber()
	if err != nil {
		return nil, err
	}
	rc, err := plane.AttachLayers(s, l, max)
	if err != nil {
		s.Close()
	}
	return rc, err
}

// BenchmarkFanoutGated is BenchmarkFanout with the whole call stack in
// place: a channel of the call API whose plane took the track (Published)
// and made the subscriptions, every subscriber behind its permission gate (recv) and the
// track behind its mute layers. One op is one packet to every receiver.
func BenchmarkFanoutGated(b *testing.B) {
	for _, n := range []int{10, 100} {
		b.Run(fmt.Sprintf("subs=%d", n), func(b *testing.B) {
			pl, err := plane.New(plane.Config{})
			if err != nil {
				b.Fatal(err)
			}
			defer pl.Close()
			reg, err := channel.NewRegistry(channel.Config{Media: pl})
			if err != nil {
				b.Fatal(err)
			}
			defer reg.Close()
			call, _, err := reg.Create("owner", "bench", channel.CreateOptions{Tracks: []channel.TrackInfo{{Name: "cam", Kind: channel.Video}}})
			if err != nil {
				b.Fatal(err)
			}
			pub := &counterEndpoint{ssrc: 1000}
			if err := pl.Attach("bench", "owner", pub); err != nil {
				b.Fatal(err)
			}
			feed, err := pl.NewTrack(forward.TrackConfig{Kind: forward.Video, ClockRate: 90000, PayloadType: pubPT, Extensions: pubExts, MimeType: "video/VP8"})
			if err != nil {
				b.Fatal(err)
			}
			if err := pl.Published("bench", "owner", "cam", feed); err != nil {
				b.Fatal(err)
			}
			receivers := make([]*counterEndpoint, n)
			for i := range receivers {
				id := fmt.Sprintf("u%d", i)
				if _, err := call.Join(context.Background(), id, nil); err != nil {
					b.Fatal(err)
				}
				receivers[i] = &counterEndpoint{ssrc: uint32(i + 1)}
				if err := pl.Attach("bench", id, receivers[i]); err != nil {
					b.Fatal(err)
				}
			}
			src := newSource(b)
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				if err := feed.HandleRTP(src.next(i)); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			report(b, n)
			sinks := make([]*memory.Counter, n)
			for i, r := range receivers {
				if len(r.counts) != 1 {
					b.Fatalf("receiver %d has %d subscriptions", i, len(r.counts))
				}
				sinks[i] = r.counts[0]
			}
			check(b, sinks, b.N, 12+8)
		})
	}
}
