package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/callcore/callcore/internal/callload"
	"github.com/callcore/callcore/mute"
	"github.com/callcore/callcore/server"
	"github.com/callcore/callcore/transport/webrtc"
)

var testSecret = "0123456789abcdef0123456789abcdef"

// startServer runs a callserver in this process on loopback, with demo
// tokens, and returns its base URL. It is shut down when the test ends.
func startServer(t *testing.T) string {
	t.Helper()
	s, err := server.New(server.Config{
		Secret:    []byte(testSecret),
		DevTokens: true,
		WebRTC:    webrtc.Config{LoopbackOnly: true},
		Logger:    slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(s)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		hs.Close()
	})
	return hs.URL
}

// runJSON runs callload with args plus -json and decodes its report.
func runJSON(t *testing.T, args ...string) *callload.Report {
	t.Helper()
	var out, logs bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := run(ctx, append(args, "-json"), &out, &logs); err != nil {
		t.Fatalf("callload %v: %v\n%s", args, err, logs.String())
	}
	var rep callload.Report
	dec := json.NewDecoder(&out)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&rep); err != nil {
		t.Fatalf("the JSON report does not parse: %v\n%s", err, out.String())
	}
	return &rep
}

// TestLoadAgainstServer: 2 publishers (VP8 and Opus) and 4 subscribers
// over 2 channels against a real server. Every subscriber receives; the
// delivered total is what the peers counted; loss and gaps stay within
// bounds on loopback (5 %, for a loaded machine); join times are reported; the server's CPU and RSS
// (this process's) are positive.
func TestLoadAgainstServer(t *testing.T) {
	leaks := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, leaks) })
	url := startServer(t)
	rep := runJSON(t, "-url", url, "-secret", testSecret, "-publishers", "2", "-subscribers", "4", "-channels", "2",
		"-audio", "-bitrate", "600k", "-fps", "30", "-warmup", "1s", "-duration", "3s", "-server-pid", strconv.Itoa(os.Getpid()))

	if rep.Publishers != 2 || rep.Subscribers != 4 || rep.Channels != 2 || len(rep.Peers) != 6 || len(rep.Channel) != 2 {
		t.Fatalf("the run: %d publishers, %d subscribers, %d channels, %d peer rows, %d channel rows",
			rep.Publishers, rep.Subscribers, rep.Channels, len(rep.Peers), len(rep.Channel))
	}
	var delivered, sent uint64
	sentIn := map[string]uint64{}
	for _, p := range rep.Peers {
		delivered += p.Received
		sent += p.Sent
		sentIn[p.Channel] += p.Sent
	}
	for _, p := range rep.Peers {
		if p.Publisher {
			// ~ 600 kbit/s at 30 fps: 3 packets a frame, and 50 audio packets/s.
			if p.Sent < 2*(90+50) || p.Received != 0 {
				t.Errorf("publisher %s: sent %d, received %d", p.User, p.Sent, p.Received)
			}
			continue
		}
		if p.Received == 0 || p.Expected != sentIn[p.Channel] {
			t.Errorf("subscriber %s: received %d, expected %d of the %d its channel's publisher sent", p.User, p.Received, p.Expected, sentIn[p.Channel])
		}
		// The publishers pause at the window's edges and duplicates are
		// told apart, so the count is exact: what is missing was lost (a
		// loaded machine drops some on loopback too).
		if p.Lost < 0 || p.Lost > int64(p.Expected)/20 || p.Gaps > p.Expected/20 {
			t.Errorf("subscriber %s: lost %d, gaps %d of %d", p.User, p.Lost, p.Gaps, p.Expected)
		}
		if p.JoinMs <= 0 || p.FirstMediaMs < p.JoinMs {
			t.Errorf("subscriber %s: joined after %.1f ms, first media after %.1f ms", p.User, p.JoinMs, p.FirstMediaMs)
		}
	}
	if rep.Delivered != delivered || rep.Sent != sent || rep.Expected != 2*sent {
		t.Errorf("totals: delivered %d (peers counted %d), sent %d (peers %d), expected %d", rep.Delivered, delivered, rep.Sent, sent, rep.Expected)
	}
	if got := rep.DeliveredPerSecond * rep.WindowSeconds; got < float64(delivered)-0.5 || got > float64(delivered)+0.5 {
		t.Errorf("delivered per second %.1f over %.2f s: %.1f packets, not %d", rep.DeliveredPerSecond, rep.WindowSeconds, got, delivered)
	}
	var chDelivered uint64
	for _, c := range rep.Channel {
		chDelivered += c.Delivered
		if c.Publishers != 1 || c.Subscribers != 2 {
			t.Errorf("channel %s: %d publishers, %d subscribers", c.ID, c.Publishers, c.Subscribers)
		}
	}
	if chDelivered != delivered {
		t.Errorf("the channels delivered %d, the peers counted %d", chDelivered, delivered)
	}
	if rep.Join.N != 6 || rep.Join.Median <= 0 || rep.Join.P95 < rep.Join.Median || rep.Join.Max < rep.Join.P95 {
		t.Errorf("join times: %+v", rep.Join)
	}
	if rep.FirstMedia.N != 4 || rep.FirstMedia.Median <= rep.Join.Median/2 {
		t.Errorf("first-media times: %+v (joins %+v)", rep.FirstMedia, rep.Join)
	}
	if s := rep.Server; s == nil || s.PID != os.Getpid() || s.CPUSeconds <= 0 || s.MicrosPerPacket <= 0 || s.RSSBytes <= 0 {
		t.Errorf("server usage: %+v", s)
	}
	if rep.WindowSeconds < 2.9 || rep.WindowSeconds > 4 {
		t.Errorf("window %.2f s for -duration 3s", rep.WindowSeconds)
	}

	var table bytes.Buffer
	if err := rep.WriteTable(&table); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"join (median / p95 / max)", "delivered", "server CPU", rep.Channel[0].ID} {
		if !strings.Contains(table.String(), want) {
			t.Errorf("the table lacks %q:\n%s", want, table.String())
		}
	}
}

// TestPublishersMeet: two publishers in one channel negotiate both ways
// (each offers its tracks while the server offers it the other's, which
// may cross: Glare, roll back, answer, offer again) and each receives
// the other's video, as the subscriber receives both.
func TestPublishersMeet(t *testing.T) {
	leaks := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, leaks) })
	url := startServer(t)
	rep := runJSON(t, "-url", url, "-secret", testSecret, "-publishers", "2", "-subscribers", "1",
		"-bitrate", "300k", "-warmup", "1s", "-duration", "2s", "-prefix", "meet")
	byUser := map[string]callload.PeerRow{}
	for _, p := range rep.Peers {
		byUser[p.User] = p
	}
	p0, p1, s0 := byUser["meet-p0"], byUser["meet-p1"], byUser["meet-s0"]
	if p0.Expected != p1.Sent || p1.Expected != p0.Sent || s0.Expected != p0.Sent+p1.Sent {
		t.Errorf("expected: p0 %d (p1 sent %d), p1 %d (p0 sent %d), s0 %d", p0.Expected, p1.Sent, p1.Expected, p0.Sent, s0.Expected)
	}
	for _, p := range []callload.PeerRow{p0, p1, s0} {
		if p.Received == 0 || p.Lost < 0 || p.Lost > int64(p.Expected)/20 {
			t.Errorf("%s: received %d of %d, lost %d", p.User, p.Received, p.Expected, p.Lost)
		}
	}
	if rep.Channel[0].ID != "meet-c0" || rep.Connected.N != 3 {
		t.Errorf("channel %q, connected %+v", rep.Channel[0].ID, rep.Connected)
	}
}

// writeIVF writes a VP8 IVF file of n frames at 30 fps: a black key frame
// then repeat frames.
func writeIVF(t *testing.T, n int) string {
	t.Helper()
	key, err := mute.BlackKeyFrame(mute.MimeTypeVP8, 320, 240)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := mute.RepeatFrame(mute.MimeTypeVP8, 320, 240)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	h := make([]byte, 32)
	copy(h, "DKIF")
	binary.LittleEndian.PutUint16(h[6:], 32)
	copy(h[8:], "VP80")
	binary.LittleEndian.PutUint16(h[12:], 320)
	binary.LittleEndian.PutUint16(h[14:], 240)
	binary.LittleEndian.PutUint32(h[16:], 30) // time base 1/30 s
	binary.LittleEndian.PutUint32(h[20:], 1)
	binary.LittleEndian.PutUint32(h[24:], uint32(n))
	b.Write(h)
	for i := range n {
		f := rep
		if i == 0 {
			f = key
		}
		fh := make([]byte, 12)
		binary.LittleEndian.PutUint32(fh, uint32(len(f)))
		binary.LittleEndian.PutUint64(fh[4:], uint64(i))
		b.Write(fh)
		b.Write(f)
	}
	path := filepath.Join(t.TempDir(), "black.ivf")
	if err := os.WriteFile(path, b.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestLoadFromIVF: a publisher sending an IVF file (looped: 10 frames,
// a third of a second) through demo tokens reaches its subscriber at the
// file's frame rate.
func TestLoadFromIVF(t *testing.T) {
	leaks := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, leaks) })
	url := startServer(t)
	rep := runJSON(t, "-url", url, "-token-url", url+"/dev/token", "-ivf", writeIVF(t, 10),
		"-publishers", "1", "-subscribers", "1", "-warmup", "500ms", "-duration", "2s")
	if !strings.Contains(rep.Source, "black.ivf") || rep.Server != nil {
		t.Errorf("source %q, server usage %+v without -server-pid", rep.Source, rep.Server)
	}
	// One small frame a packet, 30 a second.
	if rate := float64(rep.Sent) / rep.WindowSeconds; rate < 25 || rate > 35 {
		t.Errorf("sent %d packets in %.2f s: want about 30/s", rep.Sent, rep.WindowSeconds)
	}
	if rep.Delivered == 0 || rep.Lost > 2 || rep.Lost < 0 {
		t.Errorf("delivered %d of %d expected, lost %d", rep.Delivered, rep.Expected, rep.Lost)
	}
}

// TestFlagErrors: bad flags and values are refused before anything
// connects, each with an error saying what is wrong.
func TestFlagErrors(t *testing.T) {
	leaks := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, leaks) })
	sec := []string{"-secret", testSecret}
	for _, c := range []struct {
		args    []string
		want    string
		invalid bool // wraps callload.ErrInvalidConfig
	}{
		{nil, "no token source", false},
		{[]string{"-secret", testSecret, "-secret-file", "x"}, "both given", false},
		{[]string{"-secret-file", "/nonexistent/secret"}, "-secret-file", false},
		{[]string{"-secret", "short"}, "at least 32", true},
		{append([]string{"-token-url", "http://127.0.0.1:1/dev/token"}, sec...), "both given", true},
		{[]string{"-token-url", "ftp://x/dev/token"}, "TokenURL", true},
		{append([]string{"-url", "ftp://127.0.0.1"}, sec...), "want http://host:port", true},
		{append([]string{"-publishers", "-1"}, sec...), "negative", true},
		{append([]string{"-publishers", "0", "-subscribers", "0"}, sec...), "no participants", true},
		{append([]string{"-channels", "5", "-subscribers", "2"}, sec...), "would be empty", true},
		{append([]string{"-bitrate", "5k"}, sec...), "Bitrate 5000", true},
		{append([]string{"-bitrate", "fast"}, sec...), "bits per second", false},
		{append([]string{"-fps", "1000"}, sec...), "FPS 1000", true},
		{append([]string{"-size", "8x8"}, sec...), "size 8×8", true},
		{append([]string{"-size", "big"}, sec...), "want WxH", false},
		{append([]string{"-duration", "10ms"}, sec...), "Duration 10ms", true},
		{append([]string{"-warmup", "-1s"}, sec...), "Warmup -1s", true},
		{append([]string{"-key-interval", "-1s"}, sec...), "KeyInterval", true},
		{append([]string{"-prefix", "a b"}, sec...), "Prefix", true},
		{append([]string{"-server-pid", "-3"}, sec...), "ServerPID", true},
		{append([]string{"-nosuchflag"}, sec...), "not defined", false},
		{append([]string{"extra"}, sec...), "unexpected arguments", false},
	} {
		var out, logs bytes.Buffer
		err := run(context.Background(), c.args, &out, &logs)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: error %v, want one saying %q", c.args, err, c.want)
			continue
		}
		if got := errors.Is(err, callload.ErrInvalidConfig); got != c.invalid {
			t.Errorf("%q: errors.Is(ErrInvalidConfig) = %v, want %v (%v)", c.args, got, c.invalid, err)
		}
		if out.Len() != 0 {
			t.Errorf("%q: a report was written: %s", c.args, out.String())
		}
	}
}

// TestRunErrors: a missing or bad IVF file, a server pid that is no
// process and a server that is not there fail the run with the package's
// errors, before anything joins or after a failed join.
func TestRunErrors(t *testing.T) {
	leaks := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, leaks) })
	var out, logs bytes.Buffer
	err := run(context.Background(), []string{"-secret", testSecret, "-ivf", "/nonexistent.ivf"}, &out, &logs)
	if !errors.Is(err, callload.ErrSource) {
		t.Errorf("a missing IVF file: %v, want ErrSource", err)
	}
	bad := filepath.Join(t.TempDir(), "bad.ivf")
	if err := os.WriteFile(bad, []byte("not an ivf file at all, not at all, no"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := run(context.Background(), []string{"-secret", testSecret, "-ivf", bad}, &out, &logs); !errors.Is(err, callload.ErrSource) {
		t.Errorf("a bad IVF file: %v, want ErrSource", err)
	}
	if err := run(context.Background(), []string{"-secret", testSecret, "-server-pid", "2147483647"}, &out, &logs); !errors.Is(err, callload.ErrInvalidConfig) || !strings.Contains(err.Error(), "ServerPID 2147483647") {
		t.Errorf("a server pid that is no process: %v, want ErrInvalidConfig naming it", err)
	}
	gone := httptest.NewServer(nil)
	gone.Close()
	err = run(context.Background(), []string{"-url", gone.URL, "-secret", testSecret, "-subscribers", "1", "-publishers", "0"}, &out, &logs)
	if !errors.Is(err, callload.ErrJoin) || !strings.Contains(err.Error(), "-s0") {
		t.Errorf("no server: %v, want ErrJoin naming the participant", err)
	}
}

// TestURLList: -url takes several servers, comma-separated.
func TestURLList(t *testing.T) {
	cfg, _, err := parse([]string{"-url", "http://127.0.0.1:1, http://127.0.0.1:2,http://127.0.0.1:3", "-secret", testSecret}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.URL != "http://127.0.0.1:1" || len(cfg.URLs) != 2 || cfg.URLs[0] != "http://127.0.0.1:2" || cfg.URLs[1] != "http://127.0.0.1:3" {
		t.Fatalf("URL %q, URLs %q", cfg.URL, cfg.URLs)
	}
	if _, _, err := parse([]string{"-url", "http://127.0.0.1:1,nope", "-secret", testSecret}, io.Discard); err == nil {
		t.Fatal("a bad second URL was accepted")
	}
}
