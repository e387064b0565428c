package linkplane

import (
	"testing"

	"github.com/callcore/callcore/forward"
	"github.com/callcore/callcore/internal/rtptest"
	"github.com/callcore/callcore/transport/memory"
)

// relayed is a source track, a relay from it and n counting subscribers
// of the relay's track (or of the source itself when direct).
type relayed struct {
	src    *forward.Track
	r      *relay
	counts []*memory.Counter
	pkt    []byte
	seq    uint16
}

func newRelayed(tb testing.TB, n int, direct bool) *relayed {
	tb.Helper()
	src, err := forward.NewTrack(forward.TrackConfig{Kind: forward.Audio, ClockRate: 48000, PayloadType: 111, MimeType: "audio/opus", SSRC: 0x1234})
	if err != nil {
		tb.Fatal(err)
	}
	x := &relayed{src: src, pkt: rtptest.Packet{PayloadType: 111, SSRC: 0x1234, Payload: rtptest.Opus(160)}.Marshal()}
	out := src
	if !direct {
		x.r, err = newRelay(src.Config(), forward.NewTrack, forward.NewSubscriber)
		if err != nil {
			tb.Fatal(err)
		}
		if err := x.r.sub.SwitchTo(src); err != nil {
			tb.Fatal(err)
		}
		out = x.r.out
	}
	for i := range n {
		c := &memory.Counter{}
		if _, err := out.Subscribe(forward.SubscriberConfig{Writer: c, SSRC: uint32(0x100 + i), PayloadType: 111}); err != nil {
			tb.Fatal(err)
		}
		x.counts = append(x.counts, c)
	}
	tb.Cleanup(func() {
		if x.r != nil {
			x.r.close()
		}
		src.Close()
	})
	return x
}

func (x *relayed) send(tb testing.TB) {
	x.pkt[2], x.pkt[3] = byte(x.seq>>8), byte(x.seq)
	x.pkt[4], x.pkt[5], x.pkt[6], x.pkt[7] = byte(uint32(x.seq)*960>>24), byte(uint32(x.seq)*960>>16), byte(uint32(x.seq)*960>>8), byte(uint32(x.seq)*960)
	x.seq++
	if err := x.src.HandleRTP(x.pkt); err != nil {
		tb.Fatal(err)
	}
}

// TestRelayForwardsEveryPacket: what the relay's subscriber writes, its
// track takes and fans out: every packet reaches every subscriber of the
// relay's track.
func TestRelayForwardsEveryPacket(t *testing.T) {
	x := newRelayed(t, 3, false)
	for range 100 {
		x.send(t)
	}
	for i, c := range x.counts {
		if c.Packets != 100 {
			t.Errorf("subscriber %d got %d of 100", i, c.Packets)
		}
	}
	if st := x.r.out.Stats(); st.PacketsIn != 100 {
		t.Errorf("the relay's track took %d of 100", st.PacketsIn)
	}
}

// BenchmarkRelay is the fan-out to 10 subscribers through a link relay
// (one more fan-out hop: a subscriber writing into a track), next to the
// direct fan-out as the baseline. One op is one packet to every
// subscriber.
func BenchmarkRelay(b *testing.B) {
	for _, direct := range []bool{true, false} {
		name := "relayed"
		if direct {
			name = "direct"
		}
		b.Run(name, func(b *testing.B) {
			x := newRelayed(b, 10, direct)
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				x.send(b)
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "pkts/s")
			if x.counts[0].Packets != uint64(b.N) {
				b.Fatalf("a subscriber got %d of %d", x.counts[0].Packets, b.N)
			}
		})
	}
}
