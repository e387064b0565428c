package webrtc

import (
	"encoding/binary"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/rtp"
	pion "github.com/pion/webrtc/v4"
	"go.uber.org/goleak"

	"github.com/callcore/callcore/forward"
	"github.com/callcore/callcore/pace"
)

// seqWriter stands in for pion's write stream and records the sequence
// numbers written, in order.
type seqWriter struct {
	mu   sync.Mutex
	seqs []uint16
}

func (w *seqWriter) WriteRTP(h *rtp.Header, p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.seqs = append(w.seqs, h.SequenceNumber)
	return len(p), nil
}

func (w *seqWriter) Write(b []byte) (int, error) { return len(b), nil }

func (w *seqWriter) written() []uint16 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]uint16(nil), w.seqs...)
}

// pacedOut is a writer on pion's path (a seqWriter) with pacing, on
// sched and the downlink down, of a subscription of a core track of its
// own; video gets a ring. asked counts its key-frame requests, which go
// to the track.
func pacedOut(t *testing.T, sched *pace.Scheduler, down *downlink, video bool, asked *atomic.Int32) (*rtpOut, *seqWriter, *Subscription) {
	t.Helper()
	sw := &seqWriter{}
	var ws pion.TrackLocalWriter = sw
	track, err := forward.NewTrack(forward.TrackConfig{Kind: forward.Video, MimeType: "video/VP8", ClockRate: 90000, PayloadType: 96, SSRC: 0x77})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = track.Close() })
	s := &Subscription{track: track}
	out := &s.out
	out.batch, out.down = noFlush{}, down
	out.ws.Store(&ws)
	out.ssrc.Store(3)
	out.po = &paceOut{sched: sched, pp: &down.pace, sc: &paceScratch{},
		keyStart: forward.KeyFrameStart("video/VP8"), askKey: func() { asked.Add(1); s.requestKeyFrame() }}
	if video {
		out.po.q = sched.NewQueue(paceSlots, batchSlot, out)
	}
	return out, sw, s
}

// peerOf is a peer holding only subs (made by pacedOut), for its
// askKeys.
func peerOf(down *downlink, subs ...*Subscription) *Peer {
	p := &Peer{down: down, subs: map[*Subscription]struct{}{}}
	for _, s := range subs {
		p.subs[s] = struct{}{}
	}
	return p
}

// vp8Packet returns an RTP packet (SSRC 3) with a VP8 payload of 1000
// bytes: a key frame's first packet, or one of an inter frame.
func vp8Packet(seq uint16, key, marker bool) ([]byte, []byte) {
	h := []byte{0x80, 96, 0, 0, 0, 0, 0, 9, 0, 0, 0, 3}
	binary.BigEndian.PutUint16(h[2:], seq)
	if marker {
		h[1] |= 0x80
	}
	p := make([]byte, 1000)
	p[1] = 0x01 // an inter frame
	if key {
		p[0], p[1] = 0x10, 0x00
	}
	return h, p
}

// TestPacingDropsToTheNextKeyFrame: at 1 Mbit/s, a 30-packet inter frame
// fills the 100 ms the pacer may hold; the packets past it are dropped
// (and a key frame asked for) until the next key frame, which is sent
// whole though it goes past the bound; what was queued leaves in order.
func TestPacingDropsToTheNextKeyFrame(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	sched, err := pace.New(pace.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer sched.Close()
	down, err := newDownlink(time.Now(), true)
	if err != nil {
		t.Fatal(err)
	}
	var asked atomic.Int32
	out, sw, sub := pacedOut(t, sched, down, true, &asked)
	down.pace.bucket.SetRate(125_000, 0) // 1,052 bytes a packet: 8.4 ms each
	seq := uint16(100)
	for i := range 30 {
		h, p := vp8Packet(seq, false, i == 29) // the frame's last packet has the marker
		if err := out.WriteRTP(h, p); err != nil {
			t.Fatal(err)
		}
		seq++
	}
	passed := int(down.pace.queued.Load()) + len(sw.written())
	dropped := down.pace.dropped.Load()
	if passed+int(dropped) != 30 || passed < 11 || passed > 14 || asked.Load() != 0 {
		t.Fatalf("burst of 30 at 100 ms: %d passed, %d dropped, %d key-frame requests on the packet path", passed, dropped, asked.Load())
	}
	peer := peerOf(down, sub)
	peer.askKeys() // the peer's next RTCP read
	peer.askKeys()
	if asked.Load() != 1 {
		t.Fatalf("%d key-frame requests, want 1", asked.Load())
	}
	if n := sub.track.Stats().KeyFrameRequestsOut; n != 1 {
		t.Fatalf("the track sent %d key-frame requests upstream, want 1", n)
	}
	// The key frame: 5 packets, the last with the marker; then an inter
	// frame's packet, past the bound again.
	for i := range 5 {
		h, p := vp8Packet(seq, i == 0, i == 4)
		if err := out.WriteRTP(h, p); err != nil {
			t.Fatal(err)
		}
		seq++
	}
	h, p := vp8Packet(seq, false, true)
	if err := out.WriteRTP(h, p); err != nil {
		t.Fatal(err)
	}
	if got := int(down.pace.queued.Load()) + len(sw.written()); got != passed+5 {
		t.Fatalf("after the key frame: %d passed, want %d", got, passed+5)
	}
	peer.askKeys()
	if d := down.pace.dropped.Load(); d != dropped+1 || asked.Load() != 2 {
		t.Fatalf("the inter frame after it: %d dropped, %d requests", d-dropped, asked.Load())
	}
	waitFor(t, "the ring sent", func() bool { return !out.po.q.Busy() })
	got := sw.written()
	for i := 1; i < len(got); i++ {
		if got[i] <= got[i-1] {
			t.Fatalf("sent out of order: %v", got)
		}
	}
	if got[len(got)-1] != seq-1 || len(got) != passed+5 {
		t.Fatalf("sent %v", got)
	}
	if st := (&Peer{down: down}).PaceStats(); st.MaxDelay < 100*time.Millisecond || st.MaxDelay > 200*time.Millisecond {
		t.Fatalf("max delay %v: the key frame went past the 100 ms bound by about its own 42 ms", st.MaxDelay)
	}
}

// TestPacingNeverQueuesAudio: an audio writer's packets leave at once
// however far the bucket is behind, and are counted in it: the video
// written after them waits for them (an inter frame past the 100 ms
// bound is dropped; a key frame is queued whatever its wait).
func TestPacingNeverQueuesAudio(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	sched, err := pace.New(pace.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer sched.Close()
	down, err := newDownlink(time.Now(), true)
	if err != nil {
		t.Fatal(err)
	}
	var asked atomic.Int32
	audio, aw, _ := pacedOut(t, sched, down, false, &asked)
	video, vw, _ := pacedOut(t, sched, down, true, &asked)
	down.pace.bucket.SetRate(12_500, 0) // 100 kbit/s
	for i := range 50 {
		h := []byte{0x80, 111, 0, byte(i), 0, 0, 0, 9, 0, 0, 0, 3}
		if err := audio.WriteRTP(h, make([]byte, 100)); err != nil {
			t.Fatal(err)
		}
		if n := len(aw.written()); n != i+1 {
			t.Fatalf("audio packet %d not sent at once (%d sent)", i, n)
		}
	}
	if d := down.pace.bucket.Delay(sched.Now()); d < int64(300*time.Millisecond) {
		t.Fatalf("50 audio packets of 152 bytes at 100 kbit/s left the bucket %v behind, want about 600 ms", time.Duration(d))
	}
	h, p := vp8Packet(1, false, true)
	if err := video.WriteRTP(h, p); err != nil {
		t.Fatal(err)
	}
	if len(vw.written()) != 0 || down.pace.queued.Load() != 0 || down.pace.dropped.Load() != 1 {
		t.Fatalf("an inter frame behind 600 ms of audio: %d sent, %d queued, %d dropped; want dropped",
			len(vw.written()), down.pace.queued.Load(), down.pace.dropped.Load())
	}
	h, p = vp8Packet(2, true, true)
	if err := video.WriteRTP(h, p); err != nil {
		t.Fatal(err)
	}
	if len(vw.written()) != 0 || down.pace.queued.Load() != 1 || down.pace.dropped.Load() != 1 {
		t.Fatalf("a key frame behind 600 ms of audio: %d sent, %d queued, %d dropped; want queued",
			len(vw.written()), down.pace.queued.Load(), down.pace.dropped.Load())
	}
}
