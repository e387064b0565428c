package server

import (
	"sync"
	"sync/atomic"

	"github.com/callcore/callcore/forward"
	"github.com/callcore/callcore/transport/webrtc"
)

// ledger turns the core's per-track and per-subscriber counters into
// server-wide totals that never go back when a track or subscription
// ends. From the first scrape on, it knows every published track (the
// stays hand them over when they are published) and every subscription
// seen at a scrape or still held by a peer when its stay ended; a scrape
// reads them all and retires the ones gone, adding their final counts to
// the retired sums. Only a scrape retires, so nothing is counted twice.
// What it misses: a subscription that starts and ends between two scrapes
// while its peer lives on, and whatever ended before the first scrape.
//
// Nothing here runs on the packet path: the core's counters are atomics
// read at a scrape.
type ledger struct {
	on       atomic.Bool                      // set by the first scrape: before it nothing is recorded
	mu       sync.Mutex                       // guards the fields below; held for a scrape's sums only
	tracks   map[*forward.Track]struct{}      // guarded by mu
	subs     map[*forward.Subscriber]struct{} // guarded by mu
	oldTrack forward.TrackStats               // the retired tracks' counts; guarded by mu
	oldSub   forward.SubscriberStats          // the retired subscribers' counts; guarded by mu
}

func newLedger() *ledger {
	return &ledger{tracks: map[*forward.Track]struct{}{}, subs: map[*forward.Subscriber]struct{}{}}
}

// track records a published track.
func (l *ledger) track(t *forward.Track) {
	if !l.on.Load() {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.tracks[t] = struct{}{}
}

// peer records what a closed peer sent its user, before its stay is
// released (so that no scrape has retired them yet).
func (l *ledger) peer(p *webrtc.Peer) {
	if !l.on.Load() {
		return
	}
	subs := p.Subscriptions()
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, s := range subs {
		if fs := s.Subscriber(); fs != nil {
			l.subs[fs] = struct{}{}
		}
	}
}

// live is what the server's peers publish and receive at a scrape.
type live struct {
	tracks map[*forward.Track]struct{}
	subs   map[*forward.Subscriber]struct{}
}

// totals returns the counts of every track and subscriber recorded or
// live, and retires those no longer live. l.mu is held (see collect).
func (l *ledger) totals(now live) (forward.TrackStats, forward.SubscriberStats) {
	l.on.Store(true)
	for t := range now.tracks {
		l.tracks[t] = struct{}{}
	}
	for s := range now.subs {
		l.subs[s] = struct{}{}
	}
	ts, ss := l.oldTrack, l.oldSub
	for t := range l.tracks {
		st := t.Stats()
		addTrack(&ts, st)
		if _, ok := now.tracks[t]; !ok {
			addTrack(&l.oldTrack, st)
			delete(l.tracks, t)
		}
	}
	for s := range l.subs {
		st := s.Stats()
		addSub(&ss, st)
		if _, ok := now.subs[s]; !ok {
			addSub(&l.oldSub, st)
			delete(l.subs, s)
		}
	}
	return ts, ss
}

func addTrack(a *forward.TrackStats, b forward.TrackStats) {
	a.PacketsIn += b.PacketsIn
	a.BytesIn += b.BytesIn
	a.Padding += b.Padding
	a.Malformed += b.Malformed
	a.Oversized += b.Oversized
	a.UnknownSSRC += b.UnknownSSRC
	a.UnknownPT += b.UnknownPT
	a.Duplicate += b.Duplicate
	a.OutOfWindow += b.OutOfWindow
	a.BadTimestamp += b.BadTimestamp
	a.RTXIn += b.RTXIn
	a.RTXPadding += b.RTXPadding
	a.KeyFrames += b.KeyFrames
	a.KeyFrameRequestsIn += b.KeyFrameRequestsIn
	a.KeyFrameRequestsOut += b.KeyFrameRequestsOut
	a.MutedDrop += b.MutedDrop
	a.Generated += b.Generated
	a.ParameterSetsResent += b.ParameterSetsResent
	a.NoEmptyMedia += b.NoEmptyMedia
	a.NACKsOut += b.NACKsOut
}

func addSub(a *forward.SubscriberStats, b forward.SubscriberStats) {
	a.Packets += b.Packets
	a.Bytes += b.Bytes
	a.Withheld += b.Withheld
	a.DropGate += b.DropGate
	a.DropStale += b.DropStale
	a.DropHandoff += b.DropHandoff
	a.DropWrite += b.DropWrite
	a.DropWaitKey += b.DropWaitKey
	a.Replayed += b.Replayed
	a.NACKs += b.NACKs
	a.Retransmits += b.Retransmits
	a.NACKTooOld += b.NACKTooOld
	a.CacheMiss += b.CacheMiss
	a.NACKOverflow += b.NACKOverflow
	a.KeyFrameRequests += b.KeyFrameRequests
	a.BadRTCP += b.BadRTCP
}
