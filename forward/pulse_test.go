package forward_test

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/pion/rtp"

	"github.com/callcore/callcore/forward"
	"github.com/callcore/callcore/transport/memory"
)

// TestPulseTicksOnlyForMutedTracks runs in a synctest bubble (fake time):
// a pulse with an unmuted track never ticks; muted, the track gets a
// silent frame every 20 ms from the pulse alone; unmuted and resumed by a
// publisher packet, the pulse lets it go and its timer stops.
func TestPulseTicksOnlyForMutedTracks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tr, err := forward.NewTrack(forward.TrackConfig{Kind: forward.Audio, ClockRate: 48000, PayloadType: pubPT, MimeType: "audio/opus"})
		if err != nil {
			t.Fatal(err)
		}
		defer tr.Close()
		var sink memory.Sink
		subscribe(t, tr, &sink, 1, 0)
		pulse, err := forward.NewPulse(10 * time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		defer pulse.Close()
		pulse.Add(tr)

		time.Sleep(10 * time.Second)
		synctest.Wait()
		if st := pulse.Stats(); st.Ticks != 0 || st.Ticking || st.Active != 0 || st.Tracks != 1 {
			t.Fatalf("unmuted track: pulse %+v, want no tick", st)
		}

		tr.SetMute(forward.SourceSelf, true)
		time.Sleep(time.Second)
		synctest.Wait()
		st := pulse.Stats()
		if st.Ticks < 99 || st.Ticks > 101 || !st.Ticking || st.Active != 1 {
			t.Fatalf("muted for 1 s: pulse %+v, want 100 ticks", st)
		}
		if n := sink.Len(); n < 50 || n > 51 {
			t.Fatalf("muted for 1 s: %d silent frames, want 50 or 51", n)
		}

		tr.SetMute(forward.SourceSelf, false) // silence goes on until the publisher sends
		p := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: pubPT, SequenceNumber: 1, Timestamp: 960, SSRC: pubSSRC}, Payload: []byte{0xf8, 1, 2}}
		b, err := p.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		send(t, tr, b)
		time.Sleep(100 * time.Millisecond)
		synctest.Wait()
		before := pulse.Stats()
		time.Sleep(10 * time.Second)
		synctest.Wait()
		if st := pulse.Stats(); st.Ticks != before.Ticks || st.Ticking || st.Active != 0 {
			t.Fatalf("unmuted and resumed: pulse %+v after %+v, want no more ticks", st, before)
		}
	})
}
