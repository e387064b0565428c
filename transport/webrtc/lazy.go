package webrtc

import (
	"sync"
	"sync/atomic"

	"github.com/pion/interceptor"
)

// Nothing ticks for a peer that receives nothing. pion's NACK generator,
// receiver-report and TWCC-feedback interceptors each start a goroutine
// with a ticker (100 ms, 1 s, 100 ms) when pion binds the peer's RTCP
// writer, at the peer's creation, whether or not the peer will ever
// publish. onReceive wraps such an interceptor so that it is bound to the
// writer only when the peer's first remote stream is: a peer that only
// subscribes (most of a call's peers) runs none of their tickers.
//
// The wrapped interceptors return the writer they are given unchanged
// from BindRTCPWriter (they only write to it), which is what makes the
// delay possible; onReceiveFactory checks it when it binds.
//
// Nor does their RTCP reader run before then: the receiver-report
// interceptor parses every RTCP packet the peer reads, subscribers'
// transport-wide feedback included, into pion's structures (allocating),
// only to find the sender reports of streams it receives. Until the
// peer's first remote stream it has none, so onReceive reads past it.

// onReceiveFactory makes onReceive interceptors.
type onReceiveFactory struct{ inner interceptor.Factory }

func (f onReceiveFactory) NewInterceptor(id string) (interceptor.Interceptor, error) {
	i, err := f.inner.NewInterceptor(id)
	if err != nil {
		return nil, err
	}
	return &onReceive{Interceptor: i}, nil
}

// onReceive delays binding its interceptor's RTCP writer until a remote
// stream is bound.
type onReceive struct {
	interceptor.Interceptor
	mu     sync.Mutex // guards writer and bound
	writer interceptor.RTCPWriter
	bound  bool
	// receiving is set once bound: RTCP readers go through the
	// interceptor's from then on.
	receiving atomic.Bool
}

// BindRTCPReader returns a reader that reads past the interceptor's until
// the peer receives a stream.
func (o *onReceive) BindRTCPReader(r interceptor.RTCPReader) interceptor.RTCPReader {
	inner := o.Interceptor.BindRTCPReader(r)
	return interceptor.RTCPReaderFunc(func(b []byte, a interceptor.Attributes) (int, interceptor.Attributes, error) {
		if o.receiving.Load() {
			return inner.Read(b, a)
		}
		return r.Read(b, a)
	})
}

// BindRTCPWriter keeps the writer for later.
func (o *onReceive) BindRTCPWriter(w interceptor.RTCPWriter) interceptor.RTCPWriter {
	o.mu.Lock()
	o.writer = w
	o.mu.Unlock()
	return w
}

// BindRemoteStream binds the writer at the first remote stream, then the
// stream.
func (o *onReceive) BindRemoteStream(info *interceptor.StreamInfo, r interceptor.RTPReader) interceptor.RTPReader {
	o.mu.Lock()
	w := o.writer
	bind := !o.bound && w != nil
	o.bound = o.bound || bind
	o.mu.Unlock()
	if bind {
		o.Interceptor.BindRTCPWriter(w) // returns w: see above
		o.receiving.Store(true)
	}
	return o.Interceptor.BindRemoteStream(info, r)
}
