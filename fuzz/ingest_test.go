package fuzz

import (
	"bytes"
	"errors"
	"testing"

	"github.com/pion/rtp"

	"github.com/callcore/callcore/forward"
	"github.com/callcore/callcore/transport/memory"
)

// FuzzIngest feeds arbitrary bytes to a track as a publisher's RTP. Oracle:
// no panic; every refusal wraps a forward sentinel and is counted; every
// packet that is forwarded is valid RTP for pion/rtp and carries the input's
// payload, padding and marker unchanged; counters add up.
func FuzzIngest(f *testing.F) {
	good := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 96, SequenceNumber: 7, SSRC: 1}, Payload: []byte{1, 2, 3}}
	_ = good.SetExtension(1, []byte{9})
	b, _ := good.Marshal()
	f.Add(b)
	f.Add(b[:12])
	f.Add([]byte{0x90, 96, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0xbe, 0xde, 0, 1, 0x10, 1, 0, 0})
	f.Add([]byte{0xa0, 96, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 4})
	f.Fuzz(func(t *testing.T, data []byte) {
		tr, err := forward.NewTrack(forward.TrackConfig{Kind: forward.Video, ClockRate: 90000, PayloadType: 96,
			Extensions: []forward.Extension{{ID: 1, URI: "urn:x"}, {ID: 2, URI: forward.URITransportCC}}})
		if err != nil {
			t.Fatal(err)
		}
		defer tr.Close()
		var sink memory.Sink
		if _, err := tr.Subscribe(forward.SubscriberConfig{Writer: &sink, SSRC: 5, PayloadType: 100,
			Extensions: []forward.Extension{{ID: 3, URI: "urn:x"}}}); err != nil {
			t.Fatal(err)
		}
		// The input is cut into packets at a 0xff 0xfe marker, so one input
		// can be a stream.
		var accepted uint64
		var inputs [][]byte
		for _, pkt := range bytes.Split(data, []byte{0xff, 0xfe}) {
			before := sink.Len()
			err := tr.HandleRTP(pkt)
			if err != nil {
				if !isSentinel(err) {
					t.Fatalf("error %v wraps no sentinel", err)
				}
				if sink.Len() != before {
					t.Fatalf("refused packet was forwarded")
				}
				continue
			}
			accepted++
			inputs = append(inputs, pkt)
		}
		st := tr.Stats()
		if st.PacketsIn != accepted+st.Dropped() {
			t.Fatalf("counters do not add up: %+v, accepted %d", st, accepted)
		}
		out := sink.Packets()
		if uint64(len(out))+st.Padding < accepted || len(out) > len(inputs) {
			t.Fatalf("%d accepted (%d padding), %d forwarded", accepted, st.Padding, len(out))
		}
		for _, o := range out {
			var p rtp.Packet
			if err := p.Unmarshal(o); err != nil {
				t.Fatalf("forwarded invalid RTP %x: %v", o, err)
			}
			if p.SSRC != 5 || p.PayloadType != 100 {
				t.Fatalf("not rewritten: %+v", p.Header)
			}
			for _, id := range p.GetExtensionIDs() {
				if id != 3 {
					t.Fatalf("extension %d passed through", id)
				}
			}
			if !fromSomeInput(p, inputs) {
				t.Fatalf("forwarded packet %x matches no accepted input", o)
			}
		}
	})
}

func fromSomeInput(p rtp.Packet, inputs [][]byte) bool {
	for _, in := range inputs {
		var q rtp.Packet
		if q.Unmarshal(in) != nil {
			continue
		}
		if q.Marker == p.Marker && bytes.Equal(q.Payload, p.Payload) && q.PaddingSize == p.PaddingSize && len(q.CSRC) == len(p.CSRC) {
			return true
		}
	}
	return false
}

func isSentinel(err error) bool {
	for _, s := range []error{forward.ErrMalformed, forward.ErrOversized, forward.ErrUnknownSSRC, forward.ErrUnknownPayloadType,
		forward.ErrDuplicate, forward.ErrOutOfWindow, forward.ErrTimestamp} {
		if errors.Is(err, s) {
			return true
		}
	}
	return false
}
