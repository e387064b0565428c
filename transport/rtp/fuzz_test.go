package rtp

import (
	"bytes"
	"net/netip"
	"testing"

	pionrtp "github.com/pion/rtp"
)

// keep records what reaches the handlers.
type keep struct{ rtp, rtcp [][]byte }

func (k *keep) HandleRTP(b []byte) error  { k.rtp = append(k.rtp, bytes.Clone(b)); return nil }
func (k *keep) HandleRTCP(b []byte) error { k.rtcp = append(k.rtcp, bytes.Clone(b)); return nil }

var fuzzKeys = &Keys{Profile: ProfileAEADAES128GCM, Key: make([]byte, 16), Salt: make([]byte, 12)}

// FuzzIngestHandle feeds one datagram three times (the last from another
// address) to an ingest's read path under a configuration the mode byte
// picks. Oracle: every datagram is counted exactly once, plain packets
// reach the handler unchanged, and an SRTP packet is accepted at most once
// (replays refused).
func FuzzIngestHandle(f *testing.F) {
	plain, _ := (&pionrtp.Packet{Header: pionrtp.Header{Version: 2, PayloadType: 96, SequenceNumber: 1, SSRC: 5}, Payload: []byte("media")}).Marshal()
	enc, _ := newContext(fuzzKeys)
	protected, _ := enc.EncryptRTP(nil, plain, nil)
	sr := []byte{0x80, 200, 0, 6, 0, 0, 0, 5, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20}
	srtcp, _ := enc.EncryptRTCP(nil, sr, nil)
	f.Add(uint8(0), plain)
	f.Add(uint8(2), protected)
	f.Add(uint8(1), sr)
	f.Add(uint8(8), sr)
	f.Add(uint8(10), srtcp)
	f.Add(uint8(4), plain)
	f.Add(uint8(0), make([]byte, 300))
	f.Fuzz(func(t *testing.T, mode uint8, data []byte) {
		var h keep
		cfg := IngestConfig{RTP: &h, RTCP: &h, RTCPMux: mode&1 != 0, MaxPacketSize: 256}
		if mode&2 != 0 {
			cfg.SRTP = fuzzKeys
		}
		if mode&4 != 0 {
			cfg.SSRC = 6
		}
		cfg.setDefaults()
		in := &Ingest{cfg: cfg}
		r := &reader{rtcp: mode&8 != 0}
		if cfg.SRTP != nil {
			r.ctx, _ = newContext(fuzzKeys)
		}
		from := []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:5000"), netip.MustParseAddrPort("127.0.0.1:5000"), netip.MustParseAddrPort("127.0.0.2:5000")}
		for _, a := range from {
			in.handle(r, bytes.Clone(data), a)
		}
		s := in.Stats()
		if got := s.RTPIn + s.RTCPIn + s.Dropped(); got != 3 || s.RTPIn != uint64(len(h.rtp)) {
			t.Fatalf("3 datagrams counted as %d: %+v", got, s)
		}
		if cfg.SRTP == nil {
			for _, p := range append(h.rtp, h.rtcp...) {
				if !bytes.Equal(p, data) {
					t.Fatalf("plain packet changed: %x -> %x", data, p)
				}
			}
			return
		}
		if len(h.rtp) > 1 || len(h.rtcp) > 1 {
			t.Fatalf("an SRTP datagram was accepted %d and %d times", len(h.rtp), len(h.rtcp))
		}
	})
}
