package webrtc

import (
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
)

// reportInterval is how often a peer sends its subscriptions' RTCP sender
// reports (pion's report interceptor's default).
const reportInterval = time.Second

// Sender reports are callcore's, not pion's: the direct path does not go
// through pion's interceptor chain, so pion's sender-report interceptor
// is not registered and every subscription's writer keeps what a sender
// report needs (packets, payload octets, the last RTP timestamp and when
// its first packet was sent) in three atomics, without a clock read per
// delivery on the direct path (the batch's time, read once per fan-out).

// sendClock is a 32-bit monotonic clock in units of 2^14 ns (16.4 µs); it
// wraps every 19.5 hours, and only differences of less than that are
// used.
type sendClock struct{ epoch time.Time }

func (c sendClock) at(t time.Time) uint32 { return uint32(t.Sub(c.epoch) >> 14) }

func (c sendClock) now() uint32 { return c.at(time.Now()) }

// clockUnit is a sendClock unit in seconds.
const clockUnit = float64(1<<14) / 1e9

// count records a packet the writer sent, sent at clock time at; hdr is
// the parsed header of the packet, octets its payload size. Only the
// subscription's main SSRC counts (not RTX). One goroutine at a time.
func (w *rtpOut) count(at uint32, octets int) { w.countHdr(&w.hdr, at, octets) }

// countHdr is count for the packet whose header hdr holds.
func (w *rtpOut) countHdr(hdr *rtp.Header, at uint32, octets int) {
	if hdr.SSRC != w.ssrc.Load() {
		return
	}
	w.packets.Store(w.packets.Load() + 1)
	w.octets.Store(w.octets.Load() + uint32(octets))
	if last := w.last.Load(); uint32(last>>32) != hdr.Timestamp || w.packets.Load() == 1 {
		w.last.Store(uint64(hdr.Timestamp)<<32 | uint64(at))
	}
}

// report returns the sender report at wall time now (clock time at), nil
// before the first packet.
func (w *rtpOut) report(now time.Time, at uint32, clockRate uint32) *rtcp.SenderReport {
	packets := w.packets.Load()
	if packets == 0 {
		return nil
	}
	last := w.last.Load()
	elapsed := float64(at-uint32(last)) * clockUnit
	return &rtcp.SenderReport{
		SSRC:        w.ssrc.Load(),
		NTPTime:     toNTP(now),
		RTPTime:     uint32(last>>32) + uint32(elapsed*float64(clockRate)),
		PacketCount: packets,
		OctetCount:  w.octets.Load(),
	}
}

// toNTP converts t to the 64-bit NTP format (RFC 3550).
func toNTP(t time.Time) uint64 {
	const unixToNTP = 2208988800
	secs := uint64(t.Unix()) + unixToNTP
	frac := (uint64(t.Nanosecond()) << 32) / 1e9
	return secs<<32 | frac
}

// armReports arms the sender-report timer if the peer has subscriptions
// and it is not armed: a peer that only publishes, or has nothing yet,
// runs no timer. p.mu is held.
func (p *Peer) armReports() {
	if p.reportsArmed || p.closed || len(p.subs) == 0 {
		return
	}
	p.reportsArmed = true
	p.wg.Add(1)
	if p.reports == nil {
		p.reports = time.AfterFunc(reportInterval, p.sendReports)
		return
	}
	p.reports.Reset(reportInterval)
}

// sendReports sends the sender reports of the peer's subscriptions in one
// compound packet, then re-arms its timer while the peer has any.
func (p *Peer) sendReports() {
	defer p.wg.Done()
	now := time.Now()
	at := p.cfg.Engine.clock.at(now)
	p.mu.Lock()
	subs := make([]*Subscription, 0, len(p.subs))
	for s := range p.subs {
		subs = append(subs, s)
	}
	p.mu.Unlock()
	var pkts []rtcp.Packet
	for _, s := range subs {
		if sr := s.out.report(now, at, s.local.clock); sr != nil {
			pkts = append(pkts, sr)
		}
	}
	if len(pkts) > 0 {
		_ = p.pc.WriteRTCP(pkts)
	}
	p.mu.Lock()
	p.reportsArmed = false
	p.armReports()
	p.mu.Unlock()
}
