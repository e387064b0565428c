package forward_test

import (
	"sort"
	"testing"
	"time"

	"github.com/pion/rtcp"

	"github.com/callcore/callcore/forward"
	"github.com/callcore/callcore/internal/clocktest"
	"github.com/callcore/callcore/transport/memory"
)

// nacked returns every sequence number the publisher was asked for, in
// order of the requests, read with pion/rtcp.
func nacked(t *testing.T, s *memory.Sink) []uint16 {
	var out []uint16
	for _, b := range s.RTCP() {
		ps, err := rtcp.Unmarshal(b)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range ps {
			if n, ok := p.(*rtcp.TransportLayerNack); ok && n.MediaSSRC == pubSSRC {
				for _, pair := range n.Nacks {
					out = append(out, pair.PacketList()...)
				}
			}
		}
	}
	return out
}

func TestNACKUpstream(t *testing.T) {
	clk := &clocktest.Clock{}
	var upstream memory.Sink
	tr, err := forward.NewTrack(forward.TrackConfig{Kind: forward.Video, ClockRate: 90000, PayloadType: pubPT, Clock: clk,
		Feedback: &upstream, NACKUpstream: true})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	at := func(seq uint16) {
		clk.Advance(5 * time.Millisecond)
		send(t, tr, packet(t, seq, uint32(uint16(seq-65530))*100, []byte{1}, nil))
	}
	at(65530)
	at(65534) // 65531 to 65533 lost
	at(2)     // 65535, 0 and 1 lost across the wrap
	got := nacked(t, &upstream)
	sort.Slice(got, func(i, j int) bool { return int16(got[i]-got[j]) < 0 })
	want := []uint16{65531, 65532, 65533, 65535, 0, 1}
	if len(got) != len(want) {
		t.Fatalf("asked for %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("asked for %v, want %v", got, want)
		}
	}
	at(65532) // one arrives late: no longer asked for
	at(3)     // 10 ms after the first request: too soon to ask again
	if n := len(nacked(t, &upstream)); n != 6 {
		t.Fatalf("asked again too soon: %d", n)
	}
	for range 10 { // the rest are asked for twice more, then given up
		at(4 + uint16(clk.Nanotime()/int64(5*time.Millisecond)))
	}
	all := nacked(t, &upstream)
	count := map[uint16]int{}
	for _, s := range all {
		count[s]++
	}
	if count[65532] != 1 || count[65531] != 3 || count[1] != 3 {
		t.Fatalf("requests per packet: %v", count)
	}
	if st := tr.Stats(); st.NACKsOut == 0 {
		t.Fatalf("stats %+v", st)
	}
}
