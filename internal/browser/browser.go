package browser

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/callcore/callcore/internal/e2e"
)

// Timeouts of the harness. A single Eval, a navigation and the graceful
// close of the browser give up after these.
const (
	// EvalTimeout bounds one Eval, EvalErr or Navigate (including an awaited
	// promise).
	EvalTimeout = 30 * time.Second
	// startTimeout bounds the start of the browser and of a tab.
	startTimeout = 30 * time.Second
	// closeTimeout bounds the graceful close of the browser, and then the
	// wait for its processes to exit.
	closeTimeout = 10 * time.Second
)

// EnvChromium names an environment variable that, when set, is the path of
// the Chromium binary to run instead of the one found on $PATH.
const EnvChromium = "CALLCORE_CHROMIUM"

// DefaultFlags are the Chromium command line flags of [Start], as "name" or
// "name=value" without the leading "--". chromedp adds
// --remote-debugging-pipe, --user-data-dir and the start page about:blank.
// Do not modify it; pass extra flags to Start.
var DefaultFlags = []string{
	"headless=new",
	"no-sandbox",
	"disable-gpu",
	"disable-quic",
	"no-first-run",
	"no-default-browser-check",
	"disable-background-networking",
	"disable-component-update",
	"disable-sync",
	"disable-default-apps",
	"disable-extensions",
	"disable-breakpad",
	"disable-client-side-phishing-detection",
	"disable-domain-reliability",
	"no-pings",
	"metrics-recording-only",
	"password-store=basic",
	"use-mock-keychain",
	// Only loopback: every host name but localhost fails to resolve.
	"host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1, EXCLUDE [::1]",
	// Raw IP host candidates, not mDNS names, also for pages without
	// getUserMedia; no media router, no translate, no hints downloads.
	"disable-features=WebRtcHideLocalIpsWithMdns,MediaRouter,DialMediaRouteProvider,Translate,OptimizationHints",
	// Media.
	"use-fake-device-for-media-stream",
	"use-fake-ui-for-media-stream",
	"allow-loopback-in-peer-connection",
	"autoplay-policy=no-user-gesture-required",
	// Stability and CPU on 2 cores.
	"disable-dev-shm-usage",
	"disable-renderer-backgrounding",
	"disable-background-timer-throttling",
	"disable-backgrounding-occluded-windows",
	"disable-ipc-flooding-protection",
	"disable-hang-monitor",
	"window-size=800,600",
}

// Browser is one headless Chromium process, shared by the users (browser
// contexts) of a test. Make it with [Start].
type Browser struct {
	ctx         context.Context // the browser's root chromedp context
	allocCancel context.CancelFunc
	dataDir     string
	pid         int
	output      *tailBuffer
}

// Start starts a headless Chromium for the test and registers its cleanup.
// The extra flags ("name" or "name=value", without "--") are added to
// [DefaultFlags], and replace a default flag of the same name (for example
// "use-file-for-fake-video-capture=/path/to/clip.y4m").
//
// The binary is $CALLCORE_CHROMIUM if set, else e2e.LookPath(t, "chromium")
// (Debian's launcher script replaced by the real binary): without it the
// test is skipped, or failed under CALLCORE_E2E=require. The browser runs
// with these flags and a new temporary --user-data-dir. At cleanup the browser
// is closed (gracefully, then killed), and the test fails if any process
// that used its user data directory is still alive (they are then killed).
func Start(t testing.TB, extra ...string) *Browser {
	t.Helper()
	path := chromiumPath(t)
	t0 := time.Now()
	dataDir, err := os.MkdirTemp("", "callcore-chromium-")
	if err != nil {
		t.Fatalf("browser: %v", err)
	}
	b := &Browser{dataDir: dataDir, output: &tailBuffer{max: 64 << 10}}

	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.UserDataDir(dataDir),
		chromedp.CombinedOutput(b.output),
	}
	for _, f := range append(DefaultFlags[:len(DefaultFlags):len(DefaultFlags)], extra...) {
		f = strings.TrimPrefix(f, "--")
		name, value, ok := strings.Cut(f, "=")
		if ok {
			opts = append(opts, chromedp.Flag(name, value))
		} else {
			opts = append(opts, chromedp.Flag(name, true))
		}
	}
	// The browser lives until the cleanup, not until t.Context() is done
	// (that happens before the cleanups run).
	allocCtx, allocCancel := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, _ := chromedp.NewContext(allocCtx,
		chromedp.WithLogf(func(f string, a ...any) { b.output.Printf("chromedp: "+f, a...) }),
		chromedp.WithErrorf(func(f string, a ...any) { b.output.Printf("chromedp error: "+f, a...) }),
	)
	b.ctx, b.allocCancel = ctx, allocCancel
	t.Cleanup(func() { b.close(t) })

	// The first Run starts the process.
	if err := within(startTimeout, func() error { return chromedp.Do(ctx) }); err != nil {
		t.Fatalf("browser: starting %s: %v\n%s", path, err, b.output.String())
	}
	if p := chromedp.FromContext(ctx).Browser.Process(); p != nil {
		b.pid = p.Pid
	}
	t.Logf("browser: started %s, pid %d, in %v", path, b.pid, time.Since(t0).Round(time.Millisecond))
	return b
}

// within runs f, and returns an error if it did not return within d. The
// first Run of a chromedp context must not have a timeout of its own (the
// browser or the tab would end with it), so it is bounded from the outside;
// f keeps running after the timeout until the cleanup cancels its context.
func within(d time.Duration, f func() error) error {
	done := make(chan error, 1)
	go func() { done <- f() }()
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case err := <-done:
		return err
	case <-timer.C:
		return fmt.Errorf("no answer after %v", d)
	}
}

// chromiumPath finds the Chromium binary (see Start).
func chromiumPath(t testing.TB) string {
	t.Helper()
	if p := os.Getenv(EnvChromium); p != "" {
		return p
	}
	if _, err := exec.LookPath("chromium"); err != nil && !e2e.Required() {
		t.Skipf("chromium not installed (apt-get install chromium); set CALLCORE_E2E=require to fail instead")
	}
	p := e2e.LookPath(t, "chromium")
	// Debian's /usr/bin/chromium is a shell script that adds extensions and
	// other flags from /etc/chromium.d; run the real binary instead.
	if isScript(p) {
		for _, real := range []string{"/usr/lib/chromium/chromium", "/usr/lib/chromium-browser/chromium-browser"} {
			if st, err := os.Stat(real); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
				return real
			}
		}
	}
	return p
}

func isScript(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	head := make([]byte, 2)
	n, _ := f.Read(head)
	return n == 2 && string(head) == "#!"
}

// close closes the browser and checks that none of its processes is left.
func (b *Browser) close(t testing.TB) {
	start := time.Now()
	procs := alive(b.pid, b.dataDir) // the process tree before the close
	ctx, cancel := context.WithTimeout(b.ctx, closeTimeout)
	err := chromedp.Cancel(ctx)
	cancel()
	b.allocCancel() // kills the process if the graceful close did not end it; waits
	t.Logf("browser: closed pid %d (%d processes) in %v", b.pid, len(procs), time.Since(start).Round(time.Millisecond))
	if err != nil && !errors.Is(err, context.Canceled) {
		t.Logf("browser: closing: %v", err)
	}
	if left := waitGone(procs, b.dataDir, closeTimeout); len(left) > 0 {
		t.Errorf("browser: %d Chromium processes left behind %v after close (killed now): %v", len(left), closeTimeout, left)
		killAll(left)
		waitGone(left, b.dataDir, closeTimeout)
	}
	if err := removeAll(b.dataDir); err != nil {
		t.Errorf("browser: removing the user data directory: %v", err)
	}
	if t.Failed() {
		if out := withoutDBus(b.output.String()); out != "" {
			t.Logf("browser: Chromium output (last %d bytes):\n%s", len(out), out)
		}
	}
}

// PID is the process id of the main browser process, 0 if unknown.
func (b *Browser) PID() int { return b.pid }

// UserDataDir is the temporary --user-data-dir of the browser. Every
// Chromium process of this browser has it on its command line.
func (b *Browser) UserDataDir() string { return b.dataDir }

// removeAll removes dir, retrying briefly: a Chromium child can still be
// writing into it right after the exit of the browser.
func removeAll(dir string) error {
	var err error
	for deadline := time.Now().Add(2 * time.Second); ; {
		if err = os.RemoveAll(dir); err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// checkURL refuses URLs whose host is not a loopback address: the tests
// must not send traffic anywhere else.
func checkURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return err
	}
	switch u.Scheme {
	case "about", "data", "blob":
		return nil
	case "http", "https", "ws", "wss", "file":
	default:
		return fmt.Errorf("scheme %q not allowed", u.Scheme)
	}
	if u.Scheme == "file" {
		return nil
	}
	host := u.Hostname()
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("host %q is not a loopback address", host)
}

// tailBuffer keeps the last max bytes written to it; it is safe for
// concurrent use.
type tailBuffer struct {
	mu  sync.Mutex
	buf []byte
	max int
}

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	if over := len(b.buf) - b.max; over > 0 {
		b.buf = append(b.buf[:0], b.buf[over:]...)
	}
	return len(p), nil
}

func (b *tailBuffer) Printf(format string, a ...any) {
	s := fmt.Sprintf(format, a...)
	if !strings.HasSuffix(s, "\n") {
		s += "\n"
	}
	b.Write([]byte(s))
}

func (b *tailBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(bytes.Clone(b.buf))
}

// withoutDBus drops Chromium's harmless complaints about the missing D-Bus
// from its output.
func withoutDBus(out string) string {
	var b strings.Builder
	for line := range strings.Lines(out) {
		if !strings.Contains(line, ":ERROR:dbus/") {
			b.WriteString(line)
		}
	}
	return b.String()
}
