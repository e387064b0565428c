package bwe_test

import (
	"encoding/binary"
	"errors"
	"testing"

	"github.com/pion/interceptor/pkg/twcc"
	"github.com/pion/rtcp"

	"github.com/callcore/callcore/bwe"
)

// FuzzParseRTCP checks the parser against pion's on any bytes: it never
// panics, refuses only with ErrMalformed, walks exactly the packet status
// count, and where pion reads the same one transport-wide feedback, reads
// the same statuses and deltas.
func FuzzParseRTCP(f *testing.F) {
	f.Add(feedbackBytes(f, []int64{0, 250, 500, -1, 100000}))
	f.Add(feedbackBytes(f, []int64{0, -1, -1, -1, 300, 9000000}))
	remb, _ := (&rtcp.ReceiverEstimatedMaximumBitrate{Bitrate: 1.5e6, SSRCs: []uint32{1, 2}}).Marshal()
	f.Add(remb)
	f.Fuzz(func(t *testing.T, b []byte) {
		var fb bwe.Feedback
		err := bwe.ParseRTCP(b, &fb)
		if err != nil {
			if !errors.Is(err, bwe.ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		for i := range fb.TWCC {
			it := fb.TWCC[i].Packets()
			n := 0
			for _, _, _, ok := it.Next(); ok; _, _, _, ok = it.Next() {
				n++
			}
			if n != int(fb.TWCC[i].Count) {
				t.Fatalf("walked %d statuses of %d", n, fb.TWCC[i].Count)
			}
		}
		pkts, perr := rtcp.Unmarshal(b)
		if perr != nil || len(pkts) != 1 {
			return
		}
		if r, ok := pkts[0].(*rtcp.ReceiverEstimatedMaximumBitrate); ok {
			// A mantissa of 0 is 0 bit/s at any exponent; pion reads it as
			// 2^(exponent+23), so there the oracle is the definition.
			want := r.Bitrate
			if b[17]&3 == 0 && b[18] == 0 && b[19] == 0 {
				want = 0
			}
			if !fb.HasREMB || float32(fb.REMB) != want {
				t.Fatalf("REMB %v (%v), want %v (pion %v)", fb.REMB, fb.HasREMB, want, r.Bitrate)
			}
		}
		p, ok := pkts[0].(*rtcp.TransportLayerCC)
		if !ok {
			return
		}
		if len(fb.TWCC) != 1 {
			t.Fatalf("pion reads a transport-wide feedback, the parser %d", len(fb.TWCC))
		}
		compareWithPion(t, &fb.TWCC[0], p)
	})
}

func compareWithPion(t *testing.T, got *bwe.TWCC, p *rtcp.TransportLayerCC) {
	t.Helper()
	if got.BaseSeq != p.BaseSequenceNumber || got.Count != p.PacketStatusCount || got.FbCount != p.FbPktCount ||
		got.MediaSSRC != p.MediaSSRC || uint32(got.RefTime)&0xffffff != p.ReferenceTime&0xffffff {
		t.Fatalf("header %+v, pion %+v", got, p)
	}
	it := got.Packets()
	d := 0
	for {
		seq, status, delta, ok := it.Next()
		if !ok {
			break
		}
		if status != bwe.StatusSmallDelta && status != bwe.StatusLargeDelta {
			continue
		}
		if d >= len(p.RecvDeltas) {
			t.Fatalf("seq %d: a delta pion does not have", seq)
		}
		if pd := p.RecvDeltas[d]; pd.Delta != delta || int(pd.Type) != int(status) {
			t.Fatalf("seq %d: status %d delta %d, pion %d %d", seq, status, delta, pd.Type, pd.Delta)
		}
		d++
	}
	if d != len(p.RecvDeltas) {
		t.Fatalf("%d deltas, pion %d", d, len(p.RecvDeltas))
	}
}

// FuzzFeedbackRoundTrip records the arrivals the fuzzer describes in
// pion's receiver-side recorder, marshals its feedback, and checks that
// the parser gives back every packet's status and arrival (to the
// format's 250 µs).
func FuzzFeedbackRoundTrip(f *testing.F) {
	f.Add([]byte{0, 10, 1, 20, 3, 0, 0, 0, 2, 200})
	f.Add([]byte{5, 255, 0, 255, 9, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		rec := twcc.NewRecorder(7)
		arrivals := map[uint16]int64{}
		seq := uint16(65500) // wraps
		at := int64(1e6)
		for len(b) >= 2 && len(arrivals) < 2000 {
			seq += uint16(b[0]%4) + 1 // gaps of up to 3 lost packets
			at += int64(b[1]) * 250 * int64(1+b[0]/64)
			b = b[2:]
			rec.Record(9, seq, at)
			arrivals[seq] = at
		}
		pkts := rec.BuildFeedbackPacket()
		if len(pkts) == 0 {
			return
		}
		buf, err := rtcp.Marshal(pkts)
		if err != nil {
			t.Fatal(err)
		}
		var fb bwe.Feedback
		seen := 0
		for len(buf) > 0 { // one feedback at a time: the buffer holds 4
			n := 4 * (int(binary.BigEndian.Uint16(buf[2:])) + 1)
			if err := bwe.ParseRTCP(buf[:n], &fb); err != nil {
				t.Fatalf("pion's feedback refused: %v", err)
			}
			buf = buf[n:]
			tw := &fb.TWCC[0]
			arr := int64(tw.RefTime) * 64000
			it := tw.Packets()
			var first int64 = -1
			for {
				s, status, delta, ok := it.Next()
				if !ok {
					break
				}
				want, received := arrivals[s]
				if received != (status != bwe.StatusNotReceived) {
					t.Fatalf("seq %d: status %d, received %v", s, status, received)
				}
				if !received {
					continue
				}
				seen++
				arr += delta
				if first < 0 {
					first = want - arr
				}
				if e := want - arr - first; e < -250 || e > 250 {
					t.Fatalf("seq %d: arrival off by %d µs", s, e)
				}
			}
		}
		if seen != len(arrivals) {
			t.Fatalf("%d packets reported of %d", seen, len(arrivals))
		}
	})
}

// feedbackBytes marshals a feedback of pion's recorder for arrivals in
// µs (-1: lost), from sequence number 100.
func feedbackBytes(tb testing.TB, arrivals []int64) []byte {
	rec := twcc.NewRecorder(7)
	for i, a := range arrivals {
		if a >= 0 {
			rec.Record(9, uint16(100+i), 1e6+a)
		}
	}
	b, err := rtcp.Marshal(rec.BuildFeedbackPacket())
	if err != nil {
		tb.Fatal(err)
	}
	return b
}
