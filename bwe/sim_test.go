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
	fbEvery  int64 // ns between two feedback packets
	size     int

	// layers, when set, are the media rates the sender chooses from
	// (lowest first): it sends the highest that fits in the estimate
	// with 15 % headroom, instead of the estimate itself; with prober set
	// it probes towards the next layer up.
	layers      []float64
	prober      *bwe.Prober
	cluster     bwe.Cluster
	clusterLeft int
	nextProbe   int64
	probeBytes  int
	// tag is the probe cluster under way: media sent meanwhile is part
	// of it, as a transport's writers record it.
	tag uint16

	// alloc, when set, chooses the layer of stream (its Rates the
	// layers) every 250 ms, as a transport does, instead of layers.
	alloc     *bwe.Allocator
	stream    *bwe.Stream
	nextAlloc int64
	raises    uint64 // the estimator's ProbeRaises the allocator was told of
	// minBudget is the lowest estimate an allocation shared since it was
	// last reset.
	minBudget float64

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
	s.fbEvery = 100 * ms
	s.nextFB = s.clock.now + s.fbEvery
	return s
}

// probedConfig makes the estimator the one of a transport that probes
// (transport/webrtc): while the path is heard from, its estimate grows
// by itself only to 1.5 times the acknowledged rate plus 10 kbit/s,
// beyond only on a probe.
func (s *sim) probedConfig() {
	est, err := bwe.New(bwe.Config{ProbedHeadroom: 10e3}, s.hist)
	if err != nil {
		s.t.Fatal(err)
	}
	s.est = est
}

// run advances d ns in 1 ms steps.
func (s *sim) run(d int64) {
	for end := s.clock.now + d; s.clock.now < end; s.clock.now += ms {
		now := s.clock.now
		if s.alloc != nil && now >= s.nextAlloc {
			s.nextAlloc = now + 250*ms
			s.minBudget = min(s.minBudget, s.est.Estimate())
			if n := s.est.ProbeRaises(); n != s.raises {
				s.raises = n
				s.alloc.Probed()
			}
			s.alloc.Allocate(s.est.Estimate(), now, []*bwe.Stream{s.stream})
		}
		s.credit += s.mediaRate() / 1000
		s.probe(now)
		if s.prober != nil {
			s.tag = 0
			if s.clusterLeft > 0 {
				s.tag = s.cluster.ID
			}
		}
		// In alloc mode media leaves as frames: 30 a second, each a burst.
		for s.credit >= float64(s.size*8) && (s.alloc == nil || now%(33*ms) == 0 || s.credit >= s.mediaRate()/30) {
			s.credit -= float64(s.size * 8)
			seq := s.hist.RecordProbe(s.size, s.tag)
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
			s.nextFB += s.fbEvery
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

// mediaRate is the rate the sender sends media at.
func (s *sim) mediaRate() float64 {
	if s.alloc != nil {
		if s.stream.Layer < 0 {
			return 0
		}
		// An encoder's rate wanders around what the allocation
		// measured: here 5 % under it.
		return 0.95 * s.stream.Rates[s.stream.Layer]
	}
	if s.layers == nil {
		return s.est.Estimate()
	}
	r := s.layers[0]
	for _, l := range s.layers {
		if l*1.15 <= s.est.Estimate() {
			r = l
		}
	}
	return r
}

// target is the rate the next layer up needs, 0 at the top.
func (s *sim) target() float64 {
	if s.alloc != nil {
		return s.alloc.UpTarget(s.est.Estimate(), []*bwe.Stream{s.stream})
	}
	cur := s.mediaRate()
	for _, l := range s.layers {
		if l > cur {
			return l * 1.15
		}
	}
	return 0
}

// probe sends the probe packets due at now, planning a cluster when none
// is under way.
func (s *sim) probe(now int64) {
	if s.prober == nil {
		return
	}
	target := s.target()
	if s.clusterLeft == 0 {
		c, ok := s.prober.Plan(target, s.mediaRate(), now)
		if !ok {
			return
		}
		s.cluster, s.clusterLeft, s.nextProbe = c, c.Packets, now
	}
	for s.clusterLeft > 0 && s.nextProbe <= now {
		if !s.prober.Continue(s.cluster, target) {
			s.clusterLeft = 0
			return
		}
		seq := s.hist.RecordProbe(s.cluster.Size, s.cluster.ID)
		s.prober.Sent(s.cluster.Size)
		s.probeBytes += s.cluster.Size
		s.clusterLeft--
		s.nextProbe += s.cluster.Interval
		if at, ok := s.link.send(now, s.cluster.Size); ok {
			s.inflight = append(s.inflight, arrival{at, seq})
		}
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
