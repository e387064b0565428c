package webrtc

import (
	"encoding/binary"
	"math"
	"sync/atomic"
	"time"

	"github.com/pion/rtp"

	"github.com/callcore/callcore/pace"
)

// Pacing of a peer's downlink (package pace): once the peer has sent
// feedback, its video leaves no faster than paceFactor times its
// estimate. Each video subscription's writer reserves its packet's time
// in the peer's bucket; a packet that may not leave yet, and every packet
// after it while any is queued, goes into the subscription's ring, which
// the engine's one scheduler sends at the packets' times. Audio never
// waits: it is counted in the bucket and sent at once.
//
// Ownership: the ring's pending count hands the writer's SRTP context,
// its pion write stream and its report counters to the scheduler while
// packets are queued, and back once the last is sent (pace.Queue), so the
// writer and the scheduler never use them at once and nothing overtakes.
// Transport-wide numbers are taken when a packet actually leaves (the
// scheduler writes the number into the queued packet's extension, then
// encrypts it): the numbers follow the order on the wire and the History
// holds the real send time, so the estimator does not take the queue for
// network delay.

const (
	paceFactor   = 2.5   // the pacing rate, in times the estimate
	paceDepth    = 15e6  // ns of the pacing rate a burst may take at once: a camera's delta frame, not a key frame
	paceMaxDelay = 100e6 // ns: a video packet that would wait longer starts a drop to the next key frame
	paceSlots    = 128   // a video subscription's ring (256 KiB once used): a key frame of 150 KB
	paceOverhead = 40    // bytes counted per packet beyond the RTP packet: SRTP, UDP, IP
)

// The meta of a queued packet: flags, and the header's length (pion's
// path) or the offset of the transport-wide number (direct path, 0:
// none) in the bits above.
const (
	metaPad    = 1 << 0 // padding only: its record carries the probe cluster
	metaDirect = 1 << 1 // an RTP packet to encrypt and send on the engine's socket
)

// peerPace is a peer's pacing state: its bucket (rate 0 until the first
// feedback, never back to 0 after) and counters.
type peerPace struct {
	bucket   pace.Bucket
	keyWant  atomic.Bool // a writer dropped to the next key frame: the RTCP loop asks for it
	queued   atomic.Uint64
	dropped  atomic.Uint64
	maxDelay atomic.Int64 // ns
}

// PaceStats are the counters of a peer's pacing.
type PaceStats struct {
	Rate     float64       // bit/s the peer's video is paced at, 0 before its first feedback
	Queued   uint64        // video packets that waited in a ring
	Dropped  uint64        // video packets dropped to the next key frame (a queue past its bound, or full)
	MaxDelay time.Duration // the longest a packet waited
}

// PaceStats returns the counters of the peer's pacing.
func (p *Peer) PaceStats() PaceStats {
	pp := &p.down.pace
	return PaceStats{Rate: float64(pp.bucket.Rate()) * 8, Queued: pp.queued.Load(),
		Dropped: pp.dropped.Load(), MaxDelay: time.Duration(pp.maxDelay.Load())}
}

// setPaceRate sets the peer's pacing rate from its estimate, once it has
// feedback. Called by the RTCP loops after feedback.
func (p *Peer) setPaceRate() {
	if p.cfg.Engine.pacer == nil || !p.down.est.HasFeedback() {
		return
	}
	if r := int64(p.down.est.Estimate() * paceFactor / 8); r > 0 {
		p.down.pace.bucket.SetRate(r, paceDepth)
	}
}

// paceScratch is the scheduler goroutine's: one for the engine.
type paceScratch struct {
	hdr   rtp.Header
	tw    [2]byte
	buf   []byte
	batch *trackBatch // the direct path's datagrams of a round; nil without the engine's socket
}

// flush sends the round's datagrams (pace.Config.OnRound).
func (sc *paceScratch) flush() {
	if sc.batch != nil {
		_ = sc.batch.Flush()
	}
}

// paceOut is a video writer's pacing state, set at subscribe, nil for
// audio or with pacing off. Its fields other than the ring are the
// writer's (one goroutine at a time, as the rest of rtpOut).
type paceOut struct {
	sched    *pace.Scheduler
	q        *pace.Queue
	pp       *peerPace
	sc       *paceScratch
	keyStart func([]byte) bool // nil: the format has no key frames the core finds
	askKey   func()            // asks the publisher for a key frame; not on the packet path
	keyWant  atomic.Bool       // the writer wants a key frame (asked by the peer's RTCP loop)
	dropping bool              // dropping to the next key frame
	inKey    bool              // sending a key frame: never dropped
	midFrame bool              // the last packet of the main SSRC had no marker
	lastDue  int64             // the last queued packet's time
	kbuf     []byte            // a key frame's first bytes, joined
}

// charge counts an audio packet in the peer's bucket: it leaves at once.
func (w *rtpOut) charge(header, payload []byte) {
	if po := w.po; po.pp.bucket.Rate() != 0 {
		po.pp.bucket.Charge(po.sched.Now(), len(header)+len(payload)+paceOverhead)
	}
}

// pace decides a video packet's way: it reports false when the packet
// leaves now on the writer's usual path, true when it was queued or
// dropped. The peer's rate is 0 until its first feedback, and nothing is
// ever queued then: one atomic load.
func (w *rtpOut) pace(header, payload []byte) (bool, error) {
	po := w.po
	if po.pp.bucket.Rate() == 0 {
		return false, nil
	}
	busy := po.q.Busy()
	now := po.sched.Now()
	var due int64
	if paddingOnly(header, payload) {
		// Probe padding paces itself (5 ms steps, bounded): it is not
		// counted, only kept behind the packets queued on its writer.
		if !busy {
			return false, nil
		}
		due = po.lastDue
	} else {
		if len(header) >= 12 && binary.BigEndian.Uint32(header[8:]) == w.ssrc.Load() {
			if !po.midFrame && po.keyStart != nil { // a frame's first packet
				po.inKey = w.startsKey(header, payload)
				if po.inKey {
					po.dropping = false
				}
			}
			po.midFrame = header[1]&0x80 == 0 // the marker ends the frame
		}
		if po.dropping {
			po.pp.dropped.Add(1)
			return true, nil
		}
		bound := int64(paceMaxDelay)
		if po.inKey { // a key frame goes whole: dropping it would only ask for another
			bound = math.MaxInt64 / 4
		}
		d, ok := po.pp.bucket.Reserve(now, len(header)+len(payload)+paceOverhead, bound)
		if !ok {
			w.drop()
			return true, nil
		}
		if !busy && d <= now {
			return false, nil
		}
		due = max(d, po.lastDue)
	}
	return true, w.enqueue(header, payload, due, now, busy)
}

// drop starts dropping the writer's video to the next key frame, and asks
// for one.
func (w *rtpOut) drop() {
	po := w.po
	po.pp.dropped.Add(1)
	if po.keyStart == nil {
		return // no key frames to wait for: only this packet goes
	}
	po.dropping = true
	// Asked by the peer's next RTCP read (askKeys), outside the track's
	// section: from here, a layered source's other layers would run their
	// queued work inside this writer's call.
	po.keyWant.Store(true)
	po.pp.keyWant.Store(true)
}

// askKeys asks for the key frames the peer's writers dropped to. Called
// by the RTCP loops; one atomic load when none is wanted.
func (p *Peer) askKeys() {
	if !p.down.pace.keyWant.Swap(false) {
		return
	}
	for _, s := range p.Subscriptions() {
		if po := s.out.po; po != nil && po.keyWant.Swap(false) {
			po.askKey()
		}
	}
}

// startsKey reports whether the packet begins a key frame; its payload's
// first bytes may be at the end of header (the core's rewrite).
func (w *rtpOut) startsKey(header, payload []byte) bool {
	po := w.po
	n := rtpHeaderLen(header)
	if n <= 0 {
		return false
	}
	if n == len(header) {
		return po.keyStart(payload)
	}
	if po.kbuf == nil {
		po.kbuf = make([]byte, 0, readBufSize)
	}
	po.kbuf = append(append(po.kbuf[:0], header[n:]...), payload[:min(len(payload), cap(po.kbuf)-len(header)+n)]...)
	return po.keyStart(po.kbuf)
}

// rtpHeaderLen returns the length of the RTP header at the start of b
// (fixed part, CSRCs, extension block), 0 when b is shorter.
func rtpHeaderLen(b []byte) int {
	if len(b) < 12 {
		return 0
	}
	n := 12 + 4*int(b[0]&0x0f)
	if b[0]&0x10 != 0 {
		if len(b) < n+4 {
			return 0
		}
		n += 4 + 4*int(binary.BigEndian.Uint16(b[n+2:]))
	}
	if n > len(b) {
		return 0
	}
	return n
}

// twccSeqAt returns where putTWCC put the number in the header it wrote
// from header, 0 when it added none.
func twccSeqAt(header []byte) int {
	fixed := 12 + 4*int(header[0]&0x0f)
	if len(header) < fixed {
		return 0
	}
	if header[0]&0x10 == 0 {
		return fixed + 5
	}
	if len(header) < fixed+4 || binary.BigEndian.Uint16(header[fixed:]) != 0xBEDE {
		return 0
	}
	end := fixed + 4 + 4*int(binary.BigEndian.Uint16(header[fixed+2:]))
	if len(header) < end {
		return 0
	}
	return end + 1
}

// enqueue copies the packet into the writer's ring, to leave at due. On
// the direct path it is kept as an RTP packet with its transport-wide
// extension in place (the number written when it leaves), on pion's as
// the core gave it. A full ring drops to the next key frame.
func (w *rtpOut) enqueue(header, payload []byte, due, now int64, busy bool) error {
	po := w.po
	slot := po.q.Slot()
	if slot == nil {
		w.drop()
		return nil
	}
	var meta uint64
	if paddingOnly(header, payload) {
		meta |= metaPad
	}
	if f := w.fast.Load(); f != nil && (*f.to.Load()).IsValid() {
		if len(header)+len(payload)+twccExtra+srtpOverhead > cap(slot) {
			return errTooLarge
		}
		n, at := copy(slot[:cap(slot)], header), 0
		if w.twccID != 0 {
			n, at = putTWCC(slot[:cap(slot)], header, w.twccID, 0), twccSeqAt(header)
		}
		slot = append(slot[:n], payload...)
		meta |= metaDirect | uint64(at)<<8
		if !busy && !w.immediate.Load() {
			// The packets this writer put in the track's batch leave
			// before the scheduler can send this one.
			_ = w.tb.Flush()
		}
	} else {
		if len(header)+len(payload) > cap(slot) {
			return errTooLarge
		}
		slot = append(append(slot, header...), payload...)
		meta |= uint64(len(header)) << 8
	}
	po.q.Push(len(slot), due, now, meta)
	po.lastDue = due
	po.pp.queued.Add(1)
	return nil
}

// Send is the scheduler's: it sends a queued packet (pace.Sender).
func (w *rtpOut) Send(buf []byte, meta uint64, queued, now int64) {
	if w.closed.Load() {
		return
	}
	sc := w.po.sc
	var err error
	if meta&metaDirect != 0 {
		err = w.sendDirect(sc, buf, int(meta>>8), meta&metaPad != 0)
	} else if ws := w.ws.Load(); ws != nil {
		hl := int(meta >> 8)
		err = w.writePion(*ws, &sc.hdr, &sc.tw, &sc.buf, buf[:hl], buf[hl:])
	}
	if err != nil {
		return
	}
	d := now - queued
	for pp := w.po.pp; ; {
		m := pp.maxDelay.Load()
		if d <= m || pp.maxDelay.CompareAndSwap(m, d) {
			break
		}
	}
}

// sendDirect numbers a queued RTP packet and encrypts it into the
// scheduler's batch, sent on the engine's socket with one sendmmsg at the
// end of the scheduler's round (or when full); it records the packet.
func (w *rtpOut) sendDirect(sc *paceScratch, buf []byte, at int, pad bool) error {
	f := w.fast.Load()
	to := *f.to.Load()
	if !w.sock.reaches(to) { // the pair moved to ICE-TCP meanwhile: dropped
		return errTooLarge
	}
	var seq uint16
	if at != 0 {
		seq = w.down.hist.Next()
		binary.BigEndian.PutUint16(buf[at:], seq)
	}
	n := len(buf)
	if _, err := sc.batch.write(f.ctx, &sc.hdr, buf, nil, to); err != nil {
		return err
	}
	if at != 0 {
		w.down.put(seq, n, pad)
	}
	w.countHdr(&sc.hdr, w.clock.now(), n-sc.hdr.MarshalSize())
	return nil
}

var _ pace.Sender = (*rtpOut)(nil)

// newPaceOut is the pacing of a writer of peer p: with a ring for video,
// without (its packets only counted) for audio; nil with pacing off.
func newPaceOut(p *Peer, w *rtpOut, video bool, keyStart func([]byte) bool, askKey func()) *paceOut {
	e := p.cfg.Engine
	if e.pacer == nil {
		return nil
	}
	po := &paceOut{sched: e.pacer, pp: &p.down.pace, sc: &e.paceScratch, keyStart: keyStart, askKey: askKey}
	if video {
		po.q = e.pacer.NewQueue(paceSlots, batchSlot, w)
	}
	return po
}
