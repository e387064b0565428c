package server

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"math/rand/v2"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	pion "github.com/pion/webrtc/v4"
	"go.uber.org/goleak"

	"github.com/callcore/callcore/internal/pionloop"
	"github.com/callcore/callcore/mute"
)

// ssrcScrambler is a client-side interceptor that, once on, sends every
// RTP packet under a fresh random SSRC: a publisher opening one new
// stream per packet.
type ssrcScrambler struct {
	interceptor.NoOp
	on   atomic.Bool
	sent atomic.Int64 // packets sent scrambled
}

func (s *ssrcScrambler) NewInterceptor(string) (interceptor.Interceptor, error) { return s, nil }

func (s *ssrcScrambler) BindLocalStream(_ *interceptor.StreamInfo, w interceptor.RTPWriter) interceptor.RTPWriter {
	return interceptor.RTPWriterFunc(func(h *rtp.Header, payload []byte, a interceptor.Attributes) (int, error) {
		if s.on.Load() {
			h.SSRC = rand.Uint32()
			s.sent.Add(1)
		}
		return w.Write(h, payload, a)
	})
}

// lockedBuffer is a log sink safe for the server's goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) count(s string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Count(l.b.String(), s)
}

// TestSSRCFloodCostsNothingThatLasts: a joined publisher whose offer
// declares no SSRCs writes its video under 2,000 random SSRCs (pion maps
// each to a track of its own). The server builds at most MaxStreams
// tracks for it, refuses the rest before building anything, closes the
// peer once the refusals, or pion's streams for it, pass their bound (the
// user leaves), and logs the
// refusals at most once a second. Memory and goroutines stay bounded, and
// come back once the attacker is gone.
func TestSSRCFloodCostsNothingThatLasts(t *testing.T) {
	leaks := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, leaks) })
	logs := &lockedBuffer{}
	ts := newTestServer(t, func(c *Config) {
		c.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
	})
	bob := login(t, ts, "bob", true)
	bob.must("create", createData{ChannelID: "c"})

	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	goroutines := runtime.NumGoroutine()

	// mallory: a pion client with the scrambler, announcing "m-cam".
	scrambler := &ssrcScrambler{}
	me := &pion.MediaEngine{}
	if err := me.RegisterDefaultCodecs(); err != nil {
		t.Fatal(err)
	}
	ir := &interceptor.Registry{}
	ir.Add(scrambler)
	se := pion.SettingEngine{}
	pionloop.Restrict(&se)
	pc, err := pion.NewAPI(pion.WithMediaEngine(me), pion.WithInterceptorRegistry(ir), pion.WithSettingEngine(se)).
		NewPeerConnection(pion.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pc.GracefulClose() })
	mallory := login(t, ts, "mallory", false)
	mallory.must("join", joinData{ChannelID: "c", Tracks: []trackData{{Name: "cam", Kind: "video", TrackID: "m-cam"}}})
	tr, err := pion.NewTrackLocalStaticRTP(pion.RTPCodecCapability{MimeType: pion.MimeTypeVP8, ClockRate: 90000}, "m-cam", "stream")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pc.AddTransceiverFromTrack(tr, pion.RTPTransceiverInit{Direction: pion.RTPTransceiverDirectionSendonly}); err != nil {
		t.Fatal(err)
	}
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	done := pion.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(offer); err != nil {
		t.Fatal(err)
	}
	<-done
	// The offer without its a=ssrc lines: the server's pion then maps
	// every new SSRC of the one media section to a new track.
	var lines []string
	for _, l := range strings.SplitAfter(pc.LocalDescription().SDP, "\r\n") {
		if !strings.HasPrefix(l, "a=ssrc") {
			lines = append(lines, l)
		}
	}
	var answer sdpData
	if err := json.Unmarshal(mallory.must("offer", sdpData{SDP: strings.Join(lines, "")}), &answer); err != nil {
		t.Fatal(err)
	}
	if err := pc.SetRemoteDescription(pion.SessionDescription{Type: pion.SDPTypeAnswer, SDP: answer.SDP}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "mallory's media connection", func() bool { return pc.ConnectionState() == pion.PeerConnectionStateConnected })

	frame, err := mute.BlackKeyFrame(mute.MimeTypeVP8, 320, 240)
	if err != nil {
		t.Fatal(err)
	}
	payload := append([]byte{0x10}, frame...)
	scrambler.on.Store(true)
	start := time.Now()
	closed := false
	for i := uint32(0); i < 2000 && !closed; i++ {
		pkt := &rtp.Packet{Header: rtp.Header{Version: 2, Marker: true, SequenceNumber: uint16(i), Timestamp: i * 3000}, Payload: payload}
		if err := tr.WriteRTP(pkt); err != nil {
			break
		}
		if i%100 == 99 { // about 2,000 packets a second
			time.Sleep(50 * time.Millisecond) // pacing the attack, not waiting for an event
			closed = pc.ConnectionState() != pion.PeerConnectionStateConnected
		}
	}
	flood := time.Since(start)
	t.Logf("sent %d packets under random SSRCs in %v", scrambler.sent.Load(), flood.Round(time.Millisecond))

	var after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&after)
	grown := int64(after.HeapInuse) - int64(before.HeapInuse)
	t.Logf("heap in use grew by %.1f MiB; goroutines %d -> %d; %d refusal lines logged", float64(grown)/(1<<20), goroutines, runtime.NumGoroutine(), logs.count("published media refused"))
	// 16 tracks' caches and pion's buffers at most, not 2,000 of them.
	if grown > 48<<20 {
		t.Errorf("heap in use grew by %d MiB during the flood", grown>>20)
	}
	if n := logs.count("published media refused"); n > int(flood/logPeriod)+2 {
		t.Errorf("%d refusal lines logged in %v: not rate-limited", n, flood)
	}
	// The peer is closed for it and mallory leaves the channel.
	bob.event("user:left", func(e eventData) bool { return e.UserID == "mallory" })
	// Whichever bound the flood meets first (refused tracks, or pion's
	// streams: buffers.go), the peer is closed before many refusals:
	// the streams pion read while the close was under way are refused
	// too (35 seen on a loaded machine, against 2,000 sent).
	st := ts.Stats()
	if st.ExcessStreams > 48 {
		t.Errorf("refusals counted: %d unannounced, %d excess: want at most three times MaxStreams before the peer closes", st.Unannounced, st.ExcessStreams)
	}

	// What the attack built goes away with it.
	_ = pc.GracefulClose()
	waitFor(t, "mallory's goroutines to end", func() bool { return runtime.NumGoroutine() <= goroutines+10 })
	// bob is unaffected.
	bob.must("getUsers", nil)
}

// responsivePublisher publishes VP8 at 30 frames a second from p, repeat
// frames except for a key frame first and one for every PLI or FIR it
// receives, as browsers answer. It returns the count of requests
// received.
func responsivePublisher(t *testing.T, p *peer, id string, stop chan struct{}) *atomic.Int64 {
	t.Helper()
	tr, err := pion.NewTrackLocalStaticRTP(pion.RTPCodecCapability{MimeType: pion.MimeTypeVP8, ClockRate: 90000}, id, "stream")
	if err != nil {
		t.Fatal(err)
	}
	sender, err := p.pc.AddTrack(tr)
	if err != nil {
		t.Fatal(err)
	}
	key, err := mute.BlackKeyFrame(mute.MimeTypeVP8, 320, 240)
	if err != nil {
		t.Fatal(err)
	}
	repeat, err := mute.RepeatFrame(mute.MimeTypeVP8, 320, 240)
	if err != nil {
		t.Fatal(err)
	}
	var requests atomic.Int64
	wantKey := make(chan struct{}, 1)
	p.Go(func() {
		for {
			pkts, _, err := sender.ReadRTCP()
			if err != nil {
				return
			}
			for _, pkt := range pkts {
				switch pkt.(type) {
				case *rtcp.PictureLossIndication, *rtcp.FullIntraRequest:
					requests.Add(1)
					select {
					case wantKey <- struct{}{}:
					default:
					}
				}
			}
		}
	})
	p.Go(func() {
		tick := time.NewTicker(33 * time.Millisecond)
		defer tick.Stop()
		for i := uint32(0); ; i++ {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			frame := repeat
			select {
			case <-wantKey:
				frame = key
			default:
				if i == 0 {
					frame = key
				}
			}
			pkt := &rtp.Packet{Header: rtp.Header{Version: 2, Marker: true, SequenceNumber: uint16(i), Timestamp: i * 3000},
				Payload: append([]byte{0x10}, frame...)}
			if err := tr.WriteRTP(pkt); err != nil {
				return
			}
		}
	})
	return &requests
}

// TestPLIStormBoundedUpstream: a subscriber sending 500 PLIs a second for
// 3 s to a publisher that answers every request with a key frame makes
// the server ask the publisher at most twice a second (KeyFrameInterval,
// 500 ms), whatever key frames come back; so the other subscribers' rate
// stays the publisher's.
func TestPLIStormBoundedUpstream(t *testing.T) {
	leaks := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, leaks) })
	ts := newTestServer(t, nil)
	alice := login(t, ts, "alice", true)
	alice.must("create", createData{ChannelID: "c", Tracks: []trackData{{Name: "cam", Kind: "video", TrackID: "alice-cam"}}})
	pa := newPeer(t, alice)
	stop := make(chan struct{})
	t.Cleanup(func() { close(stop) })
	requests := responsivePublisher(t, pa, "alice-cam", stop)
	pa.offer()
	bob := login(t, ts, "bob", false)
	bob.must("join", joinData{ChannelID: "c"})
	pb := newPeer(t, bob)
	pb.answer()
	var remote *pion.TrackRemote
	select {
	case remote = <-pb.tracks:
	case <-time.After(deadline):
		t.Fatal("bob got no track")
	}
	waitFor(t, "alice's video at bob", func() bool { return pb.received.Load() >= 10 })

	before := requests.Load()
	start := time.Now()
	for i := 0; i < 1500; i++ { // 500 a second for 3 s
		if err := pb.pc.WriteRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: uint32(remote.SSRC())}}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * time.Millisecond) // pacing the storm, not waiting for an event
	}
	elapsed := time.Since(start)
	got := requests.Load() - before
	t.Logf("1500 PLIs from bob in %v: %d key-frame requests reached alice", elapsed.Round(time.Millisecond), got)
	if max := int64(2*elapsed.Seconds()) + 2; got > max {
		t.Errorf("%d key-frame requests upstream in %v; want at most %d (2 a second)", got, elapsed, max)
	}
	if got == 0 {
		t.Error("no key-frame request reached the publisher at all")
	}
}

// TestNACKFloodRetransmissionsBounded: a subscriber NACKing every recent
// packet as fast as it can gets retransmissions bounded by its media
// rate (RetransmitPercent of what it is forwarded, plus a burst), not
// three times the stream.
func TestNACKFloodRetransmissionsBounded(t *testing.T) {
	leaks := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, leaks) })
	ts := newTestServer(t, nil)
	_, _, pb := videoCall(t, ts)
	var remote *pion.TrackRemote
	select {
	case remote = <-pb.tracks:
	case <-time.After(deadline):
		t.Fatal("bob got no track")
	}
	// Watch what bob's peer receives: media about 30 packets a second,
	// and retransmissions on top.
	n0 := pb.received.Load()
	start := time.Now()
	for i := 0; i < 600; i++ { // 300 NACKs a second for 2 s, each naming 17 packets
		last := uint16(pb.lastSeq.Load()) // the 17 packets up to the last received
		pairs := []rtcp.NackPair{{PacketID: last - 16, LostPackets: 0xffff}}
		if err := pb.pc.WriteRTCP([]rtcp.Packet{&rtcp.TransportLayerNack{MediaSSRC: uint32(remote.SSRC()), Nacks: pairs}}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(3 * time.Millisecond) // pacing the flood, not waiting for an event
	}
	elapsed := time.Since(start)
	got := pb.received.Load() - n0
	media := 30 * elapsed.Seconds()
	t.Logf("600 NACKs (10,200 numbers) in %v: bob received %d packets (media alone about %.0f)", elapsed.Round(time.Millisecond), got, media)
	if limit := media*1.5 + 100 + 20; float64(got) > limit {
		t.Errorf("bob received %d packets in %v: more than media x1.5 + the burst (%.0f)", got, elapsed, limit)
	}
}

// TestRTCPUnderRandomSSRCsCostsNothingThatLasts: a subscriber sending
// RTCP about 20,000 random SSRCs makes pion open a stream for each (it
// kept them all, unread, until the peer closed: 20 MiB of heap). The
// peer's streams are bounded: past the bound they are dropped, and the
// client loses its peer and leaves; heap and goroutines stay bounded.
func TestRTCPUnderRandomSSRCsCostsNothingThatLasts(t *testing.T) {
	leaks := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, leaks) })
	ts := newTestServer(t, nil)
	alice, _, pb := videoCall(t, ts)
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	sent := 0
	for ; sent < 20000; sent++ {
		if err := pb.pc.WriteRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: rand.Uint32()}}); err != nil {
			break
		}
		if sent%1000 == 999 && pb.pc.ConnectionState() != pion.PeerConnectionStateConnected {
			break
		}
	}
	alice.event("user:left", func(e eventData) bool { return e.UserID == "bob" })
	runtime.GC()
	runtime.ReadMemStats(&after)
	grown := int64(after.HeapInuse) - int64(before.HeapInuse)
	t.Logf("%d RTCP packets under random SSRCs: heap in use grew by %.1f MiB", sent, float64(grown)/(1<<20))
	if grown > 8<<20 {
		t.Errorf("heap in use grew by %d MiB", grown>>20)
	}
}
