package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"
	pion "github.com/pion/webrtc/v4"
	"go.uber.org/goleak"
	"golang.org/x/image/vp8"

	"github.com/callcore/callcore/internal/e2e"
)

// rtpServer is a test server with RTP participants on 127.0.0.1.
func rtpServer(t *testing.T) *testServer {
	return newTestServer(t, func(c *Config) { c.RTP.Addr = "127.0.0.1" })
}

// keyFrame is a VP8 key frame a pion member decoded.
type keyFrame struct {
	w, h  int
	black bool // no luma sample above 20
	at    int  // audio packets received before it
}

// vp8Frames reassembles a member's VP8 frames (RFC 7741) and decodes the
// key frames; it counts the audio packets that carry sound (longer than
// the core's silent frames).
type vp8Frames struct {
	mu     sync.Mutex // guards the fields below
	frame  []byte
	keys   []keyFrame
	audio  int
	errors int
}

func (v *vp8Frames) take(kind pion.RTPCodecType, pkt *rtp.Packet) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if kind == pion.RTPCodecTypeAudio {
		if len(pkt.Payload) > 20 {
			v.audio++
		}
		return
	}
	var d codecs.VP8Packet
	chunk, err := d.Unmarshal(pkt.Payload)
	if err != nil {
		v.frame = nil
		return
	}
	if d.S == 1 && d.PID == 0 {
		v.frame = append(v.frame[:0], chunk...)
	} else if v.frame != nil {
		v.frame = append(v.frame, chunk...)
	}
	if !pkt.Marker || len(v.frame) < 10 || v.frame[0]&1 != 0 {
		return
	}
	dec := vp8.NewDecoder()
	dec.Init(bytes.NewReader(v.frame), len(v.frame))
	if _, err := dec.DecodeFrameHeader(); err != nil {
		v.errors++
		return
	}
	img, err := dec.DecodeFrame()
	if err != nil {
		v.errors++
		return
	}
	k := keyFrame{w: img.Bounds().Dx(), h: img.Bounds().Dy(), black: true, at: v.audio}
	for _, y := range img.Y {
		if y > 20 {
			k.black = false
			break
		}
	}
	v.keys = append(v.keys, k)
	v.frame = nil
}

func (v *vp8Frames) snapshot() (keys []keyFrame, audio int) {
	v.mu.Lock()
	defer v.mu.Unlock()
	return append([]keyFrame(nil), v.keys...), v.audio
}

// answerUntil answers the server's offers until the peer has n tracks.
func (p *peer) answerUntil(n int) {
	p.t.Helper()
	timeout := time.After(deadline)
	for got := 0; got < n; {
		select {
		case <-p.tracks:
			got++
		case ps := <-p.c.pushes:
			if ps.Type == "offer" {
				p.answerOffer(ps.Data)
			}
		case <-timeout:
			p.t.Fatalf("%d of %d tracks", got, n)
		}
	}
}

// ffmpegPublish starts ffmpeg sending a 320x240 VP8 test pattern and a
// 440 Hz Opus tone, for at most d, to the streams rtpPublish announced.
func ffmpegPublish(t *testing.T, ctx context.Context, streams []rtpStream, d time.Duration) *exec.Cmd {
	ffmpeg := e2e.LookPath(t, "ffmpeg")
	args := []string{"-hide_banner", "-loglevel", "error", "-re",
		"-f", "lavfi", "-i", "testsrc=size=320x240:rate=30", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
		"-t", fmt.Sprint(d.Seconds())}
	for _, s := range streams {
		switch s.Codec {
		case "VP8":
			args = append(args, "-map", "0:v", "-c:v", "libvpx", "-deadline", "realtime", "-cpu-used", "8", "-g", "15", "-pix_fmt", "yuv420p")
		case "opus":
			args = append(args, "-map", "1:a", "-c:a", "libopus", "-ac", "2", "-b:a", "64k")
		default:
			t.Fatalf("codec %q", s.Codec)
		}
		args = append(args, "-payload_type", fmt.Sprint(s.PayloadType), "-ssrc", fmt.Sprint(int32(s.SSRC)), "-f", "rtp")
		scheme := "rtp"
		if s.SRTP != nil {
			scheme = "srtp"
			args = append(args, "-srtp_out_suite", s.SRTP.Profile, "-srtp_out_params", s.SRTP.Inline)
		}
		args = append(args, fmt.Sprintf("%s://%s:%d?rtcpport=%d", scheme, s.Address, s.Port, s.RTCPPort))
	}
	cmd := exec.CommandContext(ctx, ffmpeg, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if s := stderr.String(); s != "" {
			t.Logf("ffmpeg: %s", s)
		}
	})
	return cmd
}

// TestRTPParticipantSeenAndHeard: user enc brings ffmpeg's VP8 test
// pattern and Opus tone into channel c with rtpPublish (the server
// announces a port, SSRC and payload type per track); bob, a pion member,
// decodes the pattern's key frames at 320x240 and receives the tone. When
// alice, the owner, mutes enc's video, bob decodes black key frames and
// no frame of the pattern while the tone goes on. bob's rtpReceive sends
// enc's video to an ffmpeg recorder, which decodes it.
func TestRTPParticipantSeenAndHeard(t *testing.T) {
	leaks := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, leaks) })
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	ts := rtpServer(t)
	alice := login(t, ts, "alice", true)
	alice.must("create", createData{ChannelID: "c"})
	enc := login(t, ts, "enc", false)
	enc.must("join", joinData{ChannelID: "c"})
	var pub rtpPublishResult
	if err := json.Unmarshal(enc.must("rtpPublish", rtpPublishData{Tracks: []rtpTrackData{
		{Name: "cam", Kind: "video"}, {Name: "mic", Kind: "audio", Codec: "opus"}}}), &pub); err != nil {
		t.Fatal(err)
	}
	if len(pub.Streams) != 2 || pub.Streams[0].Codec != "VP8" || pub.Streams[0].PayloadType != 96 || pub.Streams[1].Codec != "opus" ||
		pub.Streams[0].Address != "127.0.0.1" || pub.Streams[0].Port == 0 || pub.Streams[0].SSRC == 0 {
		t.Fatalf("rtpPublish announced %+v", pub.Streams)
	}
	sender := ffmpegPublish(t, ctx, pub.Streams, 40*time.Second)
	defer func() { cancel(); _ = sender.Wait() }()

	bob := login(t, ts, "bob", false)
	bob.must("join", joinData{ChannelID: "c"})
	pb := newPeer(t, bob)
	frames := &vp8Frames{}
	take := frames.take
	pb.onRTP.Store(&take)
	pb.answerUntil(2)
	waitFor(t, "bob to decode the test pattern and hear the tone", func() bool {
		keys, audio := frames.snapshot()
		return len(keys) >= 2 && audio >= 50
	})
	keys, _ := frames.snapshot()
	for _, k := range keys {
		if k.w != 320 || k.h != 240 || k.black {
			t.Fatalf("bob decoded a %dx%d key frame (black %v), want the 320x240 pattern", k.w, k.h, k.black)
		}
	}

	// The owner mutes enc's video: black key frames, and no frame of the
	// pattern while 2 s of the tone arrive.
	on := true
	alice.must("muteUser", muteUserData{UserID: "enc", Kind: "video", State: &on})
	var black keyFrame
	waitFor(t, "a black key frame at bob", func() bool {
		keys, _ := frames.snapshot()
		for _, k := range keys[len(keys)-min(len(keys), 3):] {
			if k.black {
				black = k
				return true
			}
		}
		return false
	})
	waitFor(t, "2 s of the tone after the mute", func() bool { _, audio := frames.snapshot(); return audio >= black.at+100 })
	keys, _ = frames.snapshot()
	seen := false
	for _, k := range keys {
		if k == black {
			seen = true
			continue
		}
		if seen && !k.black {
			t.Fatal("muted: bob decoded a frame of the pattern after the black one")
		}
	}
	if black.w != 320 || black.h != 240 {
		t.Errorf("the black key frame is %dx%d, want the track's 320x240", black.w, black.h)
	}
	keys, audio := frames.snapshot()
	t.Logf("bob decoded %d key frames (%d black), %d audio packets with sound", len(keys), countBlack(keys), audio)
	off := false
	alice.must("muteUser", muteUserData{UserID: "enc", Kind: "video", State: &off})

	// bob records enc's video with ffmpeg.
	out := ffmpegRecord(t, ctx, bob, "enc", "cam")
	if frames := out / (320 * 240); frames < 10 {
		t.Fatalf("the recorder decoded %d frames of enc's video (%d bytes), want 10", frames, out)
	}
	t.Logf("the recorder decoded %d frames", out/(320*240))
}

func countBlack(keys []keyFrame) (n int) {
	for _, k := range keys {
		if k.black {
			n++
		}
	}
	return n
}

// ffmpegRecord has user c receive from's track as RTP (rtpReceive) at an
// ffmpeg that decodes it to gray 8-bit frames, and returns how many bytes
// of frames it wrote once it wrote at least 10 frames of 320x240.
func ffmpegRecord(t *testing.T, ctx context.Context, c *client, from, name string) int {
	ffmpeg := e2e.LookPath(t, "ffmpeg")
	port := freeUDPPair(t)
	dir := t.TempDir()
	// The leg's codec is known once asked for: ask first with the port
	// the recorder is about to bind (its first packets wait in nothing;
	// the recorder starts on the next key frame, which its PLI asks for).
	var leg rtpReceiveResult
	if err := json.Unmarshal(c.must("rtpReceive", rtpReceiveData{UserID: from, TrackName: name, Address: fmt.Sprintf("127.0.0.1:%d", port)}), &leg); err != nil {
		t.Fatal(err)
	}
	if leg.Codec != "VP8" || leg.SSRC == 0 {
		t.Fatalf("rtpReceive answered %+v", leg)
	}
	sdp := fmt.Sprintf("v=0\no=- 0 0 IN IP4 127.0.0.1\ns=rec\nc=IN IP4 127.0.0.1\nt=0 0\nm=video %d RTP/AVP %d\na=rtpmap:%d VP8/%d\n",
		port, leg.PayloadType, leg.PayloadType, leg.ClockRate)
	sdpFile, out := filepath.Join(dir, "rec.sdp"), filepath.Join(dir, "rec.raw")
	if err := os.WriteFile(sdpFile, []byte(sdp), 0o600); err != nil {
		t.Fatal(err)
	}
	rctx, stop := context.WithCancel(ctx)
	defer stop()
	rec := exec.CommandContext(rctx, ffmpeg, "-hide_banner", "-loglevel", "error", "-y", "-protocol_whitelist", "file,udp,rtp",
		"-i", sdpFile, "-map", "0:v", "-f", "rawvideo", "-pix_fmt", "gray", "-flush_packets", "1", out)
	if err := rec.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { stop(); _ = rec.Wait() }()
	size := 0
	waitFor(t, "the recorder to decode 10 frames", func() bool {
		if fi, err := os.Stat(out); err == nil {
			size = int(fi.Size())
		}
		return size >= 10*320*240
	})
	return size
}

// freeUDPPair returns an even port p such that p and p+1 were free on
// 127.0.0.1 a moment ago (a receiver binds RTP on p, RTCP on p+1).
func freeUDPPair(t *testing.T) int {
	t.Helper()
	for range 32 {
		a, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		p := a.LocalAddr().(*net.UDPAddr).Port
		if p%2 != 0 || p > 65000 {
			a.Close()
			continue
		}
		b, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: p + 1})
		a.Close()
		if err == nil {
			b.Close()
			return p
		}
	}
	t.Fatal("no free pair of ports")
	return 0
}

// TestRTPParticipantOverSRTP: with srtp in rtpPublish, each stream gets
// its own keys; ffmpeg protects its test pattern with them and a pion
// member decodes it.
func TestRTPParticipantOverSRTP(t *testing.T) {
	leaks := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, leaks) })
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	ts := rtpServer(t)
	enc := login(t, ts, "enc", true)
	enc.must("create", createData{ChannelID: "c"})
	var pub rtpPublishResult
	if err := json.Unmarshal(enc.must("rtpPublish", rtpPublishData{SRTP: "AES_CM_128_HMAC_SHA1_80",
		Tracks: []rtpTrackData{{Name: "cam", Kind: "video"}, {Name: "mic", Kind: "audio"}}}), &pub); err != nil {
		t.Fatal(err)
	}
	if s := pub.Streams; len(s) != 2 || s[0].SRTP == nil || s[1].SRTP == nil || s[0].SRTP.Inline == s[1].SRTP.Inline {
		t.Fatalf("rtpPublish announced %+v", s)
	}
	sender := ffmpegPublish(t, ctx, pub.Streams, 40*time.Second)
	defer func() { cancel(); _ = sender.Wait() }()
	bob := login(t, ts, "bob", false)
	bob.must("join", joinData{ChannelID: "c"})
	pb := newPeer(t, bob)
	frames := &vp8Frames{}
	take := frames.take
	pb.onRTP.Store(&take)
	pb.answerUntil(2)
	waitFor(t, "bob to decode the pattern sent over SRTP", func() bool {
		keys, audio := frames.snapshot()
		return len(keys) >= 2 && audio >= 50 && !keys[0].black && keys[0].w == 320
	})
	enc.want("Invalid", "rtpPublish", rtpPublishData{SRTP: "NULL_CIPHER", Tracks: []rtpTrackData{{Name: "cam2", Kind: "video"}}})
}

// TestRTPRequestsRefuseBadInput: RTP requests on a server without an RTP
// address, with a codec of the wrong kind, past the stream limit, to an
// address outside the targets and for a track the caller does not
// receive are refused with the protocol's codes, and leave the caller's
// tracks as they were.
func TestRTPRequestsRefuseBadInput(t *testing.T) {
	leaks := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, leaks) })
	off := newTestServer(t, nil)
	a := login(t, off, "alice", true)
	a.must("create", createData{ChannelID: "c"})
	a.want("Invalid", "rtpPublish", rtpPublishData{Tracks: []rtpTrackData{{Name: "cam", Kind: "video"}}})
	a.want("Invalid", "rtpReceive", rtpReceiveData{UserID: "bob", TrackName: "cam", Address: "127.0.0.1:5004"})

	ts := newTestServer(t, func(c *Config) { c.RTP.Addr = "127.0.0.1"; c.RTP.MaxStreams = 2 })
	alice := login(t, ts, "alice", true)
	alice.must("create", createData{ChannelID: "c"})
	alice.want("Invalid", "rtpPublish", rtpPublishData{Tracks: []rtpTrackData{{Name: "cam", Kind: "video", Codec: "opus"}}})
	alice.want("Invalid", "rtpPublish", rtpPublishData{Tracks: []rtpTrackData{{Name: "cam", Kind: "video", Codec: "AV1"}}})
	alice.want("Invalid", "rtpPublish", rtpPublishData{})
	alice.want("Invalid", "rtpPublish", rtpPublishData{Tracks: []rtpTrackData{{Name: "a", Kind: "audio"}, {Name: "b", Kind: "audio"}, {Name: "c", Kind: "audio"}}})
	var users usersResult
	if err := json.Unmarshal(alice.must("getUsers", nil), &users); err != nil || len(users.Users) != 1 || len(users.Users[0].Tracks) != 0 {
		t.Fatalf("after refused rtpPublish requests: %+v %v", users, err)
	}
	alice.must("rtpPublish", rtpPublishData{Tracks: []rtpTrackData{{Name: "mic", Kind: "audio"}}})
	alice.want("Exists", "rtpPublish", rtpPublishData{Tracks: []rtpTrackData{{Name: "mic", Kind: "audio"}}})
	alice.want("UnAuthorized", "rtpReceive", rtpReceiveData{UserID: "bob", TrackName: "cam", Address: "192.0.2.1:5004"})
	alice.want("Invalid", "rtpReceive", rtpReceiveData{UserID: "bob", TrackName: "cam", Address: "127.0.0.1"})
	alice.want("NotFound", "rtpReceive", rtpReceiveData{UserID: "bob", TrackName: "cam", Address: "127.0.0.1:5004"})
	if err := json.Unmarshal(alice.must("getUsers", nil), &users); err != nil || len(users.Users[0].Tracks) != 1 {
		t.Fatalf("after the refused requests: %+v %v", users, err)
	}
}
