package rtpplane_test

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/callcore/callcore/channel"
	"github.com/callcore/callcore/forward"
	"github.com/callcore/callcore/internal/planetest"
	"github.com/callcore/callcore/internal/poll"
	"github.com/callcore/callcore/internal/rtptest"
	"github.com/callcore/callcore/plane"
	"github.com/callcore/callcore/plane/rtpplane"
	"github.com/callcore/callcore/transport/rtp"
)

const deadline = 10 * time.Second

// waitFor polls cond against the deadline.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	poll.Until(t, deadline, what, cond)
}

// mark ends every payload the test sender sends, so that the core's empty
// media is told apart from the publisher's.
var mark = []byte{0xC5, 0xC5, 0xC5}

func fromSender(pkt []byte) bool { return bytes.HasSuffix(pkt, mark) }

// udpReceiver records the RTP datagrams sent to a loopback socket.
type udpReceiver struct {
	conn *net.UDPConn
	wg   sync.WaitGroup
	mu   sync.Mutex // guards pkts
	pkts [][]byte
}

func newUDPReceiver(t *testing.T) *udpReceiver {
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	r := &udpReceiver{conn: c}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		buf := make([]byte, 2048)
		for {
			n, err := c.Read(buf)
			if err != nil {
				return
			}
			r.mu.Lock()
			r.pkts = append(r.pkts, append([]byte(nil), buf[:n]...))
			r.mu.Unlock()
		}
	}()
	return r
}

func (r *udpReceiver) close() { r.conn.Close(); r.wg.Wait() }

func (r *udpReceiver) addr() netip.AddrPort { return r.conn.LocalAddr().(*net.UDPAddr).AddrPort() }

func (r *udpReceiver) packets() [][]byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([][]byte(nil), r.pkts...)
}

// sender sends a VP8 stream and an Opus stream from one loopback socket.
type sender struct {
	conn     *net.UDPConn
	cam, mic rtptest.Stream
	frame    int
	camTo    netip.AddrPort
	micTo    netip.AddrPort
	camSent  uint64 // video packets sent
}

func (s *sender) send(t *testing.T, frames int) {
	t.Helper()
	for range frames {
		var pays [][]byte
		for _, p := range rtptest.VP8(s.frame%10 == 0, 320, 240, 2000, 1000) {
			pays = append(pays, append(p, mark...))
		}
		for _, p := range s.cam.Frame(pays, 3000) {
			if _, err := s.conn.WriteToUDPAddrPort(p, s.camTo); err != nil {
				t.Fatal(err)
			}
			s.camSent++
		}
		if _, err := s.conn.WriteToUDPAddrPort(s.mic.Next(append(rtptest.Opus(40), mark...), false), s.micTo); err != nil {
			t.Fatal(err)
		}
		s.mic.Timestamp += 960
		s.frame++
	}
}

// TestRTPSourceIsAChannelPublisher: an external RTP sender's VP8 and Opus
// streams, received by the ingests Publish opens, are the tracks of the
// channel user "enc": a memory member receives both, and an RTP receiver
// attached with Endpoint receives the video at the address, SSRC and
// payload type its Route gives (the audio has no route: not sent). The
// owner's mute of enc's video stops every publisher packet at both; a
// packet with an SSRC the stream was not announced with is refused and
// counted; enc leaving closes the receptions.
func TestRTPSourceIsAChannelPublisher(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	pl, err := plane.New(plane.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer pl.Close()
	reg, err := channel.NewRegistry(channel.Config{Media: pl})
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	call, _, err := reg.Create("host", "c", channel.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for id, tracks := range map[string][]channel.TrackInfo{
		"enc":    {{Name: "cam", Kind: channel.Video}, {Name: "mic", Kind: channel.Audio}},
		"viewer": nil, "rec": nil,
	} {
		if _, err := call.Join(context.Background(), id, tracks); err != nil {
			t.Fatal(err)
		}
	}
	viewer := planetest.NewEndpoint(100)
	if err := pl.Attach("c", "viewer", viewer); err != nil {
		t.Fatal(err)
	}
	recv := newUDPReceiver(t)
	defer recv.close()
	rec := &rtpplane.Endpoint{Route: func(from string, info channel.TrackInfo, codec forward.TrackConfig) (rtpplane.Output, error) {
		if info.Kind != channel.Video {
			return rtpplane.Output{}, rtpplane.ErrNoRoute
		}
		return rtpplane.Output{Egress: rtp.EgressConfig{Remote: recv.addr(), Addr: "127.0.0.1:0"}, SSRC: 0xABCD, PayloadType: 100}, nil
	}}
	if err := pl.Attach("c", "rec", rec); err != nil {
		t.Fatal(err)
	}

	// Bad input: a stream with no codec, a track the channel does not
	// list. Nothing stays open (goleak).
	if _, err := rtpplane.Publish(pl, "c", "enc", []rtpplane.Stream{{Name: "cam"}}); !errors.Is(err, rtpplane.ErrInvalidStream) {
		t.Fatalf("a stream without a codec: %v", err)
	}
	vp8 := forward.TrackConfig{Kind: forward.Video, MimeType: "video/VP8", ClockRate: 90000, PayloadType: 96, SSRC: 0x1111}
	opus := forward.TrackConfig{Kind: forward.Audio, MimeType: "audio/opus", ClockRate: 48000, PayloadType: 111, SSRC: 0x2222}
	if _, err := rtpplane.Publish(pl, "c", "enc", []rtpplane.Stream{{Name: "screen", Track: vp8}}); !errors.Is(err, plane.ErrUnknownTrack) {
		t.Fatalf("a track the channel does not list: %v", err)
	}

	pub, err := rtpplane.Publish(pl, "c", "enc", []rtpplane.Stream{{Name: "cam", Track: vp8}, {Name: "mic", Track: opus}})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	camAddr, _ := pub.Addr("cam")
	micAddr, _ := pub.Addr("mic")
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	s := &sender{conn: conn, camTo: camAddr, micTo: micAddr,
		cam: rtptest.Stream{PayloadType: 96, SSRC: 0x1111, Seq: 100}, mic: rtptest.Stream{PayloadType: 111, SSRC: 0x2222}}

	s.send(t, 30)
	camSink, micSink := viewer.Sink("enc/cam"), viewer.Sink("enc/mic")
	if camSink == nil || micSink == nil {
		t.Fatal("the viewer was not subscribed to enc's tracks")
	}
	waitFor(t, "the viewer's video and audio", func() bool { return camSink.Len() >= 60 && micSink.Len() >= 30 })
	waitFor(t, "the RTP receiver's video", func() bool { return len(recv.packets()) >= 60 })
	for _, p := range recv.packets() {
		if ssrc := uint32(p[8])<<24 | uint32(p[9])<<16 | uint32(p[10])<<8 | uint32(p[11]); ssrc != 0xABCD || p[1]&0x7f != 100 {
			t.Fatalf("the RTP receiver got SSRC %#x payload type %d, want 0xabcd 100", ssrc, p[1]&0x7f)
		}
		if !fromSender(p) {
			t.Fatal("the RTP receiver got a packet the sender did not send")
		}
	}

	// A packet with another SSRC is refused by the ingest and counted.
	stray := rtptest.Stream{PayloadType: 96, SSRC: 0x9999}
	if _, err := conn.WriteToUDPAddrPort(stray.Next(append([]byte{0x10}, mark...), true), camAddr); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the stray packet to be counted", func() bool { st, _ := pub.Stats("cam"); return st.UnknownSSRC == 1 })

	// The owner mutes enc's video: no packet the sender sends reaches
	// anyone. Before, the receiver has every packet the viewer got (both
	// subscriptions take the same packets; UDP is late, not lost, here).
	waitFor(t, "the RTP receiver to catch up", func() bool { return len(recv.packets()) >= camSink.Len() })
	if err := call.MuteUser("host", "enc", channel.Video, channel.Mute, ""); err != nil {
		t.Fatal(err)
	}
	viewerAt, recvAt := camSink.Len(), len(recv.packets())
	s.send(t, 30)
	// One reader takes the socket's datagrams in order: once a stray
	// packet sent after them is counted, the frames were forwarded.
	if _, err := conn.WriteToUDPAddrPort(stray.Next(append([]byte{0x10}, mark...), true), camAddr); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the muted frames to be taken", func() bool { st, _ := pub.Stats("cam"); return st.UnknownSSRC == 2 })
	if st, _ := pub.Stats("cam"); st.RTPIn != s.camSent {
		t.Fatalf("the ingest took %d packets of %d", st.RTPIn, s.camSent)
	}
	for _, p := range camSink.Packets()[viewerAt:] {
		if fromSender(p) {
			t.Fatal("muted: the viewer got a publisher packet")
		}
	}
	for _, p := range recv.packets()[recvAt:] {
		if fromSender(p) {
			t.Fatal("muted: the RTP receiver got a publisher packet")
		}
	}
	if micSink.Len() < 60 {
		waitFor(t, "the audio to go on", func() bool { return micSink.Len() >= 60 })
	}

	// enc leaves: its tracks end, and with them every reception.
	if err := call.Leave("enc"); err != nil {
		t.Fatal(err)
	}
	if rc := viewer.Reception("enc/cam"); rc == nil || !rc.Closed() {
		t.Fatal("the viewer's reception was not closed when enc left")
	}
}
