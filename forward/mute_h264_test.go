package forward_test

import (
	"bytes"
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/pion/rtp"

	"github.com/callcore/callcore/forward"
	"github.com/callcore/callcore/internal/clocktest"
	"github.com/callcore/callcore/internal/e2e"
	"github.com/callcore/callcore/mute"
	"github.com/callcore/callcore/transport/memory"
)

// annexB depacketizes H.264 RTP payloads (single NAL units, STAP-A, FU-A)
// into an Annex B byte stream.
func annexB(pkts []rtp.Packet) []byte {
	var out []byte
	start := []byte{0, 0, 0, 1}
	for _, p := range pkts {
		b := p.Payload
		switch t := b[0] & 0x1f; {
		case t == 24:
			for i := 1; i+2 <= len(b); {
				n := int(binary.BigEndian.Uint16(b[i:]))
				out = append(append(out, start...), b[i+2:i+2+n]...)
				i += 2 + n
			}
		case t == 28:
			if b[1]&0x80 != 0 {
				out = append(append(out, start...), b[0]&0xe0|b[1]&0x1f)
			}
			out = append(out, b[2:]...)
		default:
			out = append(append(out, start...), b...)
		}
	}
	return out
}

// nals splits an Annex B access unit into RTP payloads: single NAL units.
func nalPayloads(t *testing.T, au []byte) [][]byte {
	var out [][]byte
	for _, part := range bytes.Split(au, []byte{0, 0, 1}) {
		part = bytes.TrimRight(part, "\x00")
		if len(part) > 0 {
			out = append(out, part)
		}
	}
	return out
}

// TestSelfMuteH264 mutes an H.264 track whose publisher sent its SPS and
// PPS once, checks with ffmpeg that what subscribers get while muted
// decodes to black frames at the publisher's size, and that at unmute the
// publisher's parameter sets reach the subscriber before its IDR.
func TestSelfMuteH264(t *testing.T) {
	clk := &clocktest.Clock{}
	tr, err := forward.NewTrack(forward.TrackConfig{Kind: forward.Video, ClockRate: 90000, PayloadType: pubPT, MimeType: "video/H264", Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	var sink memory.Sink
	subscribe(t, tr, &sink, 1, 0)
	// The publisher: a 320×240 IDR (its own parameter sets first, once),
	// then repeat frames as its P frames.
	key, _ := mute.BlackKeyFrame(mute.MimeTypeH264, 320, 240)
	rep, _ := mute.RepeatFrame(mute.MimeTypeH264, 320, 240)
	keyNALs, repNALs := nalPayloads(t, key), nalPayloads(t, rep)
	sps, pps, idr := keyNALs[0], keyNALs[1], keyNALs[2]
	seq, frame := uint16(1), 0
	sendAU := func(nals ...[]byte) {
		clk.Advance(33 * time.Millisecond)
		for i, n := range nals {
			p := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: pubPT, SequenceNumber: seq, Timestamp: uint32(frame * 3000),
				SSRC: pubSSRC, Marker: i == len(nals)-1}, Payload: n}
			b, _ := p.Marshal()
			send(t, tr, b)
			seq++
		}
		frame++
	}
	sendAU(sps, pps, idr)
	for range 5 {
		sendAU(repNALs...)
	}
	muted := sink.Len()
	tr.SetMute(forward.SourceSelf, true)
	for range 10 {
		clk.Advance(200 * time.Millisecond)
		tr.Pump()
	}
	tr.SetMute(forward.SourceSelf, false)
	sendAU(repNALs...) // not yet: empty media until the key frame
	resumed := sink.Len()
	sendAU(idr) // an IDR without parameter sets
	pkts := packets(t, &sink)
	continuous(t, pkts)
	if st := tr.Stats(); st.ParameterSetsResent != 1 {
		t.Fatalf("parameter sets resent %d times, want 1", st.ParameterSetsResent)
	}
	tail := annexB(pkts[resumed:])
	if !bytes.Contains(tail, sps) || bytes.Index(tail, sps) > bytes.Index(tail, idr[:8]) {
		t.Fatalf("the publisher's SPS did not reach the subscriber before its IDR: %x / sps %x", tail[:min(len(tail), 64)], sps)
	}

	ffmpeg := e2e.LookPath(t, "ffmpeg")
	dir := t.TempDir()
	in := filepath.Join(dir, "muted.h264")
	if err := os.WriteFile(in, annexB(pkts[muted:resumed]), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(ffmpeg, "-v", "error", "-f", "h264", "-i", in, "-f", "rawvideo", "-pix_fmt", "gray", "-").Output()
	if err != nil {
		t.Fatalf("ffmpeg: %v", err)
	}
	const size = 320 * 240
	if len(out) < 5*size || len(out)%size != 0 {
		t.Fatalf("ffmpeg decoded %d bytes, want several whole 320×240 frames", len(out))
	}
	for i, y := range out {
		if y > 16 {
			t.Fatalf("muted frame %d is not black: Y=%d", i/size, y)
		}
	}
}
