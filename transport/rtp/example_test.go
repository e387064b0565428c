package rtp_test

import (
	"fmt"
	"net"

	pionrtp "github.com/pion/rtp"

	"github.com/callcore/callcore/forward"
	"github.com/callcore/callcore/transport/rtp"
)

// printer prints each packet it receives.
type printer chan string

func (p printer) HandleRTP(b []byte) error {
	var h pionrtp.Header
	n, err := h.Unmarshal(b)
	if err != nil {
		return err
	}
	p <- fmt.Sprintf("ssrc %X pt %d seq %d payload %q", h.SSRC, h.PayloadType, h.SequenceNumber, b[n:])
	return nil
}

// An external sender publishes into a track through an Ingest, and a
// subscriber of the track goes out to an external receiver through an
// Egress. Here both externals are stand-ins: a UDP socket sends, and
// another Ingest receives and prints.
func Example() {
	got := make(printer, 2)
	receiver, err := rtp.NewIngest(rtp.IngestConfig{RTP: got}) // stands in for ffmpeg
	if err != nil {
		panic(err)
	}
	defer receiver.Close()

	track, err := forward.NewTrack(forward.TrackConfig{Kind: forward.Audio, ClockRate: 48000, PayloadType: 111})
	if err != nil {
		panic(err)
	}
	defer track.Close()
	in, err := rtp.NewIngest(rtp.IngestConfig{Addr: "127.0.0.1:0", RTP: track})
	if err != nil {
		panic(err)
	}
	defer in.Close()
	out, err := rtp.NewEgress(rtp.EgressConfig{Remote: receiver.Addr()})
	if err != nil {
		panic(err)
	}
	defer out.Close()
	if _, err := track.Subscribe(forward.SubscriberConfig{Writer: out, SSRC: 0xCAFE, PayloadType: 100, FirstSeq: 1000}); err != nil {
		panic(err)
	}

	// The sender, as ffmpeg -f rtp rtp://ADDR would.
	sender, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(in.Addr()))
	if err != nil {
		panic(err)
	}
	defer sender.Close()
	for i, payload := range []string{"first", "second"} {
		p := pionrtp.Packet{Header: pionrtp.Header{Version: 2, PayloadType: 111, SequenceNumber: uint16(7 + i), Timestamp: uint32(960 * i), SSRC: 0x1234}, Payload: []byte(payload)}
		b, _ := p.Marshal()
		if _, err := sender.Write(b); err != nil {
			panic(err)
		}
	}
	fmt.Println(<-got)
	fmt.Println(<-got)
	// Output:
	// ssrc CAFE pt 100 seq 1000 payload "first"
	// ssrc CAFE pt 100 seq 1001 payload "second"
}

// Keys as ffmpeg takes them: -srtp_out_suite AES_CM_128_HMAC_SHA1_80
// -srtp_out_params KEY, or SDP's a=crypto:1 AES_CM_128_HMAC_SHA1_80
// inline:KEY.
func ExampleParseKeys() {
	k, err := rtp.ParseKeys(rtp.ProfileAESCM128SHA1_80, "4W8CxJo5vfD0OVGIaJAyuLyOexK0D7VUxVFbF0Ym")
	if err != nil {
		panic(err)
	}
	fmt.Printf("%v key %x salt %x\n", k.Profile, k.Key, k.Salt)
	// Output:
	// AES_CM_128_HMAC_SHA1_80 key e16f02c49a39bdf0f4395188689032b8 salt bc8e7b12b40fb554c5515b174626
}
