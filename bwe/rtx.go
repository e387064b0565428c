package bwe

// Retransmissions in the budget: what a transport resends for NACKs
// travels the same downlink as the media, whatever the allocation. The
// allocation shares the estimate less their rate (Budget), so that a
// NACK storm on a weak link moves video down instead of adding to the
// loss that caused it.

// rtxMaxShare is the most of the estimate retransmissions take off the
// budget: the core sends a subscriber retransmissions up to half of what
// it forwards it, by default.
const rtxMaxShare = 0.5

// rtxMinSpan is the shortest span (ns) a CounterRate measures over.
const rtxMinSpan = 100e6

// Budget returns what an allocation shares of estimate (bit/s) when
// retransmissions go at rtx bit/s: the estimate less rtx, which takes at
// most half of it.
func Budget(estimate, rtx float64) float64 {
	if !(rtx > 0) {
		return estimate
	}
	return estimate - min(rtx, rtxMaxShare*estimate)
}

// CounterRate turns a byte counter (a sum of counters, read at each
// allocation) into a rate: it rises at once to a higher rate measured,
// and falls by half each measurement, so a storm counts from its start
// and for a while after. Not safe for concurrent use; the zero value is
// ready.
type CounterRate struct {
	bytes uint64
	at    int64 // ns; 0 before the first reading
	rate  float64
}

// Update reads the counter's value bytes at now (ns) and returns the
// rate in bit/s. A counter that went back (a subscription gone from the
// sum) starts the measure again.
func (c *CounterRate) Update(bytes uint64, now int64) float64 {
	switch {
	case c.at == 0 || bytes < c.bytes || now < c.at:
		c.bytes, c.at, c.rate = bytes, now, 0
		return 0
	case now-c.at < rtxMinSpan:
		return c.rate
	}
	r := float64(bytes-c.bytes) * 8 / (float64(now-c.at) / 1e9)
	c.rate = max(r, (c.rate+r)/2)
	c.bytes, c.at = bytes, now
	return c.rate
}

// Rate returns the last rate measured.
func (c *CounterRate) Rate() float64 { return c.rate }
