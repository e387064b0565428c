package forward

// bucket is a token bucket over a Clock's readings, with no lock: it is
// owned by one goroutine at a time (a subscriber's RTCP reader). Its level
// is kept in billionths of a token, so refilling is one multiplication.
type bucket struct {
	rate, full int64 // tokens a second; the most held, in billionths
	level      int64 // billionths of a token
	at         int64 // the clock reading of the last refill
}

const tokenUnit = 1_000_000_000

func newBucket(b Budget, now int64) bucket {
	full := int64(b.Burst) * tokenUnit
	return bucket{rate: int64(b.Rate), full: full, level: full, at: now}
}

// take takes one token at now, and reports false when there is none.
func (b *bucket) take(now int64) bool {
	if el := now - b.at; el > 0 {
		if el >= b.full/b.rate {
			b.level = b.full
		} else {
			b.level = min(b.full, b.level+el*b.rate)
		}
		b.at = now
	}
	if b.level < tokenUnit {
		return false
	}
	b.level -= tokenUnit
	return true
}

// rtxCredit bounds a subscriber's retransmissions by what it is sent: each
// forwarded packet earns percent hundredths of a retransmission, up to
// burst saved. It is owned by the exclusive section of the subscriber's
// track, like its munger.
type rtxCredit struct {
	earn, full int64 // per forwarded packet, and the most saved, in hundredths
	level      int64
}

func newRTXCredit(percent, burst int) rtxCredit {
	full := int64(burst) * 100
	return rtxCredit{earn: int64(percent), full: full, level: full}
}

// forwarded earns the credit of one packet sent: one addition on the
// packet path. The cap is applied when the credit is spent, which is the
// same as applying it at every packet, since only additions come between.
func (c *rtxCredit) forwarded() { c.level += c.earn }

// spend takes one retransmission, and reports false when it is not earned.
func (c *rtxCredit) spend() bool {
	c.level = min(c.level, c.full)
	if c.level < 100 {
		return false
	}
	c.level -= 100
	return true
}
