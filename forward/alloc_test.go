//go:build !race

package forward_test

import (
	"encoding/binary"
	"testing"

	"github.com/callcore/callcore/forward"
	"github.com/callcore/callcore/transport/memory"
)

// TestFanoutAllocatesNothing sends one packet to 100 subscribers per run,
// with header extensions remapped, padding withheld and a gate toggled.
func TestFanoutAllocatesNothing(t *testing.T) {
	tr := newTrack(t, nil, forward.Extension{ID: 3, URI: forward.URITransportCC}, forward.Extension{ID: 4, URI: uriMID})
	sinks := make([]*memory.Counter, 100)
	var subs []*forward.Subscriber
	for i := range sinks {
		sinks[i] = &memory.Counter{}
		pipe, err := memory.NewPipe(memory.PipeConfig{RTP: sinks[i]})
		if err != nil {
			t.Fatal(err)
		}
		s, err := tr.Subscribe(forward.SubscriberConfig{Writer: pipe, SSRC: uint32(i + 1), Extensions: []forward.Extension{{ID: 1, URI: uriMID}}})
		if err != nil {
			t.Fatal(err)
		}
		subs = append(subs, s)
	}
	pkt := packet(t, 0, 0, make([]byte, 1000), map[uint8][]byte{3: {0, 1}, 4: []byte("a")})
	// Every 10th packet is padding only (P set, 4 bytes of padding and no
	// media), which the core withholds and numbers around.
	pad := packet(t, 0, 0, []byte{0, 0, 0, 4}, map[uint8][]byte{3: {0, 1}, 4: []byte("a")})
	pad[0] |= 0x20
	seq := uint16(0)
	allocs := testing.AllocsPerRun(2000, func() {
		seq++
		p := pkt
		if seq%10 == 0 {
			p = pad
		}
		binary.BigEndian.PutUint16(p[2:], seq)
		binary.BigEndian.PutUint32(p[4:], uint32(seq)*3000)
		subs[seq%100].SetOpen(seq%7 != 0)
		if err := tr.HandleRTP(p); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("%.1f allocations per packet, want 0", allocs)
	}
	if sinks[0].Packets == 0 {
		t.Fatal("nothing delivered")
	}
	if st := tr.Stats(); st.Padding == 0 {
		t.Fatalf("no padding seen (%+v): the test no longer sends any", st)
	}
}

// TestAudioLevelsAllocateNothing reads the level of each packet of an
// audio track, muted for part of the run, and fans it out to 10
// subscribers.
func TestAudioLevelsAllocateNothing(t *testing.T) {
	var levels countLevels
	tr, err := forward.NewTrack(forward.TrackConfig{Kind: forward.Audio, ClockRate: 48000, PayloadType: pubPT, MimeType: "audio/opus",
		Extensions: []forward.Extension{{ID: 1, URI: forward.URIAudioLevel}, {ID: 3, URI: forward.URITransportCC}}, Levels: &levels})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	for i := range 10 {
		pipe, err := memory.NewPipe(memory.PipeConfig{RTP: &memory.Counter{}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tr.Subscribe(forward.SubscriberConfig{Writer: pipe, SSRC: uint32(i + 1), Extensions: []forward.Extension{{ID: 5, URI: forward.URIAudioLevel}}}); err != nil {
			t.Fatal(err)
		}
	}
	pkt := packet(t, 0, 0, make([]byte, 100), map[uint8][]byte{1: {0x80 | 33}, 3: {0, 1}})
	seq := uint16(0)
	allocs := testing.AllocsPerRun(2000, func() {
		seq++
		binary.BigEndian.PutUint16(pkt[2:], seq)
		binary.BigEndian.PutUint32(pkt[4:], uint32(seq)*960)
		if seq == 500 {
			tr.SetMute(forward.SourceSelf, true)
		}
		if seq == 1000 {
			tr.SetMute(forward.SourceSelf, false)
		}
		if err := tr.HandleRTP(pkt); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("%.1f allocations per packet, want 0", allocs)
	}
	if levels.n < 2000 {
		t.Fatalf("%d levels read, want one per packet", levels.n)
	}
}
