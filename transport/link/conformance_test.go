package link

import (
	"errors"
	"sync/atomic"
	"testing"

	"github.com/callcore/callcore/forward"
	"github.com/callcore/callcore/transport"
	"github.com/callcore/callcore/transport/transporttest"
)

// origin is the near end of a link as the core uses it: the track the
// link relays. Each packet written is handed to the track whole.
type origin struct {
	t   *forward.Track
	buf []byte
}

func (o *origin) WriteRTP(h, p []byte) error {
	o.buf = append(append(o.buf[:0], h...), p...)
	err := o.t.HandleRTP(o.buf)
	if errors.Is(err, forward.ErrClosed) {
		return transport.ErrClosed
	}
	return err
}

// TestConformance runs the suite over a link between two nodes in one
// process. The suite's packets (payload type 96, SSRC 7) feed a track
// on node B, offered over the link; on node A one subscriber of the
// remote track writes to the suite's far end with the same SSRC and
// numbering, so what arrives is compared byte for byte. RTCP crosses the
// way it does in a call: a key-frame request the suite writes to B's
// subscriber reaches B's track's Feedback. The track's format is video the
// core does not parse: every packet is a place to start, and key-frame
// requests go upstream.
func TestConformance(t *testing.T) {
	transporttest.Run(t, func(t *testing.T, far transport.RTPWriter, farRTCP transport.RTCPWriter) transporttest.Endpoints {
		a, err := New(Config{Listen: "127.0.0.1:0"})
		if err != nil {
			t.Fatal(err)
		}
		b, err := New(Config{Dial: a.Addr().String()})
		if err != nil {
			a.Close()
			t.Fatal(err)
		}
		primePath(t, a, b)
		tr, err := forward.NewTrack(forward.TrackConfig{Kind: forward.Video, ClockRate: 90000, PayloadType: 96,
			MimeType: "video/x-conformance", SSRC: 7, Feedback: farRTCP, FeedbackSSRC: 1})
		if err != nil {
			t.Fatal(err)
		}
		if err := b.Offer("suite", tr); err != nil {
			t.Fatal(err)
		}
		// B dialed A, so it knows A's media address from the start; A
		// learns B's from B's first datagram.
		rt := remoteOf(t, a, "suite")
		sub, err := rt.Subscribe(forward.SubscriberConfig{Writer: far, SSRC: 7, PayloadType: 96})
		if err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the link's relay of the track", func() bool { return tr.Subscribers() == 1 })
		return transporttest.Endpoints{RTP: &origin{t: tr}, RTCP: transport.RTCPWriterFunc(sub.HandleRTCP), Close: func() error {
			tr.Close()
			errB := b.Close()
			if err := a.Close(); err != nil {
				return err
			}
			return errB
		}}
	})
}

// primePath sends packets of a track of its own from b until one arrives
// at a, so that the suite's first packet does not meet a path still
// being set up (a session's media addresses, the far receive loop); then
// it withdraws the track.
func primePath(t *testing.T, a, b *Link) {
	t.Helper()
	prime, err := forward.NewTrack(forward.TrackConfig{Kind: forward.Audio, ClockRate: 48000, PayloadType: 111,
		MimeType: "audio/opus", SSRC: 99})
	if err != nil {
		t.Fatal(err)
	}
	defer prime.Close()
	if err := b.Offer("prime", prime); err != nil {
		t.Fatal(err)
	}
	var arrived atomic.Int64
	sub, err := remoteOf(t, a, "prime").Subscribe(forward.SubscriberConfig{SSRC: 99, PayloadType: 111,
		Writer: transport.RTPWriterFunc(func(_, _ []byte) error { arrived.Add(1); return nil })})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	seq := uint16(0)
	waitFor(t, "a packet across the link", func() bool {
		pkt := []byte{0x80, 111, byte(seq >> 8), byte(seq), 0, 0, 0, 0, 0, 0, 0, 99, 0xf8, 0xff, 0xfe}
		seq++
		_ = prime.HandleRTP(pkt)
		return arrived.Load() > 0
	})
	if err := b.Withdraw("prime"); err != nil {
		t.Fatal(err)
	}
}
