package plane

import (
	"slices"
	"strconv"

	"github.com/callcore/callcore/channel"
	"github.com/callcore/callcore/forward"
	"github.com/callcore/callcore/speaker"
)

// ScreenTrack is the name of a screen share: lastN never pauses it.
const ScreenTrack = "screen"

var _ channel.ConfigMedia = (*Plane)(nil)

// levelSink feeds a speaker source from a track's packet path.
type levelSink struct {
	src *speaker.Source
	// clock, when set, stamps the levels: a transport's track may run on
	// another clock than the speaker Group's.
	clock speaker.Clock
}

// Level passes a packet's level on; a level the source refuses (removed
// meanwhile) is counted by the Detector.
func (l *levelSink) Level(level uint8, voiced bool, now int64) {
	if l.clock != nil {
		now = l.clock.Nanotime()
	}
	_ = l.src.Level(level, voiced, now)
}

// levelKey is the speaker source key of a track: unique per user and name.
func levelKey(k key) string { return strconv.Quote(k.user) + "/" + k.name }

// addVoice makes an audio track a speaker source of its room and feeds it
// from the track's packets, stamped with the plane's clock. p.mu is held (the Detector's lock is taken inside it).
func (p *Plane) addVoice(r *room, k key, t *pub, tr *forward.Track) {
	if r.det == nil || t.info.Kind != channel.Audio {
		return
	}
	lk := levelKey(k)
	src, err := r.det.Add(lk)
	if err != nil {
		return // a key is unique per track: only a closed Detector refuses
	}
	t.level = lk
	_ = r.det.SetMuted(lk, t.state != channel.MuteNone)
	tr.SetLevels(&levelSink{src: src, clock: p.clock})
}

// dropVoice removes a track's speaker source. p.mu is held.
func (r *room) dropVoice(t *pub) {
	if r.det != nil && t.level != "" {
		_ = r.det.Remove(t.level)
	}
}

// heard puts a user with a published track in the room's recency order,
// after the others. p.mu is held.
func (r *room) heard(id string) {
	if !slices.Contains(r.recent, id) {
		r.recent = append(r.recent, id)
	}
}

// speakersChanged is a room Detector's OnChange: the speakers move to the
// front of the recency order, the gates follow, and the channel is told.
func (p *Plane) speakersChanged(ch string, r *room, list []speaker.Speaker) {
	p.mu.Lock()
	if p.rooms[ch] != r {
		p.mu.Unlock()
		return
	}
	out := make([]channel.Speaker, 0, len(list))
	for _, s := range list {
		id := ""
		for k, t := range r.tracks {
			if t.level == s.Key {
				id = k.user
				break
			}
		}
		if id == "" || slices.ContainsFunc(out, func(o channel.Speaker) bool { return o.User == id }) {
			continue
		}
		out = append(out, channel.Speaker{User: id, Level: s.Level})
	}
	front := make([]string, 0, len(r.recent))
	for _, s := range out {
		front = append(front, s.User)
	}
	for _, id := range r.recent {
		if !slices.Contains(front, id) {
			front = append(front, id)
		}
	}
	r.recent = front
	r.speakers = r.speakers[:0]
	for _, s := range out {
		r.speakers = append(r.speakers, s.User)
	}
	p.refresh(r)
	for _, u := range r.users {
		for k, s := range u.subs {
			r.prioritize(k, s)
		}
	}
	p.mu.Unlock()
	if p.cfg.OnSpeakers != nil {
		_ = p.cfg.OnSpeakers.SetSpeakers(ch, out) // a channel deleted meanwhile is not an error here
	}
}

// ConfigChanged applies the channel's lastN.
func (p *Plane) ConfigChanged(ch string, cfg channel.CallConfig) {
	p.mu.Lock()
	r := p.room(ch)
	r.lastN = cfg.LastN
	p.refresh(r)
	p.mu.Unlock()
}

// allowed returns, for subscriber id, the publishers whose video lastN
// lets through; nil when there is no limit. p.mu is held.
func (r *room) allowed(id string) map[string]bool {
	if r.lastN == 0 {
		return nil
	}
	ok := make(map[string]bool, r.lastN)
	for _, w := range r.recent {
		if len(ok) == r.lastN {
			break
		}
		if w != id {
			ok[w] = true
		}
	}
	return ok
}

// wants reports whether subscriber u (whose lastN set is allowed) should
// receive track k now. p.mu is held.
func (r *room) wants(u *user, allowed map[string]bool, k key) bool {
	if !u.recv || u.paused[k] {
		return false
	}
	t := r.tracks[k]
	if allowed == nil || t == nil || t.info.Kind != channel.Video || k.name == ScreenTrack {
		return true
	}
	return allowed[k.user]
}

// refresh opens and closes every subscription of the room as the users'
// recv bits and lastN want. The gates are atomic stores, set under p.mu
// so that they follow the order of the changes. p.mu is held.
func (p *Plane) refresh(r *room) {
	for id, u := range r.users {
		p.refreshUser(r, id, u)
	}
}

func (p *Plane) refreshUser(r *room, id string, u *user) {
	allowed := r.allowed(id)
	for k, s := range u.subs {
		if w := r.wants(u, allowed, k); w != s.open {
			s.open = w
			s.rc.SetOpen(w)
		}
	}
}
