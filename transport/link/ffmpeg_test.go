package link_test

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/callcore/callcore/forward"
	"github.com/callcore/callcore/internal/e2e"
	"github.com/callcore/callcore/transport/link"
	"github.com/callcore/callcore/transport/rtp"
)

// mediaRun is one ffmpeg stream through two linked nodes: ffmpeg sends
// into an Ingest on node A, A offers the track over a link, a subscriber on
// node B sends it through an Egress to a second ffmpeg that decodes it.
type mediaRun struct {
	kind      forward.Kind
	mime      string
	clockRate uint32
	pt        uint8
	send      []string // ffmpeg's input and encoder
	sdp       string   // the receiver's m= section, %d for the port
	decode    []string
}

var (
	linkVP8 = mediaRun{kind: forward.Video, mime: "video/VP8", clockRate: 90000, pt: 96,
		send: []string{"-f", "lavfi", "-i", "testsrc=size=320x240:rate=30", "-t", "5",
			"-c:v", "libvpx", "-deadline", "realtime", "-cpu-used", "8", "-g", "10", "-pix_fmt", "yuv420p"},
		sdp:    "m=video %d RTP/AVP 96\na=rtpmap:96 VP8/90000\n",
		decode: []string{"-map", "0:v", "-f", "rawvideo", "-pix_fmt", "gray"}}
	linkOpus = mediaRun{kind: forward.Audio, mime: "audio/opus", clockRate: 48000, pt: 111,
		send: []string{"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-t", "5",
			"-c:a", "libopus", "-ac", "2", "-b:a", "64k"},
		sdp:    "m=audio %d RTP/AVP 111\na=rtpmap:111 opus/48000/2\n",
		decode: []string{"-map", "0:a", "-f", "s16le", "-ac", "2", "-ar", "48000"}}
)

// TestFFmpegThroughLinkWithMute: real media from ffmpeg crosses a link;
// while the track is self-muted at its origin, B's receiver decodes black
// frames (video) or samples of exactly 0 (audio); after unmute, real media
// again.
func TestFFmpegThroughLinkWithMute(t *testing.T) {
	ffmpeg := e2e.LookPath(t, "ffmpeg")
	for name, m := range map[string]mediaRun{"vp8": linkVP8, "opus": linkOpus} {
		t.Run(name, func(t *testing.T) {
			out := runThroughLink(t, ffmpeg, m)
			if m.kind == forward.Video {
				checkBlackRun(t, out)
			} else {
				checkSilentRun(t, out)
			}
		})
	}
}

func runThroughLink(t *testing.T, ffmpeg string, m mediaRun) []byte {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	dir := t.TempDir()
	port := freeUDPPair(t)
	sdp := filepath.Join(dir, "recv.sdp")
	if err := os.WriteFile(sdp, []byte(fmt.Sprintf("v=0\no=- 0 0 IN IP4 127.0.0.1\ns=recv\nc=IN IP4 127.0.0.1\nt=0 0\n"+m.sdp, port)), 0o600); err != nil {
		t.Fatal(err)
	}
	outFile := filepath.Join(dir, "out.raw")
	args := append(append([]string{"-hide_banner", "-loglevel", "error", "-y", "-protocol_whitelist", "file,udp,rtp", "-i", sdp},
		m.decode...), "-flush_packets", "1", outFile)
	recv := exec.CommandContext(ctx, ffmpeg, args...)
	var recvErr bytes.Buffer
	recv.Stderr = &recvErr
	if err := recv.Start(); err != nil {
		t.Fatal(err)
	}
	recvDone := false
	stopRecv := func() {
		if !recvDone {
			recvDone = true
			_ = recv.Process.Kill()
			_ = recv.Wait() // after this, recvErr is ours to read
		}
	}
	defer stopRecv()

	// Node A: ffmpeg -> Ingest -> track, offered on a link.
	pulse, err := forward.NewPulse(0)
	if err != nil {
		t.Fatal(err)
	}
	defer pulse.Close()
	track, err := forward.NewTrack(forward.TrackConfig{Kind: m.kind, MimeType: m.mime, ClockRate: m.clockRate, PayloadType: m.pt,
		Mute: forward.MuteConfig{Width: 320, Height: 240}})
	if err != nil {
		t.Fatal(err)
	}
	defer track.Close()
	pulse.Add(track)
	in, err := rtp.NewIngest(rtp.IngestConfig{RTP: track})
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	a, err := link.New(link.Config{Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if err := a.Offer("pub/"+m.mime, track); err != nil {
		t.Fatal(err)
	}
	// Node B: the relayed track -> Egress -> ffmpeg.
	got := make(chan *link.RemoteTrack, 1)
	b, err := link.New(link.Config{Dial: a.Addr().String(), OnTrack: func(rt *link.RemoteTrack) { got <- rt }})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	var rt *link.RemoteTrack
	select {
	case rt = <-got:
	case <-ctx.Done():
		t.Fatal("B never saw the track")
	}
	eg, err := rtp.NewEgress(rtp.EgressConfig{Remote: netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(port))})
	if err != nil {
		t.Fatal(err)
	}
	defer eg.Close()
	if _, err := rt.Subscribe(forward.SubscriberConfig{Writer: eg, SSRC: 0x5EED, PayloadType: m.pt}); err != nil {
		t.Fatal(err)
	}

	send := exec.CommandContext(ctx, ffmpeg, append(append([]string{"-hide_banner", "-loglevel", "error", "-re"}, m.send...),
		"-payload_type", fmt.Sprint(m.pt), "-f", "rtp", fmt.Sprintf("rtp://%v", in.Addr()))...)
	var sendOut bytes.Buffer
	send.Stdout, send.Stderr = &sendOut, &sendOut
	if err := send.Start(); err != nil {
		t.Fatal(err)
	}
	// Mute for the middle of the stream, at the origin, by packet counts.
	packets := func() uint64 { return track.Stats().PacketsIn }
	waitFor(t, ctx, "1.5 s of media", func() bool { return time.Duration(packets())*perPacket(m) > 1500*time.Millisecond })
	track.SetMute(forward.SourceSelf, true)
	mutedAt := packets()
	waitFor(t, ctx, "1.5 s muted", func() bool { return time.Duration(packets()-mutedAt)*perPacket(m) > 1500*time.Millisecond })
	track.SetMute(forward.SourceSelf, false)
	if err := send.Wait(); err != nil {
		t.Fatalf("sender: %v\n%s", err, sendOut.String())
	}
	// Let the receiver's output settle, then stop it.
	last, stable := int64(-1), time.Now()
	waitFor(t, ctx, "the receiver's output to settle", func() bool {
		size := int64(-1)
		if fi, err := os.Stat(outFile); err == nil {
			size = fi.Size()
		}
		if size != last {
			last, stable = size, time.Now()
		}
		return size > 0 && time.Since(stable) > time.Second
	})
	stopRecv()
	t.Logf("track %+v; link A %+v; B %+v; receiver: %s", track.Stats(), a.Stats(), b.Stats(), recvErr.String())
	outBytes, err := os.ReadFile(outFile)
	if err != nil {
		t.Fatal(err)
	}
	return outBytes
}

// perPacket is the media duration of one of ffmpeg's packets: 30 fps
// VP8 in about one packet a frame at 320×240, 20 ms Opus.
func perPacket(m mediaRun) time.Duration {
	if m.kind == forward.Video {
		return 33 * time.Millisecond
	}
	return 20 * time.Millisecond
}

// checkBlackRun wants real pictures, then at least 3 black frames in a
// row (Y at most 2 in full-range gray, where limited-range black 16 is 0),
// then real pictures again.
func checkBlackRun(t *testing.T, out []byte) {
	const size = 320 * 240
	if len(out) < 30*size || len(out)%size != 0 {
		t.Fatalf("decoded %d bytes, want whole 320×240 frames", len(out))
	}
	var states []bool // black or not, frame by frame
	for f := 0; f < len(out)/size; f++ {
		black := true
		for _, y := range out[f*size : (f+1)*size] {
			if y > 2 {
				black = false
				break
			}
		}
		states = append(states, black)
	}
	phase, run, longest := 0, 0, 0 // 0: before, 1: in the black run, 2: after
	for _, black := range states {
		switch {
		case phase == 0 && black:
			phase, run = 1, 1
		case phase == 1 && black:
			run++
		case phase == 1 && !black:
			phase, longest = 2, run
		case phase == 2 && black:
			t.Fatalf("black again after real pictures resumed: %v", states)
		}
	}
	if phase != 2 || longest < 3 || !(len(states) > 0 && !states[0]) {
		t.Fatalf("want pictures, a black run, pictures; got phase %d, run %d over %d frames", phase, longest, len(states))
	}
	t.Logf("%d frames: a run of %d black frames between real ones", len(states), longest)
}

// checkSilentRun wants non-zero audio, then a run of at least 500 ms of
// samples exactly 0, then non-zero audio again.
func checkSilentRun(t *testing.T, out []byte) {
	if len(out) < 4*48000 {
		t.Fatalf("decoded %d bytes of audio", len(out))
	}
	zeroRun, longest, nonzeroAfter := 0, 0, false
	for i := 0; i+1 < len(out); i += 2 {
		if out[i] == 0 && out[i+1] == 0 {
			zeroRun++
			continue
		}
		if longest > 0 && zeroRun == 0 {
			nonzeroAfter = true
		}
		longest, zeroRun = max(longest, zeroRun), 0
	}
	const halfSecond = 48000 * 2 / 2 // samples of both channels
	if longest < halfSecond || !nonzeroAfter {
		t.Fatalf("longest run of zero samples %d (want at least %d), audio after it %v", longest, halfSecond, nonzeroAfter)
	}
	t.Logf("a run of %d zero samples (%.2f s) between real audio", longest, float64(longest)/96000)
}

func waitFor(t *testing.T, ctx context.Context, what string, cond func() bool) {
	t.Helper()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("timed out waiting for %s", what)
		case <-time.After(5 * time.Millisecond): // polling a condition against a deadline
		}
	}
}

// freeUDPPair returns an even port whose next port is free too (RTP and
// RTCP for ffmpeg's receiver).
func freeUDPPair(t *testing.T) int {
	for range 64 {
		a, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		p := a.LocalAddr().(*net.UDPAddr).Port
		a.Close()
		if p%2 != 0 || p > 65000 {
			continue
		}
		if b, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: p + 1}); err == nil {
			b.Close()
			return p
		}
	}
	t.Fatal("no free pair of ports")
	return 0
}
