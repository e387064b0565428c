package bwe

import "math"

// The delay-based estimate, in the manner of Google congestion control:
// packets are grouped by send time into bursts, the growth of one-way
// delay between groups is smoothed and fitted with a line (the trend), an
// adaptive threshold on the trend says whether the path is over-used, and
// an additive-increase multiplicative-decrease controller turns that
// signal into a rate.

// signal is the over-use detector's verdict.
type signal uint8

const (
	sigNormal signal = iota
	sigOver
	sigUnder
)

const (
	groupSpan      = 5000 // µs: packets sent within this of a group's first belong to it
	trendWindow    = 20   // delay samples fitted
	trendSmoothing = 0.9
	trendGain      = 4.0
	trendMaxDeltas = 60
	overuseTime    = 10.0 // ms of trend over the threshold before over-use
	thresholdInit  = 12.5 // ms
	thresholdUp    = 0.0087
	thresholdDown  = 0.039
	thresholdMin   = 6.0
	thresholdMax   = 600.0
	thresholdJump  = 15.0 // ms: trends this far over the threshold do not move it
)

// group is a burst of packets sent close together.
type group struct {
	first, last uint32 // send times (µs, modulo 2^32) of its first and last packets
	arrival     int64  // arrival of its last packet (µs, the feedback's clock)
	size        int
}

// delayDetector groups packets, fits the delay trend and detects over-use.
// Owned by the Estimator (its mu).
type delayDetector struct {
	cur, prev         group
	haveCur, havePrev bool

	accDelay, smoothed float64
	firstArrival       int64
	haveFirst          bool
	xs, ys             [trendWindow]float64
	n, at              int // samples in the window, next slot
	deltas             int
	trend, prevTrend   float64

	threshold  float64
	lastUpdate int64 // ms; -1 before the first
	overTime   float64
	overCount  int
	state      signal
	sawOver    bool // over-use seen since the controller last looked
}

func (d *delayDetector) init() {
	*d = delayDetector{threshold: thresholdInit, lastUpdate: -1, overTime: -1}
}

// packet adds a received packet: its send time and arrival (µs).
func (d *delayDetector) packet(sent uint32, arrival int64, size int) {
	if !d.haveCur {
		d.cur = group{first: sent, last: sent, arrival: arrival, size: size}
		d.haveCur = true
		return
	}
	if int32(sent-d.cur.first) < 0 {
		return // sent before the current group: reordered, left out of the delay
	}
	if d.newGroup(sent, arrival) {
		if d.havePrev {
			sendDelta := float64(int32(d.cur.last-d.prev.last)) / 1000
			arrDelta := float64(d.cur.arrival-d.prev.arrival) / 1000
			d.sample(arrDelta-sendDelta, d.cur.arrival, sendDelta)
		}
		d.prev, d.havePrev = d.cur, true
		d.cur = group{first: sent, last: sent, arrival: arrival, size: size}
		return
	}
	if int32(sent-d.cur.last) > 0 {
		d.cur.last = sent
	}
	d.cur.arrival = max(d.cur.arrival, arrival)
	d.cur.size += size
}

// newGroup reports whether a packet starts a new group: sent more than
// groupSpan after the current group's first, unless it arrived in a burst
// with it (less than groupSpan after its last arrival, and earlier than
// its send spacing: queued behind it).
func (d *delayDetector) newGroup(sent uint32, arrival int64) bool {
	if int32(sent-d.cur.first) <= groupSpan {
		return false
	}
	arrDelta := arrival - d.cur.arrival
	prop := arrDelta - int64(int32(sent-d.cur.last))
	return !(arrDelta >= 0 && arrDelta <= groupSpan && prop < 0)
}

// sample adds one delay variation (ms) between two groups, the later
// arriving at arrival (µs) and sent sendDelta ms after the earlier.
func (d *delayDetector) sample(delay float64, arrival int64, sendDelta float64) {
	d.deltas = min(d.deltas+1, 1000)
	d.accDelay += delay
	d.smoothed = trendSmoothing*d.smoothed + (1-trendSmoothing)*d.accDelay
	if !d.haveFirst {
		d.firstArrival, d.haveFirst = arrival, true
	}
	d.xs[d.at] = float64(arrival-d.firstArrival) / 1000
	d.ys[d.at] = d.smoothed
	d.at = (d.at + 1) % trendWindow
	d.n = min(d.n+1, trendWindow)
	if d.n == trendWindow {
		if s, ok := slope(d.xs[:], d.ys[:]); ok {
			d.trend = s
		}
	}
	d.detect(sendDelta, arrival/1000)
}

// slope fits a line by least squares and returns its slope.
func slope(xs, ys []float64) (float64, bool) {
	var sx, sy float64
	for i := range xs {
		sx += xs[i]
		sy += ys[i]
	}
	mx, my := sx/float64(len(xs)), sy/float64(len(ys))
	var num, den float64
	for i := range xs {
		num += (xs[i] - mx) * (ys[i] - my)
		den += (xs[i] - mx) * (xs[i] - mx)
	}
	if den == 0 {
		return 0, false
	}
	return num / den, true
}

// detect compares the trend with the adaptive threshold.
func (d *delayDetector) detect(sendDelta float64, nowMs int64) {
	if d.deltas < 2 {
		return
	}
	m := float64(min(d.deltas, trendMaxDeltas)) * d.trend * trendGain
	switch {
	case m > d.threshold:
		if d.overTime == -1 {
			d.overTime = sendDelta / 2
		} else {
			d.overTime += sendDelta
		}
		d.overCount++
		if d.overTime > overuseTime && d.overCount > 1 && d.trend >= d.prevTrend {
			d.overTime, d.overCount = 0, 0
			d.state, d.sawOver = sigOver, true
		}
	case m < -d.threshold:
		d.overTime, d.overCount = -1, 0
		d.state = sigUnder
	default:
		d.overTime, d.overCount = -1, 0
		d.state = sigNormal
	}
	d.prevTrend = d.trend
	d.adapt(m, nowMs)
}

// adapt moves the threshold towards |m|: fast down, slowly up.
func (d *delayDetector) adapt(m float64, nowMs int64) {
	if d.lastUpdate == -1 {
		d.lastUpdate = nowMs
	}
	a := math.Abs(m)
	if a > d.threshold+thresholdJump {
		d.lastUpdate = nowMs
		return
	}
	k := thresholdUp
	if a < d.threshold {
		k = thresholdDown
	}
	dt := float64(min(max(nowMs-d.lastUpdate, 0), 100))
	d.threshold = min(max(d.threshold+k*(a-d.threshold)*dt, thresholdMin), thresholdMax)
	d.lastUpdate = nowMs
}

// take returns the signal for the controller: over-use if any was seen
// since the last call.
func (d *delayDetector) take() signal {
	if d.sawOver {
		d.sawOver = false
		return sigOver
	}
	return d.state
}

// aimd turns the detector's signals into a rate (bit/s).
type aimd struct {
	rate         float64
	increasing   bool // else holding
	avgMax       float64
	varMax       float64
	lastChange   int64 // µs; 0 before the first update
	lastDecrease int64
}

const (
	beta          = 0.85
	multIncrease  = 1.08 // per second
	responseTime  = 0.2  // s: round trip plus 100 ms
	assumedPacket = 1200 * 8
	appLimited    = 0.6 // acknowledged under this fraction of the rate: application-limited
)

// update applies a signal at now (µs), with acked the receive rate
// measured from feedback (0 when unknown), and returns the new rate: an
// increase goes no higher than AckedFactor × acked + headroom.
func (c *aimd) update(sig signal, acked, headroom float64, now int64, cfg *Config) float64 {
	dt := 0.0
	if c.lastChange != 0 {
		dt = min(float64(now-c.lastChange)/1e6, 1)
	}
	c.lastChange = now
	switch sig {
	case sigOver:
		c.decrease(acked, now)
		return c.rate
	case sigUnder:
		c.increasing = false
		return c.rate
	}
	// Before any over-use, what the path delivered it carries: a start
	// estimate under a stream already flowing is raised to it at once.
	// (After one, the acknowledged rate of a draining queue may exceed
	// the path's.)
	if c.lastDecrease == 0 {
		c.rate = max(c.rate, acked)
	}
	if !c.increasing {
		c.increasing = true
		return c.rate
	}
	if c.avgMax >= 0 && acked/1000 > c.avgMax+3*math.Sqrt(c.varMax*c.avgMax) {
		c.avgMax = -1 // the link got better: far from the last congestion again
	}
	var inc float64
	if c.avgMax >= 0 { // near the rate that congested last: additive
		perFrame := c.rate / 30
		packets := math.Ceil(perFrame / assumedPacket)
		inc = max(4000, perFrame/packets/responseTime) * dt
	} else {
		inc = max(c.rate*(math.Pow(multIncrease, dt)-1), 1000*dt)
	}
	next := c.rate + inc
	if acked > 0 {
		if limit := cfg.AckedFactor*acked + headroom; next > limit {
			next = max(c.rate, limit)
			if limit < c.rate {
				next = c.rate // above the limit already: hold, do not cut
			}
		}
	}
	c.rate = next
	return c.rate
}

func (c *aimd) decrease(acked float64, now int64) {
	next := c.rate * beta
	if acked > 0 {
		next = min(c.rate, beta*acked)
		// Sending well under the estimate (the streams' layers are what
		// they are), an over-use says little about the rate: a frame's
		// burst or a probe overfilled the queue. The cut then goes no
		// lower than what was acknowledged, nor than half the estimate,
		// so that the layer being sent is not paused for a burst; a
		// path that really narrowed over-uses again.
		if acked < appLimited*c.rate {
			next = max(next, min(c.rate/2, acked))
		}
		a := acked / 1000 // kbit/s
		if c.avgMax < 0 {
			c.avgMax = a
		} else {
			c.avgMax = 0.95*c.avgMax + 0.05*a
		}
		norm := max(c.avgMax, 1)
		c.varMax = min(max(0.95*c.varMax+0.05*(c.avgMax-a)*(c.avgMax-a)/norm, 0.4), 2.5)
	}
	c.rate = next
	c.increasing = false
	c.lastDecrease = now
}
