package forward_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/pion/rtp"
	xvp8 "golang.org/x/image/vp8"

	"github.com/callcore/callcore/forward"
	"github.com/callcore/callcore/internal/clocktest"
	"github.com/callcore/callcore/mute"
	"github.com/callcore/callcore/transport/memory"
)

// pubVP8 is a VP8 publisher whose key frames begin with a real 320×240 VP8
// key-frame header, so the track learns the size from them, and whose
// payloads are unique, so they can be recognised byte for byte.
type pubVP8 struct {
	vp8
	header []byte
	sent   map[string]bool
}

func newPubVP8(t *testing.T, clk *clocktest.Clock, keyEvery int) *pubVP8 {
	kf, err := mute.BlackKeyFrame(mute.MimeTypeVP8, 320, 240)
	if err != nil {
		t.Fatal(err)
	}
	return &pubVP8{vp8: vp8{seq: 60000, keyEvery: keyEvery, clk: clk}, header: kf[:10], sent: map[string]bool{}}
}

func (p *pubVP8) next(t *testing.T) []byte {
	pkt, key := p.vp8.next(t)
	if key { // splice the real frame header in after the descriptor
		var q rtp.Packet
		if err := q.Unmarshal(pkt); err != nil {
			t.Fatal(err)
		}
		q.Payload = append(append([]byte{0x10}, p.header...), q.Payload[2:]...)
		b, err := q.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		pkt = b
	}
	p.sent[string(pkt[12:])] = true
	return pkt
}

// decodeVP8Keys depacketizes every black or real VP8 key frame a subscriber
// got and decodes those that are the muter's.
func decodeVP8Keys(t *testing.T, pkts []rtp.Packet) (n int) {
	t.Helper()
	var frame []byte
	collecting := false
	for _, p := range pkts {
		if p.Payload[0]&0x10 != 0 { // S: a frame starts
			collecting = p.Payload[0]&0x80 == 0 && p.Payload[1]&1 == 0 // a key frame with a one-byte descriptor
			frame = frame[:0]
		}
		if !collecting {
			continue
		}
		frame = append(frame, p.Payload[1:]...)
		if !p.Marker {
			continue
		}
		collecting = false
		d := xvp8.NewDecoder()
		d.Init(bytes.NewReader(frame), len(frame))
		fh, err := d.DecodeFrameHeader()
		if err != nil {
			t.Fatalf("black key frame header: %v", err)
		}
		if fh.Width != 320 || fh.Height != 240 {
			t.Fatalf("black key frame is %d×%d, want the publisher's 320×240", fh.Width, fh.Height)
		}
		img, err := d.DecodeFrame()
		if err != nil {
			t.Fatalf("black key frame: %v", err)
		}
		for _, y := range img.Y {
			if y > 16 {
				t.Fatalf("a pixel is not black: Y=%d", y)
			}
		}
		n++
	}
	return n
}

func packets(t *testing.T, s *memory.Sink) []rtp.Packet {
	var out []rtp.Packet
	for _, b := range s.Packets() {
		out = append(out, parse(t, b))
	}
	return out
}

// continuous checks sequence numbers step by one and timestamps never go
// back.
func continuous(t *testing.T, pkts []rtp.Packet) {
	t.Helper()
	for i := 1; i < len(pkts); i++ {
		if pkts[i].SequenceNumber != pkts[i-1].SequenceNumber+1 {
			t.Fatalf("packet %d: seq %d after %d", i, pkts[i].SequenceNumber, pkts[i-1].SequenceNumber)
		}
		if int32(pkts[i].Timestamp-pkts[i-1].Timestamp) < 0 {
			t.Fatalf("packet %d: timestamp %d after %d", i, pkts[i].Timestamp, pkts[i-1].Timestamp)
		}
	}
}

// vp8Call is a VP8 track on a fake clock (key frame every 10 frames) with
// one subscriber, SSRC 1; up gets the track's feedback to the publisher.
type vp8Call struct {
	clk  *clocktest.Clock
	up   memory.Sink
	tr   *forward.Track
	pub  *pubVP8
	sink memory.Sink
	sub  *forward.Subscriber
}

// newVP8Call starts the call and sends n of the publisher's packets.
func newVP8Call(t *testing.T, n int) *vp8Call {
	t.Helper()
	c := &vp8Call{clk: &clocktest.Clock{}}
	c.tr = vp8Track(t, c.clk, &c.up)
	c.pub = newPubVP8(t, c.clk, 10)
	c.sub = subscribe(t, c.tr, &c.sink, 1, 0)
	for range n {
		send(t, c.tr, c.pub.next(t))
	}
	return c
}

func TestSelfMuteVP8(t *testing.T) {
	c := newVP8Call(t, 31) // ten frames, and the first packet of the eleventh (a key frame)
	clk, tr, pub, sink := c.clk, c.tr, c.pub, &c.sink
	if got := tr.SetMute(forward.SourceSelf, true); got != forward.MuteSelf {
		t.Fatalf("state %v", got)
	}
	before := sink.Len()
	// Mid-frame: the frame completes, then the muter takes over.
	send(t, tr, pub.next(t))
	send(t, tr, pub.next(t))
	if sink.Len() != before+2 {
		t.Fatalf("the frame under way was not completed: %d packets", sink.Len()-before)
	}
	muteStart := sink.Len()
	for range 30 { // 10 more frames from the publisher, 200 ms
		send(t, tr, pub.next(t))
	}
	for range 10 { // two seconds of pumping
		clk.Advance(200 * time.Millisecond)
		tr.Pump()
	}
	plisBefore := plis(t, &c.up)
	tr.SetMute(forward.SourceSelf, false)
	if plis(t, &c.up) != plisBefore+1 {
		t.Fatal("unmute did not ask the publisher for a key frame at once")
	}
	for pub.frame%10 != 0 { // delta frames until the key frame: still empty media
		send(t, tr, pub.next(t))
	}
	resume := sink.Len()
	for range 6 {
		send(t, tr, pub.next(t))
	}
	pkts := packets(t, sink)
	continuous(t, pkts)
	for i, p := range pkts[muteStart:resume] {
		if pub.sent[string(p.Payload)] {
			t.Fatalf("muted packet %d carries the publisher's payload", i)
		}
	}
	if n := decodeVP8Keys(t, pkts[muteStart:resume]); n != 1 {
		t.Fatalf("%d black key frames while muted, want 1 at the start", n)
	}
	if repeats := countFrames(pkts[muteStart:resume]); repeats < 10 {
		t.Fatalf("%d empty frames in 2.2 s, want about 5 a second", repeats)
	}
	first := pkts[resume]
	if !pub.sent[string(first.Payload)] || first.Payload[0]&0x10 == 0 || first.Payload[1]&1 != 0 {
		t.Fatal("real media did not resume on the publisher's key frame")
	}
	if st := tr.Stats(); st.MutedDrop == 0 || st.Generated == 0 {
		t.Fatalf("stats %+v", st)
	}
}

func countFrames(pkts []rtp.Packet) (n int) {
	for _, p := range pkts {
		if p.Marker {
			n++
		}
	}
	return n
}

func opusTrack(t *testing.T, clk *clocktest.Clock) *forward.Track {
	tr, err := forward.NewTrack(forward.TrackConfig{Kind: forward.Audio, ClockRate: 48000, PayloadType: pubPT, MimeType: "audio/OPUS", Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Close() })
	return tr
}

func TestSelfMuteOpus(t *testing.T) {
	clk := &clocktest.Clock{}
	tr := opusTrack(t, clk)
	var sink memory.Sink
	subscribe(t, tr, &sink, 1, 0)
	seq := uint16(100)
	talk := func(n int) {
		for range n {
			clk.Advance(20 * time.Millisecond)
			send(t, tr, packet(t, seq, uint32(seq)*960, []byte{0xfc, byte(seq), 0x55, 0x66}, nil))
			seq++
		}
	}
	talk(5)
	tr.SetMute(forward.SourceSelf, true) // audio switches at once
	muted := sink.Len()
	silence, err := mute.SilentFrame(mute.MimeTypeOpus, 20*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	talk(10) // the publisher keeps talking: not heard
	for range 20 {
		clk.Advance(20 * time.Millisecond)
		tr.Pump()
	}
	tr.SetMute(forward.SourceSelf, false)
	unmuted := sink.Len()
	talk(3)
	pkts := packets(t, &sink)
	continuous(t, pkts)
	if n := unmuted - muted; n < 29 || n > 31 {
		t.Fatalf("%d silent frames in 600 ms, want 30", n)
	}
	for i, p := range pkts[muted:unmuted] {
		if !bytes.Equal(p.Payload, silence) {
			t.Fatalf("muted packet %d is not silence: %x", i, p.Payload)
		}
		if i > 0 && p.Timestamp-pkts[muted+i-1].Timestamp != 960 {
			t.Fatalf("silent frames 20 ms apart must be 960 ticks apart, got %d", p.Timestamp-pkts[muted+i-1].Timestamp)
		}
	}
	if pkts[unmuted].Payload[2] != 0x55 {
		t.Fatal("the publisher was not heard again at once after unmute")
	}
}

func TestAdminMuteFlushesThenSilence(t *testing.T) {
	c := newVP8Call(t, 30)
	clk, tr, pub, sink := c.clk, c.tr, c.pub, &c.sink
	start := sink.Len()
	if got := tr.SetMute(forward.SourceAdmin, true); got != forward.MuteAdmin {
		t.Fatalf("state %v", got)
	}
	for range 60 {
		send(t, tr, pub.next(t))
	}
	for range 10 {
		clk.Advance(200 * time.Millisecond)
		tr.Pump()
	}
	pkts := packets(t, sink)
	if n := decodeVP8Keys(t, pkts[start:]); n != 1 || countFrames(pkts[start:]) != 3 {
		t.Fatalf("admin mute: %d frames (%d black key frames), want one black key frame and two repeat frames", countFrames(pkts[start:]), n)
	}
	// The muted user lifting its own mute changes nothing.
	if got := tr.SetMute(forward.SourceSelf, false); got != forward.MuteAdmin {
		t.Fatalf("self unmute lifted an admin mute: %v", got)
	}
	// Lifting the admin mute works like unmute: empty frames, then the
	// publisher's key frame.
	tr.SetMute(forward.SourceAdmin, false)
	clk.Advance(200 * time.Millisecond)
	tr.Pump()
	for pub.frame%10 != 0 {
		send(t, tr, pub.next(t))
	}
	send(t, tr, pub.next(t))
	pkts = packets(t, sink)
	continuous(t, pkts)
	last := pkts[len(pkts)-1]
	if !pub.sent[string(last.Payload)] || last.Payload[1]&1 != 0 {
		t.Fatal("media did not resume on a key frame")
	}
	if countFrames(pkts[start:]) < 2 {
		t.Fatal("no empty frames while waiting for the key frame")
	}
}

// TestAdminLiftedUnderSelfMute: an admin mute lifted while the publisher
// is still self-muted turns the silence back into empty frames, starting
// on a black key frame (a subscriber may have lost everything since).
func TestAdminLiftedUnderSelfMute(t *testing.T) {
	c := newVP8Call(t, 30)
	clk, tr, sink := c.clk, c.tr, &c.sink
	tr.SetMute(forward.SourceSelf, true)
	tr.SetMute(forward.SourceAdmin, true)
	for range 5 {
		clk.Advance(100 * time.Millisecond)
		tr.Pump()
	}
	mark := sink.Len()
	if got := tr.SetMute(forward.SourceAdmin, false); got != forward.MuteSelf {
		t.Fatalf("state %v", got)
	}
	pkts := packets(t, sink)[mark:]
	if n := decodeVP8Keys(t, pkts); countFrames(pkts) != 1 || n != 1 {
		t.Fatalf("after the admin mute: %d frames, %d black key frames; want one black key frame", countFrames(pkts), n)
	}
}

// TestAdminMuteTailRepairsLostKeyFrame: the admin mute's black key frame
// is lost on the way; the repeat frames after it show the gap, and the
// subscriber's NACK gets the key frame again from the cache (without them
// the stream would stop on the loss, the subscriber showing the
// publisher's last picture).
func TestAdminMuteTailRepairsLostKeyFrame(t *testing.T) {
	c := newVP8Call(t, 30)
	clk, tr, sub, sink := c.clk, c.tr, c.sub, &c.sink
	start := sink.Len()
	tr.SetMute(forward.SourceAdmin, true)
	key := packets(t, sink)[start:] // the black key frame: lost
	if n := decodeVP8Keys(t, key); n != 1 || countFrames(key) != 1 {
		t.Fatalf("the admin mute sent %d frames, %d black key frames, before its tail", countFrames(key), n)
	}
	for range 5 {
		clk.Advance(100 * time.Millisecond)
		tr.Pump()
	}
	tail := packets(t, sink)[start+len(key):]
	if len(tail) == 0 || tail[0].SequenceNumber != key[len(key)-1].SequenceNumber+1 {
		t.Fatalf("no repeat frame right after the key frame: %d packets", len(tail))
	}
	var lost []uint16
	for _, p := range key {
		lost = append(lost, p.SequenceNumber)
	}
	before := sink.Len()
	if err := sub.HandleRTCP(nackFor(t, 1, lost...)); err != nil {
		t.Fatal(err)
	}
	again := packets(t, sink)[before:]
	if len(again) != len(key) {
		t.Fatalf("%d packets retransmitted, want %d", len(again), len(key))
	}
	for i := range again {
		if again[i].SequenceNumber != key[i].SequenceNumber || !bytes.Equal(again[i].Payload, key[i].Payload) {
			t.Fatalf("retransmission %d is not the lost packet", i)
		}
	}
	if n := decodeVP8Keys(t, again); n != 1 {
		t.Fatalf("the retransmission decodes to %d black key frames", n)
	}
}

// TestAdminMuteAppliedByAPublisherPacketStillFlushes: the publisher's
// next packet comes while SetMute is building the empty media (in a call,
// a packet every few milliseconds against a build of one or two under
// load). Whichever of them applies the admin mute must have the frames:
// the subscriber gets its black key frame and two repeat frames, then
// nothing. (When the packet applied the mute before the frames existed,
// the flush, sent only once, sent nothing, and the subscriber was left on
// the publisher's last picture.)
func TestAdminMuteAppliedByAPublisherPacketStillFlushes(t *testing.T) {
	clk := &clocktest.Clock{}
	tr, err := forward.NewTrack(forward.TrackConfig{Kind: forward.Video, ClockRate: 90000, PayloadType: pubPT,
		MimeType: "video/vp8", Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Close() })
	pub := newPubVP8(t, clk, 10)
	builds := 0
	forward.BeforeBuildingFrames(tr, func() {
		if builds++; builds == 1 {
			send(t, tr, pub.next(t)) // the publisher's packet, while the frames are built
		}
	})
	var sink memory.Sink
	subscribe(t, tr, &sink, 1, 0)
	for range 30 {
		send(t, tr, pub.next(t))
	}
	start := sink.Len()
	tr.SetMute(forward.SourceAdmin, true)
	if builds == 0 {
		t.Fatal("SetMute built no empty media")
	}
	for range 60 {
		send(t, tr, pub.next(t))
	}
	for range 10 {
		clk.Advance(200 * time.Millisecond)
		tr.Pump()
	}
	all := packets(t, &sink)
	continuous(t, all)
	var gen []rtp.Packet // what the muter sent: everything the publisher did not
	for _, p := range all[start:] {
		if !pub.sent[string(p.Payload)] {
			gen = append(gen, p)
		}
	}
	if n := decodeVP8Keys(t, gen); n != 1 || countFrames(gen) != 3 || gen[len(gen)-1].SequenceNumber != all[len(all)-1].SequenceNumber {
		t.Fatalf("admin mute: %d empty frames (%d black key frames) and %d of the publisher's packets; want one black key frame and two repeat frames, after the publisher's packets",
			countFrames(gen), n, len(all)-start-len(gen))
	}
	if st := tr.Stats(); st.Generated != uint64(len(gen)) || st.NoEmptyMedia != 0 {
		t.Fatalf("stats %+v, %d empty-media packets received", st, len(gen))
	}
}

func TestJoinAndPLIWhileMutedGetBlackKeyFrames(t *testing.T) {
	c := newVP8Call(t, 30)
	clk, tr := c.clk, c.tr
	tr.SetMute(forward.SourceSelf, true)
	clk.Advance(200 * time.Millisecond)
	tr.Pump()
	var b memory.Sink
	sb := subscribe(t, tr, &b, 2, 0)
	for range 3 {
		clk.Advance(200 * time.Millisecond)
		tr.Pump()
	}
	pb := packets(t, &b)
	if len(pb) == 0 || decodeVP8Keys(t, pb[:len(fs(pb))]) != 1 {
		t.Fatal("a subscriber joining while muted must start on a black key frame")
	}
	plisBefore := plis(t, &c.up)
	if err := sb.HandleRTCP(pli(t, 2)); err != nil {
		t.Fatal(err)
	}
	clk.Advance(200 * time.Millisecond)
	tr.Pump()
	if n := decodeVP8Keys(t, packets(t, &b)); n != 2 {
		t.Fatalf("after a PLI while muted: %d black key frames, want 2", n)
	}
	if plis(t, &c.up) != plisBefore {
		t.Fatal("a PLI while muted went to the publisher")
	}
}

// fs returns the packets up to and including the first frame's last.
func fs(pkts []rtp.Packet) []rtp.Packet {
	for i, p := range pkts {
		if p.Marker {
			return pkts[:i+1]
		}
	}
	return pkts
}

// A Pulse keeps silent frames coming from a muted track whose publisher
// sends nothing, in real time.
func TestPulseKeepsCadence(t *testing.T) {
	tr, err := forward.NewTrack(forward.TrackConfig{Kind: forward.Audio, ClockRate: 48000, PayloadType: pubPT, MimeType: "audio/opus"})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	var sink memory.Sink
	subscribe(t, tr, &sink, 1, 0)
	pulse, err := forward.NewPulse(5 * time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	defer pulse.Close()
	pulse.Add(tr)
	tr.SetMute(forward.SourceSelf, true)
	deadline := time.Now().Add(10 * time.Second)
	for sink.Len() < 10 { // about 200 ms of silence
		if time.Now().After(deadline) {
			t.Fatalf("%d silent frames after 10 s", sink.Len())
		}
		time.Sleep(5 * time.Millisecond) // polling a condition against a deadline
	}
	continuous(t, packets(t, &sink))
}
