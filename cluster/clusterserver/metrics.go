package clusterserver

import (
	"github.com/prometheus/client_golang/prometheus"
)

// The node's counters and load, labelled with its id: the server's admin
// /metrics serves them when its Cluster is a prometheus.Collector.
var (
	descCounters = map[string]*prometheus.Desc{}
	counterNames = []string{
		"operations_forwarded", "operations_served", "events_published", "events_applied",
		"claims", "fenced", "bad_messages", "heartbeat_failures", "slow_sessions",
	}
	counterHelp = []string{
		"operations sent to the channel's owner on another node",
		"operations run for users of other nodes",
		"events published to the stream by channels this node runs",
		"events applied to the channels this node follows",
		"channels taken over from an owner whose lease ended",
		"channels lost to another node or refused by the stream",
		"messages that did not decode or were not the channel's (dropped)",
		"membership renewals that failed",
		"local sessions ended as slow consumers",
	}
	descOwned    = prometheus.NewDesc("callcore_cluster_channels_owned", "channels this node runs", []string{"node"}, nil)
	descFollowed = prometheus.NewDesc("callcore_cluster_channels_followed", "channels this node has users in", []string{"node"}, nil)
	descLinks    = prometheus.NewDesc("callcore_cluster_links", "media links open now, by direction (out: this node's users' tracks to another node; in: another node's tracks here)", []string{"node", "direction"}, nil)
	descRemote   = prometheus.NewDesc("callcore_cluster_remote_tracks_total", "other nodes' tracks published on this node's plane", []string{"node"}, nil)
	descLinkPkts = prometheus.NewDesc("callcore_cluster_link_packets_sent_total", "RTP packets sent over media links, by far node", []string{"node", "peer"}, nil)
)

func init() {
	for i, name := range counterNames {
		descCounters[name] = prometheus.NewDesc("callcore_cluster_"+name+"_total", counterHelp[i], []string{"node"}, nil)
	}
}

// Describe sends the metrics' descriptions.
func (a adapter) Describe(ch chan<- *prometheus.Desc) {
	for _, name := range counterNames {
		ch <- descCounters[name]
	}
	ch <- descOwned
	ch <- descFollowed
	ch <- descLinks
	ch <- descRemote
	ch <- descLinkPkts
}

// Collect sends the node's counters and load.
func (a adapter) Collect(ch chan<- prometheus.Metric) {
	s := a.n.Stats()
	values := []uint64{s.Forwarded, s.Served, s.Published, s.Applied, s.Claims, s.Fenced, s.BadMessages, s.HeartbeatFailures, s.SlowSessions}
	id := a.n.ID()
	for i, name := range counterNames {
		ch <- prometheus.MustNewConstMetric(descCounters[name], prometheus.CounterValue, float64(values[i]), id)
	}
	owned, followed := a.n.Load()
	ch <- prometheus.MustNewConstMetric(descOwned, prometheus.GaugeValue, float64(owned), id)
	ch <- prometheus.MustNewConstMetric(descFollowed, prometheus.GaugeValue, float64(followed), id)
	ms := a.n.MediaStats()
	ch <- prometheus.MustNewConstMetric(descLinks, prometheus.GaugeValue, float64(ms.LinksOut), id, "out")
	ch <- prometheus.MustNewConstMetric(descLinks, prometheus.GaugeValue, float64(ms.LinksIn), id, "in")
	ch <- prometheus.MustNewConstMetric(descRemote, prometheus.CounterValue, float64(ms.RemoteTracks), id)
	for peer, n := range a.n.LinkPackets() {
		ch <- prometheus.MustNewConstMetric(descLinkPkts, prometheus.CounterValue, float64(n), id, peer)
	}
}
