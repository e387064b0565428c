package forward_test

import (
	"encoding/binary"
	"errors"
	"testing"
	"time"

	"github.com/pion/rtp"

	"github.com/callcore/callcore/forward"
	"github.com/callcore/callcore/internal/clocktest"
	"github.com/callcore/callcore/transport/memory"
)

const (
	pubSSRC = 0x11111111
	pubPT   = 96
	uriMID  = "urn:ietf:params:rtp-hdrext:sdes:mid"
	uriAbs  = "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time"
)

// packet builds a publisher packet with pion/rtp, the reference encoder.
func packet(t testing.TB, seq uint16, ts uint32, payload []byte, exts map[uint8][]byte) []byte {
	t.Helper()
	p := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: pubPT, SequenceNumber: seq, Timestamp: ts, SSRC: pubSSRC}, Payload: payload}
	for id, v := range exts {
		if err := p.SetExtension(id, v); err != nil {
			t.Fatal(err)
		}
	}
	b, err := p.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func parse(t testing.TB, b []byte) rtp.Packet {
	t.Helper()
	var p rtp.Packet
	if err := p.Unmarshal(b); err != nil {
		t.Fatalf("subscriber got invalid RTP: %v", err)
	}
	return p
}

func newTrack(t testing.TB, clk forward.Clock, exts ...forward.Extension) *forward.Track {
	t.Helper()
	tr, err := forward.NewTrack(forward.TrackConfig{Kind: forward.Video, ClockRate: 90000, PayloadType: pubPT, Extensions: exts, Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Close() })
	return tr
}

func subscribe(t testing.TB, tr *forward.Track, w *memory.Sink, ssrc uint32, seq uint16, exts ...forward.Extension) *forward.Subscriber {
	t.Helper()
	s, err := tr.Subscribe(forward.SubscriberConfig{Writer: w, SSRC: ssrc, PayloadType: 100, FirstSeq: seq, FirstTimestamp: 5000, Extensions: exts})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestRewriteAndExtensions(t *testing.T) {
	tr := newTrack(t, nil,
		forward.Extension{ID: 3, URI: forward.URITransportCC},
		forward.Extension{ID: 4, URI: uriMID},
		forward.Extension{ID: 5, URI: uriAbs})
	var a, b memory.Sink
	subscribe(t, tr, &a, 0xaaaa, 100, forward.Extension{ID: 9, URI: uriMID}, forward.Extension{ID: 2, URI: forward.URITransportCC})
	subscribe(t, tr, &b, 0xbbbb, 65535)
	exts := map[uint8][]byte{3: {0, 7}, 4: []byte("v0"), 5: {1, 2, 3}}
	for i := range 3 {
		if err := tr.HandleRTP(packet(t, uint16(10+i), uint32(1000+3000*i), []byte{byte(i), 0xee}, exts)); err != nil {
			t.Fatal(err)
		}
	}
	pa, pb := a.Packets(), b.Packets()
	if len(pa) != 3 || len(pb) != 3 {
		t.Fatalf("got %d and %d packets, want 3 each", len(pa), len(pb))
	}
	for i := range 3 {
		x, y := parse(t, pa[i]), parse(t, pb[i])
		if x.SSRC != 0xaaaa || y.SSRC != 0xbbbb || x.PayloadType != 100 {
			t.Errorf("packet %d: SSRC %x/%x PT %d", i, x.SSRC, y.SSRC, x.PayloadType)
		}
		if x.SequenceNumber != uint16(100+i) || y.SequenceNumber != uint16(65535+i) {
			t.Errorf("packet %d: seq %d/%d", i, x.SequenceNumber, y.SequenceNumber)
		}
		if x.Timestamp != uint32(5000+3000*i) {
			t.Errorf("packet %d: ts %d", i, x.Timestamp)
		}
		if got := x.GetExtension(9); string(got) != "v0" {
			t.Errorf("mid not remapped to 9: %q", got)
		}
		if len(x.GetExtensionIDs()) != 1 {
			t.Errorf("subscriber a got extensions %v, want only 9 (transport-cc and abs-send-time stripped)", x.GetExtensionIDs())
		}
		if y.Extension {
			t.Errorf("subscriber b negotiated no extensions but got %v", y.GetExtensionIDs())
		}
		if x.Payload[0] != byte(i) || y.Payload[1] != 0xee {
			t.Errorf("payload changed")
		}
	}
}

// run sends seqs (with timestamps 3000 per step) through a pipe whose hook
// conditions them, into a track with one subscriber, and returns the
// subscriber's packets.
func run(t *testing.T, seqs []uint16, hook memory.Hook) []rtp.Packet {
	t.Helper()
	tr := newTrack(t, nil)
	var sink memory.Sink
	subscribe(t, tr, &sink, 1, 0)
	in, err := memory.NewPipe(memory.PipeConfig{RTP: memory.Into(tr), Hook: hook})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range seqs {
		pkt := packet(t, s, uint32(s-seqs[0])*3000, []byte{byte(s), byte(s >> 8)}, nil)
		_ = in.WriteRTP(pkt[:12], pkt[12:])
	}
	var out []rtp.Packet
	for _, b := range sink.Packets() {
		out = append(out, parse(t, b))
	}
	return out
}

func TestWrapLossAndReorder(t *testing.T) {
	var seqs []uint16
	for s := uint16(65530); s != 10; s++ {
		seqs = append(seqs, s)
	}
	// Drop input 3 (seq 65533) and swap every 5th packet with the next.
	hook := func(n uint64, _ []byte) memory.Action {
		if n == 3 {
			return memory.Action{Drop: true}
		}
		if n%5 == 0 && n > 0 && n < 15 {
			return memory.Action{After: 1}
		}
		return memory.Action{}
	}
	out := run(t, seqs, hook)
	if len(out) != len(seqs)-1 {
		t.Fatalf("got %d packets, want %d", len(out), len(seqs)-1)
	}
	for _, p := range out {
		in := uint16(p.Payload[0]) | uint16(p.Payload[1])<<8
		// The first input maps to 0: every output is input - 65530, wrap included.
		if want := in - 65530; p.SequenceNumber != want {
			t.Errorf("input %d mapped to %d, want %d", in, p.SequenceNumber, want)
		}
		if want := 5000 + uint32(in-65530)*3000; p.Timestamp != want {
			t.Errorf("input %d: ts %d, want %d", in, p.Timestamp, want)
		}
	}
}

func TestPaddingLeavesNoGap(t *testing.T) {
	tr := newTrack(t, nil)
	var sink memory.Sink
	subscribe(t, tr, &sink, 1, 0)
	padding := func(seq uint16) []byte {
		b := packet(t, seq, uint32(seq)*3000, nil, nil)
		b[0] |= 0x20
		return append(b, 0, 0, 0, 4)
	}
	send := func(b []byte) {
		if err := tr.HandleRTP(b); err != nil {
			t.Fatal(err)
		}
	}
	send(packet(t, 1, 3000, []byte{1}, nil))
	send(padding(2)) // newest: withheld, the numbering closes over it
	send(padding(3))
	send(packet(t, 5, 15000, []byte{5}, nil)) // 4 is late
	send(padding(4))                          // late: its place exists, so it is forwarded
	send(packet(t, 6, 18000, []byte{6}, nil))
	var got []uint16
	for _, b := range sink.Packets() {
		got = append(got, parse(t, b).SequenceNumber)
	}
	want := []uint16{0, 2, 1, 3}
	if len(got) != len(want) {
		t.Fatalf("got seqs %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("got seqs %v, want %v", got, want)
		}
	}
	if st := tr.Stats(); st.Padding != 3 {
		t.Errorf("padding counted %d, want 3", st.Padding)
	}
}

func TestGateAndSwitchAreContinuous(t *testing.T) {
	clk := &clocktest.Clock{}
	a, b := newTrack(t, clk), newTrack(t, clk)
	var sink memory.Sink
	s := subscribe(t, a, &sink, 1, 0)
	send := func(tr *forward.Track, seq uint16, ts uint32) {
		t.Helper()
		clk.Advance(20 * time.Millisecond)
		if err := tr.HandleRTP(packet(t, seq, ts, []byte{1}, nil)); err != nil {
			t.Fatal(err)
		}
	}
	send(a, 100, 0)
	send(a, 101, 1800)
	s.SetOpen(false)
	send(a, 102, 3600) // not sent
	send(a, 103, 5400)
	s.SetOpen(true)
	send(a, 104, 7200)
	if err := s.SwitchTo(b); err != nil {
		t.Fatal(err)
	}
	send(b, 40000, 999999) // another stream entirely
	send(b, 40001, 1001799)
	var seqs []uint16
	var tss []uint32
	for _, p := range sink.Packets() {
		q := parse(t, p)
		seqs, tss = append(seqs, q.SequenceNumber), append(tss, q.Timestamp)
	}
	wantSeq := []uint16{0, 1, 2, 3, 4}
	// 20 ms at 90 kHz is 1800 ticks; the gate skipped 60 ms of wall time.
	wantTS := []uint32{5000, 6800, 6800 + 3*1800, 6800 + 4*1800, 6800 + 5*1800}
	for i := range wantSeq {
		if i >= len(seqs) || seqs[i] != wantSeq[i] || tss[i] != wantTS[i] {
			t.Fatalf("got seq %v ts %v, want %v %v", seqs, tss, wantSeq, wantTS)
		}
	}
	if st := s.Stats(); st.DropGate != 2 || st.Packets != 5 {
		t.Errorf("stats %+v", st)
	}
}

func TestBadInputIsRefusedAndCounted(t *testing.T) {
	tr := newTrack(t, nil)
	var sink memory.Sink
	subscribe(t, tr, &sink, 1, 0)
	good := packet(t, 1, 0, []byte{1}, nil)
	if err := tr.HandleRTP(good); err != nil {
		t.Fatal(err)
	}
	otherSSRC := append([]byte(nil), good...)
	binary.BigEndian.PutUint32(otherSSRC[8:], 7)
	otherPT := append([]byte(nil), good...)
	otherPT[1] = 0x80 | 97
	badExt := packet(t, 2, 0, []byte{1}, map[uint8][]byte{1: {1}})
	badExt[14], badExt[15] = 0, 9 // extension length beyond the packet
	jump := packet(t, 20000, 0, []byte{1}, nil)
	cases := []struct {
		name string
		pkt  []byte
		want error
	}{
		{"empty", nil, forward.ErrMalformed},
		{"short", good[:11], forward.ErrMalformed},
		{"version", append([]byte{0x40}, good[1:]...), forward.ErrMalformed},
		{"extension", badExt, forward.ErrMalformed},
		{"oversized", make([]byte, 1501), forward.ErrOversized},
		{"ssrc", otherSSRC, forward.ErrUnknownSSRC},
		{"pt", otherPT, forward.ErrUnknownPayloadType},
		{"duplicate", good, forward.ErrDuplicate},
		{"jump", jump, forward.ErrOutOfWindow},
	}
	for _, c := range cases {
		if err := tr.HandleRTP(c.pkt); !errors.Is(err, c.want) {
			t.Errorf("%s: got %v, want %v", c.name, err, c.want)
		}
	}
	st := tr.Stats()
	if st.Dropped() != uint64(len(cases)) || st.Malformed != 4 {
		t.Errorf("stats %+v", st)
	}
	if sink.Len() != 1 {
		t.Errorf("%d packets forwarded, want only the good one", sink.Len())
	}
	// A confirmed jump (RFC 3550 A.1) resynchronises with no gap.
	if err := tr.HandleRTP(packet(t, 20001, 3000, []byte{1}, nil)); err != nil {
		t.Fatal(err)
	}
	if p := sink.Packets(); len(p) != 2 || parse(t, p[1]).SequenceNumber != 1 {
		t.Errorf("after a confirmed jump got %d packets", len(p))
	}
}

func TestConfigValidate(t *testing.T) {
	bad := []forward.TrackConfig{
		{ClockRate: 90000},
		{Kind: forward.Video},
		{Kind: forward.Video, ClockRate: 1, ReorderWindow: 100},
		{Kind: forward.Video, ClockRate: 1, PayloadType: 200},
		{Kind: forward.Video, ClockRate: 1, MaxPacketSize: 70000},
		{Kind: forward.Video, ClockRate: 1, Extensions: []forward.Extension{{ID: 0, URI: "x"}}},
	}
	for _, c := range bad {
		if _, err := forward.NewTrack(c); !errors.Is(err, forward.ErrInvalidConfig) {
			t.Errorf("%+v: got %v", c, err)
		}
	}
	if _, err := forward.NewSubscriber(forward.SubscriberConfig{SSRC: 1}); !errors.Is(err, forward.ErrInvalidConfig) {
		t.Errorf("nil writer accepted: %v", err)
	}
}
