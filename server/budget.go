package server

import (
	"bytes"
	"sync"
	"time"
)

// bucket is a token bucket: burst tokens, refilled at rate a second.
type bucket struct {
	rate, burst, tokens float64
	last                time.Time
}

func newBucket(rate float64, burst int) bucket {
	return bucket{rate: rate, burst: float64(burst), tokens: float64(burst)}
}

// refill brings the tokens up to t.
func (b *bucket) refill(t time.Time) {
	if !b.last.IsZero() {
		b.tokens = min(b.burst, b.tokens+t.Sub(b.last).Seconds()*b.rate)
	}
	b.last = t
}

// take spends a token, reporting false when there is none.
func (b *bucket) take(t time.Time) bool {
	b.refill(t)
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// untilFull is how long after t the bucket is full again.
func (b *bucket) untilFull(t time.Time) time.Duration {
	b.refill(t)
	if b.rate <= 0 {
		return 0
	}
	return time.Duration((b.burst - b.tokens) / b.rate * float64(time.Second))
}

// budgets are token buckets shared by key: one for each user, spent by
// all its connections, and one for each remote address. A budget outlives
// its last connection until it has filled up again, so reconnecting gives
// no fresh burst.
type budgets struct {
	rate  float64
	burst int

	mu sync.Mutex
	m  map[string]*budget // guarded by mu
}

// budget is one key's bucket and the connections holding it; both
// guarded by budgets.mu.
type budget struct {
	b    bucket
	refs int
}

func newBudgets(rate float64, burst int) *budgets {
	return &budgets{rate: rate, burst: burst, m: map[string]*budget{}}
}

// acquire returns key's budget, held until release.
func (bs *budgets) acquire(key string) *budget {
	bs.mu.Lock()
	defer bs.mu.Unlock()
	b := bs.m[key]
	if b == nil {
		b = &budget{b: newBucket(bs.rate, bs.burst)}
		bs.m[key] = b
	}
	b.refs++
	return b
}

// take spends one of b's tokens, reporting false when there is none.
func (bs *budgets) take(b *budget, t time.Time) bool {
	bs.mu.Lock()
	defer bs.mu.Unlock()
	return b.b.take(t)
}

// release gives key's budget back; once nobody holds it, it is forgotten
// when it has filled up again.
func (bs *budgets) release(key string, b *budget) {
	bs.mu.Lock()
	defer bs.mu.Unlock()
	b.refs--
	bs.forgetLocked(key, b)
}

// forgetLocked drops key's budget if nobody holds it and it is full, or
// looks again when it will be. bs.mu is held.
func (bs *budgets) forgetLocked(key string, b *budget) {
	if b.refs > 0 || bs.m[key] != b {
		return
	}
	if d := b.b.untilFull(time.Now()); d > 0 {
		time.AfterFunc(d, func() {
			bs.mu.Lock()
			defer bs.mu.Unlock()
			bs.forgetLocked(key, b)
		})
		return
	}
	delete(bs.m, key)
}

// len is the number of budgets kept.
func (bs *budgets) len() int {
	bs.mu.Lock()
	defer bs.mu.Unlock()
	return len(bs.m)
}

// quickID finds the top-level "id" of a message without decoding it (one
// pass over its bytes, no allocation): refused messages are answered at
// this cost only. 0 when there is none, or it is not a plain integer.
func quickID(data []byte) uint64 {
	depth, in := 0, false
	for i := 0; i < len(data); i++ {
		switch c := data[i]; {
		case in && c == '\\':
			i++
		case c == '"':
			if !in && depth == 1 && bytes.HasPrefix(data[i:], []byte(`"id"`)) {
				if id, ok := idValue(data[i+4:]); ok {
					return id
				}
			}
			in = !in
		case in:
		case c == '{' || c == '[':
			depth++
		case c == '}' || c == ']':
			depth--
		}
	}
	return 0
}

// idValue reads `: digits` after a member name.
func idValue(rest []byte) (uint64, bool) {
	rest = bytes.TrimLeft(rest, " \t\r\n")
	if len(rest) == 0 || rest[0] != ':' {
		return 0, false
	}
	rest = bytes.TrimLeft(rest[1:], " \t\r\n")
	var id uint64
	n := 0
	for ; n < len(rest) && rest[n] >= '0' && rest[n] <= '9'; n++ {
		if n == 19 {
			return 0, false
		}
		id = id*10 + uint64(rest[n]-'0')
	}
	return id, n > 0
}
