package webrtc

import (
	"errors"
	"sync"
	"time"

	"github.com/callcore/callcore/bwe"
	"github.com/callcore/callcore/forward"
)

// Probing of a peer's downlink (bwe.Prober): when the allocation leaves a
// video stream below the layer it wants (or paused), the peer is sent a
// cluster of padding-only packets on one of its subscriptions' RTX
// streams (forward.Subscriber.Pad), at a rate above the estimate and
// towards what the next layer up needs. Each carries the transport-wide
// sequence number like any packet; the writer records it in the History
// with the cluster's id, so the estimator measures the rate the cluster
// was delivered at and raises the estimate to it when the path showed
// no over-use. A cluster is sent in steps of probeStep from a timer that
// exists only while the cluster does: nothing ticks for an idle peer.

const (
	probeStep     = 5e6 // ns between the sends of a cluster's due packets
	probeSize     = 275 // bytes a probe packet takes on the wire, about
	probeOverhead = 20  // of which the RTP header and the extension
	probePackets  = 50
)

// prober is a peer's probe state; mu guards it. It is taken by the RTCP
// loops (start) and the cluster's timer (step), never on the packet
// path; no callback is made with it held.
type prober struct {
	p *bwe.Prober

	mu      sync.Mutex
	running bool
	c       bwe.Cluster
	target  float64
	left    int
	next    int64 // ns: when the next packet is due
	timer   *time.Timer
	stopped bool            // the peer closed
	subs    []*Subscription // scratch of pad
}

func newProber(est *bwe.Estimator) (*prober, error) {
	p, err := bwe.NewProber(bwe.ProbeConfig{Size: probeSize, Packets: probePackets}, est)
	if err != nil {
		return nil, err
	}
	return &prober{p: p}, nil
}

// ProbeStats returns the counters of the peer's downlink probing.
func (p *Peer) ProbeStats() bwe.ProbeStats { return p.down.probe.p.Stats() }

// probe starts a cluster towards target (bit/s) at now when one is due,
// the peer sending media at media bit/s.
func (p *Peer) probe(target, media float64, now int64) {
	pr := p.down.probe
	if target <= 0 {
		return
	}
	pr.mu.Lock()
	defer pr.mu.Unlock()
	if pr.running || pr.stopped {
		return
	}
	c, ok := pr.p.Plan(target, media, now)
	if !ok {
		return
	}
	pr.running, pr.c, pr.target, pr.left, pr.next = true, c, target, c.Packets, now
	p.down.probeID.Store(uint32(c.ID))
	p.down.padID.Store(uint32(c.ID))
	if pr.timer == nil {
		pr.timer = time.AfterFunc(0, p.probeStep)
	} else {
		pr.timer.Reset(0)
	}
}

// probeStep sends the cluster's packets due now and arms the timer for
// the next ones.
func (p *Peer) probeStep() {
	pr := p.down.probe
	pr.mu.Lock()
	defer pr.mu.Unlock()
	if !pr.running || pr.stopped {
		return
	}
	now := p.down.clock.Nanotime()
	n := 0
	for pr.left-n > 0 && pr.next <= now {
		n++
		pr.next += pr.c.Interval
	}
	if n > 0 {
		if !pr.p.Continue(pr.c, pr.target) || !p.pad(pr, n, pr.c.Size-probeOverhead) {
			p.endCluster() // the estimate answered, or nothing to pad on
			return
		}
		for range n {
			pr.p.Sent(pr.c.Size)
		}
		pr.left -= n
	}
	if pr.left == 0 {
		p.endCluster()
		return
	}
	pr.timer.Reset(time.Duration(max(pr.next-now, probeStep)))
}

// endCluster ends the cluster under way: the media the writers send next
// is no longer part of it (padding a busy track's section writes later
// still is: padID). pr.mu is held.
func (p *Peer) endCluster() {
	p.down.probe.running = false
	p.down.probeID.Store(0)
}

// stopProbe stops probing for good (the peer closes).
func (d *downlink) stopProbe() {
	pr := d.probe
	pr.mu.Lock()
	d.probeID.Store(0)
	pr.stopped, pr.running = true, false
	if pr.timer != nil {
		pr.timer.Stop()
	}
	pr.mu.Unlock()
}

// pad sends n padding packets of size padding bytes on the first video
// subscription that has an RTX stream and is sending, and reports
// whether one took them. pr.mu is held.
func (p *Peer) pad(pr *prober, n, size int) bool {
	p.mu.Lock()
	pr.subs = pr.subs[:0]
	for s := range p.subs {
		pr.subs = append(pr.subs, s)
	}
	p.mu.Unlock()
	for _, s := range pr.subs {
		fs := s.sub.Load()
		if fs == nil || s.local.kind != forward.Video || s.out.twccID == 0 {
			continue
		}
		s.out.immediate.Store(true) // no fan-out flushes these
		err := fs.Pad(n, min(size, forward.MaxPadding))
		s.out.immediate.Store(false)
		if err == nil {
			return true
		}
		if !errors.Is(err, forward.ErrPadding) {
			return false
		}
	}
	return false
}

// paddingOnly reports whether an RTP packet is padding and nothing else:
// the padding bit set and the payload all padding.
func paddingOnly(header, payload []byte) bool {
	return len(header) >= 12 && header[0]&0x20 != 0 && len(payload) > 0 && int(payload[len(payload)-1]) == len(payload)
}
