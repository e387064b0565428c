package link

import (
	"sync/atomic"
	"testing"

	"go.uber.org/goleak"

	"github.com/callcore/callcore/forward"
	"github.com/callcore/callcore/internal/rtcpx"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// pair links a (listening) and b (dialing to it) on loopback.
func pair(t testing.TB, a, b Config) (*Link, *Link) {
	t.Helper()
	a.Listen = "127.0.0.1:0"
	la, err := New(a)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { la.Close() })
	b.Dial = la.Addr().String()
	lb, err := New(b)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lb.Close() })
	return la, lb
}

func remoteOf(t testing.TB, l *Link, id string) *RemoteTrack {
	t.Helper()
	var rt *RemoteTrack
	waitFor(t, "the remote track "+id, func() bool { rt = l.Remote(id); return rt != nil })
	return rt
}

// TestLinkInProcess runs two nodes in one process: packets, key-frame
// requests, loss repair, mute both ways, pause and resume and a reconnect
// cross the link, and B's subscriber sees one continuous stream.
func TestLinkInProcess(t *testing.T) {
	var dropped, dropping atomic.Int64
	dropping.Store(1)
	rtxLost := map[uint16]bool{} // used by B's receive goroutine only
	a, b := pair(t, Config{}, Config{dropIn: func(p []byte) bool {
		// Every 25th first transmission is lost on the way in; the
		// receive loop's NACK brings it back on the RTX stream.
		if dropping.Load() == 0 {
			return false
		}
		if p[1]&0x7f == pubPT && (uint16(p[2])<<8|uint16(p[3]))%25 == 0 {
			dropped.Add(1)
			return true
		}
		// The first retransmission of every other lost packet is lost
		// too: the NACK is repeated.
		if p[1]&0x7f == rtxPT(pubPT) && len(p) >= 14 {
			orig := uint16(p[12])<<8 | uint16(p[13])
			if orig%50 == 0 && !rtxLost[orig] {
				rtxLost[orig] = true
				return true
			}
		}
		return false
	}})
	track, pub := newOrigin(t)
	if err := a.Offer("cam", track); err != nil {
		t.Fatal(err)
	}
	rt := remoteOf(t, b, "cam")
	if c := rt.Config(); c.Kind != forward.Video || c.MimeType != "video/VP8" || c.PayloadType != pubPT {
		t.Fatalf("remote config %+v", c)
	}
	// 100 subscribers on B: the track still crosses once.
	recs := make([]*recorder, 100)
	subs := make([]*forward.Subscriber, 100)
	for i := range recs {
		recs[i] = newRecorder(uint32(0x5000 + i))
		s, err := rt.Subscribe(forward.SubscriberConfig{Writer: recs[i], SSRC: uint32(0x5000 + i), PayloadType: 100, FirstSeq: 65500})
		if err != nil {
			t.Fatal(err)
		}
		subs[i] = s
	}
	rec := recs[0]
	waitFor(t, "a first packet", func() bool { n, _, _ := rec.counts(); return n > 0 })
	from := rec.newest() + 50
	waitFor(t, "300 packets, none missing, at B's subscriber", func() bool { return rec.completeFrom(from, 300) })
	if dropped.Load() == 0 {
		t.Fatal("nothing was dropped")
	}
	dropping.Store(0)
	st := b.Stats()
	if st.NACKsOut == 0 || st.RTXIn == 0 || st.NACKRetries == 0 {
		t.Fatalf("loss was not repaired over the link: %+v", st)
	}
	if out, in := a.Stats().RTPOut, track.Stats(); out > in.PacketsIn+in.Generated+st.RTXIn+64 {
		t.Fatalf("%d packets on the link for %d published: the track crossed more than once", out, in.PacketsIn)
	}

	// A PLI from one of B's subscribers reaches the publisher.
	before := pub.plis.Load()
	if err := subs[1].HandleRTCP(rtcpx.AppendPLI(nil, 9, 0x5001)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the PLI at the publisher", func() bool { return pub.plis.Load() > before })

	// Mute at the origin: B's subscribers get empty media, and the state.
	track.SetMute(forward.SourceSelf, true)
	waitFor(t, "the mute state at B", func() bool { return rt.MuteSources() == forward.SourceSelf })
	_, _, e0 := rec.counts()
	waitFor(t, "empty media at B", func() bool { _, _, e := rec.counts(); return e > e0+5 })
	// An admin mute asked on B is applied at the origin.
	if err := rt.SetMute(forward.SourceAdmin, true); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the admin mute at the origin", func() bool { return track.MuteSources()&forward.SourceAdmin != 0 })
	waitFor(t, "both mutes at B", func() bool { return rt.MuteSources() == forward.SourceSelf|forward.SourceAdmin })
	if err := rt.SetMute(forward.SourceAdmin, false); err != nil {
		t.Fatal(err)
	}
	track.SetMute(forward.SourceSelf, false)
	waitFor(t, "unmuted at B", func() bool { return rt.MuteSources() == 0 })
	_, p0, _ := rec.counts()
	waitFor(t, "publisher media at B again", func() bool { _, p, _ := rec.counts(); return p > p0+30 })

	// Pause and resume; from here on nothing is lost on the way, and B's
	// subscribers must get every number.
	mark := make([]int64, len(recs))
	for i, r := range recs {
		mark[i] = r.newest() + 1
	}
	// Pause and resume.
	if err := rt.Pause(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the origin's link subscriber paused", func() bool {
		s := a.current()
		if s == nil {
			return false
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		r := s.relayByID["cam"]
		return r != nil && r.sub != nil && !r.sub.Open()
	})
	if err := rt.Resume(); err != nil {
		t.Fatal(err)
	}
	n0, _, _ := rec.counts()
	waitFor(t, "packets after resume", func() bool { n, _, _ := rec.counts(); return n > n0+30 })

	// The link drops and comes back: B's subscribers' numbering stays
	// continuous.
	s := b.current()
	s.c.conn.Close()
	waitFor(t, "a second session", func() bool { return b.Stats().Sessions >= 2 && b.Connected() })
	n1, _, _ := rec.counts()
	waitFor(t, "packets after the reconnect", func() bool { n, _, _ := rec.counts(); return n > n1+100 })
	for i, r := range recs {
		n := int(r.newest() - mark[i])
		waitFor(t, "no gap at a subscriber", func() bool { return r.completeFrom(mark[i], n) })
	}
	a.Withdraw("cam")
	waitFor(t, "the track ended at B", func() bool { return b.Remote("cam") == nil })
}
