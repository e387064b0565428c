package rtp

import (
	"sync/atomic"

	"github.com/callcore/callcore/transport"
)

// LateWriter is a transport.RTCPWriter whose target is set after it is
// handed out. It closes the wiring cycle between an Ingest and its track:
// give a LateWriter as forward.TrackConfig.Feedback, build the Ingest with
// the track as its RTP handler, then Set the Ingest. Until then RTCP is
// refused with ErrNoPeer. Safe for concurrent use.
type LateWriter struct {
	w atomic.Pointer[transport.RTCPWriter]
}

// Set makes w the target.
func (l *LateWriter) Set(w transport.RTCPWriter) { l.w.Store(&w) }

// WriteRTCP passes pkt to the target.
func (l *LateWriter) WriteRTCP(pkt []byte) error {
	w := l.w.Load()
	if w == nil {
		return ErrNoPeer
	}
	return (*w).WriteRTCP(pkt)
}

// LateHandler is a transport.RTCPHandler whose target is set after it is
// handed out. It closes the wiring cycle between an Egress and its
// subscriber: give a LateHandler as EgressConfig.RTCP, subscribe with the
// Egress as the Writer, then Set the subscriber. Until then RTCP is refused
// with ErrNoPeer (and counted as Refused). Safe for concurrent use.
type LateHandler struct {
	h atomic.Pointer[transport.RTCPHandler]
}

// Set makes h the target.
func (l *LateHandler) Set(h transport.RTCPHandler) { l.h.Store(&h) }

// HandleRTCP passes pkt to the target.
func (l *LateHandler) HandleRTCP(pkt []byte) error {
	h := l.h.Load()
	if h == nil {
		return ErrNoPeer
	}
	return (*h).HandleRTCP(pkt)
}
