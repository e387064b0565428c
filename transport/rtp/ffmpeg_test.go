package rtp_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/callcore/callcore/forward"
	"github.com/callcore/callcore/internal/e2e"
	"github.com/callcore/callcore/transport/rtp"
)

// media is one ffmpeg stream pushed through ingest, track and egress.
type media struct {
	kind      forward.Kind
	clockRate uint32
	pt        uint8
	input     []string // ffmpeg's lavfi input
	encode    []string
	sdp       string // the receiver's m= section, %d for the port
	decode    []string
}

var (
	vp8 = media{
		kind: forward.Video, clockRate: 90000, pt: 96,
		input:  []string{"-f", "lavfi", "-i", "testsrc=size=320x240:rate=30"},
		encode: []string{"-c:v", "libvpx", "-deadline", "realtime", "-cpu-used", "8", "-g", "10", "-pix_fmt", "yuv420p"},
		sdp:    "m=video %d RTP/AVP 96\na=rtpmap:96 VP8/90000\n",
		decode: []string{"-map", "0:v", "-f", "rawvideo", "-pix_fmt", "gray"},
	}
	opus = media{
		kind: forward.Audio, clockRate: 48000, pt: 111,
		input:  []string{"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"},
		encode: []string{"-c:a", "libopus", "-ac", "2", "-b:a", "64k"},
		sdp:    "m=audio %d RTP/AVP 111\na=rtpmap:111 opus/48000/2\n",
		decode: []string{"-map", "0:a", "-f", "s16le", "-ac", "2", "-ar", "48000"},
	}
)

// relay is an ffmpeg sender -> Ingest -> forward.Track -> Egress -> ffmpeg
// receiver run, and returns the receiver's decoded output.
func relay(t *testing.T, m media, k *rtp.Keys) []byte {
	ffmpeg := e2e.LookPath(t, "ffmpeg")
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	dir := t.TempDir()

	recvPort := freePair(t)
	sdp := fmt.Sprintf("v=0\no=- 0 0 IN IP4 127.0.0.1\ns=recv\nc=IN IP4 127.0.0.1\nt=0 0\n"+m.sdp, recvPort)
	if k != nil {
		sdp += fmt.Sprintf("a=crypto:1 %v inline:%s\n", k.Profile, k.Inline())
	}
	sdpFile, out := filepath.Join(dir, "recv.sdp"), filepath.Join(dir, "out.raw")
	if err := os.WriteFile(sdpFile, []byte(sdp), 0o600); err != nil {
		t.Fatal(err)
	}
	var recvErr bytes.Buffer
	recv := exec.CommandContext(ctx, ffmpeg, append(append([]string{"-hide_banner", "-loglevel", "error", "-y",
		"-protocol_whitelist", "file,udp,rtp,srtp", "-i", sdpFile}, m.decode...), "-flush_packets", "1", out)...)
	recv.Stderr = &recvErr
	if err := recv.Start(); err != nil {
		t.Fatal(err)
	}
	defer recv.Wait()
	defer recv.Process.Kill()
	start := time.Now()
	eventually(t, "the receiving ffmpeg to bind its port", func() bool { return udpBound(recvPort) })
	t.Logf("receiver bound after %v", time.Since(start))

	track, err := forward.NewTrack(forward.TrackConfig{Kind: m.kind, ClockRate: m.clockRate, PayloadType: m.pt})
	if err != nil {
		t.Fatal(err)
	}
	defer track.Close()
	in := newIngest(t, rtp.IngestConfig{RTP: track, SRTP: k})
	eg := newEgress(t, rtp.EgressConfig{Remote: netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(recvPort)), SRTP: k})
	if _, err := track.Subscribe(forward.SubscriberConfig{Writer: eg, SSRC: 0x5EED, PayloadType: m.pt}); err != nil {
		t.Fatal(err)
	}

	url := fmt.Sprintf("rtp://%v", in.Addr())
	args := append([]string{"-hide_banner", "-loglevel", "error", "-re"}, m.input...)
	args = append(append(append(args, "-t", "3"), m.encode...), "-payload_type", fmt.Sprint(m.pt), "-f", "rtp")
	if k != nil {
		url = fmt.Sprintf("srtp://%v", in.Addr())
		args = append(args, "-srtp_out_suite", k.Profile.String(), "-srtp_out_params", k.Inline())
	}
	send := exec.CommandContext(ctx, ffmpeg, append(args, url)...)
	if b, err := send.CombinedOutput(); err != nil {
		t.Fatalf("sending ffmpeg: %v\n%s", err, b)
	}

	t.Logf("sender done after %v", time.Since(start))
	// The sender is done: wait for the receiver's output to stop growing,
	// then kill it rather than wait for its read timeout (10 s); with
	// -flush_packets 1 every decoded frame is already in the file.
	last, stable := int64(-1), time.Now()
	eventually(t, "the receiver's output to settle", func() bool {
		size := int64(-1)
		if fi, err := os.Stat(out); err == nil {
			size = fi.Size()
		}
		if size != last {
			last, stable = size, time.Now()
		}
		return size > 0 && time.Since(stable) > time.Second
	})
	t.Logf("output settled after %v", time.Since(start))
	recv.Process.Kill()
	recv.Wait()
	t.Logf("receiver done after %v", time.Since(start))
	if s := strings.TrimSpace(recvErr.String()); s != "" {
		t.Logf("receiving ffmpeg: %s", s)
	}
	is, es, ts := in.Stats(), eg.Stats(), track.Stats()
	t.Logf("ingest %+v\negress %+v\ntrack %+v", is, es, ts)
	if is.Dropped() != 0 || is.RTPIn == 0 || is.RTCPIn == 0 {
		t.Errorf("ingest: want packets and sender reports and no drops: %+v", is)
	}
	if es.RTPOut == 0 {
		t.Errorf("egress sent nothing: %+v", es)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestFFmpegVP8(t *testing.T) {
	t.Parallel()
	checkVideo(t, relay(t, vp8, nil))
}

func TestFFmpegOpus(t *testing.T) {
	t.Parallel()
	checkAudio(t, relay(t, opus, nil))
}

func TestFFmpegSRTP(t *testing.T) {
	t.Parallel()
	checkVideo(t, relay(t, vp8, keys(t, rtp.ProfileAESCM128SHA1_80)))
}

func checkVideo(t *testing.T, b []byte) {
	const frame = 320 * 240
	if len(b)%frame != 0 || len(b)/frame < 30 {
		t.Fatalf("decoded %d bytes: want at least 30 whole 320x240 frames", len(b))
	}
	t.Logf("decoded %d frames of 320x240", len(b)/frame)
}

func checkAudio(t *testing.T, b []byte) {
	nonzero := 0
	for i := 0; i+1 < len(b); i += 2 {
		if int16(binary.LittleEndian.Uint16(b[i:])) != 0 {
			nonzero++
		}
	}
	if secs := float64(len(b)) / (48000 * 4); secs < 1.5 || nonzero < len(b)/4 {
		t.Fatalf("decoded %.2f s of audio, %d of %d samples nonzero: want at least 1.5 s of sine", secs, nonzero, len(b)/2)
	}
	t.Logf("decoded %.2f s of audio", float64(len(b))/(48000*4))
}

// freePair returns an even port p such that p and p+1 were free on
// 127.0.0.1.
func freePair(t *testing.T) int {
	for range 32 {
		a := udp(t, "127.0.0.1:0")
		p := int(addrOf(a).Port())
		if p%2 != 0 || p > 65000 {
			a.Close()
			continue
		}
		b, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: p + 1})
		a.Close()
		if err == nil {
			b.Close()
			return p
		}
	}
	t.Fatal("no free pair of ports")
	return 0
}

// udpBound reports whether a UDP socket is bound to port, per
// /proc/net/udp and udp6.
func udpBound(port int) bool {
	suffix := fmt.Sprintf(":%04X ", port)
	for _, f := range []string{"/proc/net/udp", "/proc/net/udp6"} {
		b, _ := os.ReadFile(f)
		for _, line := range strings.Split(string(b), "\n") {
			if fs := strings.Fields(line); len(fs) > 1 && strings.HasSuffix(fs[1]+" ", suffix) {
				return true
			}
		}
	}
	return false
}
