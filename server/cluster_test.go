package server

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/callcore/callcore/channel"
	"github.com/callcore/callcore/cluster"
)

// nodeCluster is the server's Cluster on a cluster.Node (what package
// clusterserver does; this package cannot import it).
type nodeCluster struct{ *cluster.Node }

func (c nodeCluster) Create(ctx context.Context, actor, id string, opts channel.CreateOptions) (ClusterStay, error) {
	s, err := c.Node.Create(ctx, actor, id, opts)
	if err != nil {
		return nil, err
	}
	return s, nil
}

func (c nodeCluster) Join(ctx context.Context, actor, id string, tracks []channel.TrackInfo) (ClusterStay, error) {
	s, err := c.Node.Join(ctx, actor, id, tracks)
	if err != nil {
		return nil, err
	}
	return s, nil
}

// TestMediaThroughAClusteredServer: with Config.Cluster, the channel runs
// on the cluster's node and its events reach the plane from the stream:
// a pion client receives the video of another on the same server, and an
// admin mute stops it.
func TestMediaThroughAClusteredServer(t *testing.T) {
	leaks := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, leaks) })
	eng, err := cluster.StartEmbedded(cluster.EmbeddedConfig{Name: "nats", StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(eng.Shutdown)
	node, err := cluster.Start(cluster.Config{Node: "n1", URL: eng.ClientURL(), TTL: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(node.Close)
	ts := newTestServer(t, func(c *Config) { c.Cluster = nodeCluster{node} })
	stop := make(chan struct{})
	defer close(stop)

	alice := login(t, ts, "alice", true)
	alice.must("create", createData{ChannelID: "c", Tracks: []trackData{{Name: "cam", Kind: "video", TrackID: "alice-cam"}}})
	pa := newPeer(t, alice)
	pa.sendVP8("alice-cam", stop)
	pa.offer()
	bob := login(t, ts, "bob", false)
	bob.must("join", joinData{ChannelID: "c"})
	pb := newPeer(t, bob)
	if sdp := pb.answer(); !strings.Contains(sdp, "a=msid:alice alice/cam") {
		t.Errorf("the server's offer does not name alice's cam:\n%s", sdp)
	}
	waitFor(t, "alice's video at bob", func() bool { return pb.received.Load() >= 20 })
	if owner, err := node.Owner(t.Context(), "c"); err != nil || owner != "n1" {
		t.Fatalf("owner %q, %v", owner, err)
	}
	// alice self-mutes her video (empty frames keep flowing); the
	// operation goes through the cluster and bob's getUsers shows it.
	on := true
	alice.must("muteTracks", muteTracksData{Names: []string{"cam"}, State: &on})
	n := pb.received.Load()
	waitFor(t, "empty frames while muted", func() bool { return pb.received.Load() >= n+3 })
	waitFor(t, "bob's getUsers to show the mute", func() bool {
		var snap struct {
			Users []struct {
				Tracks []struct{ Muted bool } `json:"tracks"`
			} `json:"users"`
		}
		if err := json.Unmarshal(bob.must("getUsers", nil), &snap); err != nil {
			t.Fatal(err)
		}
		return len(snap.Users) == 2 && len(snap.Users[0].Tracks) == 1 && snap.Users[0].Tracks[0].Muted
	})
}
