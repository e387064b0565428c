package bwe

import (
	"math"
)

// The loss-based estimate: a bound that falls when the receiver reports
// more than lossHigh of the packets lost, holds between lossLow and
// lossHigh, and rises (then lifts) below lossLow.

const (
	lossLow        = 0.02
	lossHigh       = 0.10
	lossMinPackets = 20      // packets a loss fraction is computed over, at least
	lossMaxWait    = 1000000 // µs: or what came in this long
	lossCutGap     = 1000000 // µs between two cuts: the sender reacts and the queue drains
	lossIncrease   = 1.08    // per second
)

// lossBound is owned by the Estimator (its mu).
type lossBound struct {
	rate         float64 // +Inf when loss does not limit
	lost, total  int
	since        int64 // µs: start of the current count
	lastCut      int64
	lastUpdate   int64
	lastFraction float64
	haveFraction bool
}

func (l *lossBound) init() { *l = lossBound{rate: math.Inf(1)} }

// add counts packets the receiver reported, lost of total, and updates the
// bound when enough were counted; current is the estimate in force,
// acked the rate the receiver acknowledged (0 when not measured): a cut
// never goes under half of it, which the path demonstrably carries.
func (l *lossBound) add(lost, total int, now int64, current, acked float64) {
	if l.total == 0 {
		l.since = now
	}
	l.lost += lost
	l.total += total
	if l.total < lossMinPackets && now-l.since < lossMaxWait {
		return
	}
	if l.total == 0 {
		return
	}
	p := float64(l.lost) / float64(l.total)
	l.lost, l.total = 0, 0
	l.lastFraction, l.haveFraction = p, true
	dt := 0.0
	if l.lastUpdate != 0 {
		dt = min(float64(now-l.lastUpdate)/1e6, 1)
	}
	l.lastUpdate = now
	switch {
	case p > lossHigh:
		if l.lastCut == 0 || now-l.lastCut >= lossCutGap {
			// The cut starts from what got through when that is less
			// than the estimate: a transport sending well under an
			// estimate the path no longer carries (the path narrowed)
			// loses packets at the rate it sends, not at the estimate.
			base := min(l.rate, current)
			if acked > 0 {
				base = min(base, acked)
			}
			l.rate = max(base*(1-0.5*p), min(0.5*acked, current))
			l.lastCut = now
		}
	case p < lossLow && !math.IsInf(l.rate, 1):
		l.rate *= math.Pow(lossIncrease, dt)
		if l.rate > 1.5*current {
			l.rate = math.Inf(1) // far above what is in force: no longer a bound
		}
	}
}
