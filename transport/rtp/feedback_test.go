package rtp_test

import (
	"bytes"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/srtp/v3"

	"github.com/callcore/callcore/forward"
	"github.com/callcore/callcore/transport/rtp"
)

// TestFeedbackLoop wires the core's RTCP both ways: a receiver's PLI
// reaches the subscriber through the Egress, the track asks the publisher
// for a key frame through the Ingest, and a receiver's NACK is answered by
// a retransmission through the Egress.
func TestFeedbackLoop(t *testing.T) {
	k := keys(t, rtp.ProfileAEADAES128GCM)
	p := freePair(t)
	pub, pubRTCP := udp(t, "127.0.0.1:"+strconv.Itoa(p)), udp(t, "127.0.0.1:"+strconv.Itoa(p+1))
	var upstream rtp.LateWriter
	track, err := forward.NewTrack(forward.TrackConfig{Kind: forward.Video, ClockRate: 90000, PayloadType: 96,
		MimeType: "video/VP8", Feedback: &upstream})
	if err != nil {
		t.Fatal(err)
	}
	defer track.Close()
	in := newIngest(t, rtp.IngestConfig{RTP: track, SRTP: k})
	upstream.Set(in)

	r := freePair(t)
	recv, recvRTCP := udp(t, "127.0.0.1:"+strconv.Itoa(r)), udp(t, "127.0.0.1:"+strconv.Itoa(r+1))
	var downstream rtp.LateHandler
	eg := newEgress(t, rtp.EgressConfig{Remote: addrOf(recv), Addr: "127.0.0.1:0", RTCP: &downstream, SRTP: k})
	sub, err := track.Subscribe(forward.SubscriberConfig{Writer: eg, SSRC: egressSSRC, PayloadType: 96})
	if err != nil {
		t.Fatal(err)
	}
	downstream.Set(sub)

	// The publisher sends a VP8 key frame and a delta frame.
	pubCtx, recvCtx := srtpContext(t, k), srtpContext(t, k)
	for i, payload := range [][]byte{{0x10, 0x00, 'k'}, {0x10, 0x01, 'd'}} {
		pkt, err := pubCtx.EncryptRTP(nil, rtpPacket(uint16(100+i), 0xAB, payload), nil)
		if err != nil {
			t.Fatal(err)
		}
		send(t, pub, in.Addr(), pkt)
	}
	first := readRTP(t, recv, recvCtx)
	second := readRTP(t, recv, recvCtx)
	if !bytes.HasSuffix(first, []byte("k")) || !bytes.HasSuffix(second, []byte("d")) {
		t.Fatalf("receiver got %x and %x", first, second)
	}

	// The receiver loses the delta frame and asks for a key frame.
	seq := uint16(second[2])<<8 | uint16(second[3])
	nack, _ := (&rtcp.TransportLayerNack{SenderSSRC: 9, MediaSSRC: egressSSRC, Nacks: []rtcp.NackPair{{PacketID: seq}}}).Marshal()
	pli, _ := (&rtcp.PictureLossIndication{SenderSSRC: 9, MediaSSRC: egressSSRC}).Marshal()
	fbCtx := srtpContext(t, k)
	for _, fb := range [][]byte{nack, pli} {
		b, err := fbCtx.EncryptRTCP(nil, fb, nil)
		if err != nil {
			t.Fatal(err)
		}
		send(t, recvRTCP, eg.RTCPAddr(), b)
	}
	if again := readRTP(t, recv, recvCtx); !bytes.Equal(again, second) {
		t.Fatalf("retransmission %x, want %x", again, second)
	}
	// The key-frame request reaches the publisher's RTCP port.
	pubRTCP.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 1500)
	n, err := pubRTCP.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	plain, err := srtpContext(t, k).DecryptRTCP(nil, buf[:n], nil)
	if err != nil {
		t.Fatal(err)
	}
	pkts, err := rtcp.Unmarshal(plain)
	if err != nil {
		t.Fatal(err)
	}
	if got, ok := pkts[0].(*rtcp.PictureLossIndication); !ok || got.MediaSSRC != 0xAB {
		t.Fatalf("publisher got %v, want a PLI for SSRC AB", pkts[0])
	}
	if s := eg.Stats(); s.RTCPIn != 2 || s.Refused != 0 || s.RTPOut != 3 {
		t.Fatalf("egress %+v", s)
	}
	if s := sub.Stats(); s.Retransmits != 1 || s.KeyFrameRequests != 1 {
		t.Fatalf("subscriber %+v", s)
	}
}

// readRTP reads and unprotects one packet at the receiver.
func readRTP(t *testing.T, c *net.UDPConn, ctx *srtp.Context) []byte {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 1500)
	n, err := c.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	b, err := ctx.DecryptRTP(nil, buf[:n], nil)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
