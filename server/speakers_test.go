package server

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/rtp"
	pion "github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media/oggreader"
	"go.uber.org/goleak"

	"github.com/callcore/callcore/internal/e2e"
	"github.com/callcore/callcore/internal/piontest"
	"github.com/callcore/callcore/mute"
	"github.com/callcore/callcore/transport/webrtc"
)

// opusClip is audio encoded by ffmpeg: its Opus packets (20 ms each) and
// the RFC 6464 level of each packet's 20 ms, measured on the audio that
// was encoded, as a sending client measures it.
type opusClip struct {
	packets [][]byte
	levels  []uint8
}

// encodeOpus encodes the lavfi source src (48 kHz mono) to Opus/Ogg, one
// packet per page, and measures its levels from the same source as PCM.
func encodeOpus(t *testing.T, ffmpeg, src string) opusClip {
	t.Helper()
	dir := t.TempDir()
	ogg, raw := filepath.Join(dir, "a.ogg"), filepath.Join(dir, "a.raw")
	for _, args := range [][]string{
		{"-f", "lavfi", "-i", src, "-c:a", "libopus", "-b:a", "32k", "-frame_duration", "20", "-application", "voip", "-page_duration", "20000", ogg},
		{"-f", "lavfi", "-i", src, "-f", "s16le", "-ac", "1", "-ar", "48000", raw},
	} {
		out, err := exec.Command(ffmpeg, append([]string{"-hide_banner", "-loglevel", "error", "-y"}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("ffmpeg %v: %v\n%s", args, err, out)
		}
	}
	f, err := os.Open(ogg)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, _, err := oggreader.NewWith(f)
	if err != nil {
		t.Fatal(err)
	}
	var clip opusClip
	var granule uint64
	for {
		page, hdr, err := r.ParseNextPage()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if bytes.HasPrefix(page, []byte("OpusTags")) {
			continue
		}
		if granule != 0 && hdr.GranulePosition-granule > 960 { // the last page may be trimmed
			t.Fatalf("an Ogg page holds %d samples, want one 20 ms packet", hdr.GranulePosition-granule)
		}
		granule = hdr.GranulePosition
		clip.packets = append(clip.packets, page)
	}
	pcm, err := os.ReadFile(raw)
	if err != nil {
		t.Fatal(err)
	}
	const samples = 960
	for off := 0; off+2*samples <= len(pcm); off += 2 * samples {
		var sum float64
		for i := range samples {
			v := float64(int16(binary.LittleEndian.Uint16(pcm[off+2*i:]))) / 32768
			sum += v * v
		}
		level := 127.0
		if rms := math.Sqrt(sum / samples); rms > 0 {
			level = min(127, max(0, math.Round(-20*math.Log10(rms))))
		}
		clip.levels = append(clip.levels, uint8(level))
	}
	if len(clip.packets) < 100 || len(clip.levels) < len(clip.packets)-2 {
		t.Fatalf("%d packets, %d levels", len(clip.packets), len(clip.levels))
	}
	return clip
}

// talker is a pion publisher of a mic (Opus with levels: the tone while
// talking is set, silence otherwise) and a cam (VP8 key frames).
type talker struct {
	*peer
	talking atomic.Bool
	mic     *pion.TrackLocalStaticRTP
	sender  *pion.RTPSender
}

// stopper closes stop once; each talker registers it as a cleanup after
// its peer's close, which waits for the senders, so it runs first.
type stopper struct {
	once sync.Once
	ch   chan struct{}
}

func (s *stopper) stop() { s.once.Do(func() { close(s.ch) }) }

func newTalker(t *testing.T, c *client, id string, tone, quiet opusClip, st *stopper) *talker {
	t.Helper()
	p := newPeerWith(t, c, piontest.API(t, piontest.AudioLevel), pion.Configuration{})
	t.Cleanup(st.stop)
	stop := st.ch
	tk := &talker{peer: p}
	var err error
	tk.mic, err = pion.NewTrackLocalStaticRTP(pion.RTPCodecCapability{MimeType: pion.MimeTypeOpus, ClockRate: 48000, Channels: 2}, id+"-mic", "stream")
	if err != nil {
		t.Fatal(err)
	}
	if tk.sender, err = p.pc.AddTrack(tk.mic); err != nil {
		t.Fatal(err)
	}
	p.sendVP8(id+"-cam", stop)
	p.offer()
	extID := 0
	for _, e := range tk.sender.GetParameters().HeaderExtensions {
		if e.URI == webrtc.URIAudioLevel {
			extID = e.ID
		}
	}
	if extID == 0 {
		t.Fatal("the audio-level extension was not negotiated")
	}
	p.Go(func() {
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			clip := quiet
			if tk.talking.Load() {
				clip = tone
			}
			j := i % len(clip.packets)
			level := clip.levels[min(j, len(clip.levels)-1)]
			pkt := &rtp.Packet{Header: rtp.Header{Version: 2, Marker: i == 0, SequenceNumber: uint16(i), Timestamp: uint32(i * 960)}, Payload: clip.packets[j]}
			v := level
			if level < 127 {
				v |= 0x80
			}
			if err := pkt.SetExtension(uint8(extID), []byte{v}); err != nil {
				return
			}
			if err := tk.mic.WriteRTP(pkt); err != nil {
				return
			}
		}
	})
	return tk
}

// viewer is a receiving pion peer that counts packets per remote track and
// collects its client's cnl:speakers events.
type viewer struct {
	*peer
	mu     sync.Mutex
	counts map[string]*atomic.Int64 // by track id ("ann/cam")
	events []speakersEvent
	start  time.Time
}

type speakersEvent struct {
	at    time.Duration
	users []string
}

func newViewer(t *testing.T, c *client) *viewer {
	t.Helper()
	pc := piontest.New(t, pionAPI(t))
	v := &viewer{peer: &peer{Client: pc, t: t, c: c, pc: pc.PC}, counts: map[string]*atomic.Int64{}, start: time.Now()}
	v.pc.OnTrack(func(tr *pion.TrackRemote, _ *pion.RTPReceiver) {
		n := &atomic.Int64{}
		v.mu.Lock()
		v.counts[tr.ID()] = n
		v.mu.Unlock()
		v.Go(func() {
			for {
				if _, _, err := tr.ReadRTP(); err != nil {
					return
				}
				n.Add(1)
			}
		})
	})
	return v
}

// pump handles the client's pushes for d: it answers the server's offers
// and records cnl:speakers events.
func (v *viewer) pump(d time.Duration) {
	v.t.Helper()
	end := time.After(d)
	for {
		select {
		case <-end:
			return
		case p := <-v.c.pushes:
			switch p.Type {
			case "offer":
				var o sdpData
				if err := json.Unmarshal(p.Data, &o); err != nil {
					v.t.Fatal(err)
				}
				if err := v.pc.SetRemoteDescription(pion.SessionDescription{Type: pion.SDPTypeOffer, SDP: o.SDP}); err != nil {
					v.t.Fatal(err)
				}
				a, err := v.pc.CreateAnswer(nil)
				if err != nil {
					v.t.Fatal(err)
				}
				v.c.must("answer", sdpData{SDP: v.local(a)})
			case "event":
				var e struct {
					Event    string `json:"event"`
					Speakers []struct {
						UserID string `json:"userId"`
						Level  int    `json:"level"`
					} `json:"speakers"`
				}
				if err := json.Unmarshal(p.Data, &e); err != nil {
					v.t.Fatal(err)
				}
				if e.Event != "cnl:speakers" {
					continue
				}
				var users []string
				for _, s := range e.Speakers {
					if s.Level < 0 || s.Level > 127 {
						v.t.Fatalf("speaker level %d", s.Level)
					}
					users = append(users, s.UserID)
				}
				v.events = append(v.events, speakersEvent{time.Since(v.start), users})
			}
		}
	}
}

// until pumps until cond holds, failing after limit.
func (v *viewer) until(what string, limit time.Duration, cond func() bool) time.Duration {
	v.t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > limit {
			v.t.Fatalf("%s: not within %v; speakers events %v", what, limit, v.events)
		}
		v.pump(10 * time.Millisecond)
	}
	return time.Since(start)
}

func (v *viewer) dominant() string {
	if len(v.events) == 0 || len(v.events[len(v.events)-1].users) == 0 {
		return ""
	}
	return v.events[len(v.events)-1].users[0]
}

func (v *viewer) video() map[string]int64 {
	v.mu.Lock()
	defer v.mu.Unlock()
	out := map[string]int64{}
	for id, n := range v.counts {
		out[id] = n.Load()
	}
	return out
}

// videoGrowing returns the publishers whose cam reached the viewer during d.
func (v *viewer) videoGrowing(d time.Duration) []string {
	before := v.video()
	v.pump(d)
	after := v.video()
	var ids []string
	for _, id := range []string{"ann", "ben", "cat"} {
		if after[id+"/cam"] > before[id+"/cam"] {
			ids = append(ids, id)
		}
	}
	return ids
}

// TestSpeakersThroughServer: three pion publishers send real Opus (a tone
// or silence, encoded by ffmpeg) with audio levels and VP8, in a channel
// with lastN 1. The viewer's cnl:speakers names whoever talks within a
// second, a muted talker leaves it, and the viewer receives only the
// current speaker's video.
func TestSpeakersThroughServer(t *testing.T) {
	ffmpeg := e2e.LookPath(t, "ffmpeg")
	leaks := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, leaks) })
	tone := encodeOpus(t, ffmpeg, "sine=frequency=440:sample_rate=48000:duration=4,volume=0.3")
	quiet := encodeOpus(t, ffmpeg, "anullsrc=r=48000:cl=mono:d=4")
	if tone.levels[50] > 40 || quiet.levels[50] != 127 {
		t.Fatalf("levels: tone %d, silence %d", tone.levels[50], quiet.levels[50])
	}
	if _, err := mute.SilentFrame(mute.MimeTypeOpus, 20*time.Millisecond); err != nil {
		t.Fatal(err)
	}

	ts := newTestServer(t, nil)
	st := &stopper{ch: make(chan struct{})}
	talkers := map[string]*talker{}
	clients := map[string]*client{}
	for _, id := range []string{"ann", "ben", "cat"} {
		c := login(t, ts, id, id == "ann")
		tracks := []trackData{{Name: "mic", Kind: "audio", TrackID: id + "-mic"}, {Name: "cam", Kind: "video", TrackID: id + "-cam"}}
		if id == "ann" {
			one := 1
			c.must("create", createData{ChannelID: "c", Tracks: tracks, Config: &configData{LastN: one}})
		} else {
			c.must("join", joinData{ChannelID: "c", Tracks: tracks})
		}
		clients[id] = c
		talkers[id] = newTalker(t, c, id, tone, quiet, st)
	}
	vc := login(t, ts, "vic", false)
	vc.must("join", joinData{ChannelID: "c"})
	v := newViewer(t, vc)
	// pion reports a remote track at its first packet: the cams lastN
	// pauses are not seen yet.
	v.until("the viewer receives the three mics", deadline, func() bool {
		got := v.video()
		return got["ann/mic"] > 0 && got["ben/mic"] > 0 && got["cat/mic"] > 0
	})
	v.pump(500 * time.Millisecond)
	if len(v.events) != 0 {
		t.Fatalf("speakers while everyone is silent: %v", v.events)
	}

	for _, who := range []string{"ben", "cat", "ann"} {
		for id, tk := range talkers {
			tk.talking.Store(id == who)
		}
		// The detector decides in well under a second (the latency is
		// logged and in docs/speaking.md); the bound leaves a loaded
		// machine room, the test is about who takes over.
		took := v.until(who+" dominant", 4*time.Second, func() bool { return v.dominant() == who })
		t.Logf("%s dominant at the viewer %v after it started talking", who, took.Round(time.Millisecond))
		v.pump(500 * time.Millisecond) // its next key frame reaches the viewer; the others' last packets drain
		if got := v.videoGrowing(time.Second); !slices.Equal(got, []string{who}) {
			t.Fatalf("lastN 1 with %s speaking: the viewer receives video of %v", who, got)
		}
	}

	// ann is muted while she goes on talking: she leaves the speakers.
	on := true
	clients["ann"].must("muteTracks", muteTracksData{Names: []string{"mic"}, State: &on})
	took := v.until("ann out of the speakers", 4*time.Second, func() bool {
		return len(v.events) > 0 && !slices.Contains(v.events[len(v.events)-1].users, "ann")
	})
	t.Logf("muted ann left the speakers %v after the mute", took.Round(time.Millisecond))
}
