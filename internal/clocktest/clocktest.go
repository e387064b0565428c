// Package clocktest provides a manual clock for deterministic tests.
package clocktest

import (
	"sync/atomic"
	"time"
)

// Clock is a clock that moves only when told to. It is safe for concurrent
// use.
type Clock struct{ ns atomic.Int64 }

// Nanotime returns the clock's reading in nanoseconds.
func (c *Clock) Nanotime() int64 { return c.ns.Load() }

// Now returns the clock's reading as a duration.
func (c *Clock) Now() time.Duration { return time.Duration(c.ns.Load()) }

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) { c.ns.Add(int64(d)) }
