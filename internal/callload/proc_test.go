package callload

import (
	"errors"
	"os"
	"testing"
	"time"
)

// TestParseStat: utime and stime are read after the command, whatever
// the command holds.
func TestParseStat(t *testing.T) {
	line := "4242 (cal) (lserver x) S 1 4242 4242 0 -1 4194560 1234 0 0 0 250 75 0 0 20 0 12 0 100 1000000 300 18446744073709551615"
	got, err := parseStatCPU([]byte(line))
	if err != nil || got != 3250*time.Millisecond {
		t.Errorf("parseStatCPU: %v, %v; want 3.25s", got, err)
	}
	for _, bad := range []string{"", "4242 cal S 1", "4242 (x) S 1 2 3", "4242 (x) S 1 4242 4242 0 -1 4194560 1234 0 0 0 x 75"} {
		if _, err := parseStatCPU([]byte(bad)); err == nil {
			t.Errorf("parseStatCPU(%q): no error", bad)
		}
	}
	if cpu, err := procCPU(os.Getpid()); err != nil || cpu < 0 {
		t.Errorf("this process's CPU: %v, %v", cpu, err)
	}
}

// TestParseStatusRSS reads VmRSS in bytes.
func TestParseStatusRSS(t *testing.T) {
	got, err := parseStatusRSS([]byte("Name:\tcallserver\nVmPeak:\t  99 kB\nVmRSS:\t   12345 kB\nThreads:\t9\n"))
	if err != nil || got != 12345<<10 {
		t.Errorf("parseStatusRSS: %d, %v", got, err)
	}
	for _, bad := range []string{"Name: x\n", "VmRSS: 12 MB\n", "VmRSS: x kB\n"} {
		if _, err := parseStatusRSS([]byte(bad)); err == nil {
			t.Errorf("parseStatusRSS(%q): no error", bad)
		}
	}
	if rss, err := procRSS(0); err != nil || rss <= 0 {
		t.Errorf("this process's RSS: %d, %v", rss, err)
	}
	if _, err := procRSS(-1); err == nil {
		t.Error("no process -1, but an RSS")
	}
}

// TestSpread: nearest-rank median, 95th percentile and max.
func TestSpread(t *testing.T) {
	var ds []time.Duration
	for i := 100; i >= 1; i-- {
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	s := spread(ds)
	if s != (Spread{N: 100, Median: 50, P95: 95, Max: 100}) {
		t.Errorf("spread of 1..100 ms: %+v", s)
	}
	if s := spread([]time.Duration{7 * time.Millisecond}); s != (Spread{N: 1, Median: 7, P95: 7, Max: 7}) {
		t.Errorf("spread of one: %+v", s)
	}
	if s := spread(nil); s != (Spread{}) {
		t.Errorf("spread of none: %+v", s)
	}
}

// TestValidateDefaults: a minimal config is valid with its defaults, and
// an invalid one wraps ErrInvalidConfig.
func TestValidateDefaults(t *testing.T) {
	ok := Config{URL: "http://127.0.0.1:8080", TokenURL: "http://127.0.0.1:8080/dev/token", Subscribers: 1}
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	d := ok.withDefaults()
	if d.Channels != 1 || d.Bitrate != 1_500_000 || d.FPS != 30 || d.Duration != 10*time.Second || !*d.LoopbackICE {
		t.Errorf("defaults: %+v", d)
	}
	remote := ok
	remote.URL = "https://calls.example"
	if *remote.withDefaults().LoopbackICE {
		t.Error("ICE confined to loopback for a remote server")
	}
	bad := ok
	bad.Channels = -1
	if err := bad.Validate(); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("Channels -1: %v", err)
	}
}

// TestParseSNMPUDP reads the UDP buffer errors by column name.
func TestParseSNMPUDP(t *testing.T) {
	in := "Ip: Forwarding DefaultTTL\nIp: 1 64\nUdp: InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors SndbufErrors InCsumErrors\nUdp: 2953875 670 605857 3560758 605857 12 0\n"
	r, s, err := parseSNMPUDP([]byte(in))
	if err != nil || r != 605857 || s != 12 {
		t.Errorf("parseSNMPUDP: %d %d %v", r, s, err)
	}
	for _, bad := range []string{"", "Udp: A B\nUdp: 1\n", "Udp: InDatagrams\nUdp: 1\n", "Udp: RcvbufErrors SndbufErrors\nUdp: x 1\n"} {
		if _, _, err := parseSNMPUDP([]byte(bad)); err == nil {
			t.Errorf("parseSNMPUDP(%q): no error", bad)
		}
	}
}
