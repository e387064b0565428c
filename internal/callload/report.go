package callload

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// Report is what a run measured. Counts are over the measuring window
// (after the warm-up) unless said otherwise; times are milliseconds.
type Report struct {
	Publishers  int    `json:"publishers"`
	Subscribers int    `json:"subscribers"`
	Channels    int    `json:"channels"`
	Source      string `json:"source"` // what the publishers send
	Audio       bool   `json:"audio"`
	// WindowSeconds is the measuring window's measured length.
	WindowSeconds float64 `json:"windowSeconds"`

	// Join is start → the create or join result (token, WebSocket, auth,
	// create or join), per participant. Connected is start → the
	// PeerConnection connected, FirstMedia start → the first RTP packet
	// received (participants with a publisher in their channel).
	Join       Spread `json:"joinMs"`
	Connected  Spread `json:"connectedMs"`
	FirstMedia Spread `json:"firstMediaMs"`

	// Sent is RTP packets the publishers wrote (video and audio).
	Sent uint64 `json:"sent"`
	// Expected is, summed over participants, what the publishers of
	// their channel other than themselves sent.
	Expected uint64 `json:"expected"`
	// Delivered is RTP packets the participants read, summed, duplicates
	// included.
	Delivered          uint64  `json:"delivered"`
	DeliveredPerSecond float64 `json:"deliveredPerSecond"`
	// Lost is Expected less the distinct packets that arrived by the end
	// of the drain after the window (the publishers pause at the window's
	// edges, so nothing in flight is miscounted); LostPercent is of
	// Expected.
	Lost        int64   `json:"lost"`
	LostPercent float64 `json:"lostPercent"`
	// Gaps counts sequence numbers skipped on received tracks; Late the
	// packets older than their track's newest (reordered, repaired);
	// Duplicates the packets that had arrived before.
	Gaps       uint64 `json:"gaps"`
	Late       uint64 `json:"late"`
	Duplicates uint64 `json:"duplicates"`
	// KeyRequests counts PLIs and FIRs the publishers received.
	KeyRequests uint64 `json:"keyRequests"`

	// Server is the server process's use, with Config.ServerPID.
	Server *Usage `json:"server,omitempty"`
	// Client is this process's (the load's own) use.
	Client Usage `json:"client"`
	// LoadAverage is /proc/loadavg at the window's end.
	LoadAverage [3]float64 `json:"loadAverage"`
	// UDPRcvbufErrors and UDPSndbufErrors are the host's UDP datagrams
	// dropped for full socket buffers from the window's start to the end
	// of the drain (/proc/net/snmp, every process): on one machine, where
	// the loss happened.
	UDPRcvbufErrors uint64 `json:"udpRcvbufErrors"`
	UDPSndbufErrors uint64 `json:"udpSndbufErrors"`

	// Channel has one row per channel.
	Channel []ChannelRow `json:"channel"`
	// Peers has one row per participant.
	Peers []PeerRow `json:"peers"`
}

// Spread summarises durations: median, 95th percentile, max (nearest
// rank), in milliseconds.
type Spread struct {
	N      int     `json:"n"`
	Median float64 `json:"median"`
	P95    float64 `json:"p95"`
	Max    float64 `json:"max"`
}

// Usage is a process's CPU over the window and its memory at the end.
type Usage struct {
	PID int `json:"pid,omitempty"`
	// CPUSeconds is user plus system time over the window; Cores that
	// divided by the window.
	CPUSeconds float64 `json:"cpuSeconds"`
	Cores      float64 `json:"cores"`
	// MicrosPerPacket is CPUSeconds per delivered packet, in µs.
	MicrosPerPacket float64 `json:"microsPerPacket"`
	// RSSBytes is the resident set size at the window's end.
	RSSBytes int64 `json:"rssBytes"`
}

// ChannelRow is one channel's part of the run.
type ChannelRow struct {
	ID          string `json:"id"`
	Publishers  int    `json:"publishers"`
	Subscribers int    `json:"subscribers"`
	Sent        uint64 `json:"sent"`
	Expected    uint64 `json:"expected"`
	Delivered   uint64 `json:"delivered"`
	Lost        int64  `json:"lost"`
	Gaps        uint64 `json:"gaps"`
}

// PeerRow is one participant's part of the run.
type PeerRow struct {
	User         string  `json:"user"`
	Channel      string  `json:"channel"`
	Publisher    bool    `json:"publisher"`
	Server       string  `json:"server,omitempty"` // the URL it joined through, with Config.URLs
	JoinMs       float64 `json:"joinMs"`
	ConnectedMs  float64 `json:"connectedMs,omitempty"`
	FirstMediaMs float64 `json:"firstMediaMs,omitempty"`
	Sent         uint64  `json:"sent"`
	Expected     uint64  `json:"expected"`
	Received     uint64  `json:"received"`
	Lost         int64   `json:"lost"`
	Gaps         uint64  `json:"gaps"`
	Late         uint64  `json:"late"`
	Duplicates   uint64  `json:"duplicates"`
}

// spread summarises ds.
func spread(ds []time.Duration) Spread {
	if len(ds) == 0 {
		return Spread{}
	}
	ds = slices.Clone(ds)
	slices.Sort(ds)
	rank := func(q float64) float64 {
		i := int(q*float64(len(ds))+0.999999) - 1
		return ms(ds[max(0, min(i, len(ds)-1))])
	}
	return Spread{N: len(ds), Median: rank(0.5), P95: rank(0.95), Max: ms(ds[len(ds)-1])}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// WriteTable writes the report as text tables: the summary, then one row
// per channel.
func (r *Report) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	audio := ""
	if r.Audio {
		audio = " + Opus"
	}
	row := func(k, format string, a ...any) { fmt.Fprintf(tw, "%s\t"+format+"\n", append([]any{k}, a...)...) }
	row("run", "%d publishers, %d subscribers, %d channels; %s%s", r.Publishers, r.Subscribers, r.Channels, r.Source, audio)
	row("window", "%.1f s", r.WindowSeconds)
	sp := func(s Spread) string {
		if s.N == 0 {
			return "-"
		}
		return fmt.Sprintf("%.0f / %.0f / %.0f ms (n=%d)", s.Median, s.P95, s.Max, s.N)
	}
	row("join (median / p95 / max)", "%s", sp(r.Join))
	row("connected", "%s", sp(r.Connected))
	row("first media", "%s", sp(r.FirstMedia))
	row("sent", "%d packets (%.0f/s)", r.Sent, float64(r.Sent)/r.WindowSeconds)
	row("delivered", "%d packets (%.0f/s) of %d expected", r.Delivered, r.DeliveredPerSecond, r.Expected)
	row("lost", "%d (%.3f %%); sequence gaps %d, late %d, duplicates %d", r.Lost, r.LostPercent, r.Gaps, r.Late, r.Duplicates)
	row("key-frame requests", "%d", r.KeyRequests)
	row("host UDP drops", "%d receive-buffer, %d send-buffer (all processes)", r.UDPRcvbufErrors, r.UDPSndbufErrors)
	if s := r.Server; s != nil {
		row("server CPU", "%.3f cores, %.2f µs per delivered packet (pid %d)", s.Cores, s.MicrosPerPacket, s.PID)
		row("server RSS", "%.1f MiB", float64(s.RSSBytes)/(1<<20))
	}
	row("load CPU (this process)", "%.3f cores, RSS %.1f MiB", r.Client.Cores, float64(r.Client.RSSBytes)/(1<<20))
	row("load average", "%.2f %.2f %.2f", r.LoadAverage[0], r.LoadAverage[1], r.LoadAverage[2])
	fmt.Fprintln(tw)
	fmt.Fprintln(tw, strings.Join([]string{"channel", "pubs", "subs", "sent", "expected", "delivered", "lost", "gaps"}, "\t"))
	for _, c := range r.Channel {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\n", c.ID, c.Publishers, c.Subscribers, c.Sent, c.Expected, c.Delivered, c.Lost, c.Gaps)
	}
	return tw.Flush()
}
