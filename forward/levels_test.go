package forward_test

import (
	"encoding/binary"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/callcore/callcore/forward"
	"github.com/callcore/callcore/internal/clocktest"
	"github.com/callcore/callcore/transport/memory"
)

const levelExtID = 1

// levelLog records what a track hands its Levels.
type levelLog struct {
	mu  sync.Mutex
	got []levelAt
}

type levelAt struct {
	level  uint8
	voiced bool
	now    int64
}

func (l *levelLog) Level(level uint8, voiced bool, now int64) {
	l.mu.Lock()
	l.got = append(l.got, levelAt{level, voiced, now})
	l.mu.Unlock()
}

func (l *levelLog) all() []levelAt {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]levelAt(nil), l.got...)
}

// countLevels is a Levels that allocates nothing.
type countLevels struct{ n, sum uint64 }

func (c *countLevels) Level(level uint8, _ bool, _ int64) { c.n++; c.sum += uint64(level) }

func levelTrack(t *testing.T, clk *clocktest.Clock, kind forward.Kind, l forward.Levels) *forward.Track {
	t.Helper()
	cfg := forward.TrackConfig{Kind: kind, ClockRate: 48000, PayloadType: pubPT, MimeType: "audio/opus", Clock: clk,
		Extensions: []forward.Extension{{ID: levelExtID, URI: forward.URIAudioLevel}, {ID: 3, URI: forward.URITransportCC}},
		Levels:     l}
	if kind == forward.Video {
		cfg.ClockRate, cfg.MimeType = 90000, "video/VP8"
	}
	tr, err := forward.NewTrack(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Close() })
	return tr
}

// opusWithLevel is a 20 ms Opus packet carrying an audio level (RFC 6464:
// V flag in the top bit, -dBov below).
func opusWithLevel(t *testing.T, seq uint16, level uint8, voiced bool) []byte {
	b := level
	if voiced {
		b |= 0x80
	}
	return packet(t, seq, uint32(seq)*960, []byte{0xfc, 0x01, 0x02}, map[uint8][]byte{levelExtID: {b}, 3: {0, byte(seq)}})
}

func TestAudioLevelsReachTheirConsumerWithTheTrackClock(t *testing.T) {
	clk := &clocktest.Clock{}
	var log levelLog
	tr := levelTrack(t, clk, forward.Audio, &log)
	var sink memory.Sink
	subscribe(t, tr, &sink, 1, 0)
	want := []levelAt{}
	for i, lv := range []uint8{30, 127, 0, 45} {
		clk.Advance(20 * time.Millisecond)
		send(t, tr, opusWithLevel(t, uint16(10+i), lv, i%2 == 0))
		want = append(want, levelAt{lv, i%2 == 0, clk.Nanotime()})
	}
	// A duplicate is refused before its level is read; a packet without
	// the element is counted.
	_ = tr.HandleRTP(opusWithLevel(t, 13, 99, false))
	clk.Advance(20 * time.Millisecond)
	send(t, tr, packet(t, 14, 14*960, []byte{0xfc, 1}, nil))
	got := log.all()
	if len(got) != len(want) {
		t.Fatalf("levels %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("level %d: %+v, want %+v", i, got[i], want[i])
		}
	}
	if n := tr.Stats().NoLevel; n != 1 {
		t.Fatalf("NoLevel %d, want 1", n)
	}
	if sink.Len() != 5 {
		t.Fatalf("subscriber got %d packets, want 5: reading levels must not change forwarding", sink.Len())
	}
}

func TestMutedAudioCountsAsSilence(t *testing.T) {
	clk := &clocktest.Clock{}
	var log levelLog
	tr := levelTrack(t, clk, forward.Audio, &log)
	seq := uint16(1)
	talk := func(n int) {
		for range n {
			clk.Advance(20 * time.Millisecond)
			send(t, tr, opusWithLevel(t, seq, 20, true))
			seq++
		}
	}
	talk(2)
	tr.SetMute(forward.SourceSelf, true)
	talk(3)
	tr.SetMute(forward.SourceSelf, false)
	talk(1)
	tr.SetMute(forward.SourceAdmin, true)
	talk(2)
	var levels []uint8
	for _, l := range log.all() {
		levels = append(levels, l.level)
	}
	want := []uint8{20, 20, 127, 127, 127, 20, 127, 127}
	if len(levels) != len(want) {
		t.Fatalf("levels %v, want %v", levels, want)
	}
	for i := range want {
		if levels[i] != want[i] {
			t.Fatalf("levels %v, want %v", levels, want)
		}
	}
}

func TestLevelsAreReadOnlyFromNegotiatedAudio(t *testing.T) {
	clk := &clocktest.Clock{}
	var video, none, later levelLog
	v := levelTrack(t, clk, forward.Video, &video)
	clk.Advance(time.Millisecond)
	send(t, v, packet(t, 1, 3000, []byte{0x10, 0, 0x9d, 0x01, 0x2a}, map[uint8][]byte{levelExtID: {10}}))

	// Audio without the extension negotiated: the element's ID means
	// nothing.
	a, err := forward.NewTrack(forward.TrackConfig{Kind: forward.Audio, ClockRate: 48000, PayloadType: pubPT, Clock: clk, Levels: &none})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	send(t, a, opusWithLevel(t, 1, 10, true))

	// SetLevels starts and stops them.
	b := levelTrack(t, clk, forward.Audio, nil)
	send(t, b, opusWithLevel(t, 1, 11, true))
	b.SetLevels(&later)
	clk.Advance(20 * time.Millisecond)
	send(t, b, opusWithLevel(t, 2, 12, true))
	b.SetLevels(nil)
	clk.Advance(20 * time.Millisecond)
	send(t, b, opusWithLevel(t, 3, 13, true))

	if len(video.all()) != 0 || len(none.all()) != 0 {
		t.Fatalf("levels read from video %v or from audio without the extension %v", video.all(), none.all())
	}
	if got := later.all(); len(got) != 1 || got[0].level != 12 {
		t.Fatalf("levels between SetLevels and SetLevels(nil): %v, want [12]", got)
	}
}

// BenchmarkAudioLevels is the fan-out of an Opus track with the
// audio-level extension to 10 subscribers, with levels read for a
// consumer and without: the difference is the cost of reading them.
func BenchmarkAudioLevels(b *testing.B) {
	for _, read := range []bool{false, true} {
		b.Run(fmt.Sprintf("levels=%v", read), func(b *testing.B) {
			var levels countLevels
			cfg := forward.TrackConfig{Kind: forward.Audio, ClockRate: 48000, PayloadType: pubPT, MimeType: "audio/opus",
				Extensions: []forward.Extension{{ID: 1, URI: forward.URIAudioLevel}, {ID: 3, URI: forward.URITransportCC}}}
			if read {
				cfg.Levels = &levels
			}
			tr, err := forward.NewTrack(cfg)
			if err != nil {
				b.Fatal(err)
			}
			defer tr.Close()
			for i := range 10 {
				if _, err := tr.Subscribe(forward.SubscriberConfig{Writer: &memory.Counter{}, SSRC: uint32(i + 1)}); err != nil {
					b.Fatal(err)
				}
			}
			pkt := packet(b, 0, 0, make([]byte, 100), map[uint8][]byte{1: {0x80 | 33}, 3: {0, 1}})
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				binary.BigEndian.PutUint16(pkt[2:], uint16(i))
				binary.BigEndian.PutUint32(pkt[4:], uint32(i)*960)
				if err := tr.HandleRTP(pkt); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "pkts/s")
			if read && levels.n == 0 {
				b.Fatal("no level read")
			}
		})
	}
}

// TestAudioLevelsArePlacedByRTPTime: packets that arrive bunched up (three
// 20 ms packets at once every 60 ms, as a loaded sender or server reads
// them) hand their levels over 20 ms apart, by their RTP timestamps, once
// the first burst has shown the least delay, and never later than their
// arrival.
func TestAudioLevelsArePlacedByRTPTime(t *testing.T) {
	clk := &clocktest.Clock{}
	var log levelLog
	tr := levelTrack(t, clk, forward.Audio, &log)
	var sink memory.Sink
	subscribe(t, tr, &sink, 1, 0)
	clk.Advance(time.Second)
	start := clk.Nanotime()
	for burst := range 4 {
		clk.Advance(60 * time.Millisecond)
		for i := range 3 {
			send(t, tr, opusWithLevel(t, uint16(10+3*burst+i), 30, true))
		}
	}
	got := log.all()
	if len(got) != 12 {
		t.Fatalf("%d levels, want 12", len(got))
	}
	for i := 3; i < len(got); i++ { // the first burst is where the least delay is learnt
		if d := got[i].now - got[i-1].now; d != int64(20*time.Millisecond) {
			t.Fatalf("levels %d and %d are %v apart, want 20ms (their RTP times): %+v", i-1, i, time.Duration(d), got)
		}
	}
	if last := got[len(got)-1].now; last > clk.Nanotime() || last < start {
		t.Fatalf("the last level at %v, after arrival (%v) or before the first (%v)", last, clk.Nanotime(), start)
	}
}
