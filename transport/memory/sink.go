package memory

import (
	"encoding/binary"
	"sync"

	"github.com/callcore/callcore/transport"
)

// Sink records copies of the packets it is given. It is safe for
// concurrent use.
type Sink struct {
	mu   sync.Mutex // guards rtp and rtcp
	rtp  [][]byte
	rtcp [][]byte
}

// WriteRTP records header and payload as one packet.
func (s *Sink) WriteRTP(header, payload []byte) error {
	pkt := append(append(make([]byte, 0, len(header)+len(payload)), header...), payload...)
	s.mu.Lock()
	s.rtp = append(s.rtp, pkt)
	s.mu.Unlock()
	return nil
}

// WriteRTCP records an RTCP packet.
func (s *Sink) WriteRTCP(pkt []byte) error {
	c := append([]byte(nil), pkt...)
	s.mu.Lock()
	s.rtcp = append(s.rtcp, c)
	s.mu.Unlock()
	return nil
}

// Packets returns the RTP packets recorded so far.
func (s *Sink) Packets() [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([][]byte(nil), s.rtp...)
}

// RTCP returns the RTCP packets recorded so far.
func (s *Sink) RTCP() [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([][]byte(nil), s.rtcp...)
}

// Len returns how many RTP packets were recorded.
func (s *Sink) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.rtp)
}

// Counter counts RTP packets and folds a checksum of each one's SSRC,
// sequence number, timestamp, length and payload edges, without copying:
// the sink benchmarks use, so that a number is only made by packets that
// arrived intact. It must be written from one goroutine at a time and read
// after the writer is done.
type Counter struct {
	Packets  uint64
	Bytes    uint64
	Checksum uint64
}

// WriteRTP counts and folds one packet.
func (c *Counter) WriteRTP(header, payload []byte) error {
	c.Packets++
	c.Bytes += uint64(len(header) + len(payload))
	c.Checksum += Fold(header, payload)
	return nil
}

// Fold is the per-packet checksum Counter adds up: a mix of the header's
// sequence number, timestamp and SSRC with the packet's length and the
// first and last payload bytes.
func Fold(header, payload []byte) uint64 {
	if len(header) < 12 {
		return 0
	}
	x := uint64(binary.BigEndian.Uint16(header[2:]))<<48 ^
		uint64(binary.BigEndian.Uint32(header[4:]))<<16 ^
		uint64(binary.BigEndian.Uint32(header[8:])) ^
		uint64(len(header)+len(payload))<<32
	if len(payload) > 0 {
		x ^= uint64(payload[0])<<8 | uint64(payload[len(payload)-1])
	}
	// splitmix64 finaliser: every input bit moves every output bit.
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	return x ^ x>>31
}

var (
	_ transport.RTPWriter  = (*Sink)(nil)
	_ transport.RTCPWriter = (*Sink)(nil)
	_ transport.RTPWriter  = (*Counter)(nil)
)
