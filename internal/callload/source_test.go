package callload

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"
	"golang.org/x/image/vp8"

	"github.com/callcore/callcore/mute"
)

// decodeKey decodes a VP8 key frame and returns its size and the luma
// range.
func decodeKey(t *testing.T, frame []byte) (w, h int, ymin, ymax byte) {
	t.Helper()
	d := vp8.NewDecoder()
	d.Init(bytes.NewReader(frame), len(frame))
	fh, err := d.DecodeFrameHeader()
	if err != nil {
		t.Fatal(err)
	}
	if !fh.KeyFrame {
		t.Fatal("not a key frame")
	}
	img, err := d.DecodeFrame()
	if err != nil {
		t.Fatal(err)
	}
	ymin, ymax = 255, 0
	for _, y := range img.Y {
		ymin, ymax = min(ymin, y), max(ymax, y)
	}
	return fh.Width, fh.Height, ymin, ymax
}

// TestSyntheticFramesDecode: the padded synthetic frames have the size
// the bit rate gives, the key frame still decodes black at the chosen
// size, and the inter frame's tag says inter frame.
func TestSyntheticFramesDecode(t *testing.T) {
	cfg := Config{Bitrate: 7_200_000, FPS: 30, Width: 640, Height: 360}
	key, delta, err := syntheticFrames(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(key) != 30000 || len(delta) != 30000 {
		t.Errorf("frames of %d and %d bytes, want 30000 (7.2 Mbit/s at 30 fps)", len(key), len(delta))
	}
	w, h, ymin, ymax := decodeKey(t, key)
	if w != 640 || h != 360 || ymin != 16 || ymax != 16 {
		t.Errorf("the padded key frame decodes %d×%d with luma %d..%d, want 640×360 black (16)", w, h, ymin, ymax)
	}
	if w, h, ok := mute.VP8FrameSize(key); !ok || w != 640 || h != 360 {
		t.Errorf("VP8FrameSize: %d×%d %v", w, h, ok)
	}
	if key[0]&1 != 0 || delta[0]&1 != 1 {
		t.Errorf("frame tags: key %#x, inter %#x", key[0], delta[0])
	}

	// A frame larger than the bit rate's share is sent whole.
	key, _, err = syntheticFrames(Config{Bitrate: MinBitrate, FPS: MaxFPS, Width: 640, Height: 360})
	if err != nil {
		t.Fatal(err)
	}
	if w, _, _, _ := decodeKey(t, key); w != 640 {
		t.Errorf("the unpadded key frame: width %d", w)
	}
}

// TestSyntheticKeyCadence: a key frame first, every KeyInterval, and on
// request; inter frames otherwise.
func TestSyntheticKeyCadence(t *testing.T) {
	cfg := Config{Bitrate: 1_000_000, FPS: 10, Width: 64, Height: 64, KeyInterval: 500 * time.Millisecond}
	key, delta, err := syntheticFrames(cfg)
	if err != nil {
		t.Fatal(err)
	}
	s := newSynthetic(cfg, key, delta)
	var got []bool
	for i := range 12 {
		f, d, err := s.next(i == 7)
		if err != nil || d != 100*time.Millisecond {
			t.Fatalf("frame %d: %v, %v", i, d, err)
		}
		got = append(got, f[0]&1 == 0)
	}
	want := []bool{true, false, false, false, false, true, false, true, false, false, true, false}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("key frames %v, want %v", got, want)
		}
	}
}

// TestPacketizedKeyFrame: the packets a synthetic key frame makes carry
// what the server reads to recognise it: the RFC 7741 descriptor's S bit
// and partition 0 on the first packet, a picture id, the frame tag's key
// bit, the marker on the last packet, and no packet over the MTU.
func TestPacketizedKeyFrame(t *testing.T) {
	key, _, err := syntheticFrames(Config{Bitrate: 7_200_000, FPS: 30, Width: 640, Height: 360})
	if err != nil {
		t.Fatal(err)
	}
	pk := rtp.NewPacketizer(mtu, 96, 1, &codecs.VP8Payloader{EnablePictureID: true}, rtp.NewFixedSequencer(1), 90000)
	pkts := pk.Packetize(key, 3000)
	if len(pkts) != 26 {
		t.Errorf("%d packets for a 30,000-byte frame, want 26 (780 packets/s at 30 fps)", len(pkts))
	}
	var total int
	for i, p := range pkts {
		b, err := p.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if len(b) > mtu {
			t.Errorf("packet %d: %d bytes", i, len(b))
		}
		var v codecs.VP8Packet
		payload, err := v.Unmarshal(p.Payload)
		if err != nil {
			t.Fatal(err)
		}
		total += len(payload)
		if first := i == 0; (v.S == 1) != first || v.PID != 0 || v.I != 1 {
			t.Errorf("packet %d: S %d, partition %d, picture id present %d", i, v.S, v.PID, v.I)
		}
		if i == 0 && payload[0]&1 != 0 {
			t.Error("the first packet's frame tag is not a key frame's")
		}
		if p.Marker != (i == len(pkts)-1) {
			t.Errorf("packet %d: marker %v", i, p.Marker)
		}
	}
	if total != len(key) {
		t.Errorf("the packets carry %d bytes of a %d-byte frame", total, len(key))
	}
}

// TestPaceKeepsTime: pace calls its sender at the times the sender's
// durations schedule, and stops when the context ends.
func TestPaceKeepsTime(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	start := time.Now()
	n := 0
	err := pace(ctx, func() (time.Duration, error) {
		if n++; n == 11 {
			cancel()
		}
		return 10 * time.Millisecond, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// Eleven calls: the first at once, the eleventh 100 ms later.
	if el := time.Since(start); n != 11 || el < 100*time.Millisecond {
		t.Errorf("%d calls in %v", n, el)
	}
}
