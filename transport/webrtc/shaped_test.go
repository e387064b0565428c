package webrtc

import (
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/callcore/callcore/internal/e2e"
)

// The shaping kit of the constrained-link tests: a test runs its own binary
// again inside a network namespace of its own (unshare -n, root), where tc
// shapes the UDP traffic to chosen ports of lo (htb classes, a u32 filter
// on the destination port, a byte fifo of a quarter second at the rate).

// netnsEnv marks the test binary re-run inside its own network namespace.
const netnsEnv = "CALLCORE_CONSTRAINED_NETNS"

// enterNetns reports whether the test runs inside its namespace, with lo
// up. Outside, it re-runs the test alone under unshare -n, logs what it
// printed, fails the test when it failed (skips it without a namespace,
// when it skipped inside, unless CALLCORE_E2E=require, and in -short)
// and returns false: the caller returns.
func enterNetns(t *testing.T) bool {
	t.Helper()
	if os.Getenv(netnsEnv) != "" {
		sh(t, "ip", "link", "set", "lo", "up")
		return true
	}
	e2e.LookPath(t, "tc")
	e2e.LookPath(t, "ip")
	unshare := e2e.LookPath(t, "unshare")
	if testing.Short() {
		t.Skip("an end-to-end test on a shaped link")
	}
	cmd := exec.Command(unshare, "-n", os.Args[0], "-test.run", "^"+t.Name()+"$", "-test.v", "-test.timeout", "4m")
	cmd.Env = append(os.Environ(), netnsEnv+"=1")
	out, err := cmd.CombinedOutput()
	t.Logf("in a network namespace:\n%s", out)
	if err != nil {
		if strings.Contains(string(out), "unshare failed") || strings.Contains(string(out), "Operation not permitted") {
			if e2e.Required() {
				t.Fatalf("no network namespace: %v", err)
			}
			t.Skipf("no network namespace (root needed): %v", err)
		}
		t.Fatalf("the test in its namespace failed: %v", err)
	}
	if !strings.Contains(string(out), "--- PASS: "+t.Name()) {
		if e2e.Required() {
			t.Fatal("the test skipped in its namespace")
		}
		t.Skip("skipped in its namespace")
	}
	return false
}

func sh(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v: %s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// shapers is the htb root on lo of the namespace: traffic no shaper's
// filter takes goes to class 1:10, unlimited.
var shapers struct {
	mu   sync.Mutex
	root bool
	next int // the next shaper's class minor, from 20
}

// shaper shapes the UDP traffic to one port of lo: its own htb class
// with a byte fifo of a quarter second at the rate, unlimited until Cap.
type shaper struct {
	port  int
	class string // "1:20"
	qdisc string // "20:"
}

func newShaper(t testing.TB, port int) *shaper {
	t.Helper()
	shapers.mu.Lock()
	defer shapers.mu.Unlock()
	if !shapers.root {
		sh(t, "tc", "qdisc", "add", "dev", "lo", "root", "handle", "1:", "htb", "default", "10")
		sh(t, "tc", "class", "add", "dev", "lo", "parent", "1:", "classid", "1:10", "htb", "rate", "10gbit")
		shapers.root, shapers.next = true, 20
	}
	n := shapers.next
	shapers.next++
	s := &shaper{port: port, class: fmt.Sprintf("1:%d", n), qdisc: fmt.Sprintf("%d:", n)}
	sh(t, "tc", "class", "add", "dev", "lo", "parent", "1:", "classid", s.class, "htb", "rate", "10gbit")
	sh(t, "tc", "qdisc", "add", "dev", "lo", "parent", s.class, "handle", s.qdisc, "bfifo", "limit", "1000000")
	sh(t, "tc", "filter", "add", "dev", "lo", "parent", "1:", "protocol", "ip", "prio", "1", "u32",
		"match", "ip", "protocol", "17", "0xff", "match", "ip", "dport", strconv.Itoa(port), "0xffff", "flowid", s.class)
	return s
}

// Cap limits the port to rate bit/s.
func (s *shaper) Cap(t testing.TB, rate float64) {
	t.Helper()
	s.set(t, rate)
}

// Lift takes the limit off.
func (s *shaper) Lift(t testing.TB) {
	t.Helper()
	s.set(t, 0)
}

// set caps the port at rate bit/s (0: unshaped).
func (s *shaper) set(t testing.TB, rate float64) {
	t.Helper()
	r, limit := "10gbit", 1000000
	if rate > 0 {
		r = strconv.Itoa(int(rate)) + "bit"
		limit = max(int(rate/8*0.25), 6000)
	}
	sh(t, "tc", "class", "change", "dev", "lo", "parent", "1:", "classid", s.class, "htb", "rate", r, "ceil", r)
	sh(t, "tc", "qdisc", "change", "dev", "lo", "parent", s.class, "handle", s.qdisc, "bfifo", "limit", strconv.Itoa(limit))
}

type shapeStats struct{ bytes, pkts, dropped uint64 }

func (a shapeStats) sub(b shapeStats) shapeStats {
	return shapeStats{a.bytes - b.bytes, a.pkts - b.pkts, a.dropped - b.dropped}
}

// loss is the fraction of the packets offered to the bottleneck it dropped.
func (a shapeStats) loss() float64 {
	if a.pkts+a.dropped == 0 {
		return 0
	}
	return float64(a.dropped) / float64(a.pkts+a.dropped)
}

var sentRE = regexp.MustCompile(`Sent (\d+) bytes (\d+) pkt \(dropped (\d+)`)

// stats reads the fifo's counters.
func (s *shaper) stats(t testing.TB) shapeStats {
	t.Helper()
	out := sh(t, "tc", "-s", "qdisc", "show", "dev", "lo", "parent", s.class)
	m := sentRE.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("tc stats: %s", out)
	}
	var st shapeStats
	st.bytes, _ = strconv.ParseUint(m[1], 10, 64)
	st.pkts, _ = strconv.ParseUint(m[2], 10, 64)
	st.dropped, _ = strconv.ParseUint(m[3], 10, 64)
	return st
}

// shapedConfig is the engine of the constrained-link tests: probing as by
// default, or off with CALLCORE_PROBING=0, to compare.
func shapedConfig() Config {
	return Config{NoProbing: os.Getenv("CALLCORE_PROBING") == "0"}
}
