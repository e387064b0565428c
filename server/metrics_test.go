package server

import (
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/pion/rtp"
	pion "github.com/pion/webrtc/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"go.uber.org/goleak"

	"github.com/callcore/callcore/mute"
)

// scrape is one gathering of a server's metrics.
type scrape map[string]*dto.MetricFamily

func scrapeOf(t testing.TB, s *Server) scrape {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(s.Collector())
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := scrape{}
	for _, mf := range mfs {
		out[mf.GetName()] = mf
	}
	return out
}

// value is the metric's value with the given label pairs ("op", "join"),
// -1 when there is none.
func (sc scrape) value(name string, labels ...string) float64 {
	mf := sc[name]
	if mf == nil {
		return -1
	}
next:
	for _, m := range mf.GetMetric() {
		for i := 0; i+1 < len(labels); i += 2 {
			found := false
			for _, lp := range m.GetLabel() {
				if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
					found = true
				}
			}
			if !found {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue()
		case m.Gauge != nil:
			return m.Gauge.GetValue()
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount())
		}
	}
	return -1
}

// TestMetricsLint: the metrics, before and during a call, pass the client
// library's lint (names, units, help) and a pedantic registry's checks.
func TestMetricsLint(t *testing.T) {
	leaks := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, leaks) })
	ts := newTestServer(t, nil)
	lint := func(when string) {
		problems, err := testutil.CollectAndLint(ts.Collector())
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range problems {
			t.Errorf("%s: %s: %s", when, p.Metric, p.Text)
		}
	}
	lint("idle")
	videoCall(t, ts)
	lint("in a call")
	sc := scrapeOf(t, ts.Server)
	if sc.value("callcore_request_duration_seconds", "op", "join") != 1 {
		t.Errorf("join latency samples: %v", sc.value("callcore_request_duration_seconds", "op", "join"))
	}
}

// TestMetricsMatchCall: alice publishes to bob and carol (two pion
// subscribers). The gauges show the call; the packets-sent counter grows
// by exactly what the two clients receive of a burst alice sends once
// everyone is connected; it does not go back when bob leaves; requests
// are counted by operation and code, a request type nobody knows as
// unknown.
func TestMetricsMatchCall(t *testing.T) {
	leaks := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, leaks) })
	ts := newTestServer(t, nil)
	metric := func(name string, labels ...string) float64 { return scrapeOf(t, ts.Server).value(name, labels...) }
	if v := metric("callcore_sent_packets_total"); v != 0 {
		t.Fatalf("sent before any call: %v", v)
	}
	alice := login(t, ts, "alice", true)
	alice.must("create", createData{ChannelID: "c", Tracks: []trackData{{Name: "cam", Kind: "video", TrackID: "alice-cam"}}})
	pa := newPeer(t, alice)
	tr, err := pion.NewTrackLocalStaticRTP(pion.RTPCodecCapability{MimeType: pion.MimeTypeVP8, ClockRate: 90000}, "alice-cam", "stream")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pa.pc.AddTransceiverFromTrack(tr, pion.RTPTransceiverInit{Direction: pion.RTPTransceiverDirectionSendonly}); err != nil {
		t.Fatal(err)
	}
	pa.offer()
	frame, err := mute.BlackKeyFrame(mute.MimeTypeVP8, 320, 240)
	if err != nil {
		t.Fatal(err)
	}
	small := append([]byte{0x10}, frame...)                  // VP8 payload descriptor: start of partition 0
	big := append(slices.Clone(small), make([]byte, 400)...) // the burst's packets, told apart by their size
	seq := uint16(0)
	send := func(payload []byte) {
		seq++
		if err := tr.WriteRTP(&rtp.Packet{Header: rtp.Header{Version: 2, Marker: true, SequenceNumber: seq, Timestamp: uint32(seq) * 3000}, Payload: payload}); err != nil {
			t.Fatal(err)
		}
	}
	// Key frames until the server has the track, then nothing.
	waitFor(t, "alice's track at the server", func() bool { send(small); return metric("callcore_published_tracks") == 1 })

	var subs []*peer
	var clients []*client
	for _, u := range []string{"bob", "carol"} {
		c := login(t, ts, u, false)
		c.must("join", joinData{ChannelID: "c"})
		p := newPeer(t, c)
		p.bigOver.Store(int64(len(small) + 200))
		p.answer()
		subs, clients = append(subs, p), append(clients, c)
	}
	waitFor(t, "everyone connected", func() bool {
		return metric("callcore_peers", "state", "connected") == 3 && metric("callcore_subscriptions") == 2 &&
			subs[0].pc.ConnectionState() == pion.PeerConnectionStateConnected &&
			subs[1].pc.ConnectionState() == pion.PeerConnectionStateConnected
	})
	alice.want("Invalid", "fly", nil)

	sc := scrapeOf(t, ts.Server)
	for _, g := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"callcore_channels", nil, 1},
		{"callcore_users", nil, 3},
		{"callcore_published_tracks", nil, 1},
		{"callcore_subscriptions", nil, 2},
		{"callcore_websocket_connections", nil, 3},
		{"callcore_websocket_connections_total", nil, 3},
		{"callcore_requests_total", []string{"op", "join", "code", "ok"}, 2},
		{"callcore_requests_total", []string{"op", "create", "code", "ok"}, 1},
		{"callcore_requests_total", []string{"op", "unknown", "code", "Invalid"}, 1},
	} {
		if got := sc.value(g.name, g.labels...); got != g.want {
			t.Errorf("%s%v: %v, want %v", g.name, g.labels, got, g.want)
		}
	}

	const burst = 60
	before := sc.value("callcore_sent_packets_total")
	for range burst {
		send(big)
	}
	got := func() int64 { return subs[0].big.Load() + subs[1].big.Load() }
	waitFor(t, "the burst at both subscribers", func() bool { return got() == 2*burst })
	sent := metric("callcore_sent_packets_total")
	if sent-before != float64(got()) {
		t.Errorf("sent counter grew by %v; the subscribers received %d", sent-before, got())
	}
	if b := metric("callcore_sent_bytes_total"); b < sent*float64(len(small)) {
		t.Errorf("sent bytes %v for %v packets", b, sent)
	}

	clients[0].must("leave", nil)
	waitFor(t, "bob's subscription to end", func() bool { return metric("callcore_subscriptions") == 1 })
	if after := metric("callcore_sent_packets_total"); after != sent {
		t.Errorf("sent after bob left: %v, was %v", after, sent)
	}
}

// TestAdminHandler: the admin handler serves the metrics in the text
// format, with the Go runtime's, and pprof's index.
func TestAdminHandler(t *testing.T) {
	ts := newTestServer(t, nil)
	admin := httptest.NewServer(ts.AdminHandler())
	defer admin.Close()
	get := func(path string) string {
		resp, err := http.Get(admin.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %d", path, resp.StatusCode)
		}
		return string(b)
	}
	m := get("/metrics")
	for _, want := range []string{"callcore_channels 0", "go_goroutines", "# TYPE callcore_sent_packets_total counter"} {
		if !strings.Contains(m, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if !strings.Contains(get("/debug/pprof/"), "goroutine") {
		t.Error("no pprof index")
	}
	if code, _ := ts.get(t, "/metrics"); code == http.StatusOK {
		t.Error("the public handler serves /metrics")
	}
}

// BenchmarkScrape: one scrape (a registry's Gather) of an idle server,
// and of one in a call of three users (one publisher, two subscribers).
func BenchmarkScrape(b *testing.B) {
	gather := func(b *testing.B, ts *testServer) {
		reg := prometheus.NewRegistry()
		reg.MustRegister(ts.Collector())
		b.ReportAllocs()
		b.ResetTimer()
		for b.Loop() {
			if _, err := reg.Gather(); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.Run("idle", func(b *testing.B) { gather(b, newTestServer(b, nil)) })
	b.Run("call", func(b *testing.B) {
		ts := newTestServer(b, nil)
		videoCall(b, ts)
		c := login(b, ts, "carol", false)
		c.must("join", joinData{ChannelID: "c"})
		p := newPeer(b, c)
		p.answer()
		waitFor(b, "video at carol", func() bool { return p.received.Load() >= 5 })
		gather(b, ts)
	})
}
