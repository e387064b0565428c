package webrtc

import (
	"bytes"
	"encoding/binary"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/pion/sdp/v3"
	pion "github.com/pion/webrtc/v4"
	"go.uber.org/goleak"

	"github.com/callcore/callcore/forward"
)

// TestDownlinkFeedback: every packet a subscriber gets carries the
// transport-wide sequence number, consecutive, on the direct path and on
// pion's; the pion client's transport-wide feedback (pion's default
// interceptors) reaches the peer's estimator, which counts the packets
// received and estimates.
func TestDownlinkFeedback(t *testing.T) {
	for _, direct := range []bool{true, false} {
		name := "pion's path"
		if direct {
			name = "direct path"
		}
		t.Run(name, func(t *testing.T) { testDownlinkFeedback(t, direct, false) })
	}
}

// TestNoCongestionControlNumbersNothing: with congestion control off, the
// packets a subscriber gets carry no transport-wide number, so its client
// sends no feedback and the peer never estimates.
func TestNoCongestionControlNumbersNothing(t *testing.T) {
	testDownlinkFeedback(t, false, true)
}

func testDownlinkFeedback(t *testing.T, direct, off bool) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	var engine *Engine
	if direct {
		engine, _ = newMuxEngine(t)
	} else {
		engine = newTestEngine(t, Config{NoCongestionControl: off})
	}
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
	c := newClient(t, clientAPI(t))
	var (
		mu       sync.Mutex
		seqs     []uint16 // transport-wide numbers the client got
		missing  int      // packets without the extension
		received atomic.Int64
	)
	c.pc.OnTrack(func(remote *pion.TrackRemote, recv *pion.RTPReceiver) {
		var id uint8
		for _, e := range recv.GetParameters().HeaderExtensions {
			if e.URI == sdp.TransportCCURI {
				id = uint8(e.ID)
			}
		}
		c.goRun(func() {
			for {
				pkt, _, err := remote.ReadRTP()
				if err != nil {
					return
				}
				mu.Lock()
				if v := pkt.Header.GetExtension(id); id != 0 && len(v) == 2 {
					seqs = append(seqs, binary.BigEndian.Uint16(v))
				} else {
					missing++
				}
				mu.Unlock()
				received.Add(1)
			}
		})
	})
	sub, err := server.Subscribe(track, PublishInfo{})
	if err != nil {
		t.Fatal(err)
	}
	negotiate(t, server, c)
	waitFor(t, "the binding", func() bool {
		return sub.Subscriber() != nil && (!direct || sub.out.fast.Load() != nil)
	})
	if (sub.out.twccID == 0) != off {
		t.Fatalf("transport-wide extension id %d with congestion control off %v", sub.out.twccID, off)
	}
	if (sub.out.fast.Load() != nil) != direct {
		t.Fatalf("direct path %v, want %v", sub.out.fast.Load() != nil, direct)
	}
	buf := make([]byte, 1500)
	seq := 0
	waitFor(t, "the first packet", func() bool {
		_ = track.HandleRTP(benchPacket(buf, seq))
		seq++
		return received.Load() > 0
	})
	est := server.Estimator()
	const n = 300
	for i := range n {
		_ = track.HandleRTP(benchPacket(buf, seq))
		seq++
		if i%20 == 19 {
			waitFor(t, "the packets sent so far", func() bool { return received.Load() >= int64(i) })
		}
	}
	if off {
		waitFor(t, "the packets", func() bool { return received.Load() > n })
		mu.Lock()
		numbered, miss := len(seqs), missing
		mu.Unlock()
		if numbered != 0 || miss <= n || est.HasFeedback() || est.Stats().Received != 0 {
			t.Fatalf("congestion control off: %d packets numbered, %d not; estimator %+v",
				numbered, miss, est.Stats())
		}
		if err := server.Close(); err != nil {
			t.Error(err)
		}
		c.close(t)
		return
	}
	waitFor(t, "feedback on every packet", func() bool { return est.Stats().Received >= n })
	st := est.Stats()
	mu.Lock()
	got := append([]uint16(nil), seqs...)
	miss := missing
	mu.Unlock()
	if miss != 0 {
		t.Fatalf("%d packets without the transport-wide sequence number", miss)
	}
	for i := 1; i < len(got); i++ {
		if got[i] != got[i-1]+1 {
			t.Fatalf("transport-wide numbers %d then %d", got[i-1], got[i])
		}
	}
	if !est.HasFeedback() || st.Lost != 0 || st.Malformed != 0 || st.Estimate <= 0 {
		t.Fatalf("estimator after %d packets: %+v", len(got), st)
	}
	t.Logf("%d packets, numbers %d..%d; estimator %+v", len(got), got[0], got[len(got)-1], st)
	if err := server.Close(); err != nil {
		t.Error(err)
	}
	c.close(t)
}

// TestPutTWCC: the extension is added to a header without one, appended
// to a one-byte block, and the payload prefix after the header is kept.
func TestPutTWCC(t *testing.T) {
	dst := make([]byte, 64)
	plain := []byte{0x80, 96, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3}
	n := putTWCC(dst, plain, 3, 0x1234)
	want := append(append([]byte{0x90}, plain[1:]...), 0xBE, 0xDE, 0, 1, 0x31, 0x12, 0x34, 0)
	if !bytes.Equal(dst[:n], want) {
		t.Fatalf("no extension: % x, want % x", dst[:n], want)
	}
	withDesc := append(append([]byte(nil), testHeader...), 0x90, 0x80)
	n = putTWCC(dst, withDesc, 3, 0x1234)
	want = append(append([]byte{}, testHeader[:14]...), 0, 2, 0x10, 0x7f, 0, 0, 0x31, 0x12, 0x34, 0, 0x90, 0x80)
	if !bytes.Equal(dst[:n], want) {
		t.Fatalf("one-byte block: % x, want % x", dst[:n], want)
	}
}
