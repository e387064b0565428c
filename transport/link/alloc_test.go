//go:build !race

package link

import (
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/callcore/callcore/forward"
	"github.com/callcore/callcore/internal/rtptest"
)

// TestLinkRoundTripAllocs asserts that a packet's whole path allocates
// nothing: the origin track, the link's writer (SRTP protect, send), the
// far node's receive loop (unprotect, demultiplex), its track and its
// subscribers.
func TestLinkRoundTripAllocs(t *testing.T) {
	a, b := pair(t, Config{Timeout: time.Minute}, Config{Timeout: time.Minute})
	tr, err := forward.NewTrack(forward.TrackConfig{Kind: forward.Audio, ClockRate: 48000, PayloadType: 111,
		MimeType: "audio/opus", SSRC: pubSSRC})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	if err := a.Offer("mic", tr); err != nil {
		t.Fatal(err)
	}
	rt := remoteOf(t, b, "mic")
	var got atomic.Int64
	for i := range 10 {
		if _, err := rt.Subscribe(forward.SubscriberConfig{Writer: countWriter{&got}, SSRC: uint32(0x100 + i), PayloadType: 111}); err != nil {
			t.Fatal(err)
		}
	}
	pkt := rtptest.Packet{PayloadType: 111, SSRC: pubSSRC, Payload: make([]byte, 160)}.Marshal()
	var seq uint16
	// sendWait sends a packet and waits up to wait for its 10 copies.
	sendWait := func(wait time.Duration) {
		pkt[2], pkt[3] = byte(seq>>8), byte(seq)
		ts := uint32(seq) * 960
		pkt[4], pkt[5], pkt[6], pkt[7] = byte(ts>>24), byte(ts>>16), byte(ts>>8), byte(ts)
		seq++
		want := got.Load() + 10
		_ = tr.HandleRTP(pkt)
		deadline := time.Now().Add(wait)
		for got.Load() < want && time.Now().Before(deadline) {
			runtime.Gosched()
		}
	}
	send := func() { sendWait(20 * time.Second) }
	// Until the path is set up (the listener learns the dialer's media
	// address from its first datagram), a packet can be lost: the first
	// ones are not waited for long.
	waitFor(t, "the link to carry packets", func() bool { sendWait(100 * time.Millisecond); return got.Load() >= 10 })
	for range 50 {
		send()
	}
	if n := testing.AllocsPerRun(200, send); n != 0 {
		t.Fatalf("%v allocations per packet over the link", n)
	}
}
