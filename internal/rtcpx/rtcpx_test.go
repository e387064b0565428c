package rtcpx

import (
	"testing"

	"github.com/pion/rtcp"
)

// FuzzParse checks Parse against pion/rtcp, the reference parser: on every
// compound packet pion accepts, Parse finds the same NACK entries and
// key-frame requests for the media SSRC; on anything, it never panics and
// never reports more NACK entries than it has room for.
func FuzzParse(f *testing.F) {
	for _, pkts := range [][]rtcp.Packet{
		{&rtcp.ReceiverReport{SSRC: 1}, &rtcp.TransportLayerNack{SenderSSRC: 1, MediaSSRC: 7, Nacks: []rtcp.NackPair{{PacketID: 10, LostPackets: 3}}}},
		{&rtcp.PictureLossIndication{SenderSSRC: 1, MediaSSRC: 7}},
		{&rtcp.FullIntraRequest{SenderSSRC: 1, FIR: []rtcp.FIREntry{{SSRC: 7, SequenceNumber: 1}}}},
	} {
		b, err := rtcp.Marshal(pkts)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add(AppendNACK(AppendPLI(nil, 1, 7), 1, 7, []NACK{{PID: 65535, BLP: 1}}))
	f.Fuzz(func(t *testing.T, b []byte) {
		var buf [8]NACK
		fb := Feedback{NACKs: buf[:0]}
		over, err := Parse(b, 7, &fb)
		if len(fb.NACKs) > cap(buf) {
			t.Fatal("NACKs beyond the buffer")
		}
		ref, refErr := rtcp.Unmarshal(b)
		if refErr != nil || padded(b) {
			// pion does not always strip padding before reading feedback
			// entries; Parse does (RFC 3550 6.4.1), so padded packets are
			// only checked for safety.
			return
		}
		if err != nil {
			t.Fatalf("pion accepts what Parse refuses: %v", err)
		}
		var nacks []NACK
		key := false
		for _, p := range ref {
			switch q := p.(type) {
			case *rtcp.TransportLayerNack:
				if q.MediaSSRC == 7 {
					for _, n := range q.Nacks {
						nacks = append(nacks, NACK{PID: n.PacketID, BLP: uint16(n.LostPackets)})
					}
				}
			case *rtcp.PictureLossIndication:
				key = key || q.MediaSSRC == 7
			case *rtcp.FullIntraRequest:
				for _, e := range q.FIR {
					key = key || e.SSRC == 7
				}
			}
		}
		if fb.KeyFrame != key {
			t.Fatalf("key-frame request %v, pion %v", fb.KeyFrame, key)
		}
		if len(fb.NACKs)+over != len(nacks) {
			t.Fatalf("%d NACK entries (+%d over), pion %d", len(fb.NACKs), over, len(nacks))
		}
		for i, n := range fb.NACKs {
			if n != nacks[i] {
				t.Fatalf("NACK %d: %+v, pion %+v", i, n, nacks[i])
			}
		}
	})
}

// padded reports whether a packet of the compound has its padding bit set.
func padded(b []byte) bool {
	for len(b) >= 4 {
		if b[0]&0x20 != 0 {
			return true
		}
		n := 4 * (int(b[2])<<8 | int(b[3]) + 1)
		if n > len(b) {
			return false
		}
		b = b[n:]
	}
	return false
}
