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

	RTXIn               uint64 // packets unwrapped from the publisher's RTX stream
	RTXPadding          uint64 // RTX packets with no original in them (probing)
	KeyFrames           uint64 // key frames that arrived
	KeyFrameRequestsIn  uint64 // PLI and FIR from subscribers
	KeyFrameRequestsOut uint64 // requests sent upstream after merging

	MutedDrop           uint64 // publisher packets not forwarded because the track is muted
	Generated           uint64 // empty-media packets sent
	ParameterSetsResent uint64 // H.264 SPS and PPS sent again before an IDR at unmute
	NoEmptyMedia        uint64 // times the muter had no empty frames for the codec
	NACKsOut            uint64 // NACK entries sent to the publisher for upstream loss

	Handoffs  uint64 // publisher packets that slept until the section was handed to them
	Delegated uint64 // requests (feedback, pumps) left to the goroutine holding the section

	NoLevel uint64 // audio packets with media but no audio level, while levels are read
}

// Dropped is the number of packets refused for any reason.
func (s TrackStats) Dropped() uint64 {
	return s.Malformed + s.Oversized + s.UnknownSSRC + s.UnknownPT + s.Duplicate + s.OutOfWindow + s.BadTimestamp
}

type trackCounters struct {
	packetsIn, bytesIn, padding                  atomic.Uint64
	malformed, oversized, unknownSSRC, unknownPT atomic.Uint64
	duplicate, outOfWindow, badTimestamp         atomic.Uint64
	rtxIn, rtxPadding, keyFrames                 atomic.Uint64
	keyFrameRequestsIn, keyFrameRequestsOut      atomic.Uint64
	mutedDrop, generated, parameterSetsResent    atomic.Uint64
	noEmptyMedia, nacksOut                       atomic.Uint64
	handoffs, delegated                          atomic.Uint64
	noLevel                                      atomic.Uint64
}

// Stats returns the track's counters. It takes no lock.
func (t *Track) Stats() TrackStats {
	c := &t.cnt
	return TrackStats{
		PacketsIn: c.packetsIn.Load(), BytesIn: c.bytesIn.Load(), Padding: c.padding.Load(),
		Malformed: c.malformed.Load(), Oversized: c.oversized.Load(),
		UnknownSSRC: c.unknownSSRC.Load(), UnknownPT: c.unknownPT.Load(),
		Duplicate: c.duplicate.Load(), OutOfWindow: c.outOfWindow.Load(), BadTimestamp: c.badTimestamp.Load(),
		RTXIn: c.rtxIn.Load(), RTXPadding: c.rtxPadding.Load(), KeyFrames: c.keyFrames.Load(),
		KeyFrameRequestsIn: c.keyFrameRequestsIn.Load(), KeyFrameRequestsOut: c.keyFrameRequestsOut.Load(),
		MutedDrop: c.mutedDrop.Load(), Generated: c.generated.Load(),
		ParameterSetsResent: c.parameterSetsResent.Load(), NoEmptyMedia: c.noEmptyMedia.Load(),
		NACKsOut: c.nacksOut.Load(), Handoffs: c.handoffs.Load(), Delegated: c.delegated.Load(),
		NoLevel: c.noLevel.Load(),
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
	DropWrite   uint64 // packets the writer refused (a slow or closed transport)
	DropWaitKey uint64 // packets skipped while waiting for a key frame

	Replayed         uint64 // cached packets sent at a start, from the last key frame
	NACKs            uint64 // sequence numbers NACKed
	Retransmits      uint64 // of those, sent again from the cache
	RetransmitBytes  uint64 // their bytes, as cached (RTP header and payload)
	NACKTooOld       uint64 // NACKed before the key frame it started on, or unknown
	CacheMiss        uint64 // NACKed but not in the cache (lost upstream or too old)
	NACKOverflow     uint64 // NACK entries beyond what one RTCP packet may carry here
	KeyFrameRequests uint64 // PLI and FIR it sent
	BadRTCP          uint64 // malformed RTCP it sent

	KeyFrameRequestsDropped uint64 // PLI and FIR over its budget, ignored
	NACKsDropped            uint64 // NACKed sequence numbers over its budget, ignored
	RetransmitsRefused      uint64 // retransmissions over its share of what it is sent
	Padding                 uint64 // padding-only packets sent on its RTX stream (probes)
	PaddingBytes            uint64 // their padding bytes
	PaddingRefused          uint64 // Pad calls refused
}

type subCounters struct {
	packets, bytes, withheld                    atomic.Uint64
	dropGate, dropStale, dropHandoff, dropWrite atomic.Uint64
	dropWaitKey, replayed, nacks, retransmits   atomic.Uint64
	nackTooOld, cacheMiss, nackOverflow         atomic.Uint64
	keyFrameRequests, badRTCP                   atomic.Uint64
	keyFrameRequestsDropped, nacksDropped       atomic.Uint64
	retransmitsRefused, retransmitBytes         atomic.Uint64
	padding, paddingBytes, paddingRefused       atomic.Uint64
}

// Stats returns the subscriber's counters. It takes no lock.
func (s *Subscriber) Stats() SubscriberStats {
	c := &s.cnt
	return SubscriberStats{
		Packets: c.packets.Load(), Bytes: c.bytes.Load(), Withheld: c.withheld.Load(),
		DropGate: c.dropGate.Load(), DropStale: c.dropStale.Load(),
		DropHandoff: c.dropHandoff.Load(), DropWrite: c.dropWrite.Load(), DropWaitKey: c.dropWaitKey.Load(),
		Replayed: c.replayed.Load(), NACKs: c.nacks.Load(), Retransmits: c.retransmits.Load(),
		NACKTooOld: c.nackTooOld.Load(), CacheMiss: c.cacheMiss.Load(), NACKOverflow: c.nackOverflow.Load(),
		KeyFrameRequests: c.keyFrameRequests.Load(), BadRTCP: c.badRTCP.Load(),
		KeyFrameRequestsDropped: c.keyFrameRequestsDropped.Load(), NACKsDropped: c.nacksDropped.Load(),
		RetransmitsRefused: c.retransmitsRefused.Load(), RetransmitBytes: c.retransmitBytes.Load(),
		Padding: c.padding.Load(), PaddingBytes: c.paddingBytes.Load(), PaddingRefused: c.paddingRefused.Load(),
	}
}
