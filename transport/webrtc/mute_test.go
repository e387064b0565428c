package webrtc

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/callcore/callcore/forward"
)

// pubPacket reports whether a received VP8 payload is one the publisher
// sent, with its index and whether it is a key frame.
func (c *call) pubPacket(p []byte) (idx int, key, ok bool) {
	d := vp8DescLen(p)
	if len(p) < d+3 || !c.pub.wasSent(p[d:]) {
		return 0, false, false
	}
	return int(p[d+1])<<8 | int(p[d+2]), p[d]&1 == 0, true
}

// waitPublisherSends waits until the track has taken n more of the
// publisher's packets (5 ms apart: n=200 is about 1 s).
func (c *call) waitPublisherSends(t *testing.T, n uint64) {
	t.Helper()
	in0 := c.video.Stats().PacketsIn
	waitFor(t, "the publisher's packets", func() bool { return c.video.Stats().PacketsIn >= in0+n })
}

// TestAdminMuteAndPause: with a publisher and two subscribers over
// WebRTC, an admin mute gives each subscriber exactly one black VP8 key
// frame (decoded), its two repeat frames, and then nothing while the
// publisher goes on sending;
// lifting it resumes the publisher's media on a key frame. Pausing one
// subscription (SetOpen(false)) stops its media while the other keeps
// receiving, and resuming continues on a key frame.
func TestAdminMuteAndPause(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	c := newSmallCall(t, 2)
	defer c.engine.Close()

	// Admin mute: one black key frame, then silence.
	c.video.SetMute(forward.SourceAdmin, true)
	for _, s := range c.subs {
		waitFor(t, "the admin mute's black key frame", func() bool { return s.blackKeys.Load() >= 1 })
	}
	c.waitPublisherSends(t, 200)
	ends := make([]int, len(c.subs))
	for i, s := range c.subs {
		s.mu.Lock()
		if n := s.blackKeys.Load(); n != 1 {
			t.Errorf("subscriber %d: %d black key frames while admin muted, want 1", i, n)
		}
		ends[i] = s.blackEnd[0]
		// Then the two one-packet repeat frames of the mute's tail
		// (forward.MuteConfig.Flush), and nothing of the publisher's.
		if extra := len(s.video) - ends[i]; extra != 2 {
			t.Errorf("subscriber %d: %d video packets after the black key frame while admin muted, want 2", i, extra)
		}
		for _, p := range s.video[ends[i]:] {
			if _, _, ok := c.pubPacket(p); ok {
				t.Errorf("subscriber %d: the publisher's media while admin muted", i)
			}
		}
		s.mu.Unlock()
	}

	// Lifted: the publisher's media resumes on its key frame.
	c.video.SetMute(forward.SourceAdmin, false)
	for i, s := range c.subs {
		waitFor(t, "the publisher's frames after the admin mute", func() bool {
			s.mu.Lock()
			defer s.mu.Unlock()
			n := 0
			for _, p := range s.video[ends[i]:] {
				if _, key, ok := c.pubPacket(p); ok {
					if n == 0 && !key {
						t.Fatalf("subscriber %d: media resumed on a delta frame", i)
					}
					n++
				}
			}
			return n >= 20
		})
	}

	// Pause subscription 1; subscription 0 keeps receiving.
	paused, other := c.videoSubs[1], c.subs[0]
	fs := paused.Subscriber()
	g0 := fs.Stats().DropGate
	paused.SetOpen(false)
	if paused.Open() {
		t.Fatal("Open after SetOpen(false)")
	}
	// Deliveries are serialised per track: after two gate drops no
	// delivery from before the pause is under way.
	waitFor(t, "the gate to drop packets", func() bool { return fs.Stats().DropGate >= g0+2 })
	atPause := int(c.pub.lastIdx.Load()) // every packet sent to subscriber 1 has a lower or equal index
	sent := fs.Stats().Packets
	otherMark, _ := other.counts()
	c.waitPublisherSends(t, 200)
	if got := fs.Stats().Packets; got != sent {
		t.Errorf("the paused subscriber's writer took %d packets", got-sent)
	}
	s1 := c.subs[1]
	s1.mu.Lock()
	for _, p := range s1.video {
		if idx, _, ok := c.pubPacket(p); ok && idx > atPause {
			t.Errorf("the paused subscription received packet %d, sent after the pause (%d)", idx, atPause)
			break
		}
	}
	mark1 := len(s1.video)
	s1.mu.Unlock()
	if v, _ := other.counts(); v < otherMark+100 {
		t.Errorf("the other subscriber got %d packets during the pause, want at least 100", v-otherMark)
	}

	// Resume: on a key frame.
	paused.SetOpen(true)
	waitFor(t, "media after resume", func() bool {
		s1.mu.Lock()
		defer s1.mu.Unlock()
		n := 0
		for _, p := range s1.video[mark1:] {
			if idx, key, ok := c.pubPacket(p); ok && idx > atPause {
				if n == 0 && !key {
					t.Fatalf("the resumed subscription started on a delta frame (%d)", idx)
				}
				n++
			}
		}
		return n >= 20
	})
	c.close(t)
}

// TestSubscribePaused: a subscription paused before the client's answer
// binds it sends nothing at all, and starts on a key frame when resumed.
func TestSubscribePaused(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	c := newSmallCall(t, 1)
	defer c.engine.Close()
	p, err := NewPeer(PeerConfig{Engine: c.engine})
	if err != nil {
		t.Fatal(err)
	}
	s := newSubClient(t, c.api)
	c.peers, c.subs = append(c.peers, p), append(c.subs, s)
	sub, err := p.Subscribe(c.video, c.info)
	if err != nil {
		t.Fatal(err)
	}
	sub.SetOpen(false)
	negotiate(t, p, s.client)
	waitFor(t, "the binding", func() bool { return sub.Subscriber() != nil })
	fs := sub.Subscriber()
	if fs.Open() {
		t.Fatal("the core subscriber of a paused subscription is open")
	}
	waitFor(t, "the gate to drop packets", func() bool { return fs.Stats().DropGate >= 100 })
	if n := fs.Stats().Packets; n != 0 {
		t.Errorf("the paused subscription's writer took %d packets", n)
	}
	if v, _ := s.counts(); v != 0 {
		t.Errorf("the paused subscription's client received %d packets", v)
	}
	sub.SetOpen(true)
	waitFor(t, "media after resume", func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		n := 0
		for _, pk := range s.video {
			if _, key, ok := c.pubPacket(pk); ok {
				if n == 0 && !key {
					t.Fatal("the resumed subscription started on a delta frame")
				}
				n++
			}
		}
		return n >= 20
	})
	c.close(t)
}
