package webrtc

import (
	"encoding/binary"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/interceptor/pkg/report"
	"github.com/pion/rtcp"
	pion "github.com/pion/webrtc/v4"
	"go.uber.org/goleak"

	"github.com/callcore/callcore/forward"
	"github.com/callcore/callcore/internal/pionloop"
)

// reportsOnlyClientAPI is a pion client that sends receiver reports (every
// interval) and NACKs but no transport-wide feedback: pion's default
// interceptors without the transport-wide ones, and without the
// extension, so the server does not number its packets. pion has no REMB
// generator for a receiver: what such a client tells the server of its
// link is the loss in its receiver reports. With ip set, it is on one UDP
// socket there (the mux returned; nil otherwise).
func reportsOnlyClientAPI(t testing.TB, ip net.IP, interval time.Duration) (*pion.API, ice.UDPMux) {
	t.Helper()
	me := &pion.MediaEngine{}
	if err := me.RegisterDefaultCodecs(); err != nil {
		t.Fatal(err)
	}
	ir := &interceptor.Registry{}
	if err := pion.ConfigureNack(me, ir); err != nil {
		t.Fatal(err)
	}
	if err := pion.ConfigureRTCPReportsWithOptions(ir, []report.ReceiverOption{report.ReceiverInterval(interval)}); err != nil {
		t.Fatal(err)
	}
	se := pion.SettingEngine{}
	pionloop.Restrict(&se)
	var mux ice.UDPMux
	if ip != nil {
		conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: ip})
		if err != nil {
			t.Fatal(err)
		}
		_ = conn.SetReadBuffer(4 << 20)
		mux = pion.NewICEUDPMux(nil, conn)
		se.SetICEUDPMux(mux)
	}
	return pion.NewAPI(pion.WithMediaEngine(me), pion.WithInterceptorRegistry(ir), pion.WithSettingEngine(se)), mux
}

// TestReportLossInheritedLeavesEstimate: a pion subscriber that sends only
// receiver reports (no transport-wide feedback) of a track whose publisher
// lost every fifth packet: the core forwards the gaps, the client reports
// them lost, and the peer's estimator is given the reports' loss with the
// gaps taken out: it has feedback, counts what the link lost (little, on
// loopback) and keeps its estimate.
func TestReportLossInheritedLeavesEstimate(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	engine := newTestEngine(t, Config{})
	defer engine.Close()
	track, err := forward.NewTrack(forward.TrackConfig{Kind: forward.Audio, MimeType: pion.MimeTypeOpus,
		ClockRate: 48000, PayloadType: 111, SSRC: 0x1234})
	if err != nil {
		t.Fatal(err)
	}
	defer track.Close()
	server, err := NewPeer(PeerConfig{Engine: engine})
	if err != nil {
		t.Fatal(err)
	}
	api, _ := reportsOnlyClientAPI(t, nil, 100*time.Millisecond)
	c := newClient(t, api)
	var received atomic.Int64
	c.pc.OnTrack(func(remote *pion.TrackRemote, _ *pion.RTPReceiver) {
		c.goRun(func() {
			for {
				if _, _, err := remote.ReadRTP(); err != nil {
					return
				}
				received.Add(1)
			}
		})
	})
	sub, err := server.Subscribe(track, PublishInfo{})
	if err != nil {
		t.Fatal(err)
	}
	negotiate(t, server, c)
	waitFor(t, "the binding", func() bool { return sub.Subscriber() != nil })
	if sub.out.twccID != 0 {
		t.Fatal("the transport-wide sequence number extension was negotiated")
	}
	buf := make([]byte, 1500)
	seq := 0
	waitFor(t, "the first packet", func() bool {
		_ = track.HandleRTP(benchPacket(buf, seq))
		seq++
		return received.Load() > 0
	})
	est := server.Estimator()
	// Until a report counted packets: the first one only sets where
	// counting starts.
	waitFor(t, "a receiver report", func() bool {
		_ = track.HandleRTP(benchPacket(buf, seq))
		seq++
		return est.HasFeedback()
	})
	base := est.Stats().ReportExpected
	const n = 500
	sent := 0
	for i := range n {
		seq++
		if i%5 == 4 {
			continue // lost upstream
		}
		_ = track.HandleRTP(benchPacket(buf, seq))
		sent++
		if sent%20 == 0 {
			waitFor(t, "the packets sent so far", func() bool { return received.Load() >= int64(sent) })
		}
	}
	// Most of the 400 sent: the last few may be lost on a loaded loopback,
	// and a report covers only up to the highest number received.
	waitFor(t, "receiver reports of the packets sent", func() bool { return est.Stats().ReportExpected-base >= n*3/4 })
	st := est.Stats()
	skipped := sub.out.gaps.skipped.Load()
	t.Logf("%d packets, %d lost upstream (%d gaps forwarded); estimator %+v; pacing %+v", n, n/5, skipped, st, server.PaceStats())
	if skipped != n/5 {
		t.Fatalf("%d gaps forwarded, want %d", skipped, n/5)
	}
	// The link itself may lose a few packets (a loaded machine's loopback
	// has: up to 25 of 450), but not the fifth that upstream lost, which
	// would be over the threshold that cuts.
	if !est.HasFeedback() || st.ReportLost*10 >= st.ReportExpected-base || st.LossCuts != 0 || st.Estimate != 5e6 || st.Feedback != 0 {
		t.Fatalf("estimator after inherited loss: %+v", st)
	}
	if err := server.Close(); err != nil {
		t.Error(err)
	}
	c.close(t)
}

// TestReportBlock: the loss and highest number of the report block about
// one SSRC, in sender and receiver reports, among other packets.
func TestReportBlock(t *testing.T) {
	rr := &rtcp.ReceiverReport{SSRC: 1, Reports: []rtcp.ReceptionReport{
		{SSRC: 7, TotalLost: 3, LastSequenceNumber: 70000},
		{SSRC: 9, TotalLost: 0xfffffe, LastSequenceNumber: 5}, // -2
	}}
	sr := &rtcp.SenderReport{SSRC: 2, Reports: []rtcp.ReceptionReport{{SSRC: 9, TotalLost: 12, LastSequenceNumber: 90}}}
	pkt, err := rtcp.Marshal([]rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: 9}, rr})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		pkt        []byte
		ssrc       uint32
		lost       int32
		high       uint32
		ok         bool
		what       string
		reportsNew bool
	}{
		{pkt, 7, 3, 70000, true, "first block", false},
		{pkt, 9, -2, 5, true, "negative loss", false},
		{pkt, 8, 0, 0, false, "no block about it", false},
		{pkt[:len(pkt)-4], 9, 0, 0, false, "truncated", false},
	} {
		lost, high, ok := reportBlock(c.pkt, c.ssrc)
		if lost != c.lost || high != c.high || ok != c.ok {
			t.Errorf("%s: %d %d %v, want %d %d %v", c.what, lost, high, ok, c.lost, c.high, c.ok)
		}
	}
	pkt, err = rtcp.Marshal([]rtcp.Packet{sr})
	if err != nil {
		t.Fatal(err)
	}
	if lost, high, ok := reportBlock(pkt, 9); lost != 12 || high != 90 || !ok {
		t.Errorf("sender report: %d %d %v", lost, high, ok)
	}
}

// FuzzReportBlock checks reportBlock against pion's parser: whatever pion
// reads of a compound packet, the last report block about the SSRC is what
// reportBlock returns; it never panics.
func FuzzReportBlock(f *testing.F) {
	rr, _ := rtcp.Marshal([]rtcp.Packet{&rtcp.ReceiverReport{SSRC: 1, Reports: []rtcp.ReceptionReport{{SSRC: 7, TotalLost: 3, LastSequenceNumber: 9}}}})
	sr, _ := rtcp.Marshal([]rtcp.Packet{&rtcp.SenderReport{SSRC: 1, Reports: []rtcp.ReceptionReport{{SSRC: 7, TotalLost: 0x800000}}}, &rtcp.PictureLossIndication{}})
	f.Add(rr, uint32(7))
	f.Add(sr, uint32(7))
	f.Add([]byte{0x81, 201, 0, 1, 0, 0, 0, 1}, uint32(7))
	f.Fuzz(func(t *testing.T, pkt []byte, ssrc uint32) {
		lost, high, ok := reportBlock(pkt, ssrc)
		pkts, err := rtcp.Unmarshal(pkt)
		if err != nil {
			return // pion refuses the whole packet; reportBlock reads what it can
		}
		var want rtcp.ReceptionReport
		found := false
		for _, p := range pkts {
			var blocks []rtcp.ReceptionReport
			switch p := p.(type) {
			case *rtcp.ReceiverReport:
				blocks = p.Reports
			case *rtcp.SenderReport:
				blocks = p.Reports
			}
			for _, b := range blocks {
				if b.SSRC == ssrc {
					want, found = b, true
				}
			}
		}
		wantLost := int32(want.TotalLost<<8) >> 8
		if ok != found || (found && (lost != wantLost || high != want.LastSequenceNumber)) {
			t.Fatalf("reportBlock %d %d %v, pion %+v %v", lost, high, ok, want, found)
		}
	})
}

// TestSeqGaps: numbers skipped by the main stream are counted, older
// packets and other SSRCs are not, across the wrap.
func TestSeqGaps(t *testing.T) {
	var g seqGaps
	hdr := func(ssrc uint32, seq uint16) []byte {
		b := make([]byte, 12)
		b[0] = 0x80
		binary.BigEndian.PutUint16(b[2:], seq)
		binary.BigEndian.PutUint32(b[8:], ssrc)
		return b
	}
	for _, p := range []struct {
		ssrc uint32
		seq  uint16
	}{{5, 65530}, {5, 65531}, {5, 65534}, {6, 100}, {5, 65532}, {5, 1}, {5, 1}, {5, 2}} {
		g.note(hdr(p.ssrc, p.seq), 5)
	}
	g.note([]byte{0x80}, 5)
	// 65532, 65533 skipped; 65535, 0 skipped.
	if got := g.skipped.Load(); got != 4 {
		t.Fatalf("%d skipped, want 4", got)
	}
	for _, c := range []struct {
		seq  uint16
		want uint64
	}{{65531, 0}, {65534, 2}, {0, 2}, {1, 4}, {900, 4}} {
		if got := g.skippedUpTo(c.seq); got != c.want {
			t.Errorf("skipped up to %d: %d, want %d", c.seq, got, c.want)
		}
	}
	// More gaps than remembered: the oldest remembered bounds the older.
	for i := range 2 * gapRing {
		g.note(hdr(5, uint16(10+3*i)), 5)
	}
	if got, want := g.skippedUpTo(5), g.ring[g.n.Load()%gapRing].Load()>>16; got != want {
		t.Errorf("before every gap remembered: %d, want %d", got, want)
	}
	if got, want := g.skippedUpTo(uint16(10+3*(2*gapRing-1))), g.skipped.Load(); got != want {
		t.Errorf("up to the last gap: %d, want %d", got, want)
	}
}
