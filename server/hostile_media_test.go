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
// peer once the refusals pass the bound (the user leaves), and logs the
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
	st := ts.Stats()
	if st.Unannounced+st.ExcessStreams == 0 || st.ExcessStreams > 32 {
		t.Errorf("refusals counted: %d unannounced, %d excess (want some, and at most twice MaxStreams before the peer closes)", st.Unannounced, st.ExcessStreams)
	}

	// What the attack built goes away with it.
	_ = pc.GracefulClose()
	waitFor(t, "mallory's goroutines to end", func() bool { return runtime.NumGoroutine() <= goroutines+10 })
	// bob is unaffected.
	bob.must("getUsers", nil)
}
