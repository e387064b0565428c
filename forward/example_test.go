package forward_test

import (
	"fmt"

	"github.com/pion/rtp"

	"github.com/callcore/callcore/forward"
	"github.com/callcore/callcore/transport"
)

// A publisher's packets fanned out to two subscribers, each with its own
// SSRC, payload type and numbering.
func Example() {
	track, err := forward.NewTrack(forward.TrackConfig{Kind: forward.Video, ClockRate: 90000, PayloadType: 96})
	if err != nil {
		panic(err)
	}
	defer track.Close()
	for _, ssrc := range []uint32{0xA, 0xB} {
		print := transport.RTPWriterFunc(func(header, payload []byte) error {
			var p rtp.Header
			if _, err := p.Unmarshal(header); err != nil {
				return err
			}
			fmt.Printf("to %X: pt %d seq %d ts %d payload %q\n", p.SSRC, p.PayloadType, p.SequenceNumber, p.Timestamp, payload)
			return nil
		})
		if _, err := track.Subscribe(forward.SubscriberConfig{Writer: print, SSRC: ssrc, PayloadType: 100, FirstSeq: 1000}); err != nil {
			panic(err)
		}
	}
	for i, payload := range []string{"frame1", "frame2"} {
		pkt := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 96, SequenceNumber: uint16(65535 + i), Timestamp: uint32(3000 * i), SSRC: 1}, Payload: []byte(payload)}
		b, _ := pkt.Marshal()
		if err := track.HandleRTP(b); err != nil {
			panic(err)
		}
	}
	// Output:
	// to A: pt 100 seq 1000 ts 0 payload "frame1"
	// to B: pt 100 seq 1000 ts 0 payload "frame1"
	// to A: pt 100 seq 1001 ts 3000 payload "frame2"
	// to B: pt 100 seq 1001 ts 3000 payload "frame2"
}
