package bwe

import (
	"fmt"
	"math"
	"sync"
)

// Probing: a transport that wants to send more than its estimate (a
// higher layer, a stream paused for bandwidth) sends a short cluster of
// padding at a rate above the estimate; the receiver's feedback says the
// rate the cluster was delivered at (its bytes over its arrival span),
// and the estimate jumps to it when the path showed no over-use. The
// Prober plans clusters, the History tags their packets
// ([History.RecordProbe]), the Estimator measures them.

// probeSlots is the number of probe clusters measured at once.
const probeSlots = 4

// probeBlame is how long (µs) after a probe cluster is measured an
// over-use is blamed on it: the cut goes no lower than the rate the
// cluster was received at.
const probeBlame = 1000000

// probeMinPackets is the fewest packets of a cluster its rate is
// measured over.
const probeMinPackets = 5

// probeSpanShare is the share of its planned span a cluster's packets
// reported so far must cover before it is measured.
const probeSpanShare = 0.8

// probeFullShare is the share of a cluster's receive rate the path is
// taken to carry when the cluster filled it (received slower than sent).
const probeFullShare = 0.95

// ceilingReached is how near the rate a cluster failed at one that
// raises the estimate must be to reset the backoff.
const ceilingReached = 0.95

// probeMinPadding is the least share of a cluster's rate its padding
// takes: with media at more than the rest, no cluster is planned.
const probeMinPadding = 0.1

// probeAcc measures one probe cluster from feedback. Owned by the
// Estimator (its mu).
type probeAcc struct {
	id                  uint16
	n, lost             int
	bytes               int
	firstSize, lastSize int
	firstSent, lastSent uint32 // µs modulo 2^32
	firstArr, lastArr   int64  // µs
	applied             bool   // measured with no packet since
	dirty               bool   // packets added since last measured
	want                int64  // µs: the span it was planned to be sent over, 0 when not told
	fresh               bool   // measured by this feedback, not yet judged
	full                bool   // received slower than sent
	rate                float64
}

// probeAdd counts a packet of cluster id reported with status, sent at
// sent and arrived at arrival (µs; meaningless when lost).
func (e *Estimator) probeAdd(id uint16, status uint8, sent uint32, arrival int64, size int) {
	slot := &e.probes[int(id)%probeSlots]
	if slot.id != id {
		*slot = probeAcc{id: id}
	}
	if status != StatusSmallDelta && status != StatusLargeDelta {
		slot.lost++
		return
	}
	if slot.n == 0 {
		slot.firstSent, slot.lastSent, slot.firstArr, slot.lastArr = sent, sent, arrival, arrival
		slot.firstSize, slot.lastSize = size, size
	}
	if int32(sent-slot.firstSent) < 0 {
		slot.firstSent = sent
	}
	if int32(sent-slot.lastSent) > 0 {
		slot.lastSent = sent
	}
	if arrival < slot.firstArr {
		slot.firstArr, slot.firstSize = arrival, size
	}
	if arrival >= slot.lastArr {
		slot.lastArr, slot.lastSize = arrival, size
	}
	slot.n++
	slot.bytes += size
	slot.dirty = true
}

// probeMeasure measures the clusters that feedback added to: the
// delivered rate is the lower of the rate sent (its bytes but the last
// over its send span) and the rate received (its bytes but the first
// over its arrival span). A cluster's packets are all the transport
// sent while it was under way, media and padding: what the path carried.
// The measurement is the blame for an over-use reported with it or
// within probeBlame after.
func (e *Estimator) probeMeasure(now int64) {
	for i := range e.probes {
		c := &e.probes[i]
		if !c.dirty || c.n < probeMinPackets || float64(int32(c.lastSent-c.firstSent)) < probeSpanShare*float64(c.want) {
			continue
		}
		c.dirty = false
		sendSpan := float64(int32(c.lastSent-c.firstSent)) / 1e6
		recvSpan := float64(c.lastArr-c.firstArr) / 1e6
		if sendSpan <= 0 || recvSpan <= 0 {
			continue
		}
		sendRate := float64(c.bytes-c.lastSize) * 8 / sendSpan
		recvRate := float64(c.bytes-c.firstSize) * 8 / recvSpan
		c.rate = min(sendRate, recvRate)
		// Received slower than sent: the cluster filled the path, which
		// carried a little less than its receive rate.
		c.full = recvRate < 0.9*sendRate
		if c.full {
			c.rate = probeFullShare * recvRate
		}
		c.fresh = true
		if !c.applied {
			e.stats.Probes++
			c.applied = true
		}
		e.stats.ProbeRate = c.rate
		e.probeCap, e.probeCapAt, e.heardAt = c.rate, now, now
		e.probed.Store(uint32(c.id))
	}
}

// probeRaise raises the estimate to the rate of each cluster just
// measured that shows room: no over-use (overused false), under lossLow
// of it lost, and its rate above the estimate. A cluster received at
// least 0.9 as fast as it was sent did not fill the path: there may be
// more room, the prober's next cluster may go higher. One received
// slower filled it: its rate is probeFullShare of its receive rate,
// and the prober counts it as failed.
func (e *Estimator) probeRaise(overused bool) {
	for i := range e.probes {
		c := &e.probes[i]
		if !c.fresh {
			continue
		}
		c.fresh = false
		lossy := float64(c.lost) > lossLow*float64(c.n+c.lost)
		if overused || lossy || c.rate <= e.Estimate() {
			continue
		}
		rate := min(c.rate, e.cfg.Max)
		e.stats.ProbeUps++
		e.probeUps.Add(1)
		e.ctl.rate = max(e.ctl.rate, rate)
		if !c.full {
			e.probeUp.Store(uint32(c.id))
		}
		// The acknowledged rate becomes the cluster's: the controller
		// goes back to multiplicative increase only when that is far
		// above the rate that last congested.
		e.acked = max(e.acked, rate)
		if !math.IsInf(e.loss.rate, 1) {
			e.loss.rate = max(e.loss.rate, rate)
		}
	}
}

// ProbeRaises returns how many probe measurements raised the estimate:
// an allocation that sees it move may move a stream up at once, the
// room shown.
func (e *Estimator) ProbeRaises() uint64 { return e.probeUps.Load() }

// expectProbe tells the estimator that cluster id is planned to be sent
// over span µs: it is measured once that much of it is reported, not on
// its first few packets (a burst at its start, or packets read together
// by the receiver, look faster than the path).
// An over-use reported from its start to probeBlame after its planned
// end is blamed on it: the cut goes no lower than 0.85 times the
// estimate it started from (probeFloor).
func (e *Estimator) expectProbe(id uint16, now, span int64) {
	e.mu.Lock()
	e.probes[int(id)%probeSlots] = probeAcc{id: id, want: span}
	e.flight = probeFlight{id: id, from: now / 1000, until: now/1000 + span + probeBlame, pre: e.Estimate()}
	e.mu.Unlock()
}

// probeFlight is the last cluster planned, until it is measured. Owned
// by the Estimator (its mu).
type probeFlight struct {
	id          uint16
	from, until int64 // µs
	pre         float64
}

// probeFloor returns the least an over-use at now (µs) cuts the
// delay-based estimate to when a probe cluster is to blame, 0 when none
// is: 0.85 times the higher of the estimate the last cluster started
// from (from its start to probeBlame after its planned end) and the rate
// a cluster measured within probeBlame was delivered at. A cluster
// measured low (its padding missing from the feedback, the media alone
// measured) does not take the estimate under what it was before it.
func (e *Estimator) probeFloor(now int64) float64 {
	floor := 0.0
	if f := &e.flight; f.id != 0 && now >= f.from && now < f.until {
		floor = beta * f.pre
	}
	if e.probeCapAt != 0 && now-e.probeCapAt < probeBlame {
		floor = max(floor, beta*e.probeCap)
	}
	return floor
}

// Probed returns the id of the last probe cluster the estimator
// measured, 0 before any.
func (e *Estimator) Probed() uint16 { return uint16(e.probed.Load()) }

// ProbeConfig configures a Prober; zero values are documented defaults.
type ProbeConfig struct {
	// Packets is the number of packets of a cluster, Size their size in
	// bytes and Duration (ns) the time it is sent over. Defaults 10,
	// 1000 bytes and 100 ms; the rate decides how many actually fit:
	// at least probeMinPackets.
	Packets, Size int
	Duration      int64
	// MaxFactor bounds a cluster's rate to MaxFactor × the estimate,
	// Margin to (1 + Margin) × the target. Defaults 2 and 0.25. After a
	// cluster that did not raise the estimate (the path is full), the
	// next goes at most RetryFactor × the estimate (default 1.25): a
	// full path is not flooded, and one that opened is found, then
	// climbed at MaxFactor.
	MaxFactor, Margin, RetryFactor float64
	// Wait (ns) is the longest a cluster waits for its measurement before
	// the next may start. Default 1 s.
	Wait int64
	// Backoff (ns) is the pause after a cluster that did not raise the
	// estimate or was delivered slower than sent (the path is full), doubled after each such cluster up to BackoffMax and
	// reset by one that does: a path that cannot carry more is not
	// flooded with probes, and one that can is found within BackoffMax.
	// Defaults 250 ms and 1.5 s.
	Backoff, BackoffMax int64
	// AfterCut (ns) is how long after the estimate was cut (over-use or
	// loss) no cluster starts: the path is converging. Default 2 s.
	AfterCut int64
}

func (c *ProbeConfig) setDefaults() {
	if c.Packets == 0 {
		c.Packets = 10
	}
	if c.Size == 0 {
		c.Size = 1000
	}
	if c.Duration == 0 {
		c.Duration = 100e6
	}
	if c.MaxFactor == 0 {
		c.MaxFactor = 2
	}
	if c.Margin == 0 {
		c.Margin = 0.25
	}
	if c.RetryFactor == 0 {
		c.RetryFactor = 1.25
	}
	if c.Wait == 0 {
		c.Wait = 1e9
	}
	if c.Backoff == 0 {
		c.Backoff = 250e6
	}
	if c.BackoffMax == 0 {
		c.BackoffMax = 1500e6
	}
	if c.AfterCut == 0 {
		c.AfterCut = 2e9
	}
}

// Validate reports whether the config, with defaults applied, is usable.
// Errors wrap ErrInvalidConfig.
func (c ProbeConfig) Validate() error {
	c.setDefaults()
	switch {
	case c.Packets < probeMinPackets || c.Packets > 100:
		return fmt.Errorf("%w: probe packets %d outside %d..100", ErrInvalidConfig, c.Packets, probeMinPackets)
	case c.Size < 100 || c.Size > 1200:
		return fmt.Errorf("%w: probe size %d outside 100..1200", ErrInvalidConfig, c.Size)
	case c.Duration <= 0 || c.Wait <= 0 || c.Backoff <= 0 || c.BackoffMax < c.Backoff || c.AfterCut < 0:
		return fmt.Errorf("%w: probe duration %d, wait %d, backoff %d..%d", ErrInvalidConfig, c.Duration, c.Wait, c.Backoff, c.BackoffMax)
	case !(c.MaxFactor > 1) || math.IsInf(c.MaxFactor, 0) || !(c.Margin >= 0) || math.IsInf(c.Margin, 0) ||
		!(c.RetryFactor > 1) || c.RetryFactor > c.MaxFactor:
		return fmt.Errorf("%w: probe factor %v (retry %v), margin %v", ErrInvalidConfig, c.MaxFactor, c.RetryFactor, c.Margin)
	}
	return nil
}

// Cluster is a probe cluster to send: Packets packets of padding of Size
// bytes, one every Interval ns, each recorded with [History.RecordProbe]
// and ID, as is the media sent meanwhile.
type Cluster struct {
	ID       uint16
	Rate     float64 // bit/s: the transport's rate during the cluster, media included
	Padding  float64 // bit/s: the padding's share of it
	Packets  int
	Size     int
	Interval int64 // ns
}

// Prober plans the probe clusters of one transport: one at a time, the
// next once the estimator has measured the last (or Wait has passed), and
// none once the estimate reaches the target. Safe for concurrent use.
type Prober struct {
	cfg ProbeConfig
	est *Estimator

	mu      sync.Mutex // guards everything below
	id      uint16     // the last cluster planned, 0 before
	startAt int64      // ns: when it was planned
	endAt   int64      // ns: when its last packet is due
	judged  bool       // the last cluster's outcome has set the backoff
	backoff int64      // ns: the pause after the last cluster, 0 when it raised the estimate
	rate    float64    // the last cluster's rate
	// ceiling is the rate of the last cluster that failed, 0 when one
	// has since raised the estimate at about that rate or more: one
	// raising it below does not reset the backoff, so that on a full
	// path clusters that fail (at MaxFactor) and clusters that pass (at
	// RetryFactor, from the estimate their over-use cut) do not
	// alternate without a pause.
	ceiling float64
	stats   ProbeStats
}

// ProbeStats counts what a Prober planned and was told was sent.
type ProbeStats struct {
	Clusters uint64
	Packets  uint64 // probe packets sent
	Bytes    uint64 // probe bytes sent
	Stopped  uint64 // clusters stopped early: the estimate answered
	Failed   uint64 // clusters that did not raise the estimate
}

// NewProber returns a prober of the transport est estimates.
func NewProber(cfg ProbeConfig, est *Estimator) (*Prober, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if est == nil {
		return nil, fmt.Errorf("%w: nil estimator", ErrInvalidConfig)
	}
	cfg.setDefaults()
	return &Prober{cfg: cfg, est: est}, nil
}

// Plan returns the cluster to send at now (ns) towards target (bit/s)
// while the transport sends media at media bit/s, ok false when none is
// due: the estimate already reaches the target, the last cluster is
// still being sent or measured, or media alone fills the cluster's rate.
// The cluster's rate is the transport's during it, media included (the
// transport records what it sends meanwhile as the cluster's): its
// padding makes up the difference.
func (p *Prober) Plan(target, media float64, now int64) (c Cluster, ok bool) {
	est := p.est.Estimate()
	if !(target > est) {
		return c, false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.id != 0 && (now < p.endAt || (p.est.Probed() != p.id && now-p.startAt < p.cfg.Wait)) {
		return c, false
	}
	if cut := p.est.lastCut.Load(); cut != 0 && now-cut < p.cfg.AfterCut {
		return c, false // converging after a cut: no probing into it
	}
	if p.id != 0 && !p.judged {
		p.judged = true
		switch {
		case p.est.probeUp.Load() != uint32(p.id):
			p.backoff = min(max(2*p.backoff, p.cfg.Backoff), p.cfg.BackoffMax)
			p.ceiling = p.rate
			p.stats.Failed++
		case p.ceiling == 0 || p.rate >= ceilingReached*p.ceiling:
			p.backoff, p.ceiling = 0, 0 // new ground: climb at MaxFactor
		default:
			// Raised, but below the rate a cluster failed at: the path
			// is as full as it was; the backoff stands.
		}
		p.endAt = now // the pause counts from here
	}
	if now-p.endAt < p.backoff {
		return c, false
	}
	factor := p.cfg.MaxFactor
	if p.backoff != 0 {
		factor = p.cfg.RetryFactor
	}
	rate := min(factor*est, (1+p.cfg.Margin)*target)
	pad := rate - max(media, 0)
	if !(pad >= probeMinPadding*rate) {
		return c, false // the media alone goes at the rate: nothing to add
	}
	n := int(math.Ceil(pad * float64(p.cfg.Duration) / 1e9 / 8 / float64(p.cfg.Size)))
	n = min(max(n, probeMinPackets), p.cfg.Packets)
	size := int(math.Ceil(pad * float64(p.cfg.Duration) / 1e9 / 8 / float64(n)))
	size = min(max(size, 100), p.cfg.Size)
	interval := int64(float64(size*8) / pad * 1e9)
	p.id++
	if p.id == 0 {
		p.id = 1
	}
	p.startAt, p.endAt, p.judged, p.rate = now, now+int64(n)*interval, false, rate
	p.est.expectProbe(p.id, now, int64(n-1)*interval/1000) // first packet to last
	p.stats.Clusters++
	return Cluster{ID: p.id, Rate: rate, Padding: pad, Packets: n, Size: size, Interval: interval}, true
}

// Sent counts a probe packet of size bytes sent.
func (p *Prober) Sent(size int) {
	p.mu.Lock()
	p.stats.Packets++
	p.stats.Bytes += uint64(size)
	p.mu.Unlock()
}

// Continue reports whether the cluster c should go on towards target:
// false once the estimate reaches it (counted as stopped early).
func (p *Prober) Continue(c Cluster, target float64) bool {
	if p.est.Estimate() < target {
		return true
	}
	p.mu.Lock()
	if p.id == c.ID {
		p.endAt = 0
	}
	p.stats.Stopped++
	p.mu.Unlock()
	return false
}

// Stats returns the prober's counters.
func (p *Prober) Stats() ProbeStats {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stats
}

// UpTarget returns the budget (bit/s) that would put the first stream
// the last Allocate limited, in priority order, on the highest layer it
// wants (from paused too) with the allocator's headroom, given the
// budget it shared; 0 when none is limited. It is what a transport
// probes towards: the prober climbs to it at most doubling a cluster,
// and stops once the estimate reaches it.
func (a *Allocator) UpTarget(budget float64, streams []*Stream) float64 {
	used := 0.0
	for _, s := range streams {
		if s.Layer >= 0 && (s.Audio || s.Rates[s.Layer] > 0) {
			used += s.Rates[s.Layer]
		}
	}
	for _, s := range a.order {
		if !s.Limited {
			continue
		}
		want := top(s, s.Max)
		if want <= s.Layer {
			continue
		}
		cur := 0.0
		if s.Layer >= 0 {
			cur = s.Rates[s.Layer]
		}
		return max(used-cur+s.Rates[want]*(1+a.cfg.UpHeadroom), budget)
	}
	return 0
}
