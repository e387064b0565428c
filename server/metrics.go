package server

import (
	"net/http"
	"net/http/pprof"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/callcore/callcore/forward"
	"github.com/callcore/callcore/transport/webrtc"
)

// Metrics: the server is a prometheus.Collector (Server.Collector). The
// core's counters (forward.TrackStats, forward.SubscriberStats) and the
// server's are read when scraped, never touched per packet; signalling
// requests are counted and timed as they are answered. No label names a
// user or a channel.

const ns = "callcore"

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(ns+"_"+name, help, labels, nil)
}

var (
	descChannels      = desc("channels", "Channels open.")
	descUsers         = desc("users", "Users in a call on this server (a lost connection waiting to be resumed included).")
	descTracks        = desc("published_tracks", "Tracks published now.")
	descSubscriptions = desc("subscriptions", "Tracks sent to subscribers now (one per subscriber and track).")
	descSessions      = desc("websocket_connections", "Signalling WebSocket connections open.")
	descPeers         = desc("peers", "Media connections by state.", "state")

	descPacketsIn   = desc("received_packets_total", "RTP packets received from publishers.")
	descBytesIn     = desc("received_bytes_total", "Bytes of RTP packets accepted from publishers.")
	descPacketsOut  = desc("sent_packets_total", "RTP packets delivered to subscribers (one per subscriber).")
	descBytesOut    = desc("sent_bytes_total", "Bytes of RTP packets delivered to subscribers.")
	descDropped     = desc("dropped_packets_total", "RTP packets refused or not forwarded, by reason.", "reason")
	descKeyFrames   = desc("keyframes_received_total", "Key frames received from publishers.")
	descKFReqIn     = desc("keyframe_requests_received_total", "Key-frame requests (PLI, FIR) from subscribers.")
	descKFReqOut    = desc("keyframe_requests_sent_total", "Key-frame requests sent to publishers after merging.")
	descNACKsIn     = desc("nacks_received_total", "Sequence numbers subscribers NACKed.")
	descNACKsOut    = desc("nacks_sent_total", "NACK entries sent to publishers for upstream loss.")
	descRetransmits = desc("retransmitted_packets_total", "Packets sent again from the cache for a NACK.")
	descCacheMiss   = desc("nack_cache_misses_total", "NACKed packets not in the cache (lost upstream or too old).")
	descReplayed    = desc("replayed_packets_total", "Cached packets sent to a subscriber at its start, from the last key frame.")
	descGenerated   = desc("generated_packets_total", "Empty-media packets sent for self-muted tracks.")

	descConns       = desc("websocket_connections_total", "Signalling WebSocket connections accepted.")
	descRefusals    = desc("websocket_refusals_total", "Signalling connections refused, by reason.", "reason")
	descInvalid     = desc("invalid_messages_total", "Messages refused as malformed, unknown or oversized.")
	descRateLimited = desc("rate_limited_messages_total", "Messages refused by the per-connection rate limit.")
	descTakeovers   = desc("takeovers_total", "Joins that took a user's call over from another connection.")
	descResumes     = desc("resumes_total", "Calls resumed by a new connection after a lost one.")
	descUnannounced = desc("unannounced_tracks_total", "Published tracks no request announced (not forwarded).")
	descHooks       = desc("webhooks_total", "Webhook deliveries by result: delivered, or dropped (queue full, attempts exhausted, shutdown).", "result")
	descHookFails   = desc("webhook_failed_attempts_total", "Webhook POSTs that failed (each retry counted).")
	descBWLimited   = desc("bandwidth_limited_subscriptions", "Video subscriptions held under what their subscriber asked for by its downlink's estimate, by state: lowered (on a lower layer) or paused.", "state")
	descEstimate    = desc("downlink_estimate_bytes_per_second", "Downlink estimates of the subscribers' media connections that send congestion feedback (bytes a second: 125,000 is 1 Mbit/s).")
	descTURNAllocs  = desc("turn_allocations_total", "Allocations made on the embedded TURN server, by the transport clients reached it over.", "transport")
	descTURNActive  = desc("turn_allocations", "Allocations open on the embedded TURN server.")
	descTURNRefused = desc("turn_refusals_total", "Requests and datagrams the embedded TURN server refused, by reason: peer (not the media server), inbound (a datagram to a relay socket from anything but the media server), expired, forged or malformed credentials.", "reason")
)

// knownOps are the request types with a label of their own; any other
// type is counted as "unknown", so that a client cannot grow the label set.
var knownOps = map[string]bool{"auth": true, "create": true, "join": true, "getStats": true}

func init() {
	for op := range channelOps {
		knownOps[op] = true
	}
}

// metrics are the server's own Prometheus instruments (the signalling
// requests) and the ledger of the core's counters.
type metrics struct {
	requests  *prometheus.CounterVec
	latency   *prometheus.HistogramVec
	ledger    *ledger
	refusedIP atomic.Uint64 // connections refused for MaxConnsPerIP
}

func newMetrics() *metrics {
	return &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "requests_total",
			Help: "Signalling requests answered, by operation and error code (ok when it succeeded).",
		}, []string{"op", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: ns, Name: "request_duration_seconds",
			Help:    "Time from reading a signalling request to queueing its answer, by operation (a join request includes its wait for an admin).",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 10, 30},
		}, []string{"op"}),
		ledger: newLedger(),
	}
}

// opLabel is a request type as a label value.
func opLabel(typ string) string {
	if knownOps[typ] {
		return typ
	}
	return "unknown"
}

// inflight is a request being answered.
type inflight struct {
	op    string
	start time.Time
}

// begin notes that request req is being answered.
func (ss *session) begin(req request) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.inflight == nil {
		ss.inflight = map[uint64]inflight{}
	}
	ss.inflight[req.ID] = inflight{op: opLabel(req.Type), start: time.Now()}
}

// answered counts and times the answer to request id, if begin saw it.
func (ss *session) answered(id uint64, err error) {
	ss.mu.Lock()
	f, ok := ss.inflight[id]
	delete(ss.inflight, id)
	ss.mu.Unlock()
	if !ok {
		return
	}
	code := "ok"
	if err != nil {
		code = codeOf(err)
	}
	m := ss.srv.metrics
	m.requests.WithLabelValues(f.op, code).Inc()
	m.latency.WithLabelValues(f.op).Observe(time.Since(f.start).Seconds())
}

// Collector returns the server's metrics, for a prometheus.Registry.
func (s *Server) Collector() prometheus.Collector { return collector{s} }

// collector reads the server's and the core's counters at each scrape.
type collector struct{ s *Server }

// Describe implements prometheus.Collector.
func (c collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{
		descChannels, descUsers, descTracks, descSubscriptions, descSessions, descPeers,
		descPacketsIn, descBytesIn, descPacketsOut, descBytesOut, descDropped, descKeyFrames,
		descKFReqIn, descKFReqOut, descNACKsIn, descNACKsOut, descRetransmits, descCacheMiss,
		descReplayed, descGenerated, descConns, descRefusals, descInvalid, descRateLimited,
		descTakeovers, descResumes, descUnannounced, descHooks, descHookFails,
		descTURNAllocs, descTURNActive, descTURNRefused, descBWLimited, descEstimate,
	} {
		ch <- d
	}
	c.s.metrics.requests.Describe(ch)
	c.s.metrics.latency.Describe(ch)
}

// peerStates are the states peers are counted by.
var peerStates = []webrtc.Status{webrtc.StatusConnecting, webrtc.StatusChecking, webrtc.StatusConnected, webrtc.StatusDisconnected}

// Collect implements prometheus.Collector.
func (c collector) Collect(ch chan<- prometheus.Metric) {
	s := c.s
	l := s.metrics.ledger
	l.mu.Lock() // the live set and the sums in one step (see ledger)
	s.mu.Lock()
	peers := make([]*webrtc.Peer, 0, len(s.stays))
	for _, st := range s.stays {
		if st.peer != nil {
			peers = append(peers, st.peer)
		}
	}
	users, sessions := len(s.stays), len(s.sessions)
	s.mu.Unlock()
	now := live{tracks: map[*forward.Track]struct{}{}, subs: map[*forward.Subscriber]struct{}{}}
	states := map[webrtc.Status]int{}
	for _, p := range peers {
		for _, pub := range p.Publications() {
			now.tracks[pub.Track] = struct{}{}
		}
		for _, sub := range p.Subscriptions() {
			if fs := sub.Subscriber(); fs != nil {
				now.subs[fs] = struct{}{}
			}
		}
		states[p.Status()]++
	}
	t, u := l.totals(now)
	l.mu.Unlock()

	gauge := func(d *prometheus.Desc, v int, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, float64(v), labels...)
	}
	count := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge(descChannels, s.reg.Len())
	gauge(descUsers, users)
	gauge(descTracks, len(now.tracks))
	gauge(descSubscriptions, len(now.subs))
	gauge(descSessions, sessions)
	for _, st := range peerStates {
		gauge(descPeers, states[st], string(st))
	}

	count(descPacketsIn, t.PacketsIn)
	count(descBytesIn, t.BytesIn)
	count(descPacketsOut, u.Packets)
	count(descBytesOut, u.Bytes)
	for _, d := range []struct {
		reason string
		n      uint64
	}{
		{"malformed", t.Malformed}, {"oversized", t.Oversized}, {"unknown_ssrc", t.UnknownSSRC},
		{"unknown_payload_type", t.UnknownPT}, {"duplicate", t.Duplicate}, {"out_of_window", t.OutOfWindow},
		{"bad_timestamp", t.BadTimestamp}, {"admin_muted", t.MutedDrop},
		{"paused", u.DropGate}, {"stale", u.DropStale}, {"handoff", u.DropHandoff},
		{"write_failed", u.DropWrite}, {"waiting_keyframe", u.DropWaitKey},
	} {
		count(descDropped, d.n, d.reason)
	}
	count(descKeyFrames, t.KeyFrames)
	count(descKFReqIn, t.KeyFrameRequestsIn)
	count(descKFReqOut, t.KeyFrameRequestsOut)
	count(descNACKsIn, u.NACKs)
	count(descNACKsOut, t.NACKsOut)
	count(descRetransmits, u.Retransmits)
	count(descCacheMiss, u.CacheMiss)
	count(descReplayed, u.Replayed)
	count(descGenerated, t.Generated)

	st := s.Stats()
	byIP := s.metrics.refusedIP.Load()
	count(descConns, st.Connections)
	count(descRefusals, byIP, "address_limit")
	count(descRefusals, st.RefusedConns-min(byIP, st.RefusedConns), "user_limit")
	count(descRefusals, st.AuthFailures, "auth")
	count(descInvalid, st.Invalid)
	count(descRateLimited, st.RateLimited)
	count(descTakeovers, st.Takeovers)
	count(descResumes, st.Resumes)
	count(descUnannounced, st.Unannounced)
	if h := s.hooks; h != nil {
		count(descHooks, h.delivered.Load(), "delivered")
		count(descHooks, h.dropped.Load(), "dropped")
		count(descHookFails, h.failed.Load())
	}

	c.collectBandwidth(ch, peers)

	if s.turn != nil {
		t := s.turn.Stats()
		count(descTURNAllocs, t.UDPAllocations, "udp")
		count(descTURNAllocs, t.TCPAllocations, "tcp")
		count(descTURNAllocs, t.TLSAllocations, "tls")
		gauge(descTURNActive, t.Active)
		count(descTURNRefused, t.RefusedPeers, "peer")
		count(descTURNRefused, t.DroppedInbound, "inbound")
		count(descTURNRefused, t.Expired, "expired")
		count(descTURNRefused, t.Forged, "forged")
		count(descTURNRefused, t.Malformed, "malformed")
	}

	s.metrics.requests.Collect(ch)
	s.metrics.latency.Collect(ch)
}

// estimateBuckets are the downlink estimate histogram's upper bounds, in
// bytes a second: 100 kbit/s (an audio-only link), 300 kbit/s, 1, 3 and
// 10 Mbit/s (more than a call's top layers need).
var estimateBuckets = []float64{12.5e3, 37.5e3, 125e3, 375e3, 1.25e6}

// collectBandwidth reports the subscriptions the estimates limit and the
// estimates of the peers that send feedback.
func (c collector) collectBandwidth(ch chan<- prometheus.Metric, peers []*webrtc.Peer) {
	var lowered, paused int
	var n uint64
	var sum float64
	counts := make(map[float64]uint64, len(estimateBuckets))
	for _, p := range peers {
		for _, sub := range p.Subscriptions() {
			switch _, stop, limited := sub.BandwidthLimit(); {
			case stop:
				paused++
			case limited:
				lowered++
			}
		}
		est := p.Estimator()
		if !est.HasFeedback() {
			continue
		}
		e := est.Estimate() / 8
		n++
		sum += e
		for _, b := range estimateBuckets {
			if e <= b {
				counts[b]++ // cumulative, as Prometheus buckets are
			}
		}
	}
	ch <- prometheus.MustNewConstMetric(descBWLimited, prometheus.GaugeValue, float64(lowered), "lowered")
	ch <- prometheus.MustNewConstMetric(descBWLimited, prometheus.GaugeValue, float64(paused), "paused")
	ch <- prometheus.MustNewConstHistogram(descEstimate, n, sum, counts)
}

// AdminHandler serves /metrics (the server's metrics with the Go runtime's
// and the process's, and Config.Cluster's when it is a
// prometheus.Collector) and /debug/pprof/: for an admin listener that is
// never the public one.
func (s *Server) AdminHandler() http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(s.Collector(), collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if c, ok := s.cfg.Cluster.(prometheus.Collector); ok {
		reg.MustRegister(c) // the cluster node's own metrics
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorLog: slogPrinter{s}}))
	mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	return mux
}

// slogPrinter hands promhttp's errors to the server's log.
type slogPrinter struct{ s *Server }

func (p slogPrinter) Println(v ...any) { p.s.log.Warn("metrics", "err", v) }
