package webrtc

import (
	"encoding/binary"
	"sync/atomic"
	"time"

	"github.com/pion/sdp/v3"
	pion "github.com/pion/webrtc/v4"

	"github.com/callcore/callcore/bwe"
)

// Congestion control of a peer's downlink: every packet the server sends
// the peer (direct path or pion's, media or retransmission) carries the
// transport-wide sequence number extension when the peer negotiated it,
// numbered from the peer's bwe.History, which records its send time and
// size. The peer's feedback (transport-wide feedback, REMB), read by each
// subscription's RTCP loop, goes to the peer's bwe.Estimator.

// monoClock is a monotonic clock in nanoseconds since an epoch.
type monoClock struct{ epoch time.Time }

func (c monoClock) Nanotime() int64 { return int64(time.Since(c.epoch)) }

// downlink is a peer's congestion-control state.
type downlink struct {
	clock monoClock
	hist  *bwe.History
	est   *bwe.Estimator
	probe *prober  // probe.go
	pace  peerPace // pace.go
	// probeID is the probe cluster being sent, 0 when none: the writers
	// record the media sent meanwhile with it, so the cluster measures
	// what the path carried (probe.go). padID is the last cluster
	// started: padding-only packets are recorded with it, whenever the
	// track's section writes them.
	probeID, padID atomic.Uint32
}

// put records a packet the writer sent: padding as part of the last
// probe cluster, media as part of the cluster under way if any.
func (d *downlink) put(seq uint16, size int, padOnly bool) {
	id := &d.probeID
	if padOnly {
		id = &d.padID
	}
	d.hist.PutProbe(seq, size, d.clock.Nanotime(), uint16(id.Load()))
}

// probedHeadroom is the estimator's ProbedHeadroom when the downlink is
// probed: the estimate grows by itself to no more than 1.5 times the
// acknowledged rate plus this, and beyond on what a probe showed (or,
// when nothing was heard from the path for a while, as unprobed).
// Unprobed, the default AckedHeadroom (300 kbit/s) lets it grow without
// a probe.
const probedHeadroom = 10e3

func newDownlink(epoch time.Time, probing bool) (*downlink, error) {
	d := &downlink{clock: monoClock{epoch: epoch}}
	d.hist = bwe.NewHistory(d.clock)
	var cfg bwe.Config
	if probing {
		cfg.ProbedHeadroom = probedHeadroom
	}
	est, err := bwe.New(cfg, d.hist)
	if err != nil {
		return nil, err
	}
	d.est = est
	if d.probe, err = newProber(est); err != nil {
		return nil, err
	}
	return d, nil
}

// Estimator returns the estimator of the peer's downlink: its estimate of
// what the server may send the peer, from the peer's feedback.
func (p *Peer) Estimator() *bwe.Estimator { return p.down.est }

// twccID returns the ID negotiated for the transport-wide sequence number
// extension, 0 when it was not.
func twccID(params []pion.RTPHeaderExtensionParameter) uint8 {
	for _, e := range params {
		if e.URI == sdp.TransportCCURI && e.ID > 0 && e.ID < 15 {
			return uint8(e.ID)
		}
	}
	return 0
}

// twccExtra bounds what putTWCC adds to a header.
const twccExtra = 8

// putTWCC writes into dst the RTP header of header (its fixed part, CSRCs
// and extension block; what follows, a payload prefix the core rewrote, is
// copied after) with a one-byte extension element id carrying seq added,
// and returns the length written. dst needs len(header)+twccExtra bytes.
// A header whose extension block is not RFC 8285's one-byte form is
// copied unchanged (the core writes only one-byte blocks for IDs under
// 15, and id is under 15).
func putTWCC(dst, header []byte, id uint8, seq uint16) int {
	fixed := 12 + 4*int(header[0]&0x0f)
	if len(header) < fixed {
		return copy(dst, header)
	}
	elem := [4]byte{id<<4 | 1, byte(seq >> 8), byte(seq), 0}
	if header[0]&0x10 == 0 {
		copy(dst, header[:fixed])
		dst[0] |= 0x10
		binary.BigEndian.PutUint16(dst[fixed:], 0xBEDE)
		binary.BigEndian.PutUint16(dst[fixed+2:], 1)
		copy(dst[fixed+4:], elem[:])
		return fixed + 8 + copy(dst[fixed+8:], header[fixed:])
	}
	if len(header) < fixed+4 || binary.BigEndian.Uint16(header[fixed:]) != 0xBEDE {
		return copy(dst, header)
	}
	words := int(binary.BigEndian.Uint16(header[fixed+2:]))
	end := fixed + 4 + 4*words
	if len(header) < end {
		return copy(dst, header)
	}
	n := copy(dst, header[:end])
	n += copy(dst[n:], elem[:]) // the element and one byte of padding
	binary.BigEndian.PutUint16(dst[fixed+2:], uint16(words+1))
	return n + copy(dst[n:], header[end:])
}

// readFeedback hands the peer's RTCP to the downlink's estimator (a
// malformed packet is counted there), then shares the estimate out
// (allocate.go). Without congestion control it does nothing.
func (p *Peer) readFeedback(pkt []byte) {
	if p.cfg.Engine.cfg.NoCongestionControl {
		return
	}
	now := p.down.clock.Nanotime()
	p.askKeys() // pace.go
	if p.down.est.HandleRTCP(pkt, now) == nil {
		p.setPaceRate() // pace.go
		p.allocate(now)
	}
}
