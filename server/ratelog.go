package server

import (
	"log/slog"
	"sync/atomic"
	"time"
)

// logEvery writes one kind of warning at most once a period, whatever a
// client makes happen: the line carries how many were left out since the
// last one. Its methods are safe for concurrent use.
type logEvery struct {
	next       atomic.Int64  // unix nanoseconds before which lines are left out
	suppressed atomic.Uint64 // lines left out since the last one written
}

// logPeriod is how often each kind of warning may be written.
const logPeriod = time.Second

// warn logs msg at warn level unless a line of this kind was written in
// the last logPeriod.
func (l *logEvery) warn(log *slog.Logger, msg string, args ...any) {
	now := time.Now().UnixNano()
	next := l.next.Load()
	if now < next || !l.next.CompareAndSwap(next, now+int64(logPeriod)) {
		l.suppressed.Add(1)
		return
	}
	if n := l.suppressed.Swap(0); n > 0 {
		args = append(args, "suppressed", n)
	}
	log.Warn(msg, args...)
}
