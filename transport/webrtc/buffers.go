package webrtc

import (
	"io"
	"sync/atomic"

	"github.com/pion/transport/v5/packetio"
)

// Buffer sizes of a peer's SRTP and SRTCP streams: pion's for RTP (a
// stream the core reads at once never holds much), a fifth of pion's
// 100 KB for RTCP, since nobody reads the RTCP pion keeps for SSRCs it
// does not know (a client's own reports name them) and each such stream
// filled to its limit for the peer's life.
const (
	rtpBufferSize  = 1000 * 1000
	rtcpBufferSize = 20 * 1000
)

// streamBuffers is a peer's pion buffer factory (SettingEngine's
// BufferFactory). pion makes a stream with a buffer for every SSRC it
// sees, RTP or RTCP, even one nothing will ever read, and keeps it until
// the peer closes: RTCP under random SSRCs grew the heap by 1 KB a
// packet. The factory bounds the streams a client can make the peer
// hold: past limit() at once, a stream gets a buffer that drops
// everything, and the peer is ended once that has happened more than
// limit() times (onAbuse).
type streamBuffers struct {
	limit   func() int
	onAbuse func()
	live    atomic.Int64 // buffers made and not closed
	excess  atomic.Int64 // streams refused a buffer
}

func (sb *streamBuffers) factory(t packetio.BufferPacketType, _ uint32) io.ReadWriteCloser {
	limit := int64(sb.limit())
	if sb.live.Load() >= limit {
		if sb.excess.Add(1) == limit+1 {
			go sb.onAbuse() // pion's goroutine must not wait for the peer's close
		}
		return dropBuffer{}
	}
	sb.live.Add(1)
	b := &countedBuffer{Buffer: packetio.NewBuffer(), live: &sb.live}
	if t == packetio.RTCPBufferPacket {
		b.SetLimitSize(rtcpBufferSize)
	} else {
		b.SetLimitSize(rtpBufferSize)
	}
	return b
}

// countedBuffer is a stream's buffer, given back to its peer's count when
// pion closes the stream. It has the methods pion's own buffer wrapper
// has (srtp looks for the attribute ones).
type countedBuffer struct {
	*packetio.Buffer
	live   *atomic.Int64
	closed atomic.Bool
}

func (b *countedBuffer) Read(p []byte) (int, error) {
	n, _, err := b.Buffer.Read(p, nil)
	return n, err
}

func (b *countedBuffer) Write(p []byte) (int, error) { return b.Buffer.Write(p, nil) }

func (b *countedBuffer) ReadWithAttributes(p []byte, a packetio.Attributes) (int, packetio.Attributes, error) {
	return b.Buffer.Read(p, a)
}

func (b *countedBuffer) WriteWithAttributes(p []byte, a packetio.Attributes) (int, error) {
	return b.Buffer.Write(p, a)
}

func (b *countedBuffer) Close() error {
	if b.closed.CompareAndSwap(false, true) {
		b.live.Add(-1)
	}
	return b.Buffer.Close()
}

// dropBuffer is the buffer of a stream past the bound: what is written is
// dropped, a read ends at once.
type dropBuffer struct{}

func (dropBuffer) Read([]byte) (int, error)    { return 0, io.EOF }
func (dropBuffer) Write(p []byte) (int, error) { return len(p), nil }
func (dropBuffer) Close() error                { return nil }
