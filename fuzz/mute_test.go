package fuzz

import (
	"testing"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"

	"github.com/callcore/callcore/forward"
	"github.com/callcore/callcore/internal/clocktest"
	"github.com/callcore/callcore/transport/memory"
)

// FuzzMuteToggle interleaves a VP8 publisher's packets (with loss and
// reordering), self mute and unmute, admin mute, PLIs, subscriber joins
// and the passing of time. Oracle, for every subscriber: sequence numbers
// continuous and timestamps never back; no publisher packet delivered
// while the track is muted (beyond the frame under way when the mute
// came); every run of publisher media, first and after a run of empty
// media, starts on a key frame; every run of empty media starts on a black
// key frame; and the track's effective state matches the layers set.
func FuzzMuteToggle(f *testing.F) {
	f.Add([]byte{0, 0, 0, 1, 0, 5, 5, 5, 2, 0, 0, 0, 0, 0, 0, 0})
	f.Add([]byte{0, 0, 3, 4, 4, 4, 2, 2, 0, 0, 0, 6, 6, 7, 0, 0, 0})
	f.Add([]byte{1, 1, 0, 8, 8, 0, 3, 0, 9, 9, 1, 1, 2, 2, 0, 0})
	f.Fuzz(func(t *testing.T, ops []byte) {
		if len(ops) > 600 {
			ops = ops[:600]
		}
		m := newMuteWorld(t)
		for _, op := range ops {
			m.step(op)
		}
		m.check()
	})
}

type muteWorld struct {
	t       *testing.T
	clk     *clocktest.Clock
	tr      *forward.Track
	sinks   []*memory.Sink
	subs    []*forward.Subscriber
	sources forward.MuteSource
	seq     uint16
	frame   int
	part    int
	held    [][]byte
	pub     map[string]bool // every publisher payload
	keyPub  map[string]bool // publisher payloads that start a key frame
	// muted is set while publisher media must not flow: from the first
	// publisher packet of a new frame after a mute came, to unmute.
	pending bool // a mute came; the frame under way may finish
	muted   bool
	allowed map[string]bool // publisher payloads that may flow (not muted at arrival)

	started, lastMarker bool // the last publisher packet delivered to the track
	lastTS              uint32
}

func newMuteWorld(t *testing.T) *muteWorld {
	clk := &clocktest.Clock{}
	tr, err := forward.NewTrack(forward.TrackConfig{Kind: forward.Video, ClockRate: 90000, PayloadType: 96, MimeType: "video/VP8", Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Close() })
	m := &muteWorld{t: t, clk: clk, tr: tr, seq: 65000, pub: map[string]bool{}, keyPub: map[string]bool{}, allowed: map[string]bool{}}
	m.join()
	return m
}

func (m *muteWorld) join() {
	if len(m.subs) == 3 {
		return
	}
	sink := &memory.Sink{}
	s, err := m.tr.Subscribe(forward.SubscriberConfig{Writer: sink, SSRC: uint32(len(m.subs) + 1)})
	if err != nil {
		m.t.Fatal(err)
	}
	m.subs, m.sinks = append(m.subs, s), append(m.sinks, sink)
}

// packet makes the next publisher packet: three a frame, a key frame every
// eight frames, payloads unique.
func (m *muteWorld) packet() []byte {
	key := m.part == 0 && m.frame%8 == 0
	desc, tag := byte(0), byte(1)
	if m.part == 0 {
		desc = 0x10
	}
	if key {
		tag = 0
	}
	p := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 96, SequenceNumber: m.seq, Timestamp: uint32(m.frame * 3000), SSRC: 7,
		Marker: m.part == 2}, Payload: []byte{desc, tag, byte(m.seq), byte(m.seq >> 8), 0xEE, 0xEE}}
	b, err := p.Marshal()
	if err != nil {
		m.t.Fatal(err)
	}
	m.pub[string(b[12:])] = true
	if key {
		m.keyPub[string(b[12:])] = true
	}
	m.seq++
	if m.part++; m.part == 3 {
		m.part, m.frame = 0, m.frame+1
	}
	return b
}

func (m *muteWorld) deliver(b []byte) {
	m.clk.Advance(11 * time.Millisecond)
	var h rtp.Header
	if _, err := h.Unmarshal(b); err != nil {
		m.t.Fatal(err)
	}
	if err := m.tr.HandleRTP(b); err != nil {
		return // refused (a duplicate, out of the window): it changes nothing and reaches no one
	}
	// A frame boundary is a marker bit or a change of timestamp (docs/architecture.md,
	// "The muter"), among the packets the track took: there the mute takes hold.
	if m.pending && (!m.started || m.lastMarker || h.Timestamp != m.lastTS) {
		m.pending, m.muted = false, true
	}
	m.started, m.lastMarker, m.lastTS = true, h.Marker, h.Timestamp
	if !m.muted {
		m.allowed[string(b[12:])] = true
	}
}

func (m *muteWorld) setMute(src forward.MuteSource, on bool) {
	before := forward.StateOf(m.sources)
	if on {
		m.sources |= src
	} else {
		m.sources &^= src
	}
	after := forward.StateOf(m.sources)
	if got := m.tr.SetMute(src, on); got != after {
		m.t.Fatalf("effective state %v, want %v", got, after)
	}
	switch {
	case before == forward.MuteNone && after != forward.MuteNone:
		m.pending = true
	case after == forward.MuteNone:
		m.pending, m.muted = false, false
	}
}

func (m *muteWorld) step(op byte) {
	switch op % 10 {
	case 0, 1: // the publisher's next packet
		m.deliver(m.packet())
	case 2: // lost
		m.packet()
	case 3: // held back, delivered later (reordering)
		m.held = append(m.held, m.packet())
	case 4:
		if len(m.held) > 0 {
			m.deliver(m.held[0])
			m.held = m.held[1:]
		}
	case 5:
		m.setMute(forward.SourceSelf, m.sources&forward.SourceSelf == 0)
	case 6:
		m.setMute(forward.SourceAdmin, m.sources&forward.SourceAdmin == 0)
	case 7:
		m.join()
	case 8: // time passes
		m.clk.Advance(time.Duration(op/10+1) * 40 * time.Millisecond)
		m.tr.Pump()
	case 9: // a PLI from a subscriber
		s := m.subs[int(op/10)%len(m.subs)]
		b, _ := rtcp.Marshal([]rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: s.Config().SSRC}})
		if err := s.HandleRTCP(b); err != nil {
			m.t.Fatal(err)
		}
	}
}

func (m *muteWorld) check() {
	for n, sink := range m.sinks {
		seen := map[int64]bool{}
		var maxExt int64 = -1
		var maxTS uint32
		inPub, inGen := false, false
		for i, b := range sink.Packets() {
			var p rtp.Packet
			if err := p.Unmarshal(b); err != nil {
				m.t.Fatal(err)
			}
			ext := int64(p.SequenceNumber)
			if maxExt >= 0 {
				ext = maxExt + int64(int16(p.SequenceNumber-uint16(maxExt)))
			}
			if seen[ext] {
				m.t.Fatalf("subscriber %d packet %d: sequence number %d used twice", n, i, p.SequenceNumber)
			}
			seen[ext] = true
			fromPub := m.pub[string(p.Payload)]
			if fromPub && !m.allowed[string(p.Payload)] {
				m.t.Fatalf("subscriber %d packet %d: publisher media delivered while muted", n, i)
			}
			// Only publisher media inside one run may have gaps (upstream
			// loss) and late packets; every switch is seamless.
			switch {
			case fromPub && !inPub:
				if !m.keyPub[string(p.Payload)] {
					m.t.Fatalf("subscriber %d packet %d: publisher media resumed off a key frame", n, i)
				}
				inPub, inGen = true, false
				m.seamless(n, i, maxExt, ext, maxTS, p.Timestamp)
			case !fromPub:
				if !inGen && (p.Payload[0]&0x10 == 0 || p.Payload[1]&1 != 0) {
					m.t.Fatalf("subscriber %d packet %d: empty media did not start on a key frame", n, i)
				}
				inPub, inGen = false, true
				m.seamless(n, i, maxExt, ext, maxTS, p.Timestamp)
			}
			if ext > maxExt {
				if maxExt >= 0 && int32(p.Timestamp-maxTS) < 0 {
					m.t.Fatalf("subscriber %d packet %d: timestamp back", n, i)
				}
				maxExt, maxTS = ext, p.Timestamp
			}
		}
	}
}

// seamless checks that a packet of empty media, or the first of a run of
// publisher media, follows the newest packet at once.
func (m *muteWorld) seamless(n, i int, maxExt, ext int64, maxTS, ts uint32) {
	if maxExt >= 0 && ext != maxExt+1 {
		m.t.Fatalf("subscriber %d packet %d: seq %d after %d at a switch", n, i, ext, maxExt)
	}
	if maxExt >= 0 && int32(ts-maxTS) < 0 {
		m.t.Fatalf("subscriber %d packet %d: timestamp back at a switch", n, i)
	}
}
