package forward

import (
	"testing"
	"time"

	"github.com/callcore/callcore/internal/rtpx"
)

// recorder is an emitter that keeps what a muter sends, parsed again from
// the bytes, so a muter can be tested without a track.
type recorder struct {
	pkts      []recorded
	keyAsks   int
	ssrc      uint32
	badHeader int
}

type recorded struct {
	seq     uint16
	ts      uint32
	ssrc    uint32
	marker  bool
	key     bool
	ext     uint64
	epoch   uint32
	payload []byte
}

func (r *recorder) emitGenerated(pkt []byte, p *pktInfo) {
	var h rtpx.Header
	if rtpx.Parse(pkt, &h) != nil || *p.hdr != h {
		r.badHeader++
	}
	r.pkts = append(r.pkts, recorded{seq: h.Seq, ts: h.Timestamp, ssrc: h.SSRC, marker: h.Marker, key: p.key,
		ext: p.ext, epoch: p.epoch, payload: append([]byte(nil), p.payload...)})
}
func (r *recorder) askPublisherKey()      { r.keyAsks++ }
func (r *recorder) publisherSSRC() uint32 { return r.ssrc }

var _ emitter = (*Track)(nil)

func newTestMuter(t *testing.T, mime string, clockRate uint32) (*muter, *recorder) {
	t.Helper()
	cfg := TrackConfig{MimeType: mime, ClockRate: clockRate, PayloadType: 100}
	cfg.Mute.setDefaults()
	r := &recorder{ssrc: 0xabc}
	m := &muter{}
	m.init(r, &cfg, &trackCounters{})
	return m, r
}

const ms = int64(time.Millisecond)

// An audio muter alone: self-muted, it sends one silent frame per 20 ms
// whatever the pumps' rhythm, numbered continuously in a space of its own,
// and holds the publisher's packets back; unmuted, the publisher's next
// packet goes out and the muter stops.
func TestMuterAloneKeepsTheSilentCadenceAndHoldsThePublisherBack(t *testing.T) {
	m, r := newTestMuter(t, "audio/opus", 48000)
	if !m.publisher(0, true, 960, true, []byte{1}) {
		t.Fatal("unmuted: the publisher's packet was held back")
	}
	m.set(SourceSelf, true)
	m.ensureFrames()
	for now := int64(1); now <= 100*ms; now += 7 * ms {
		m.pump(now)
	}
	if m.publisher(101*ms, true, 1920, true, []byte{2}) {
		t.Fatal("self-muted: the publisher's packet went out")
	}
	if len(r.pkts) != 6 || r.badHeader != 0 {
		t.Fatalf("muted 100 ms: %d silent frames (%d bad headers), want 6 (0, 20, ..., 100 ms)", len(r.pkts), r.badHeader)
	}
	silent := m.frames.Load().silent
	for i, p := range r.pkts {
		if p.ext != genBase+uint64(i) || p.seq != uint16(genBase+uint64(i)) || p.ssrc != 0xabc || !p.key || string(p.payload) != string(silent) {
			t.Fatalf("frame %d: %+v", i, p)
		}
		if i > 0 && p.ts-r.pkts[i-1].ts != 960 {
			t.Fatalf("frame %d: timestamp step %d, want 960", i, p.ts-r.pkts[i-1].ts)
		}
	}
	if !m.needsPulse() {
		t.Fatal("muted: the muter does not ask to be pumped")
	}
	epoch := m.epoch
	m.set(SourceSelf, false)
	if !m.publisher(120*ms, true, 2880, true, []byte{3}) || m.epoch == epoch || m.needsPulse() || r.keyAsks != 1 {
		t.Fatalf("unmuted: the publisher's packet was held, or the source did not switch (epoch %d→%d, pulse %v, key asks %d)",
			epoch, m.epoch, m.needsPulse(), r.keyAsks)
	}
	n := len(r.pkts)
	m.pump(300 * ms)
	if len(r.pkts) != n {
		t.Fatal("unmuted: the muter still sends")
	}
}

// A video mute waits for the end of the publisher's frame: never half a
// frame, at most one frame late. Then a black key frame goes first.
func TestMuterMutesVideoAtTheEndOfTheFrame(t *testing.T) {
	m, r := newTestMuter(t, "video/VP8", 90000)
	m.publisher(0, false, 3000, true, []byte{0x10, 1})
	m.set(SourceSelf, true)
	m.ensureFrames()
	m.pump(ms)
	if !m.armed || len(r.pkts) != 0 || !m.needsPulse() {
		t.Fatalf("mid-frame: armed %v, %d packets sent; want the mute armed and nothing sent", m.armed, len(r.pkts))
	}
	if !m.publisher(2*ms, true, 3000, false, []byte{0x00, 2}) {
		t.Fatal("the rest of the publisher's frame was held back")
	}
	if m.publisher(40*ms, true, 6000, false, []byte{0x10, 3}) {
		t.Fatal("the next frame went out while muted")
	}
	key := m.frames.Load().key
	if len(r.pkts) != len(key) || !r.pkts[0].key || !r.pkts[len(key)-1].marker {
		t.Fatalf("muted: %d packets, want the %d of a black key frame, marked at the end", len(r.pkts), len(key))
	}
	m.pump(40*ms + 200*ms)
	if rep := m.frames.Load().repeat; len(r.pkts) != len(key)+len(rep) || r.pkts[len(key)].key {
		t.Fatalf("200 ms later: %d packets, want a repeat frame after the key frame", len(r.pkts))
	}
}

// At an unmute real H.264 media resumes on the publisher's IDR, after its
// last parameter sets when the IDR does not carry them; empty media goes
// on until that IDR.
func TestMuterResumesH264OnTheIDRAfterTheParameterSets(t *testing.T) {
	m, r := newTestMuter(t, "video/H264", 90000)
	sps := []byte{0x67, 0x42, 0x00, 0x1f, 0xe9}
	pps := []byte{0x68, 0xce, 0x38, 0x80}
	m.publisher(0, true, 3000, true, stapA(sps, pps))
	m.set(SourceSelf, true)
	m.ensureFrames()
	m.pump(ms)
	muted := len(r.pkts)
	if muted == 0 {
		t.Fatal("muted: no black key frame")
	}
	m.set(SourceSelf, false)
	if m.publisher(10*ms, true, 6000, false, []byte{0x41, 1}) {
		t.Fatal("unmuting: a delta frame went out before the IDR")
	}
	if !m.publisher(300*ms, true, 9000, true, []byte{0x65, 2}) {
		t.Fatal("unmuting: the IDR was held back")
	}
	last := r.pkts[len(r.pkts)-1]
	if want := stapA(sps, pps); string(last.payload) != string(want) || m.cnt.parameterSetsResent.Load() != 1 {
		t.Fatalf("before the IDR: %x, want the STAP-A of the last SPS and PPS %x", last.payload, want)
	}
}
