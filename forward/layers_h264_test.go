package forward_test

import (
	"testing"
	"time"

	"github.com/pion/rtp"

	"github.com/callcore/callcore/forward"
	"github.com/callcore/callcore/internal/clocktest"
	"github.com/callcore/callcore/internal/layertest"
	"github.com/callcore/callcore/mute"
	"github.com/callcore/callcore/transport/memory"
)

// h264Layer is an H.264 layer's publisher that sends its SPS and PPS with
// its first IDR only, as some encoders do: later IDRs (on PLI) come alone.
type h264Layer struct {
	layer         int
	seq           uint16
	ts            uint32
	sent          bool
	sps, pps, idr []byte
	rep           []byte
	keyNow        bool
	feedback      memory.Sink
	feedbackSeen  int
}

func newH264Layer(t *testing.T, layer int) *h264Layer {
	w, h := layertest.Sizes[layer][0], layertest.Sizes[layer][1]
	key, err := mute.BlackKeyFrame(mute.MimeTypeH264, w, h)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := mute.RepeatFrame(mute.MimeTypeH264, w, h)
	if err != nil {
		t.Fatal(err)
	}
	l := &h264Layer{layer: layer, seq: uint16(9000 * (layer + 1)), ts: uint32(77777 * (layer + 1)), rep: nalPayloads(t, rep)[0]}
	for _, n := range nalPayloads(t, key) {
		switch n[0] & 0x1f {
		case 7:
			l.sps = n
		case 8:
			l.pps = n
		case 5:
			l.idr = n
		}
	}
	return l
}

// frame returns the packets of the next frame: an IDR when asked for (a
// PLI reached the feedback sink) or at the start.
func (l *h264Layer) frame(t *testing.T) [][]byte {
	if n := len(l.feedback.RTCP()); n > l.feedbackSeen {
		l.feedbackSeen, l.keyNow = n, true
	}
	var payloads [][]byte
	switch {
	case !l.sent:
		stap := append([]byte{24, byte(len(l.sps) >> 8), byte(len(l.sps))}, l.sps...)
		stap = append(append(stap, byte(len(l.pps)>>8), byte(len(l.pps))), l.pps...)
		payloads = [][]byte{stap, l.idr}
	case l.keyNow:
		payloads = [][]byte{l.idr}
	default:
		payloads = [][]byte{l.rep}
	}
	l.sent, l.keyNow = true, false
	var out [][]byte
	for i, pl := range payloads {
		p := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: layertest.PT, SequenceNumber: l.seq, Timestamp: l.ts,
			SSRC: uint32(0x2000 + l.layer), Marker: i == len(payloads)-1}, Payload: pl}
		if err := p.SetExtension(layertest.TagID, []byte{byte(l.layer), byte(l.seq >> 8), byte(l.seq)}); err != nil {
			t.Fatal(err)
		}
		b, err := p.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
		l.seq++
	}
	l.ts += 3000
	return out
}

// TestH264LayerSwitchSendsTheNewLayersParameterSets: a switch onto an
// H.264 layer whose IDR comes without SPS and PPS sends that layer's last
// ones first (with the IDR's timestamp, numbered in sequence), so the
// decoder learns the new picture size before the IDR.
func TestH264LayerSwitchSendsTheNewLayersParameterSets(t *testing.T) {
	clk := &clocktest.Clock{}
	clk.Advance(time.Second)
	var cfg forward.LayersConfig
	var pubs [3]*h264Layer
	for i := range pubs {
		pubs[i] = newH264Layer(t, i)
		tr, err := forward.NewTrack(forward.TrackConfig{Kind: forward.Video, ClockRate: 90000, PayloadType: layertest.PT,
			MimeType: "video/H264", Clock: clk, Feedback: &pubs[i].feedback, Extensions: []forward.Extension{tagExt}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { tr.Close() })
		cfg.Tracks[i] = tr
	}
	cfg.Manual = true
	l, err := forward.NewLayers(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var w memory.Sink
	s, err := l.Subscribe(forward.SubscriberConfig{Writer: &w, SSRC: 5, PayloadType: 102, Extensions: []forward.Extension{tagExt}}, forward.LayerQ)
	if err != nil {
		t.Fatal(err)
	}
	tick := func() {
		clk.Advance(33 * time.Millisecond)
		for i, p := range pubs {
			for _, b := range p.frame(t) {
				if err := cfg.Tracks[i].HandleRTP(b); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	for range 5 {
		tick()
	}
	if err := l.SetMax(s, forward.LayerF); err != nil {
		t.Fatal(err)
	}
	for range 5 {
		tick()
	}
	var out []rtp.Packet
	for _, b := range w.Packets() {
		out = append(out, parse(t, b))
	}
	continuous(t, out)
	first := -1
	for i, p := range out {
		if p.GetExtension(layertest.TagID)[0] == 2 && p.Payload[0]&0x1f == 5 {
			first = i
			break
		}
	}
	if first < 1 {
		t.Fatal("no IDR of layer f")
	}
	stap := out[first-1]
	if stap.Payload[0]&0x1f != 24 || stap.Timestamp != out[first].Timestamp || stap.Marker {
		t.Fatalf("before f's IDR: NAL type %d, timestamp %d (IDR %d), marker %v", stap.Payload[0]&0x1f, stap.Timestamp, out[first].Timestamp, stap.Marker)
	}
	n := int(stap.Payload[1])<<8 | int(stap.Payload[2])
	wd, hd, ok := mute.H264SPSSize(stap.Payload[3 : 3+n])
	if !ok || wd != layertest.Sizes[2][0] || hd != layertest.Sizes[2][1] {
		t.Fatalf("the SPS sent before f's IDR is %dx%d (%v), want f's size", wd, hd, ok)
	}
	if l.ParameterSetsSent() != 1 {
		t.Fatalf("ParameterSetsSent = %d, want 1", l.ParameterSetsSent())
	}
}
