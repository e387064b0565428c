package bwe

import (
	"fmt"
	"math"
	"sync"
	"sync/atomic"
)

// Config configures an Estimator. Rates are in bit/s; zero values are
// documented defaults.
type Config struct {
	// Initial is the estimate before any feedback. Default 5 Mbit/s: a
	// transport starts unconstrained, and the estimate comes down within
	// a few round trips on a slower link.
	Initial float64
	// Min and Max bound the estimate. Defaults 50 kbit/s and 50 Mbit/s.
	Min, Max float64
	// AckedFactor and AckedHeadroom bound the delay-based estimate's
	// increase to AckedFactor × the rate the receiver acknowledged +
	// AckedHeadroom, so that a transport sending less than its estimate
	// does not grow an estimate nothing has tried. Defaults 1.5 and
	// 300 kbit/s.
	AckedFactor, AckedHeadroom float64
	// ProbedHeadroom, when set, is the headroom instead of AckedHeadroom
	// while the path was heard from within the last 8 s: a cut (over-use
	// or loss) or a probe cluster measured. A transport that probes sets
	// it low: probes raise its estimate, which otherwise drifts above a
	// path its media does not fill. When probes go unmeasured (a
	// receiver that reports no padding) and nothing is cut, the estimate
	// grows with AckedHeadroom again, so that it is not held for good.
	ProbedHeadroom float64
}

// probedQuiet (µs) is how long after the path was last heard from
// (a cut, a cluster measured) Config.ProbedHeadroom applies.
const probedQuiet = 8000000

func (c *Config) setDefaults() {
	if c.Initial == 0 {
		c.Initial = 5e6
	}
	if c.Min == 0 {
		c.Min = 50e3
	}
	if c.Max == 0 {
		c.Max = 50e6
	}
	if c.AckedFactor == 0 {
		c.AckedFactor = 1.5
	}
	if c.AckedHeadroom == 0 {
		c.AckedHeadroom = 300e3
	}
}

// Validate reports whether the config, with defaults applied, is usable.
// Errors wrap ErrInvalidConfig.
func (c Config) Validate() error {
	c.setDefaults()
	bad := func(v float64) bool { return v < 0 || math.IsNaN(v) || math.IsInf(v, 0) }
	switch {
	case bad(c.Initial) || bad(c.Min) || bad(c.Max) || bad(c.AckedFactor) || bad(c.AckedHeadroom) || bad(c.ProbedHeadroom):
		return fmt.Errorf("%w: negative or not finite", ErrInvalidConfig)
	case c.Min > c.Max || c.Initial < c.Min || c.Initial > c.Max:
		return fmt.Errorf("%w: initial %v outside %v..%v", ErrInvalidConfig, c.Initial, c.Min, c.Max)
	case c.AckedFactor < 1:
		return fmt.Errorf("%w: acked factor %v under 1", ErrInvalidConfig, c.AckedFactor)
	}
	return nil
}

// Estimator estimates one transport's downlink from the feedback its
// receiver sends about the packets recorded in its History: the minimum
// of a delay-based estimate, a loss-based bound and the receiver's own
// estimate (REMB) when it sends one.
//
// Loss counts only what the transport sent: transport-wide sequence
// numbers are taken by the packets sent, so a packet the transport never
// had (lost upstream, its gap forwarded) has none and is never reported
// lost. Receiver reports count gaps in media sequence numbers, inherited
// ones included: HandleLoss takes the inherited count apart.
//
// Feedback may come from several goroutines (one read loop per stream);
// mu serialises it. Estimate may be read from anywhere.
type Estimator struct {
	cfg  Config
	hist *History
	est  atomic.Uint64 // float64 bits of the estimate in force
	fed  atomic.Bool   // some feedback has been applied

	mu      sync.Mutex // guards everything below
	fb      Feedback   // scratch of HandleRTCP
	delay   delayDetector
	ctl     aimd
	loss    lossBound
	remb    float64 // 0 when the receiver sends none
	acked   float64 // bit/s, 0 until measured
	ackFrom int64   // µs: arrival time the current acked window started
	ackLast int64   // µs: the last arrival counted
	ackBits float64
	ackInit bool
	recent  [4]uint64 // fb count, base and count of recent feedback: duplicates are skipped
	cutAt   int64     // µs: when the estimate was last cut, 0 before
	heardAt int64     // µs: the last cut or probe cluster measured, 0 before
	probes  [probeSlots]probeAcc
	// The receive rate of the last probe cluster measured, and when (µs).
	probeCap   float64
	probeCapAt int64
	flight     probeFlight
	stats      Stats

	probed   atomic.Uint32 // the last probe cluster measured (its id), 0 before
	probeUp  atomic.Uint32 // the last probe cluster that raised the estimate
	probeUps atomic.Uint64 // probe measurements that raised the estimate
	lastCut  atomic.Int64  // ns: the feedback time of the last cut, 0 before
}

// Stats counts what an Estimator has seen.
type Stats struct {
	Feedback   uint64 // transport-wide feedback packets applied
	Duplicates uint64 // transport-wide feedback seen before, skipped
	Malformed  uint64 // RTCP refused by HandleRTCP
	REMBs      uint64
	Received   uint64  // packets reported received
	Lost       uint64  // packets reported lost
	Unknown    uint64  // packets reported that the history no longer had
	Overuses   uint64  // times the delay-based estimate was cut
	LossCuts   uint64  // times the loss-based bound was lowered
	Probes     uint64  // probe clusters measured
	ProbeUps   uint64  // probe measurements that raised the estimate
	ProbeRate  float64 // the last probe cluster's delivered rate
	Estimate   float64
	Delay      float64 // the delay-based estimate
	LossBound  float64 // +Inf when loss does not limit
	REMB       float64
	Acked      float64 // the receive rate measured from feedback
	Loss       float64 // the last loss fraction computed

	// Receiver reports' packets (HandleLoss), inherited ones left out:
	// expected, and lost of those.
	ReportExpected, ReportLost uint64
}

// New returns an estimator of the transport whose sends hist records.
func New(cfg Config, hist *History) (*Estimator, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if hist == nil {
		return nil, fmt.Errorf("%w: nil history", ErrInvalidConfig)
	}
	cfg.setDefaults()
	e := &Estimator{cfg: cfg, hist: hist}
	e.delay.init()
	e.loss.init()
	e.ctl.rate = cfg.Initial
	e.ctl.avgMax = -1
	e.est.Store(math.Float64bits(cfg.Initial))
	return e, nil
}

// Estimate returns the estimate in force, in bit/s.
func (e *Estimator) Estimate() float64 { return math.Float64frombits(e.est.Load()) }

// HasFeedback reports whether the receiver has sent any transport-wide
// feedback, REMB or receiver-report loss (HandleLoss): until then the
// estimate is only the initial guess.
func (e *Estimator) HasFeedback() bool { return e.fed.Load() }

// Stats returns the counters and the estimate's parts.
func (e *Estimator) Stats() Stats {
	e.mu.Lock()
	defer e.mu.Unlock()
	s := e.stats
	s.Estimate, s.Delay, s.LossBound, s.REMB, s.Acked = e.Estimate(), e.ctl.rate, e.loss.rate, e.remb, e.acked
	s.Loss = e.loss.lastFraction
	return s
}

// HandleRTCP applies the transport-wide feedback and REMB of a compound
// RTCP packet received at now (ns, on the History's clock). A malformed packet is refused with an
// error wrapping ErrMalformed, counted, and changes nothing. It does not
// allocate.
func (e *Estimator) HandleRTCP(pkt []byte, now int64) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if err := ParseRTCP(pkt, &e.fb); err != nil {
		e.stats.Malformed++
		return err
	}
	e.apply(&e.fb, now)
	return nil
}

// HandleFeedback applies parsed feedback received at now (ns).
func (e *Estimator) HandleFeedback(f *Feedback, now int64) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.apply(f, now)
}

// HandleLoss applies a receiver report's loss for one stream at now (ns):
// lost of expected packets, of which inherited were never sent by the
// transport (lost upstream, their gap forwarded). Inherited loss does not
// count. Use it for receivers that send no transport-wide feedback: it
// counts as feedback (HasFeedback), and a cut of the loss bound as a cut.
func (e *Estimator) HandleLoss(expected, lost, inherited int, now int64) {
	e.HandleReport(expected, lost, inherited, 0, now)
}

// HandleReport is HandleLoss with what the transport sent over the
// report's interval (bit/s, 0 when unknown): a cut of the loss bound then
// starts from it rather than from an estimate nothing tried, and never
// goes under half of what was delivered of it.
func (e *Estimator) HandleReport(expected, lost, inherited int, sent float64, now int64) {
	e.mu.Lock()
	defer e.mu.Unlock()
	lost -= inherited
	expected -= inherited
	if expected <= 0 {
		return
	}
	lost = min(max(lost, 0), expected)
	e.fed.Store(true)
	e.stats.ReportExpected += uint64(expected)
	e.stats.ReportLost += uint64(lost)
	bound := e.loss.rate
	current, floor := e.Estimate(), e.acked
	// A report that will cut (its loss, with what is counted already,
	// over the high threshold) cuts from what was sent; one that may
	// raise the bound compares it with the estimate, as transport-wide
	// feedback does.
	if p := float64(e.loss.lost+lost) / float64(e.loss.total+expected); sent > 0 && p > lossHigh {
		current = min(current, sent)
		floor = max(floor, sent*float64(expected-lost)/float64(expected))
	}
	e.loss.add(lost, expected, now/1000, current, floor)
	if e.loss.rate < bound {
		e.stats.LossCuts++
		e.cutAt = now / 1000
		e.lastCut.Store(now)
	}
	e.publish()
}

func (e *Estimator) apply(f *Feedback, now int64) {
	us := now / 1000
	for i := range f.TWCC {
		e.twcc(&f.TWCC[i], us)
	}
	if f.HasREMB {
		e.stats.REMBs++
		e.remb = f.REMB
		e.fed.Store(true)
	}
	e.publish()
}

// twcc applies one transport-wide feedback at now (µs).
func (e *Estimator) twcc(t *TWCC, now int64) {
	key := uint64(t.FbCount)<<32 | uint64(t.BaseSeq)<<16 | uint64(t.Count)
	for _, k := range e.recent {
		if k == key|1<<40 {
			e.stats.Duplicates++
			return
		}
	}
	copy(e.recent[1:], e.recent[:])
	e.recent[0] = key | 1<<40
	e.stats.Feedback++
	e.fed.Store(true)
	lost, total := 0, 0
	arrival := int64(t.RefTime) * referenceUnit
	it := t.Packets()
	for {
		seq, status, delta, ok := it.Next()
		if !ok {
			break
		}
		if status == StatusSmallDelta || status == StatusLargeDelta {
			arrival += delta
		}
		sent, size, known := e.hist.lookup(seq)
		if !known {
			e.stats.Unknown++
			continue
		}
		if id := e.hist.probeOf(seq); id != 0 {
			e.probeAdd(id, status, sent, arrival, size)
		}
		if status == StatusNotReceived {
			e.stats.Lost++
		} else {
			e.stats.Received++
		}
		if status == StatusSmallDelta || status == StatusLargeDelta {
			e.delay.packet(sent, arrival, size)
			e.ackedAdd(arrival, size)
		}
		// Packets sent before the estimate was last cut (for loss or
		// delay) were sent at the rate that was cut: their loss is
		// already answered.
		if e.cutAt != 0 && int32(sent-uint32(e.cutAt)) < 0 {
			continue
		}
		total++
		if status == StatusNotReceived {
			lost++
		}
	}
	// Clusters are measured before the controller acts: an over-use
	// reported with a cluster is the cluster's.
	e.probeMeasure(now)
	before := e.ctl.rate
	headroom := e.cfg.AckedHeadroom
	if e.cfg.ProbedHeadroom > 0 && e.heardAt != 0 && now-e.heardAt < probedQuiet {
		headroom = e.cfg.ProbedHeadroom
	}
	e.ctl.update(e.delay.take(), e.acked, headroom, now, &e.cfg)
	if e.ctl.rate < before {
		e.stats.Overuses++
		e.cutAt, e.heardAt = now, now
		// An over-use during a probe cluster or within probeBlame of
		// its measurement is the cluster's: the path carried what the
		// cluster was received at (or what it started from), though
		// the media alone is acknowledged at less. The path did not
		// narrow: the prober does not wait as after a cut.
		if floor := e.probeFloor(now); floor > 0 {
			e.ctl.rate = max(e.ctl.rate, min(before, floor))
		} else {
			e.lastCut.Store(now * 1000)
		}
	}
	bound := e.loss.rate
	if total > 0 {
		e.loss.add(lost, total, now, e.Estimate(), e.acked)
	}
	if e.loss.rate < bound {
		e.stats.LossCuts++
		e.cutAt, e.heardAt = now, now
		e.lastCut.Store(now * 1000)
	}
	e.probeRaise(e.ctl.rate < before || e.loss.rate < bound || e.delay.state == sigOver)
}

// ackedWindow is the arrival time over which the receive rate is
// measured; ackedIdle, the gap between two arrivals that starts a new
// window.
const (
	ackedWindow = 250000 // µs
	ackedIdle   = 100000 // µs
)

// ackedAdd counts a packet that arrived at arrival (µs) in the receive
// rate.
func (e *Estimator) ackedAdd(arrival int64, size int) {
	// A window starts again after an idle gap: time nothing was sent in
	// is no measure of the path.
	if !e.ackInit || arrival < e.ackLast || arrival-e.ackLast > ackedIdle {
		e.ackFrom, e.ackBits, e.ackInit = arrival, 0, true
	}
	e.ackLast = arrival
	e.ackBits += float64(size * 8)
	if span := arrival - e.ackFrom; span >= ackedWindow {
		e.acked = e.ackBits / (float64(span) / 1e6)
		e.ackFrom, e.ackBits = arrival, 0
	}
}

// publish stores the estimate in force: the minimum of its parts, within
// the configured bounds.
func (e *Estimator) publish() {
	v := min(e.ctl.rate, e.loss.rate)
	if e.remb > 0 {
		v = min(v, e.remb)
	}
	v = min(max(v, e.cfg.Min), e.cfg.Max)
	e.ctl.rate = min(max(e.ctl.rate, e.cfg.Min), e.cfg.Max)
	e.est.Store(math.Float64bits(v))
}
