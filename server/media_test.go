package server

import (
	"encoding/json"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/callcore/callcore/internal/piontest"
	"github.com/callcore/callcore/internal/poll"
	"github.com/pion/rtp"
	pion "github.com/pion/webrtc/v4"
	"go.uber.org/goleak"
)

// pionAPI is a plain pion client forced onto 127.0.0.1.
func pionAPI(t testing.TB) *pion.API { return piontest.API(t) }

// peer is a pion client (piontest.Client) speaking the protocol through a
// client.
type peer struct {
	*piontest.Client
	t  testing.TB
	c  *client
	pc *pion.PeerConnection

	received atomic.Int64  // RTP packets received on all tracks
	lastSeq  atomic.Uint32 // the sequence number of the last one
	bigOver  atomic.Int64  // when set, packets with a longer payload are counted in big
	big      atomic.Int64
	tracks   chan *pion.TrackRemote
	// onRTP, when set, is given every packet received (from each track's
	// reader goroutine).
	onRTP atomic.Pointer[func(kind pion.RTPCodecType, pkt *rtp.Packet)]
}

func newPeer(t testing.TB, c *client) *peer {
	t.Helper()
	return newPeerWith(t, c, pionAPI(t), pion.Configuration{})
}

// newPeerWith is newPeer with the client's own API and configuration.
func newPeerWith(t testing.TB, c *client, api *pion.API, conf pion.Configuration) *peer {
	t.Helper()
	pc := piontest.NewWith(t, api, conf)
	p := &peer{Client: pc, t: t, c: c, pc: pc.PC, tracks: make(chan *pion.TrackRemote, 16)}
	p.pc.OnTrack(func(tr *pion.TrackRemote, _ *pion.RTPReceiver) {
		p.tracks <- tr
		p.Go(func() {
			for {
				pkt, _, err := tr.ReadRTP()
				if err != nil {
					return
				}
				p.lastSeq.Store(uint32(pkt.SequenceNumber))
				p.received.Add(1)
				if f := p.onRTP.Load(); f != nil {
					(*f)(tr.Kind(), pkt)
				}
				if n := p.bigOver.Load(); n > 0 && int64(len(pkt.Payload)) > n {
					p.big.Add(1)
				}
			}
		})
	})
	return p
}

func (p *peer) close() { p.Close() }

// local sets a local description and returns it once ICE gathering is
// complete (no trickle).
func (p *peer) local(d pion.SessionDescription) string {
	p.t.Helper()
	return p.SetLocal(d)
}

// offer negotiates the client's changes: its offer, the server's answer.
func (p *peer) offer() {
	p.t.Helper()
	var a sdpData
	if err := json.Unmarshal(p.c.must("offer", sdpData{SDP: p.Offer()}), &a); err != nil {
		p.t.Fatal(err)
	}
	p.SetAnswer(a.SDP)
}

// answer waits for the server's offer and answers it; it returns the
// offer's SDP.
func (p *peer) answer() string {
	p.t.Helper()
	return p.answerOffer(p.c.pushOf("offer"))
}

// answerOffer answers the server's offer push data; it returns the
// offer's SDP.
func (p *peer) answerOffer(data json.RawMessage) string {
	p.t.Helper()
	var o sdpData
	if err := json.Unmarshal(data, &o); err != nil {
		p.t.Fatal(err)
	}
	p.c.must("answer", sdpData{SDP: p.Answer(o.SDP)})
	return o.SDP
}

// sendVP8 adds a VP8 track with media id id and sends black key frames
// at 30/s until stop is closed.
func (p *peer) sendVP8(id string, stop chan struct{}) {
	p.t.Helper()
	piontest.SendVP8(p.Client, id, "stream", stop)
}

// waitFor polls cond against the deadline.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	poll.Until(t, deadline, what, cond)
}

// TestMediaThroughServer: pion clients speaking the protocol. alice
// publishes VP8; bob joins, is offered alice's track in an m-section whose
// msid names alice and the track, and receives its packets. Media of a
// track nobody announced is counted and not forwarded.
func TestMediaThroughServer(t *testing.T) {
	leaks := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, leaks) })
	ts := newTestServer(t, nil)
	stop := make(chan struct{})
	defer close(stop)

	alice := login(t, ts, "alice", true)
	alice.must("create", createData{ChannelID: "c", Tracks: []trackData{{Name: "cam", Kind: "video", TrackID: "alice-cam"}}})
	pa := newPeer(t, alice)
	pa.sendVP8("alice-cam", stop)
	pa.sendVP8("smuggled", stop) // never announced
	pa.offer()

	bob := login(t, ts, "bob", false)
	bob.must("join", joinData{ChannelID: "c"})
	pb := newPeer(t, bob)
	sdp := pb.answer()
	if !strings.Contains(sdp, "a=msid:alice alice/cam") {
		t.Errorf("the server's offer does not name alice's cam in an msid:\n%s", sdp)
	}
	if strings.Contains(sdp, "smuggled") {
		t.Error("the unannounced track is offered")
	}
	select {
	case tr := <-pb.tracks:
		if tr.StreamID() != "alice" || tr.ID() != "alice/cam" || !strings.EqualFold(tr.Codec().MimeType, pion.MimeTypeVP8) {
			t.Errorf("bob's track: stream %q id %q codec %q", tr.StreamID(), tr.ID(), tr.Codec().MimeType)
		}
	case <-time.After(deadline):
		t.Fatal("bob got no track")
	}
	waitFor(t, "alice's video at bob", func() bool { return pb.received.Load() >= 20 })
	waitFor(t, "the unannounced track to be counted", func() bool { return ts.Stats().Unannounced == 1 })

	// Self mute: the track keeps flowing (as empty frames).
	on := true
	alice.must("muteTracks", muteTracksData{Names: []string{"cam"}, State: &on})
	n := pb.received.Load()
	waitFor(t, "empty frames while muted", func() bool { return pb.received.Load() >= n+3 })

	// bob leaves: the server closes his media connection.
	bob.must("leave", nil)
	waitFor(t, "bob's connection to close", func() bool {
		s := pb.pc.ConnectionState()
		return s == pion.PeerConnectionStateDisconnected || s == pion.PeerConnectionStateFailed || s == pion.PeerConnectionStateClosed
	})
}

// TestDropMidNegotiation: a client whose WebSocket drops between its offer
// and the answer leaves the call; nothing is left behind (goleak) and the
// others are unaffected.
func TestDropMidNegotiation(t *testing.T) {
	leaks := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, leaks) })
	ts := newTestServer(t, nil)
	alice := login(t, ts, "alice", true)
	alice.must("create", createData{ChannelID: "c"})
	for i := range 3 {
		bob := login(t, ts, "bob", false)
		bob.must("join", joinData{ChannelID: "c", Tracks: []trackData{{Name: "cam", Kind: "video", TrackID: "bob-cam"}}})
		pb := newPeer(t, bob)
		stop := make(chan struct{})
		pb.sendVP8("bob-cam", stop)
		o, err := pb.pc.CreateOffer(nil)
		if err != nil {
			t.Fatal(err)
		}
		sdp := pb.local(o)
		w := bob.send("offer", sdpData{SDP: sdp})
		if i > 0 { // after the server's answer: drop before the client applies it
			<-w
		}
		_ = bob.conn.CloseNow()
		alice.event("user:left", func(e eventData) bool { return e.UserID == "bob" })
		close(stop)
		pb.close()
	}
	waitFor(t, "the sessions to end", func() bool { return ts.Stats().Sessions == 1 })
	var snap usersResult
	if err := json.Unmarshal(alice.must("getUsers", nil), &snap); err != nil || len(snap.Users) != 1 {
		t.Errorf("after the drops: %+v %v", snap, err)
	}
}

// videoCall: alice creates channel c and publishes VP8 from a pion peer;
// bob joins and receives it on his. It returns their clients and bob's
// peer once bob has received some of alice's video; alice sends until the
// test ends.
func videoCall(t testing.TB, ts *testServer) (alice, bob *client, pb *peer) {
	t.Helper()
	alice = login(t, ts, "alice", true)
	alice.must("create", createData{ChannelID: "c", Tracks: []trackData{{Name: "cam", Kind: "video", TrackID: "alice-cam"}}})
	pa := newPeer(t, alice)
	stop := make(chan struct{})
	t.Cleanup(func() { close(stop) }) // before pa's close, which waits for the sender
	pa.sendVP8("alice-cam", stop)
	pa.offer()
	bob = login(t, ts, "bob", false)
	bob.must("join", joinData{ChannelID: "c"})
	pb = newPeer(t, bob)
	pb.answer()
	waitFor(t, "alice's video at bob", func() bool { return pb.received.Load() >= 5 })
	return alice, bob, pb
}

// TestMediaLostLeaves: a user whose media connection stays lost for the
// grace period leaves the call, and its client reads its own user:left
// (so it knows to join again) while its WebSocket stays up.
func TestMediaLostLeaves(t *testing.T) {
	leaks := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, leaks) })
	ts := newTestServer(t, func(c *Config) {
		c.Grace = 300 * time.Millisecond
		c.WebRTC.ICEDisconnectedTimeout = time.Second
		c.WebRTC.ICEFailedTimeout = 2 * time.Second
	})
	alice, bob, pb := videoCall(t, ts)
	_ = pb.pc.Close() // the network is gone: no more media, no leave
	bob.event("user:left", func(e eventData) bool { return e.UserID == "bob" })
	alice.event("user:left", func(e eventData) bool { return e.UserID == "bob" })
	bob.want("NotMember", "getUsers", nil)
	bob.must("join", joinData{ChannelID: "c"}) // and it can come back
}

// TestResume: a user whose WebSocket is lost (not closed) stays in the
// call for ResumeGrace with its media flowing; a new connection joining
// with resume takes the stay over without anyone seeing it leave. A lost
// connection nobody resumes ends in a leave.
func TestResume(t *testing.T) {
	leaks := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, leaks) })
	ts := newTestServer(t, func(c *Config) { c.ResumeGrace = 2 * time.Second })
	alice, bob, pb := videoCall(t, ts)
	var before usersResult
	if err := json.Unmarshal(alice.must("getUsers", nil), &before); err != nil {
		t.Fatal(err)
	}

	ts.cut("bob")
	bob.waitClosed()
	n := pb.received.Load()
	waitFor(t, "media while the connection is lost", func() bool { return pb.received.Load() >= n+10 })
	bob = login(t, ts, "bob", false)
	var res stayResult
	if err := json.Unmarshal(bob.must("join", joinData{ChannelID: "c", Resume: true}), &res); err != nil || !res.Resumed {
		t.Fatalf("resume: %+v %v", res, err)
	}
	var after usersResult
	if err := json.Unmarshal(alice.must("getUsers", nil), &after); err != nil || after.Seq != before.Seq || len(after.Users) != 2 {
		t.Errorf("the resume was seen: seq %d → %d, users %+v", before.Seq, after.Seq, after.Users)
	}
	n = pb.received.Load()
	waitFor(t, "media after the resume", func() bool { return pb.received.Load() >= n+10 })
	bob.want("NotFound", "muteTracks", muteTracksData{Names: []string{"none"}, State: new(true)}) // in the channel: not NotMember
	if ts.Stats().Resumes != 1 {
		t.Errorf("resumes: %d", ts.Stats().Resumes)
	}

	// Lost again and not resumed: bob leaves after the grace period.
	ts.cut("bob")
	alice.event("user:left", func(e eventData) bool { return e.UserID == "bob" })
	waitFor(t, "bob's peer to close", func() bool {
		s := pb.pc.ConnectionState()
		return s != pion.PeerConnectionStateConnected
	})
}

// TestICERestart: a client's ICE restart (an offer with new credentials)
// goes through the protocol like any offer; media keeps flowing.
func TestICERestart(t *testing.T) {
	leaks := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, leaks) })
	ts := newTestServer(t, nil)
	_, bob, pb := videoCall(t, ts)
	ufrag := func() string {
		sdp := pb.pc.RemoteDescription().SDP
		i := strings.Index(sdp, "a=ice-ufrag:")
		return sdp[i : i+strings.IndexByte(sdp[i:], '\r')]
	}
	before := ufrag()
	o, err := pb.pc.CreateOffer(&pion.OfferOptions{ICERestart: true})
	if err != nil {
		t.Fatal(err)
	}
	var a sdpData
	if err := json.Unmarshal(bob.must("offer", sdpData{SDP: pb.local(o)}), &a); err != nil {
		t.Fatal(err)
	}
	if err := pb.pc.SetRemoteDescription(pion.SessionDescription{Type: pion.SDPTypeAnswer, SDP: a.SDP}); err != nil {
		t.Fatal(err)
	}
	if ufrag() == before {
		t.Error("the server's answer kept its ICE credentials")
	}
	n := pb.received.Load()
	waitFor(t, "media after the restart", func() bool { return pb.received.Load() >= n+20 })
	if s := pb.pc.ConnectionState(); s != pion.PeerConnectionStateConnected {
		t.Errorf("after the restart: %s", s)
	}
}
