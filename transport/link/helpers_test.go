package link

import (
	"encoding/binary"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/callcore/callcore/forward"
	"github.com/callcore/callcore/internal/poll"
	"github.com/callcore/callcore/internal/rtcpx"
	"github.com/callcore/callcore/internal/rtptest"
)

const (
	pubPT   = 96
	pubSSRC = 0x1234
	magic   = 0xAB // payload byte 4 of every publisher packet; generated empty media lacks it
)

// waitFor polls cond until it holds or a generous deadline passes.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	poll.Until(t, 20*time.Second, what, cond)
}

// publisher makes a VP8 stream of three packets a frame: a key frame
// first and whenever a PLI reached the track's Feedback since the last one.
type publisher struct {
	seq   uint16
	frame int
	part  int
	plis  atomic.Int64 // PLIs received
	done  int64        // PLIs answered; owned by the publishing goroutine
}

// WriteRTCP is the track's Feedback: it counts PLIs for the publisher.
func (p *publisher) WriteRTCP(pkt []byte) error {
	var fb rtcpx.Feedback
	if _, err := rtcpx.Parse(pkt, pubSSRC, &fb); err == nil && fb.KeyFrame {
		p.plis.Add(1)
	}
	return nil
}

func (p *publisher) next() []byte {
	key := false
	if p.part == 0 {
		n := p.plis.Load()
		key = p.frame == 0 || n > p.done
		p.done = n
	}
	desc := byte(0x00)
	if p.part == 0 {
		desc = 0x10
	}
	tag := byte(0x01)
	if key {
		tag = 0x00
	}
	payload := []byte{desc, tag, byte(p.seq), byte(p.seq >> 8), magic, 0, 0, 0}
	b := rtptest.Packet{PayloadType: pubPT, Seq: p.seq, Timestamp: uint32(p.frame * 270), SSRC: pubSSRC,
		Marker: p.part == 2, Payload: payload}.Marshal()
	p.seq++
	if p.part++; p.part == 3 {
		p.part = 0
		p.frame++
	}
	return b
}

// newOrigin returns a VP8 track fed by a publisher every millisecond
// until the test ends.
func newOrigin(t testing.TB) (*forward.Track, *publisher) {
	t.Helper()
	p := &publisher{}
	tr, err := forward.NewTrack(forward.TrackConfig{Kind: forward.Video, ClockRate: 90000, PayloadType: pubPT,
		MimeType: "video/VP8", SSRC: pubSSRC, Feedback: p, CacheSize: 8192})
	if err != nil {
		t.Fatal(err)
	}
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		tk := time.NewTicker(time.Millisecond)
		defer tk.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tk.C:
				_ = tr.HandleRTP(p.next())
			}
		}
	}()
	t.Cleanup(func() {
		close(stop)
		<-done
		tr.Close()
	})
	return tr, p
}

// recorder is a subscriber's far end: it keeps every sequence number and
// whether the payload was the publisher's.
type recorder struct {
	mu    sync.Mutex // guards the fields below
	seqs  map[int64]bool
	last  int64 // unwrapped sequence number of the newest packet
	n     int
	pub   int // packets with the publisher's payload
	empty int // generated (muted) packets
	ssrc  uint32
}

func newRecorder(ssrc uint32) *recorder { return &recorder{seqs: map[int64]bool{}, ssrc: ssrc} }

func (r *recorder) WriteRTP(h, payload []byte) error {
	seq := binary.BigEndian.Uint16(h[2:])
	if binary.BigEndian.Uint32(h[8:]) != r.ssrc {
		panic("wrong SSRC")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.n == 0 {
		r.last = int64(seq) + 1<<20
	} else {
		r.last += int64(int16(seq - uint16(r.last)))
	}
	r.seqs[r.last] = true
	r.n++
	if len(payload) >= 5 && payload[4] == magic {
		r.pub++
	} else {
		r.empty++
	}
	return nil
}

func (r *recorder) counts() (n, pub, empty int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.n, r.pub, r.empty
}

// newest returns the unwrapped sequence number of the newest packet.
func (r *recorder) newest() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.last
}

// completeFrom reports whether n packets from from on have all arrived.
func (r *recorder) completeFrom(from int64, n int) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for k := from; k < from+int64(n); k++ {
		if !r.seqs[k] {
			return false
		}
	}
	return true
}
