package callload

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// clockTicks is Linux's USER_HZ, the unit of /proc/PID/stat's times: 100
// on every architecture Go supports.
const clockTicks = 100

// procCPU is a process's user plus system CPU time, from /proc/PID/stat
// (pid 0: this process).
func procCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(procPath(pid, "stat"))
	if err != nil {
		return 0, err
	}
	return parseStatCPU(b)
}

// parseStatCPU reads utime and stime, the 14th and 15th fields of
// /proc/PID/stat. The second field (the command) may hold spaces and
// parentheses, so fields are counted from its last ')'.
func parseStatCPU(b []byte) (time.Duration, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc stat: no command field")
	}
	f := strings.Fields(string(b[i+1:])) // f[0] is field 3, the state
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc stat: %d fields after the command", len(f))
	}
	ut, err1 := strconv.ParseUint(f[11], 10, 64)
	st, err2 := strconv.ParseUint(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc stat: utime %q stime %q", f[11], f[12])
	}
	return time.Duration(ut+st) * (time.Second / clockTicks), nil
}

// procRSS is a process's resident set size in bytes, from
// /proc/PID/status.
func procRSS(pid int) (int64, error) {
	b, err := os.ReadFile(procPath(pid, "status"))
	if err != nil {
		return 0, err
	}
	return parseStatusRSS(b)
}

// parseStatusRSS reads the VmRSS line ("VmRSS:   12345 kB").
func parseStatusRSS(b []byte) (int64, error) {
	for line := range strings.SplitSeq(string(b), "\n") {
		rest, ok := strings.CutPrefix(line, "VmRSS:")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) != 2 || f[1] != "kB" {
			return 0, fmt.Errorf("/proc status: VmRSS %q", rest)
		}
		kb, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc status: VmRSS %q", rest)
		}
		return kb << 10, nil
	}
	return 0, fmt.Errorf("/proc status: no VmRSS line")
}

// loadAverage is /proc/loadavg's three figures.
func loadAverage() ([3]float64, error) {
	var l [3]float64
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return l, err
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return l, fmt.Errorf("/proc/loadavg: %q", b)
	}
	for i := range l {
		if l[i], err = strconv.ParseFloat(f[i], 64); err != nil {
			return l, fmt.Errorf("/proc/loadavg: %q", b)
		}
	}
	return l, nil
}

func procPath(pid int, file string) string {
	if pid == 0 {
		return "/proc/self/" + file
	}
	return "/proc/" + strconv.Itoa(pid) + "/" + file
}

// udpErrors is the host's IPv4 UDP datagrams dropped for a full receive
// buffer and for a full send buffer, from /proc/net/snmp (this network
// namespace, every process).
func udpErrors() (rcvbuf, sndbuf uint64, err error) {
	b, err := os.ReadFile("/proc/net/snmp")
	if err != nil {
		return 0, 0, err
	}
	return parseSNMPUDP(b)
}

// parseSNMPUDP reads RcvbufErrors and SndbufErrors from the two "Udp:"
// lines (names, then values).
func parseSNMPUDP(b []byte) (rcvbuf, sndbuf uint64, err error) {
	var lines [][]string
	for line := range strings.SplitSeq(string(b), "\n") {
		if f := strings.Fields(line); len(f) > 1 && f[0] == "Udp:" {
			lines = append(lines, f[1:])
		}
	}
	if len(lines) != 2 || len(lines[0]) != len(lines[1]) {
		return 0, 0, fmt.Errorf("/proc/net/snmp: no Udp table")
	}
	found := 0
	for i, name := range lines[0] {
		var dst *uint64
		switch name {
		case "RcvbufErrors":
			dst = &rcvbuf
		case "SndbufErrors":
			dst = &sndbuf
		default:
			continue
		}
		if *dst, err = strconv.ParseUint(lines[1][i], 10, 64); err != nil {
			return 0, 0, fmt.Errorf("/proc/net/snmp: %s %q", name, lines[1][i])
		}
		found++
	}
	if found != 2 {
		return 0, 0, fmt.Errorf("/proc/net/snmp: no RcvbufErrors or SndbufErrors")
	}
	return rcvbuf, sndbuf, nil
}
