package server

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/callcore/callcore/internal/browser"
)

// TestBrowserSeesRTPParticipant: ffmpeg's test pattern and tone, brought
// into a call by user enc with rtpPublish, are seen (frames decoded, not
// black) and heard (audio energy rising) by alice in headless Chromium
// through the SDK; alice's admin mute of enc's video turns it black there
// as for any publisher. enc's rtpReceive sends alice's camera to an ffmpeg
// recorder, which decodes it.
func TestBrowserSeesRTPParticipant(t *testing.T) {
	b := browser.Start(t)
	ts := newTestServer(t, func(c *Config) {
		c.Static = e2eFS(t)
		c.RTP.Addr = "127.0.0.1"
	})
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	alice := newE2EUser(t, b, ts, "alice")
	alice.must("t.calls.create('room', t.tracks())")

	enc := login(t, ts, "enc", false)
	enc.must("join", joinData{ChannelID: "room"})
	var pub rtpPublishResult
	if err := json.Unmarshal(enc.must("rtpPublish", rtpPublishData{Tracks: []rtpTrackData{
		{Name: "cam", Kind: "video"}, {Name: "mic", Kind: "audio"}}}), &pub); err != nil {
		t.Fatal(err)
	}
	sender := ffmpegPublish(t, ctx, pub.Streams, 80*time.Second)
	defer func() { cancel(); _ = sender.Wait() }()

	alice.saw("track:add", "e.userId === 'enc' && e.trackName === 'cam'")
	alice.sees("enc")
	w := alice.stat("enc/cam", "frameWidth")
	h := alice.stat("enc/cam", "frameHeight")
	if w != 320 || h != 240 {
		t.Errorf("alice decodes enc's video at %gx%g, want 320x240", w, h)
	}

	t.Log("muteUser: alice mutes enc's video: black at alice's, the tone goes on")
	alice.must("t.calls.muteUser('enc', 'video', true, 'test')")
	alice.waitFor("enc's video black", "__probe.isBlack(t.els['enc/cam'])")
	alice.rising("enc/mic", "totalAudioEnergy", 0.001)
	alice.must("t.calls.muteUser('enc', 'video', false)")
	alice.waitFor("enc's video back", "__probe.isNotBlack(t.els['enc/cam'])")

	t.Log("rtpReceive: enc records alice's camera with ffmpeg")
	out := ffmpegRecord(t, ctx, enc, "alice", "cam")
	t.Logf("the recorder decoded %d bytes of alice's video", out)
}
