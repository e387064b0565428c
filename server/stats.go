package server

import (
	"encoding/json"
	"strings"
	"time"
)

// getStats: the server's view of the caller's media connection in its
// channel, per track it sends or receives, from the core's counters.

// trackStats is one track in getStats' answer. Loss, jitter and rtt are
// null: the server does not measure them per track today; layer is the
// layer a received layered track comes from, null otherwise.
type trackStats struct {
	UserID   string   `json:"userId"` // the sender: the caller for what it sends
	Track    string   `json:"track"`
	Kind     string   `json:"kind"`
	Packets  uint64   `json:"packets"`
	Bytes    uint64   `json:"bytes"`
	Bitrate  *float64 `json:"bitrate"` // bits a second since the caller's previous getStats; null on the first
	Loss     *float64 `json:"loss"`
	Jitter   *float64 `json:"jitter"`
	RTT      *float64 `json:"rtt"`
	Layer    *int     `json:"layer"`
	NACKs    uint64   `json:"nacks"`       // received: sequence numbers the caller NACKed; sent: always 0
	Resent   uint64   `json:"retransmits"` // received: packets sent again for those NACKs
	KeyFrame uint64   `json:"keyFrames"`   // sent: key frames the caller sent; received: key frames it asked for
}

type statsResult struct {
	Status   string       `json:"status"` // the media connection, as the status push names it
	Sent     []trackStats `json:"sent"`
	Received []trackStats `json:"received"`
	Downlink *float64     `json:"downlink"` // the estimate of the caller's downlink, bits a second; null before its client's congestion feedback
}

// statSample is a track's byte count at a getStats, for the next one's
// bitrate.
type statSample struct {
	bytes uint64
	at    time.Time
}

func (ss *session) opGetStats(st *stay, data json.RawMessage) (any, error) {
	if err := decodeStrict(data, &struct{}{}); err != nil {
		return nil, err
	}
	now := time.Now()
	res := statsResult{Status: string(st.peer.Status()), Sent: []trackStats{}, Received: []trackStats{}}
	pubs := st.peer.Publications()
	subs := st.peer.Subscriptions()
	st.mu.Lock()
	defer st.mu.Unlock()
	prev := st.samples
	st.samples = make(map[string]statSample, len(pubs)+len(subs))
	rate := func(key string, bytes uint64) *float64 {
		st.samples[key] = statSample{bytes: bytes, at: now}
		p, ok := prev[key]
		if !ok || bytes < p.bytes || !now.After(p.at) {
			return nil
		}
		v := float64(bytes-p.bytes) * 8 / now.Sub(p.at).Seconds()
		return &v
	}
	for _, p := range pubs {
		name, ok := st.names[p.Info.TrackID]
		if !ok {
			continue // not announced: not forwarded
		}
		c := p.Track.Stats()
		res.Sent = append(res.Sent, trackStats{
			UserID: st.user, Track: name, Kind: p.Track.Config().Kind.String(),
			Packets: c.PacketsIn, Bytes: c.BytesIn, Bitrate: rate("s/"+name, c.BytesIn), KeyFrame: c.KeyFrames,
		})
	}
	for _, s := range subs {
		fs := s.Subscriber()
		if fs == nil {
			continue // not negotiated yet
		}
		from, name, _ := strings.Cut(s.TrackID(), "/")
		c := fs.Stats()
		ts := trackStats{
			UserID: from, Track: name, Kind: s.Track().Config().Kind.String(),
			Packets: c.Packets, Bytes: c.Bytes, Bitrate: rate("r/"+s.TrackID(), c.Bytes),
			NACKs: c.NACKs, Resent: c.Retransmits, KeyFrame: c.KeyFrameRequests,
		}
		if l, ok := s.Layer(); ok {
			n := int(l)
			ts.Layer = &n
		}
		res.Received = append(res.Received, ts)
	}
	if est := st.peer.Estimator(); est.HasFeedback() {
		e := est.Estimate()
		res.Downlink = &e
	}
	return res, nil
}
