package forward

import "sync/atomic"

// TrackStats counts what a track received and refused.
type TrackStats struct {
	PacketsIn    uint64 // every packet handed to HandleRTP
	BytesIn      uint64 // bytes of accepted packets
	Padding      uint64 // accepted packets with no payload (withheld)
	Malformed    uint64
	Oversized    uint64
	UnknownSSRC  uint64
	UnknownPT    uint64
	Duplicate    uint64
	OutOfWindow  uint64
	BadTimestamp uint64
}

// Dropped is the number of packets refused for any reason.
func (s TrackStats) Dropped() uint64 {
	return s.Malformed + s.Oversized + s.UnknownSSRC + s.UnknownPT + s.Duplicate + s.OutOfWindow + s.BadTimestamp
}

type trackCounters struct {
	packetsIn, bytesIn, padding                  atomic.Uint64
	malformed, oversized, unknownSSRC, unknownPT atomic.Uint64
	duplicate, outOfWindow, badTimestamp         atomic.Uint64
}

// Stats returns the track's counters. It takes no lock.
func (t *Track) Stats() TrackStats {
	c := &t.cnt
	return TrackStats{
		PacketsIn: c.packetsIn.Load(), BytesIn: c.bytesIn.Load(), Padding: c.padding.Load(),
		Malformed: c.malformed.Load(), Oversized: c.oversized.Load(),
		UnknownSSRC: c.unknownSSRC.Load(), UnknownPT: c.unknownPT.Load(),
		Duplicate: c.duplicate.Load(), OutOfWindow: c.outOfWindow.Load(), BadTimestamp: c.badTimestamp.Load(),
	}
}

// SubscriberStats counts what one subscriber was sent and what it was not.
type SubscriberStats struct {
	Packets     uint64 // packets handed to the writer
	Bytes       uint64
	Withheld    uint64 // packets with no media left out without a gap
	DropGate    uint64 // packets not sent while the gate was closed
	DropStale   uint64 // late packets of an earlier segment
	DropHandoff uint64 // packets skipped while a switch of source settled
	DropWrite   uint64 // packets the writer refused
}

type subCounters struct {
	packets, bytes, withheld                    atomic.Uint64
	dropGate, dropStale, dropHandoff, dropWrite atomic.Uint64
}

// Stats returns the subscriber's counters. It takes no lock.
func (s *Subscriber) Stats() SubscriberStats {
	c := &s.cnt
	return SubscriberStats{
		Packets: c.packets.Load(), Bytes: c.bytes.Load(), Withheld: c.withheld.Load(),
		DropGate: c.dropGate.Load(), DropStale: c.dropStale.Load(),
		DropHandoff: c.dropHandoff.Load(), DropWrite: c.dropWrite.Load(),
	}
}
