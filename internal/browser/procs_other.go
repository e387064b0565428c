//go:build !linux

package browser

import "time"

// proc is a process; the leftover check is implemented on Linux only.
type proc struct{ pid int }

func alive(root int, dir string) []proc                            { return nil }
func waitGone(ps []proc, dir string, timeout time.Duration) []proc { return nil }
func killAll(ps []proc)                                            {}
