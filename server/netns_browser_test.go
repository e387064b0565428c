package server

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/callcore/callcore/internal/browser"
	"github.com/callcore/callcore/internal/e2e"
	"github.com/callcore/callcore/transport/webrtc"
)

// netnsEnv marks the test binary re-run inside a network namespace of its
// own.
const netnsEnv = "CALLCORE_SERVER_NETNS"

// inNetns re-runs the test named name in a new network namespace (unshare
// -n, root) and reports its output, then returns false; inside the
// namespace it brings lo up and returns true. Without tc, ip, unshare or
// the right to unshare, the test is skipped (failed under
// CALLCORE_E2E=require); a skip inside the namespace skips it outside.
func inNetns(t *testing.T, name string) bool {
	t.Helper()
	if os.Getenv(netnsEnv) != "" {
		runTool(t, "ip", "link", "set", "lo", "up")
		return true
	}
	e2e.LookPath(t, "tc")
	e2e.LookPath(t, "ip")
	unshare := e2e.LookPath(t, "unshare")
	cmd := exec.Command(unshare, "-n", os.Args[0], "-test.run", "^"+name+"$", "-test.v", "-test.timeout", "4m")
	cmd.Env = append(os.Environ(), netnsEnv+"=1")
	out, err := cmd.CombinedOutput()
	t.Logf("in a network namespace:\n%s", out)
	switch {
	case err != nil && (strings.Contains(string(out), "unshare failed") || strings.Contains(string(out), "Operation not permitted")):
		if e2e.Required() {
			t.Fatalf("no network namespace: %v", err)
		}
		t.Skipf("no network namespace (root needed): %v", err)
	case err != nil:
		t.Fatalf("the test in its namespace failed: %v", err)
	case !strings.Contains(string(out), "--- PASS: "+name):
		t.Skip("skipped in its namespace")
	}
	return false
}

// runTool runs a command and fails t on an error.
func runTool(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// udpBlock drops, in the kernel, every UDP datagram from 127.0.0.1 to the
// given ports on lo: an htb root qdisc whose u32 filters classify them
// into a class with a blackhole qdisc. Datagrams from other addresses
// (the TURN server's relayed sockets on 127.0.0.3) pass.
type udpBlock struct{}

func blockUDP(t *testing.T, ports ...int) udpBlock {
	t.Helper()
	runTool(t, "tc", "qdisc", "add", "dev", "lo", "root", "handle", "1:", "htb", "default", "10")
	t.Cleanup(func() { runTool(t, "tc", "qdisc", "del", "dev", "lo", "root") })
	runTool(t, "tc", "class", "add", "dev", "lo", "parent", "1:", "classid", "1:10", "htb", "rate", "10gbit")
	runTool(t, "tc", "class", "add", "dev", "lo", "parent", "1:", "classid", "1:20", "htb", "rate", "10gbit")
	runTool(t, "tc", "qdisc", "add", "dev", "lo", "parent", "1:20", "handle", "20:", "blackhole")
	for _, p := range ports {
		runTool(t, "tc", "filter", "add", "dev", "lo", "parent", "1:", "protocol", "ip", "prio", "1", "u32",
			"match", "ip", "protocol", "17", "0xff",
			"match", "ip", "src", "127.0.0.1/32",
			"match", "ip", "dport", strconv.Itoa(p), "0xffff",
			"flowid", "1:20")
	}
	return udpBlock{}
}

var droppedRE = regexp.MustCompile(`\(dropped (\d+)`)

// dropped is how many datagrams the blackhole dropped.
func (udpBlock) dropped(t *testing.T) int {
	t.Helper()
	out := runTool(t, "tc", "-s", "qdisc", "show", "dev", "lo", "parent", "1:20")
	m := droppedRE.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no drop count in %q", out)
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

func udpPort(c net.PacketConn) int  { return c.LocalAddr().(*net.UDPAddr).Port }
func hostPort(port int) string      { return "127.0.0.1:" + strconv.Itoa(port) }
func ms(d time.Duration) string     { return fmt.Sprintf("%.0f ms", float64(d)/1e6) }
func pathOf(p, proto string) string { return strings.TrimSuffix(p+" "+proto, " ") }

// TestBrowserFallbackUDPBlockedInNamespace: the server and a headless
// Chromium run in a network namespace of the test's own, where the kernel
// drops every UDP datagram Chromium sends to the server's media port and
// to the TURN server's UDP port (tc, see udpBlock). Both users' SDKs start
// direct and fall back by themselves: with ICE over TCP on the server
// they connect over TCP at the direct stage; without, after their
// fallback time they restart ICE with the TURN servers and connect
// through the embedded TURN server over TCP. Each sees and hears the
// other; the time to the first decoded video and the kernel's drop count
// are logged.
func TestBrowserFallbackUDPBlockedInNamespace(t *testing.T) {
	if !inNetns(t, "TestBrowserFallbackUDPBlockedInNamespace") {
		return
	}
	b := browser.Start(t)
	for _, c := range []struct {
		name               string
		iceTCP             bool
		path, proto, stage string
	}{
		{"ICE over TCP", true, "tcp", "", "direct"},
		{"TURN over TCP", false, "relay", "tcp", "turn"},
	} {
		t.Run(c.name, func(t *testing.T) {
			media, turnUDP, turnTCP := listenUDP(t), listenUDP(t), listenTCP(t)
			ts := newTestServer(t, func(cf *Config) {
				cf.Static = e2eFS(t)
				cf.WebRTC = webrtc.Config{LoopbackOnly: true, PacketConn: media}
				if c.iceTCP {
					cf.WebRTC.TCPListener = listenTCP(t)
				}
				cf.TURN = TURNConfig{UDP: turnUDP, TCPListener: turnTCP, Host: "127.0.0.1", RelayIP: "127.0.0.3"}
			})
			block := blockUDP(t, udpPort(media), udpPort(turnUDP))
			alice := newE2EUserOpts(t, b, ts, "alice", "{iceFallbackMs: 3000}")
			bob := newE2EUserOpts(t, b, ts, "bob", "{iceFallbackMs: 3000}")
			start := time.Now()
			alice.must("t.calls.create('room', t.tracks())")
			bob.must("t.calls.join('room', t.tracks())")
			tb := bob.timeToVideo("alice", start)
			ta := alice.timeToVideo("bob", start)
			alice.sees("bob")
			bob.sees("alice")
			for _, u := range []struct {
				u     *user
				video time.Duration
			}{{alice, ta}, {bob, tb}} {
				p, rp, stage, connMS := u.u.path()
				t.Logf("%s: connected over %s at stage %s in %.0f ms; the other's video decoded %s after the create",
					u.u.name, pathOf(p, rp), stage, connMS, ms(u.video))
				if p != c.path || rp != c.proto || stage != c.stage {
					t.Errorf("%s's path %s at stage %s, want %s at stage %s", u.u.name, pathOf(p, rp), stage, pathOf(c.path, c.proto), c.stage)
				}
			}
			n := block.dropped(t)
			t.Logf("the kernel dropped %d datagrams to %s and %s", n, hostPort(udpPort(media)), hostPort(udpPort(turnUDP)))
			if !c.iceTCP && n == 0 {
				t.Error("nothing dropped: the browser never tried UDP")
			}
			if st := ts.turn.Stats(); !c.iceTCP && (st.TCPAllocations == 0 || st.UDPAllocations != 0) {
				t.Errorf("TURN stats %+v: want TCP allocations and no UDP one", st)
			}
		})
	}
}
