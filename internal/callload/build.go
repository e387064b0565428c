package callload

import (
	"fmt"
	"time"
)

// report turns the snapshots into the Report: s0 and s1 bound the
// window, s2 is after the drain (for loss).
func (r *runner) report(ps []*participant, s0, s1, s2 snapshot) (*Report, error) {
	cfg := r.cfg
	win := s1.at.Sub(s0.at)
	rep := &Report{Publishers: cfg.Publishers, Subscribers: cfg.Subscribers, Channels: cfg.Channels,
		Source: r.sourceName(), Audio: cfg.Audio, WindowSeconds: win.Seconds(), KeyRequests: s1.keyReqs - s0.keyReqs}

	// What each channel's publishers sent in the window.
	sentBy := map[string]uint64{}
	for i, p := range ps {
		sentBy[p.channel] += s1.sent[i] - s0.sent[i]
	}
	rows := map[string]*ChannelRow{}
	var joins, conns, firsts []time.Duration
	for i, p := range ps {
		sent := s1.sent[i] - s0.sent[i]
		row := PeerRow{User: p.user, Channel: p.channel, Publisher: p.publisher, JoinMs: ms(p.joined),
			Sent: sent, Expected: sentBy[p.channel] - sent,
			Received: s1.received[i] - s0.received[i],
			Gaps:     s1.gaps[i] - s0.gaps[i], Late: s1.late[i] - s0.late[i], Duplicates: s1.dups[i] - s0.dups[i]}
		if len(r.cfg.URLs) > 0 {
			row.Server = p.url
		}
		unique := (s2.received[i] - s0.received[i]) - (s2.dups[i] - s0.dups[i])
		row.Lost = int64(row.Expected) - int64(unique)
		joins = append(joins, p.joined)
		if p.expectsMedia {
			c, f := time.Duration(p.connAt.Load()), time.Duration(p.firstMedia.Load())
			row.ConnectedMs, row.FirstMediaMs = ms(c), ms(f)
			conns = append(conns, c)
			if f > 0 {
				firsts = append(firsts, f)
			}
		}
		rep.Peers = append(rep.Peers, row)

		c := rows[p.channel]
		if c == nil {
			c = &ChannelRow{ID: p.channel}
			rows[p.channel] = c
		}
		if p.publisher {
			c.Publishers++
		} else {
			c.Subscribers++
		}
		c.Sent += row.Sent
		c.Expected += row.Expected
		c.Delivered += row.Received
		c.Lost += row.Lost
		c.Gaps += row.Gaps

		rep.Sent += row.Sent
		rep.Expected += row.Expected
		rep.Delivered += row.Received
		rep.Lost += row.Lost
		rep.Gaps += row.Gaps
		rep.Late += row.Late
		rep.Duplicates += row.Duplicates
	}
	for i := range cfg.Channels {
		if c := rows[fmt.Sprintf("%s-c%d", cfg.Prefix, i)]; c != nil {
			rep.Channel = append(rep.Channel, *c)
		}
	}
	rep.Join, rep.Connected, rep.FirstMedia = spread(joins), spread(conns), spread(firsts)
	rep.DeliveredPerSecond = float64(rep.Delivered) / win.Seconds()
	if rep.Expected > 0 {
		rep.LostPercent = 100 * float64(rep.Lost) / float64(rep.Expected)
	}

	rep.Client = usage(0, s1.self-s0.self, win, rep.Delivered)
	if cfg.ServerPID != 0 {
		if err := firstErr(s0.serverErr, s1.serverErr); err != nil {
			return nil, fmt.Errorf("server CPU of pid %d: %w", cfg.ServerPID, err)
		}
		u := usage(cfg.ServerPID, s1.server-s0.server, win, rep.Delivered)
		rep.Server = &u
		if rep.Server.RSSBytes == 0 {
			return nil, fmt.Errorf("server RSS of pid %d: not readable", cfg.ServerPID)
		}
	}
	rep.LoadAverage, _ = loadAverage()
	rep.UDPRcvbufErrors, rep.UDPSndbufErrors = s2.rcvbufErrs-s0.rcvbufErrs, s2.sndbufErrs-s0.sndbufErrs
	return rep, nil
}

// usage is a process's CPU over the window and its RSS now.
func usage(pid int, cpu, win time.Duration, delivered uint64) Usage {
	u := Usage{PID: pid, CPUSeconds: cpu.Seconds(), Cores: cpu.Seconds() / win.Seconds()}
	if delivered > 0 {
		u.MicrosPerPacket = float64(cpu.Microseconds()) / float64(delivered)
	}
	u.RSSBytes, _ = procRSS(pid)
	return u
}

func firstErr(errs ...error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}

// sourceName describes the video the publishers send.
func (r *runner) sourceName() string {
	if r.cfg.IVF != "" {
		return "VP8 from " + r.cfg.IVF
	}
	c := r.cfg
	return fmt.Sprintf("synthetic VP8 %d×%d, %.2f Mbit/s, %d fps, key frame every %v", c.Width, c.Height, float64(c.Bitrate)/1e6, c.FPS, c.KeyInterval)
}
