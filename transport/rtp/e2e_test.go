package rtp_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
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
	mimeType  string
	clockRate uint32
	pt        uint8
	input     []string // ffmpeg's lavfi input
	encode    []string
	sdp       string // the receiver's m= section, %d for the port
	decode    []string
}

var (
	vp8 = media{
		kind: forward.Video, mimeType: "video/VP8", clockRate: 90000, pt: 96,
		input:  []string{"-f", "lavfi", "-i", "testsrc=size=320x240:rate=30"},
		encode: []string{"-c:v", "libvpx", "-deadline", "realtime", "-cpu-used", "8", "-g", "10", "-pix_fmt", "yuv420p"},
		sdp:    "m=video %d RTP/AVP 96\na=rtpmap:96 VP8/90000\n",
		decode: []string{"-map", "0:v", "-f", "rawvideo", "-pix_fmt", "gray"},
	}
	opus = media{
		kind: forward.Audio, mimeType: "audio/opus", clockRate: 48000, pt: 111,
		input:  []string{"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"},
		encode: []string{"-c:a", "libopus", "-ac", "2", "-b:a", "64k"},
		sdp:    "m=audio %d RTP/AVP 111\na=rtpmap:111 opus/48000/2\n",
		decode: []string{"-map", "0:a", "-f", "s16le", "-ac", "2", "-ar", "48000"},
	}
)

// externals are the outside programs of a relay run: a receiver started
// first, with its output file, and a sender that ends by itself.
type externals struct {
	recv     func(dir string, port int) (argv []string, out string)
	send     func(ingest netip.AddrPort) []string
	sendRTCP bool // the sender sends RTCP sender reports
}

// ffmpegs receives with an SDP file and decodes to raw, and sends 3 s of
// a lavfi source, with SRTP on both legs when k is set.
func ffmpegs(t *testing.T, m media, k *rtp.Keys) externals {
	ffmpeg := e2e.LookPath(t, "ffmpeg")
	return externals{sendRTCP: true,
		recv: func(dir string, port int) ([]string, string) {
			sdp := fmt.Sprintf("v=0\no=- 0 0 IN IP4 127.0.0.1\ns=recv\nc=IN IP4 127.0.0.1\nt=0 0\n"+m.sdp, port)
			if k != nil {
				sdp += fmt.Sprintf("a=crypto:1 %v inline:%s\n", k.Profile, k.Inline())
			}
			sdpFile, out := filepath.Join(dir, "recv.sdp"), filepath.Join(dir, "out.raw")
			if err := os.WriteFile(sdpFile, []byte(sdp), 0o600); err != nil {
				t.Fatal(err)
			}
			// -flush_packets 1 puts every decoded frame in the file at once,
			// so the receiver can be killed when the file stops growing
			// rather than wait 10 s for its read timeout.
			return append(append([]string{ffmpeg, "-hide_banner", "-loglevel", "error", "-y",
				"-protocol_whitelist", "file,udp,rtp,srtp", "-i", sdpFile}, m.decode...), "-flush_packets", "1", out), out
		},
		send: func(in netip.AddrPort) []string {
			url := fmt.Sprintf("rtp://%v", in)
			args := append([]string{ffmpeg, "-hide_banner", "-loglevel", "error", "-re"}, m.input...)
			args = append(append(append(args, "-t", "3"), m.encode...), "-payload_type", fmt.Sprint(m.pt), "-f", "rtp")
			if k != nil {
				url = fmt.Sprintf("srtp://%v", in)
				args = append(args, "-srtp_out_suite", k.Profile.String(), "-srtp_out_params", k.Inline())
			}
			return append(args, url)
		},
	}
}

// relay runs a sender -> Ingest -> forward.Track -> Egress -> receiver
// chain and returns the receiver's decoded output.
func relay(t *testing.T, m media, k *rtp.Keys, x externals) []byte {
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	recvPort := freePair(t)
	argv, out := x.recv(t.TempDir(), recvPort)
	var recvErr bytes.Buffer
	recv := exec.CommandContext(ctx, argv[0], argv[1:]...)
	recv.Stderr = &recvErr
	if err := recv.Start(); err != nil {
		t.Fatal(err)
	}
	defer recv.Wait()
	defer recv.Process.Kill()
	start := time.Now()
	eventually(t, "the receiver to bind its port", func() bool { return udpBound(recvPort) })

	track, err := forward.NewTrack(forward.TrackConfig{Kind: m.kind, MimeType: m.mimeType, ClockRate: m.clockRate, PayloadType: m.pt})
	if err != nil {
		t.Fatal(err)
	}
	defer track.Close()
	in := newIngest(t, rtp.IngestConfig{RTP: track, SRTP: k})
	eg := newEgress(t, rtp.EgressConfig{Remote: netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(recvPort)), SRTP: k})
	if _, err := track.Subscribe(forward.SubscriberConfig{Writer: eg, SSRC: egressSSRC, PayloadType: m.pt}); err != nil {
		t.Fatal(err)
	}
	argv = x.send(in.Addr())
	if b, err := exec.CommandContext(ctx, argv[0], argv[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("sender: %v\n%s", err, b)
	}
	t.Logf("sender done after %v", time.Since(start))

	// Wait for the receiver's output to stop growing, then stop it.
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
	recv.Process.Kill()
	recv.Wait()
	if s := strings.TrimSpace(recvErr.String()); s != "" {
		t.Logf("receiver: %s", s)
	}
	is, es := in.Stats(), eg.Stats()
	t.Logf("ingest %+v\negress %+v\ntrack %+v", is, es, track.Stats())
	if is.Dropped() != 0 || is.RTPIn == 0 || (x.sendRTCP && is.RTCPIn == 0) {
		t.Errorf("ingest: want packets, sender reports and no drops: %+v", is)
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

// egressSSRC is the SSRC the receivers see.
const egressSSRC = 0x5EED

func TestFFmpegVP8(t *testing.T) {
	t.Parallel()
	checkVideo(t, relay(t, vp8, nil, ffmpegs(t, vp8, nil)))
}

func TestFFmpegOpus(t *testing.T) {
	t.Parallel()
	checkAudio(t, relay(t, opus, nil, ffmpegs(t, opus, nil)))
}

func TestFFmpegSRTP(t *testing.T) {
	t.Parallel()
	k := keys(t, rtp.ProfileAESCM128SHA1_80)
	checkVideo(t, relay(t, vp8, k, ffmpegs(t, vp8, k)))
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

// gstreamers send 60 VP8 frames through GStreamer's srtpenc (libsrtp) and
// receive with srtpdec, decoding to GRAY8: AEAD_AES_128_GCM against an
// implementation other than pion's, which ffmpeg 5.1 cannot do.
func gstreamers(t *testing.T, k *rtp.Keys) externals {
	gst := lookGStreamer(t)
	key := hex.EncodeToString(append(append([]byte(nil), k.Key...), k.Salt...))
	cipher := map[rtp.Profile]string{rtp.ProfileAEADAES128GCM: "aes-128-gcm", rtp.ProfileAESCM128SHA1_80: "aes-128-icm"}[k.Profile]
	auth := map[rtp.Profile]string{rtp.ProfileAEADAES128GCM: "null", rtp.ProfileAESCM128SHA1_80: "hmac-sha1-80"}[k.Profile]
	return externals{
		recv: func(dir string, port int) ([]string, string) {
			out := filepath.Join(dir, "out.gray")
			caps := fmt.Sprintf("application/x-srtp,media=video,clock-rate=90000,encoding-name=VP8,payload=96,ssrc=(uint)%d,"+
				"srtp-key=(buffer)%s,srtp-cipher=%s,srtp-auth=%s,srtcp-cipher=%s,srtcp-auth=%s", egressSSRC, key, cipher, auth, cipher, auth)
			return []string{gst, "-q", "udpsrc", "address=127.0.0.1", fmt.Sprintf("port=%d", port), "caps=" + caps,
				"!", "srtpdec", "!", "rtpvp8depay", "!", "vp8dec", "!", "videoconvert", "!", "video/x-raw,format=GRAY8",
				"!", "filesink", "location=" + out, "buffer-mode=unbuffered"}, out
		},
		send: func(in netip.AddrPort) []string {
			return []string{gst, "-q", "videotestsrc", "num-buffers=60", "is-live=true",
				"!", "video/x-raw,width=320,height=240,framerate=30/1", "!", "vp8enc", "deadline=1", "keyframe-max-dist=10",
				"!", "rtpvp8pay", "pt=96", "!", "srtpenc", "name=enc", "key=" + key, "rtp-cipher=" + cipher, "rtp-auth=" + auth,
				"rtcp-cipher=" + cipher, "rtcp-auth=" + auth, "enc.rtp_src_0", "!", "udpsink", "host=127.0.0.1", fmt.Sprintf("port=%d", in.Port())}
		},
	}
}

func TestGStreamerSRTP(t *testing.T) {
	for _, p := range []rtp.Profile{rtp.ProfileAEADAES128GCM, rtp.ProfileAESCM128SHA1_80} {
		t.Run(p.String(), func(t *testing.T) {
			k := keys(t, p)
			checkVideo(t, relay(t, vp8, k, gstreamers(t, k)))
		})
	}
}

// lookGStreamer returns gst-launch-1.0's path. Without GStreamer or its
// SRTP, VP8 and RTP elements it skips t, or fails it under
// CALLCORE_E2E=require (.ci/run installs gstreamer1.0-tools,
// -plugins-base, -plugins-good and -plugins-bad).
func lookGStreamer(t *testing.T) string {
	gst := e2e.LookPath(t, "gst-launch-1.0")
	for _, e := range []string{"srtpenc", "srtpdec", "vp8enc", "vp8dec", "rtpvp8pay", "rtpvp8depay"} {
		if exec.Command("gst-inspect-1.0", "--exists", e).Run() != nil {
			if e2e.Required() {
				t.Fatalf("GStreamer element %s missing (CALLCORE_E2E=require)", e)
			}
			t.Skipf("GStreamer element %s missing", e)
		}
	}
	return gst
}
