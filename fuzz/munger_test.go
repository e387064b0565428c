package fuzz

import (
	"encoding/binary"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"

	"github.com/callcore/callcore/forward"
	"github.com/callcore/callcore/internal/clocktest"
	"github.com/callcore/callcore/transport"
	"github.com/callcore/callcore/transport/memory"
)

// FuzzMunger runs operation sequences against two tracks and up to four
// subscribers: arrivals in order, with loss, reordering, duplicates,
// padding, sequence jumps (RFC 3550 probation) and wraps, packets older
// than the window, gate toggles, switches of source, joins, NACKs (answered
// from the shared cache) and writers that refuse a packet (a slow
// subscriber). The oracle
// is a reference model (model.go) written from the definitions rather than
// the implementation's data structures; every subscriber must get exactly
// the model's packets, and the properties are checked again directly.
func FuzzMunger(f *testing.F) {
	f.Add([]byte{0, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0})
	f.Add([]byte{0, 0, 4, 0, 4, 0, 1, 0, 0, 0, 2, 0, 4, 0, 5, 0, 0, 0, 5, 0, 8, 50, 0, 0})
	f.Add([]byte{0, 0, 9, 7, 0, 0, 3, 0, 10, 3, 0, 0, 6, 0, 0, 1, 0, 1, 6, 0, 0, 0, 7, 0, 0, 0})
	f.Add([]byte{0, 255, 1, 0, 1, 0, 0, 0, 2, 1, 2, 0, 0, 0, 4, 0, 2, 0})
	f.Fuzz(func(t *testing.T, ops []byte) {
		if len(ops) > 800 {
			ops = ops[:800]
		}
		w := newWorld(t, ops)
		for i := 0; i+1 < len(ops); i += 2 {
			w.step(ops[i]%13, ops[i+1])
		}
		w.check()
	})
}

// world drives the real tracks and subscribers and the model side by side.
type world struct {
	t      *testing.T
	clk    *clocktest.Clock
	tracks [2]*forward.Track
	gens   [2]*generator
	models [2]*trackModel
	subs   []*subWorld
	sent   map[uint32]int      // arrivals per packet id
	inputs [2]map[int64]outPkt // per track, accepted packets by extended number: id and timestamp (in inExt)
	slots  [2]map[int64]int64  // per track, the packet in each of the cache's slots
}

// cached reports whether the track's cache of cacheSize slots still holds
// ext: a slot keeps the newest packet stored in it.
func (w *world) cached(tr int) func(int64) bool {
	return func(ext int64) bool { return w.slots[tr][ext%cacheSize] == ext }
}

func (w *world) store(tr int, ext int64) {
	if old, ok := w.slots[tr][ext%cacheSize]; !ok || old < ext {
		w.slots[tr][ext%cacheSize] = ext
	}
}

type subWorld struct {
	sub   *forward.Subscriber
	sink  *memory.Sink
	fail  *failing
	fails int
	model *subModel
	track int
}

func newWorld(t *testing.T, ops []byte) *world {
	w := &world{t: t, clk: &clocktest.Clock{}, sent: map[uint32]int{},
		inputs: [2]map[int64]outPkt{{}, {}}, slots: [2]map[int64]int64{{}, {}}}
	for i := range w.tracks {
		tr, err := forward.NewTrack(forward.TrackConfig{Kind: forward.Video, ClockRate: clockRate, PayloadType: 96, Clock: w.clk})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { tr.Close() })
		w.tracks[i] = tr
		// Each track starts at a different place; seeds near 65535 wrap.
		start := uint16(65500 + 300*i)
		if len(ops) > 0 {
			start += uint16(ops[0]) << 8
		}
		w.gens[i] = &generator{rawSeq: start, rawTS: uint32(start) * 77, id: uint32(i) << 24}
		w.models[i] = newTrackModel()
	}
	w.join(0)
	return w
}

func (w *world) join(track int) {
	if len(w.subs) == 4 {
		return
	}
	sink := &memory.Sink{}
	fail := &failing{to: sink}
	first := uint16(len(w.subs) * 20000)
	// The model answers every NACK it can: the subscriber's NACK and
	// retransmission budgets are set out of reach (they are tested in
	// forward).
	s, err := w.tracks[track].Subscribe(forward.SubscriberConfig{Writer: fail, SSRC: uint32(len(w.subs) + 1), FirstSeq: first, FirstTimestamp: 1000,
		NACKs: forward.Budget{Rate: 1_000_000, Burst: 1_000_000}, RetransmitPercent: 1000, RetransmitBurst: 1_000_000})
	if err != nil {
		w.t.Fatal(err)
	}
	w.subs = append(w.subs, &subWorld{sub: s, sink: sink, fail: fail, model: newSubModel(first, 1000), track: track})
}

func (w *world) step(op, arg byte) {
	tr := int(arg & 1)
	g := w.gens[tr]
	switch op {
	case 0: // send the next packet
		w.send(tr, g.create(false))
	case 1: // create the next packet and hold it back (reordered or lost)
		g.pending = append(g.pending, g.create(false))
	case 2: // release a held packet
		if len(g.pending) > 0 {
			i := int(arg>>1) % len(g.pending)
			p := g.pending[i]
			g.pending = append(g.pending[:i], g.pending[i+1:]...)
			w.send(tr, p)
		}
	case 3: // a duplicate
		if len(g.sent) > 0 {
			w.send(tr, g.sent[int(arg>>1)%len(g.sent)])
		}
	case 4: // padding
		w.send(tr, g.create(g.paddings < 24))
	case 5: // toggle a gate
		if len(w.subs) > 0 {
			s := w.subs[int(arg>>1)%len(w.subs)]
			s.sub.SetOpen(!s.sub.Open())
			s.model.open = s.sub.Open()
		}
	case 6: // switch a subscriber to the other track
		if len(w.subs) > 0 {
			s := w.subs[int(arg>>1)%len(w.subs)]
			s.track = 1 - s.track
			if err := s.sub.SwitchTo(w.tracks[s.track]); err != nil {
				w.t.Fatal(err)
			}
			s.model.switched()
		}
	case 7:
		w.join(tr)
	case 8:
		w.clk.Advance(time.Duration(arg) * time.Millisecond)
	case 9: // the publisher restarts its numbering: a jump, confirmed
		g.pending = nil
		g.rawSeq += 3000 + uint16(arg)*100
		g.rawTS += uint32(arg) * 1e6
		w.send(tr, g.create(false))
		w.send(tr, g.create(false))
	case 10: // a packet from far behind the window
		p := g.create(false)
		p.seq -= 600 + uint16(arg)
		w.send(tr, p)
	case 11: // a subscriber NACKs one of its recent numbers
		if len(w.subs) > 0 {
			s := w.subs[int(arg>>1)%len(w.subs)]
			seq := uint16(s.model.maxOut) - uint16(arg%48)
			b, err := rtcp.Marshal([]rtcp.Packet{&rtcp.TransportLayerNack{SenderSSRC: 1, MediaSSRC: s.sub.Config().SSRC,
				Nacks: []rtcp.NackPair{{PacketID: seq}}}})
			if err != nil {
				w.t.Fatal(err)
			}
			if err := s.sub.HandleRTCP(b); err != nil {
				w.t.Fatal(err)
			}
			s.model.nack(seq, w.cached(s.track), w.inputs[s.track])
		}
	case 12: // a subscriber's writer refuses the next packet
		// At most 6 a subscriber: with the 24 paddings, the munger's 32
		// remembered offset changes always suffice.
		if len(w.subs) > 0 {
			s := w.subs[int(arg>>1)%len(w.subs)]
			if s.fails < 6 {
				s.fails++
				s.fail.next = true
				s.model.fail = true
			}
		}
	}
}

// send hands p to track tr and to the model.
func (w *world) send(tr int, p pkt) {
	w.clk.Advance(5 * time.Millisecond)
	w.gens[tr].sent = append(w.gens[tr].sent, p)
	w.sent[p.id]++
	_ = w.tracks[tr].HandleRTP(p.marshal(w.t))
	now := w.clk.Nanotime()
	ext, ts, ok := w.models[tr].push(p.seq, p.ts, now)
	if !ok {
		return
	}
	w.inputs[tr][ext] = outPkt{id: p.id, inExt: ts}
	w.store(tr, ext)
	for _, s := range w.subs {
		if s.track == tr {
			s.model.deliver(ext, ts, p.padding, p.id, now)
		}
	}
}

func (w *world) check() {
	for n, s := range w.subs {
		got := s.sink.Packets()
		want := s.model.out
		if len(got) != len(want) {
			w.t.Fatalf("subscriber %d: got %d packets, model %d", n, len(got), len(want))
		}
		for i, b := range got {
			var p rtp.Packet
			if err := p.Unmarshal(b); err != nil {
				w.t.Fatal(err)
			}
			if id := packetID(p, b); p.SequenceNumber != want[i].seq || p.Timestamp != want[i].ts || id != want[i].id {
				w.t.Fatalf("subscriber %d packet %d: got seq %d ts %d id %x, model seq %d ts %d id %x",
					n, i, p.SequenceNumber, p.Timestamp, id, want[i].seq, want[i].ts, want[i].id)
			}
		}
		var sent []outPkt
		for _, p := range want {
			if !p.rtx {
				sent = append(sent, p)
			}
		}
		checkProperties(w.t, sent, w.sent)
	}
}

// checkProperties checks the model's output itself: every packet maps back
// to one arrival (a packet forwarded twice arrived twice: after a confirmed
// jump, a stale copy is a new packet to RFC 3550 too), sequence numbers are
// used once, and in sequence-number order timestamps never go back.
func checkProperties(t *testing.T, out []outPkt, arrivals map[uint32]int) {
	ids := map[uint32]int{}
	bySeq := map[int64]outPkt{}
	var ext, maxExt int64
	for i, p := range out {
		if ids[p.id]++; ids[p.id] > arrivals[p.id] {
			t.Fatalf("input %x forwarded %d times, arrived %d times", p.id, ids[p.id], arrivals[p.id])
		}
		if i == 0 {
			ext = int64(p.seq)
		} else {
			ext = maxExt + int64(int16(p.seq-uint16(maxExt)))
		}
		if _, dup := bySeq[ext]; dup {
			t.Fatalf("sequence number %d used twice", p.seq)
		}
		bySeq[ext] = p
		maxExt = max(maxExt, ext)
	}
	keys := slices.Sorted(maps.Keys(bySeq))
	for i := 1; i < len(keys); i++ {
		if a, b := bySeq[keys[i-1]], bySeq[keys[i]]; int32(b.ts-a.ts) < 0 {
			t.Fatalf("timestamp went back at seq %d: %d after %d", b.seq, b.ts, a.ts)
		}
	}
}

// failing passes packets to a sink, refusing one when told to, as a
// transport with a full queue does.
type failing struct {
	to   *memory.Sink
	next bool
}

func (f *failing) WriteRTP(h, p []byte) error {
	if f.next {
		f.next = false
		return transport.ErrBufferFull
	}
	return f.to.WriteRTP(h, p)
}

// pkt is one packet the generator made; id is unique per packet.
type pkt struct {
	seq     uint16
	ts      uint32
	id      uint32
	padding bool
}

func (p pkt) marshal(t *testing.T) []byte {
	q := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 96, SequenceNumber: p.seq, Timestamp: p.ts, SSRC: 9}}
	id := binary.BigEndian.AppendUint32(nil, p.id)
	if p.padding {
		q.Padding, q.PaddingSize = true, 8
		q.Payload = nil
		b, err := q.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		copy(b[len(b)-8:], id) // the padding carries the id
		return b
	}
	q.Payload = id
	b, err := q.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func packetID(p rtp.Packet, raw []byte) uint32 {
	if len(p.Payload) >= 4 {
		return binary.BigEndian.Uint32(p.Payload)
	}
	if p.Padding && len(raw) >= 8 {
		return binary.BigEndian.Uint32(raw[len(raw)-8:])
	}
	return 0
}

// generator makes one publisher's packets: three per video frame, the
// timestamp moving 3000 ticks a frame.
type generator struct {
	rawSeq   uint16
	rawTS    uint32
	n        int
	id       uint32
	paddings int
	pending  []pkt
	sent     []pkt
}

func (g *generator) create(padding bool) pkt {
	if padding {
		g.paddings++
	}
	p := pkt{seq: g.rawSeq, ts: g.rawTS, id: g.id, padding: padding}
	g.rawSeq++
	g.id++
	g.n++
	if g.n%3 == 0 {
		g.rawTS += 3000
	}
	return p
}
