package clusterserver

import (
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/callcore/callcore/internal/callload"
)

// Three call servers, each with its node; callload's pion clients spread
// over them in one channel: the publisher and a subscriber on the first
// server, two subscribers on each of the others. Every subscriber
// receives the publisher's video; the camera crosses to each other node
// once (one remote track there, for its two subscribers) over one link.
func TestMediaOfOneNodeReachesSubscribersOnEveryNode(t *testing.T) {
	hs, admins, nodes := startNodes(t, 3)
	rep, err := callload.Run(t.Context(), callload.Config{
		URL: hs[0].URL, URLs: []string{hs[1].URL, hs[2].URL}, Secret: secret,
		Publishers: 1, Subscribers: 5, Bitrate: 300_000, FPS: 30,
		Warmup: 2 * time.Second, Duration: 3 * time.Second,
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	servers := map[string]int{}
	for _, p := range rep.Peers {
		servers[p.Server]++
		t.Logf("%s on %s: sent %d, expected %d, received %d, lost %d, gaps %d", p.User, p.Server, p.Sent, p.Expected, p.Received, p.Lost, p.Gaps)
		// Loopback loses little, but the machine runs -race and other
		// tests: half of what was expected is the bound here; the log
		// has the numbers.
		if !p.Publisher && (p.Received == 0 || p.Lost < 0 || p.Lost > int64(p.Expected)/2) {
			t.Errorf("%s on %s: received %d, lost %d of %d", p.User, p.Server, p.Received, p.Lost, p.Expected)
		}
	}
	for _, h := range hs {
		if servers[h.URL] != 2 {
			t.Errorf("%d participants on %s, want 2", servers[h.URL], h.URL)
		}
	}
	t.Logf("delivered %d packets (%.0f/s), expected %d, lost %d (%.3f %%)", rep.Delivered, rep.DeliveredPerSecond, rep.Expected, rep.Lost, rep.LostPercent)

	for i, n := range nodes {
		ms := n.MediaStats()
		t.Logf("node %s: %+v, packets sent to: %v", n.ID(), ms, n.LinkPackets())
		want := uint64(1) // the camera, once, for two subscribers
		if i == 0 {
			want = 0
		}
		if ms.RemoteTracks != want {
			t.Errorf("node %s published %d remote tracks, want %d", n.ID(), ms.RemoteTracks, want)
		}
	}
	// The far nodes' admin /metrics count the remote track.
	rec := httptest.NewRecorder()
	admins[1].ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if want := `callcore_cluster_remote_tracks_total{node="n1"} 1`; !strings.Contains(rec.Body.String(), want) {
		t.Errorf("n1's metrics lack %s", want)
	}
	out := nodes[0].LinkPackets()
	if len(out) != 2 || out[nodes[1].ID()] == 0 || out[nodes[2].ID()] == 0 {
		t.Errorf("the publisher's node sent %v over its links, want packets to both others", out)
	}
}
