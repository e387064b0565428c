package webrtc

import (
	"encoding/binary"
	"fmt"
	"reflect"
	"runtime"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"
	pion "github.com/pion/webrtc/v4"

	"github.com/callcore/callcore/forward"
	"github.com/callcore/callcore/internal/pionloop"
)

// BenchmarkWebRTCFanout and BenchmarkPionBroadcast side by side: one op is
// one 1,200-byte Opus packet written once and delivered to N subscriber
// PeerConnections on loopback; packets are counted where the subscribers
// read them. The subscribers are the same in both (minimalAPI: default
// codecs, no interceptors, a goroutine reading and counting).
//
//	go test ./transport/webrtc -run '^$' -bench 'WebRTCFanout|PionBroadcast' -benchtime 20000x
//
// Metrics: pkts/s delivered (read by the subscribers, over the time from
// the first send to the last packet read), loss (share of deliveries never
// read), send-ns/delivery (the sending loop's wall time),
// send-cpu-ns/delivery (the CPU time of the sending thread: callcore's or
// pion's send path, and on loopback the kernel's receive processing that
// runs in the sender's system calls), cpu-ns/delivered (the whole
// process's CPU time, receivers included, per packet read: robust when
// other work shares the machine), allocs/delivery (every allocation of
// the process while sending, the receivers' included: an upper bound for
// the send side), B/sub (heap added per subscriber: server side and
// receiver together, after GC, once connected; after sending it is
// dominated by the receivers' pion buffers, which grow with their backlog,
// so it is not reported), srtp-profile (the negotiated SRTP profile: 7 AES-128-GCM,
// 8 AES-256-GCM, 1 AES-CM-128-HMAC-SHA1-80).
func BenchmarkWebRTCFanout(b *testing.B) {
	for _, n := range []int{10, 50} {
		b.Run(fmt.Sprintf("subs=%d", n), func(b *testing.B) { benchOursTWCC(b, n, false) })
	}
}

// BenchmarkWebRTCFanoutTWCC is BenchmarkWebRTCFanout with subscribers
// that negotiate the transport-wide sequence number extension: every
// packet carries it and its send is recorded (twcc.go). The receivers
// send no feedback (no interceptors), so the difference is the send
// side's.
func BenchmarkWebRTCFanoutTWCC(b *testing.B) {
	for _, n := range []int{10, 50} {
		b.Run(fmt.Sprintf("subs=%d", n), func(b *testing.B) { benchOursTWCC(b, n, true) })
	}
}

func BenchmarkPionBroadcast(b *testing.B) {
	for _, n := range []int{10, 50} {
		b.Run(fmt.Sprintf("subs=%d", n), func(b *testing.B) { benchBroadcast(b, n) })
	}
}

// minimalAPI is the benchmarks' receiver: pion's default codecs, no
// interceptors, loopback only; with twcc, the transport-wide sequence
// number extension negotiated.
func minimalAPI(t testing.TB, twcc bool) *pion.API {
	t.Helper()
	me := &pion.MediaEngine{}
	if err := me.RegisterDefaultCodecs(); err != nil {
		t.Fatal(err)
	}
	if twcc {
		if err := me.RegisterHeaderExtension(pion.RTPHeaderExtensionCapability{URI: sdp.TransportCCURI}, pion.RTPCodecTypeAudio); err != nil {
			t.Fatal(err)
		}
	}
	se := pion.SettingEngine{}
	pionloop.Restrict(&se)
	// An empty registry: without one pion registers its default interceptors.
	return pion.NewAPI(pion.WithMediaEngine(me), pion.WithSettingEngine(se),
		pion.WithInterceptorRegistry(&interceptor.Registry{}))
}

// receivers connects n counting receivers through connect, which
// negotiates the server side of one and returns its PeerConnection and
// closer. It reports the heap added per receiver and server side.
func receivers(b *testing.B, n int, api *pion.API, connect func(c *client) (*pion.PeerConnection, func())) (recv *atomic.Int64, m sideMetrics, closeAll func()) {
	return receiversOf(b, n, func() *pion.API { return api }, connect)
}

// receiversOf is receivers with each receiver's API from newAPI.
func receiversOf(b *testing.B, n int, newAPI func() *pion.API, connect func(c *client) (*pion.PeerConnection, func())) (recv *atomic.Int64, m sideMetrics, closeAll func()) {
	var perSub float64
	var profile uint64
	recv = &atomic.Int64{}
	var closers []func()
	var clients []*client
	var server *pion.PeerConnection
	before := heapAfterGC()
	for range n {
		c := newClient(b, newAPI())
		c.pc.OnTrack(func(remote *pion.TrackRemote, _ *pion.RTPReceiver) {
			c.goRun(func() {
				buf := make([]byte, 1500)
				for {
					if _, _, err := remote.Read(buf); err != nil {
						return
					}
					recv.Add(1)
				}
			})
		})
		pc, closer := connect(c)
		server = pc
		closers = append(closers, closer)
		clients = append(clients, c)
	}
	waitFor(b, "DTLS up on every subscriber", func() bool {
		for _, c := range clients {
			if c.pc.ConnectionState() != pion.PeerConnectionStateConnected {
				return false
			}
		}
		return true
	})
	perSub = float64(heapAfterGC()-before) / float64(n)
	profile = srtpProfile(server)
	return recv, sideMetrics{perSub: perSub, profile: profile}, func() {
		for i, c := range clients {
			closers[i]()
			c.close(b)
		}
	}
}

func heapAfterGC() int64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc)
}

// srtpProfile reads the SRTP profile pion negotiated (unexported: read by
// reflection, test only).
func srtpProfile(pc *pion.PeerConnection) uint64 {
	if pc == nil {
		return 0
	}
	f := reflect.ValueOf(pc.SCTP().Transport()).Elem().FieldByName("srtpProtectionProfile")
	if !f.IsValid() {
		return 0
	}
	return f.Uint()
}

// sideMetrics are measured while connecting, reported after timing.
type sideMetrics struct {
	perSub  float64 // heap bytes per subscriber
	profile uint64  // SRTP profile
}

// measure warms up, times b.N sends and reports the side-by-side metrics.
func measure(b *testing.B, n int, recv *atomic.Int64, m sideMetrics, send func(seq int)) {
	seq := 0
	waitFor(b, "every subscriber receiving", func() bool {
		send(seq)
		seq++
		return recv.Load() >= int64(10*n)
	})
	settle(recv)
	recv.Store(0)
	b.ReportAllocs()
	// The sending goroutine keeps its thread, so the thread's CPU time is
	// the send side's (with, on loopback, the kernel's receive processing
	// that runs in the sender's system calls).
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	b.ResetTimer()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	mallocs := ms.Mallocs
	proc0, thread0 := cpuTime(rusageSelf), cpuTime(rusageThread)
	start := time.Now()
	for range b.N {
		send(seq)
		seq++
	}
	b.StopTimer()
	sendTime := b.Elapsed()
	thread1 := cpuTime(rusageThread)
	runtime.ReadMemStats(&ms)
	allocs := float64(ms.Mallocs-mallocs) / float64(b.N*n)
	want := int64(b.N * n)
	got, last := settle(recv)
	proc1 := cpuTime(rusageSelf)
	if got > want {
		got = want
	}
	b.ReportMetric(float64(got)/last.Sub(start).Seconds(), "pkts/s")
	b.ReportMetric(1-float64(got)/float64(want), "loss")
	b.ReportMetric(float64(sendTime.Nanoseconds())/float64(want), "send-ns/delivery")
	b.ReportMetric(allocs, "allocs/delivery")
	b.ReportMetric(float64(thread1-thread0)/float64(want), "send-cpu-ns/delivery")
	b.ReportMetric(float64(proc1-proc0)/float64(got), "cpu-ns/delivered")
	b.ReportMetric(m.perSub, "B/sub")
	b.ReportMetric(float64(m.profile), "srtp-profile")
}

const (
	rusageSelf   = 0 // RUSAGE_SELF
	rusageThread = 1 // RUSAGE_THREAD (Linux)
)

// cpuTime returns the user and system CPU time of the process or of the
// calling thread, in nanoseconds.
func cpuTime(who int) int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(who, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// settle waits until the count stops growing (nothing more is coming) and
// returns it with the time it was last seen to grow.
func settle(recv *atomic.Int64) (int64, time.Time) {
	last, at := recv.Load(), time.Now()
	for end := time.Now().Add(deadline); time.Now().Before(end); {
		time.Sleep(5 * time.Millisecond) // polling a counter against a deadline
		r := recv.Load()
		if r == last && time.Since(at) > 100*time.Millisecond {
			break
		}
		if r != last {
			last, at = r, time.Now()
		}
	}
	return last, at
}

func benchOursTWCC(b *testing.B, n int, twcc bool) {
	engine, _ := newMuxEngine(b)
	api := minimalAPI(b, twcc)
	benchOursOn(b, n, engine, func() *pion.API { return api }, twcc)
}

// benchOursOn is the fan-out benchmark on engine, with each receiver's API
// from newAPI; twcc says whether the receivers negotiate transport-wide
// sequence numbers.
func benchOursOn(b *testing.B, n int, engine *Engine, newAPI func() *pion.API, twcc bool) {
	defer engine.Close()
	track, err := forward.NewTrack(forward.TrackConfig{Kind: forward.Audio, MimeType: pion.MimeTypeOpus,
		ClockRate: 48000, PayloadType: 111, SSRC: 0x1234})
	if err != nil {
		b.Fatal(err)
	}
	defer track.Close()
	var subs []*Subscription
	recv, m, closeAll := receiversOf(b, n, newAPI, func(c *client) (*pion.PeerConnection, func()) {
		p, err := NewPeer(PeerConfig{Engine: engine})
		if err != nil {
			b.Fatal(err)
		}
		s, err := p.Subscribe(track, PublishInfo{})
		if err != nil {
			b.Fatal(err)
		}
		subs = append(subs, s)
		negotiate(b, p, c)
		return p.pc, func() { _ = p.Close() }
	})
	defer closeAll()
	buf := make([]byte, 1500)
	measure(b, n, recv, m, func(seq int) { _ = track.HandleRTP(benchPacket(buf, seq)) })
	for _, s := range subs {
		if s.out.fast.Load() == nil {
			b.Fatal("a subscription is not on the direct path")
		}
		if (s.out.twccID != 0) != twcc {
			b.Fatalf("transport-wide sequence number extension %d, want it %v", s.out.twccID, twcc)
		}
	}
}

func benchBroadcast(b *testing.B, n int) {
	track, err := pion.NewTrackLocalStaticRTP(pion.RTPCodecCapability{MimeType: pion.MimeTypeOpus, ClockRate: 48000, Channels: 2}, "a", "s")
	if err != nil {
		b.Fatal(err)
	}
	serverAPI := clientAPI(b) // default codecs and interceptors, as pion's broadcast example
	recv, m, closeAll := receivers(b, n, minimalAPI(b, false), func(c *client) (*pion.PeerConnection, func()) {
		s := newClient(b, serverAPI)
		if _, err := s.pc.AddTrack(track); err != nil {
			b.Fatal(err)
		}
		offer, err := s.pc.CreateOffer(nil)
		if err != nil {
			b.Fatal(err)
		}
		if err := c.pc.SetRemoteDescription(pion.SessionDescription{Type: pion.SDPTypeOffer, SDP: setLocal(b, s.pc, offer)}); err != nil {
			b.Fatal(err)
		}
		ans, err := c.pc.CreateAnswer(nil)
		if err != nil {
			b.Fatal(err)
		}
		if err := s.pc.SetRemoteDescription(pion.SessionDescription{Type: pion.SDPTypeAnswer, SDP: setLocal(b, c.pc, ans)}); err != nil {
			b.Fatal(err)
		}
		return s.pc, func() { s.close(b) }
	})
	defer closeAll()
	buf := make([]byte, 1500)
	var pkt rtp.Packet
	measure(b, n, recv, m, func(seq int) {
		if err := pkt.Unmarshal(benchPacket(buf, seq)); err == nil {
			_ = track.WriteRTP(&pkt)
		}
	})
}

// benchPacket writes RTP packet seq of a 1,200-byte Opus stream into buf.
func benchPacket(buf []byte, seq int) []byte {
	buf = buf[:1200]
	buf[0], buf[1] = 0x80, 111
	binary.BigEndian.PutUint16(buf[2:], uint16(seq))
	binary.BigEndian.PutUint32(buf[4:], uint32(seq)*960)
	binary.BigEndian.PutUint32(buf[8:], 0x1234)
	return buf
}
