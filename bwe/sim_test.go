package bwe_test

import (
	"testing"

	"github.com/pion/interceptor/pkg/twcc"
	"github.com/pion/rtcp"

	"github.com/callcore/callcore/bwe"
)

// manualClock is a clock the test moves.
type manualClock struct{ now int64 }

func (c *manualClock) Nanotime() int64 { return c.now }

// link is a bottleneck: packets are sent at capacity (bit/s; 0 means
// unlimited) through a drop-tail queue of queueBytes, then travel prop
// ns.
type link struct {
	capacity   float64
	queueBytes int
	prop       int64
	busyUntil  int64 // ns: when the queue will be empty
}

// send returns when a packet of size bytes sent at now arrives, or false
// when the queue drops it.
func (l *link) send(now int64, size int) (int64, bool) {
	if l.capacity == 0 {
		return now + l.prop, true
	}
	start := max(now, l.busyUntil)
	backlog := float64(start-now) * l.capacity / 8e9 // bytes queued ahead
	if int(backlog)+size > l.queueBytes {
		return 0, false
	}
	l.busyUntil = start + int64(float64(size*8)/l.capacity*1e9)
	return l.busyUntil + l.prop, true
}

type arrival struct {
	at  int64
	seq uint16
}

type delivery struct {
	at  int64
	pkt []byte
}

// sim sends at the estimate through a link to a receiver that sends
// transport-wide feedback (pion's recorder) every 100 ms.
type sim struct {
	t        *testing.T
	clock    manualClock
	hist     *bwe.History
	est      *bwe.Estimator
	link     link
	rec      *twcc.Recorder
	inflight []arrival
	fb       []delivery
	credit   float64
	nextFB   int64
	size     int

	// per window
	sentBits   float64
	sent, lost int
}

const ms = int64(1e6)

func newSim(t *testing.T, capacity float64) *sim {
	s := &sim{t: t, size: 1200, rec: twcc.NewRecorder(1)}
	s.clock.now = 1000 * ms
	s.hist = bwe.NewHistory(&s.clock)
	est, err := bwe.New(bwe.Config{}, s.hist)
	if err != nil {
		t.Fatal(err)
	}
	s.est = est
	// A queue of 250 ms at the capacity, at least 30 packets (a router's
	// buffer; tc's default limit is larger).
	s.link = link{capacity: capacity, prop: 20 * ms, queueBytes: max(int(capacity/8*0.25), 30*1200)}
	s.nextFB = s.clock.now + 100*ms
	return s
}

// run advances d ns in 1 ms steps.
func (s *sim) run(d int64) {
	for end := s.clock.now + d; s.clock.now < end; s.clock.now += ms {
		now := s.clock.now
		s.credit += s.est.Estimate() / 1000
		for s.credit >= float64(s.size*8) {
			s.credit -= float64(s.size * 8)
			seq := s.hist.Record(s.size)
			s.sent++
			s.sentBits += float64(s.size * 8)
			if at, ok := s.link.send(now, s.size); ok {
				s.inflight = append(s.inflight, arrival{at, seq})
			} else {
				s.lost++
			}
		}
		n := 0
		for _, a := range s.inflight {
			if a.at > now {
				s.inflight[n] = a
				n++
				continue
			}
			s.rec.Record(5, a.seq, a.at/1000)
		}
		s.inflight = s.inflight[:n]
		if now >= s.nextFB {
			s.nextFB += 100 * ms
			if pkts := s.rec.BuildFeedbackPacket(); len(pkts) > 0 {
				b, err := rtcp.Marshal(pkts)
				if err != nil {
					s.t.Fatal(err)
				}
				s.fb = append(s.fb, delivery{now + s.link.prop, b})
			}
		}
		m := 0
		for _, d := range s.fb {
			if d.at > now {
				s.fb[m] = d
				m++
				continue
			}
			if err := s.est.HandleRTCP(d.pkt, now); err != nil {
				s.t.Fatalf("feedback refused: %v", err)
			}
		}
		s.fb = s.fb[:m]
	}
}

// window runs d ns and returns the rate sent (bit/s) and the fraction
// of packets the link dropped over it.
func (s *sim) window(d int64) (rate, loss float64) {
	s.sentBits, s.sent, s.lost = 0, 0, 0
	s.run(d)
	if s.sent > 0 {
		loss = float64(s.lost) / float64(s.sent)
	}
	return s.sentBits / (float64(d) / 1e9), loss
}
