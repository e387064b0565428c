package link

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/callcore/callcore/forward"
	"github.com/callcore/callcore/internal/rtcpx"
)

// freePort returns a port free at the moment on 127.0.0.1.
func freePort(t testing.TB, network string) int {
	t.Helper()
	if network == "udp" {
		c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return c.LocalAddr().(*net.UDPAddr).Port
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// relayProc runs cmd/linkrelay as its own OS process.
type relayProc struct {
	t    testing.TB
	bin  string
	args []string
	cmd  *exec.Cmd
	done chan struct{}
}

func (r *relayProc) start(drop int) {
	r.t.Helper()
	args := append(append([]string(nil), r.args...), fmt.Sprintf("-drop=%d", drop))
	r.cmd = exec.CommandContext(context.Background(), r.bin, args...)
	if err := r.cmd.Start(); err != nil {
		r.t.Fatal(err)
	}
	r.done = make(chan struct{})
	go func(c *exec.Cmd, done chan struct{}) {
		_ = c.Wait()
		close(done)
	}(r.cmd, r.done)
}

func (r *relayProc) kill() {
	_ = r.cmd.Process.Kill()
	<-r.done
}

// TestLinkThroughRelayProcess links two nodes through cmd/linkrelay in a
// separate process that drops media: packets, loss repair, key-frame
// requests and mute cross it; killing and restarting it leaves B's
// subscribers' numbering continuous.
func TestLinkThroughRelayProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs cmd/linkrelay")
	}
	bin := filepath.Join(t.TempDir(), "linkrelay")
	if out, err := exec.Command("go", "build", "-o", bin, "../../cmd/linkrelay").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	aMedia := freePort(t, "udp")
	a, err := New(Config{Listen: "127.0.0.1:0", Media: fmt.Sprintf("127.0.0.1:%d", aMedia), Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	rTCP, rUDP := freePort(t, "tcp"), freePort(t, "udp")
	rp := &relayProc{t: t, bin: bin, args: []string{"-tcp", fmt.Sprintf("127.0.0.1:%d", rTCP), "-to-tcp", a.Addr().String(),
		"-udp", fmt.Sprintf("127.0.0.1:%d", rUDP), "-to-udp", fmt.Sprintf("127.0.0.1:%d", aMedia), "-drop-pt", "96"}}
	rp.start(30)
	defer func() { rp.kill() }()
	b, err := New(Config{Dial: fmt.Sprintf("127.0.0.1:%d", rTCP), PeerMedia: fmt.Sprintf("127.0.0.1:%d", rUDP),
		Timeout: time.Second, Redial: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()

	track, pub := newOrigin(t)
	if err := a.Offer("cam", track); err != nil {
		t.Fatal(err)
	}
	rt := remoteOf(t, b, "cam")
	rec := newRecorder(0x77)
	sub, err := rt.Subscribe(forward.SubscriberConfig{Writer: rec, SSRC: 0x77, PayloadType: 100})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a first packet", func() bool { n, _, _ := rec.counts(); return n > 0 })
	from := rec.newest() + 50
	waitFor(t, "300 packets, none missing, through the lossy relay", func() bool { return rec.completeFrom(from, 300) })
	if st := b.Stats(); st.NACKsOut == 0 || st.RTXIn == 0 {
		t.Fatalf("no repair crossed the relay: %+v", st)
	}
	before := pub.plis.Load()
	if err := sub.HandleRTCP(rtcpx.AppendPLI(nil, 9, 0x77)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the PLI at the publisher", func() bool { return pub.plis.Load() > before })
	track.SetMute(forward.SourceSelf, true)
	waitFor(t, "the mute at B", func() bool { return rt.MuteSources() == forward.SourceSelf })
	_, _, e0 := rec.counts()
	waitFor(t, "empty media at B", func() bool { _, _, e := rec.counts(); return e > e0+3 })
	track.SetMute(forward.SourceSelf, false)
	_, p0, _ := rec.counts()
	waitFor(t, "publisher media at B again", func() bool { _, p, _ := rec.counts(); return p > p0+30 })

	// Kill the relay and start it again, without loss, twice: B's
	// subscriber's numbers run on without a gap.
	var mark int64
	for round := range 2 {
		sessions := b.Stats().Sessions
		rp.kill()
		waitFor(t, "B to notice the drop", func() bool { return !b.Connected() })
		rp.start(0)
		waitFor(t, "a new session", func() bool { return b.Stats().Sessions > sessions && b.Connected() })
		n0, _, _ := rec.counts()
		waitFor(t, "packets after the restart", func() bool { n, _, _ := rec.counts(); return n > n0+100 })
		if round == 0 {
			mark = rec.newest() - 50
		}
	}
	n := int(rec.newest() - mark)
	waitFor(t, "no gap across the restart", func() bool { return rec.completeFrom(mark, n) })
}
