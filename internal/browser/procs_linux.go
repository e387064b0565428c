//go:build linux

package browser

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// proc is one process, identified by its pid and its start time (so that a
// reused pid is not mistaken for it).
type proc struct {
	pid   int
	start string
	name  string
}

func (p proc) String() string { return fmt.Sprintf("%d(%s)", p.pid, p.name) }

// stat reads the state, the parent pid, the start time and the name of a
// process from /proc/<pid>/stat.
func stat(pid int) (state byte, ppid int, start, name string, ok bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0, "", "", false
	}
	// pid (comm) state ppid ... field 22 is starttime; comm can hold spaces.
	open, close := bytes.IndexByte(b, '('), bytes.LastIndexByte(b, ')')
	if open < 0 || close < open {
		return 0, 0, "", "", false
	}
	name = string(b[open+1 : close])
	f := strings.Fields(string(b[close+1:]))
	if len(f) < 20 {
		return 0, 0, "", "", false
	}
	ppid, _ = strconv.Atoi(f[1])
	return f[0][0], ppid, f[19], name, true
}

// alive lists the live (not zombie) processes that are descendants of root
// (root included) or that have --user-data-dir=dir on their command line.
func alive(root int, dir string) []proc {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	want := []byte("--user-data-dir=" + dir)
	self := os.Getpid()
	type info struct {
		ppid  int
		start string
		name  string
		mark  bool
	}
	all := map[int]*info{}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		state, ppid, start, name, ok := stat(pid)
		if !ok || state == 'Z' || state == 'X' {
			continue
		}
		in := &info{ppid: ppid, start: start, name: name, mark: pid == root && root > 0}
		if cmd, err := os.ReadFile("/proc/" + e.Name() + "/cmdline"); err == nil {
			for arg := range bytes.SplitSeq(cmd, []byte{0}) {
				if bytes.Equal(arg, want) {
					in.mark = true
					break
				}
			}
		}
		all[pid] = in
	}
	// Mark descendants of marked processes.
	for changed := true; changed; {
		changed = false
		for _, in := range all {
			if !in.mark {
				if p, ok := all[in.ppid]; ok && p.mark {
					in.mark, changed = true, true
				}
			}
		}
	}
	var out []proc
	for pid, in := range all {
		if in.mark {
			out = append(out, proc{pid: pid, start: in.start, name: in.name})
		}
	}
	return out
}

// stillAlive returns those of ps that still run (same pid and start time,
// not a zombie).
func stillAlive(ps []proc) []proc {
	var out []proc
	for _, p := range ps {
		state, _, start, _, ok := stat(p.pid)
		if ok && start == p.start && state != 'Z' && state != 'X' {
			out = append(out, p)
		}
	}
	return out
}

// waitGone waits until the processes ps, and every process with the user
// data directory dir, are gone, and returns those still alive at the
// deadline.
func waitGone(ps []proc, dir string, timeout time.Duration) []proc {
	deadline := time.Now().Add(timeout)
	for {
		left := stillAlive(ps)
		seen := map[int]bool{}
		for _, p := range left {
			seen[p.pid] = true
		}
		for _, p := range alive(0, dir) {
			if !seen[p.pid] {
				left = append(left, p)
			}
		}
		if len(left) == 0 || time.Now().After(deadline) {
			return left
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// killAll kills the processes ps that still run.
func killAll(ps []proc) {
	for _, p := range stillAlive(ps) {
		_ = syscall.Kill(p.pid, syscall.SIGKILL)
	}
}
