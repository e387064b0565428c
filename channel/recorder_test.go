package channel

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// boundaryRecorder records the calls a channel makes across the Media
// boundary, and the state they imply, for assertions. It is not a model of
// a forwarding plane.
type boundaryRecorder struct {
	// inside counts calls in progress; overlaps counts calls that found
	// another in progress (one channel must make one call at a time).
	inside, overlaps atomic.Int32

	mu    sync.Mutex           // guards calls, mute, recv
	calls []string             // every call, formatted
	mute  map[string]MuteState // "ch/user/track" -> last state told (absent: no such track)
	recv  map[string]bool      // "ch/user" -> last recv told (absent: on)
}

func newBoundaryRecorder() *boundaryRecorder {
	return &boundaryRecorder{mute: map[string]MuteState{}, recv: map[string]bool{}}
}

func (r *boundaryRecorder) add(s string) { r.calls = append(r.calls, s) }

func (r *boundaryRecorder) enter() func() {
	if r.inside.Add(1) != 1 {
		r.overlaps.Add(1)
	}
	return func() { r.inside.Add(-1) }
}

func (r *boundaryRecorder) TrackAdded(ch, user string, t TrackInfo, s MuteState) {
	defer r.enter()()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.add(fmt.Sprintf("TrackAdded %s %s %s %v %v", ch, user, t.Name, t.Kind, s))
	r.mute[ch+"/"+user+"/"+t.Name] = s
}

func (r *boundaryRecorder) TrackRemoved(ch, user, track string) {
	defer r.enter()()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.add(fmt.Sprintf("TrackRemoved %s %s %s", ch, user, track))
	delete(r.mute, ch+"/"+user+"/"+track)
}

func (r *boundaryRecorder) MuteChanged(ch, user, track string, s MuteState) {
	defer r.enter()()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.add(fmt.Sprintf("MuteChanged %s %s %s %v", ch, user, track, s))
	r.mute[ch+"/"+user+"/"+track] = s
}

func (r *boundaryRecorder) ReceiveChanged(ch, user string, on bool) {
	defer r.enter()()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.add(fmt.Sprintf("ReceiveChanged %s %s %v", ch, user, on))
	r.recv[ch+"/"+user] = on
}

func (r *boundaryRecorder) UserGone(ch, user string) {
	defer r.enter()()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.add(fmt.Sprintf("UserGone %s %s", ch, user))
	prefix := ch + "/" + user + "/"
	for k := range r.mute {
		if len(k) > len(prefix) && k[:len(prefix)] == prefix {
			delete(r.mute, k)
		}
	}
	delete(r.recv, ch+"/"+user)
}

// take returns and forgets the calls recorded so far.
func (r *boundaryRecorder) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := r.calls
	r.calls = nil
	return c
}

func (r *boundaryRecorder) muteOf(ch, user, track string) (MuteState, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s, ok := r.mute[ch+"/"+user+"/"+track]
	return s, ok
}

func (r *boundaryRecorder) recvOf(ch, user string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	on, ok := r.recv[ch+"/"+user]
	return on || !ok
}

// notifyRecorder records newcall notifications.
type notifyRecorder struct {
	mu    sync.Mutex // guards calls
	calls []string
}

func (n *notifyRecorder) NewCall(ch, sender, user string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.calls = append(n.calls, ch+" "+sender+" "+user)
}

func (n *notifyRecorder) take() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	c := n.calls
	n.calls = nil
	return c
}

// harness is a registry with one channel "room" owned by "own".
type harness struct {
	t     testing.TB
	r     *Registry
	c     *Channel
	rec   *boundaryRecorder
	notes *notifyRecorder
	subs  map[string]*Subscription
	// deadline bounds polling loops (seqWithin).
	deadline time.Time
}

func newHarness(t testing.TB, cfg Config, opts CreateOptions) *harness {
	t.Helper()
	h := &harness{t: t, rec: newBoundaryRecorder(), notes: &notifyRecorder{}, subs: map[string]*Subscription{}}
	cfg.Media, cfg.Notifier = h.rec, h.notes
	r, err := NewRegistry(cfg)
	if err != nil {
		t.Fatal(err)
	}
	h.r = r
	c, sub, err := r.Create("own", "room", opts)
	if err != nil {
		t.Fatal(err)
	}
	h.c, h.subs["own"] = c, sub
	return h
}

func (h *harness) join(user string, tracks ...TrackInfo) {
	h.t.Helper()
	sub, err := h.c.Join(context.Background(), user, tracks)
	if err != nil {
		h.t.Fatalf("join %s: %v", user, err)
	}
	h.subs[user] = sub
}

func (h *harness) must(err error) {
	h.t.Helper()
	if err != nil {
		h.t.Fatal(err)
	}
}

// drain returns the events queued for user, and why the subscription
// ended (nil while it goes on).
func (h *harness) drain(user string) ([]Event, error) {
	var evs []Event
	sub := h.subs[user]
	for {
		select {
		case ev, ok := <-sub.C():
			if !ok {
				_, err := sub.Next(context.Background())
				return evs, err
			}
			evs = append(evs, *ev)
		default:
			return evs, nil
		}
	}
}

// types formats events briefly: "seq:type:user".
func types(evs []Event) []string {
	var s []string
	for _, ev := range evs {
		x := fmt.Sprintf("%d:%v", ev.Seq, ev.Type)
		switch ev.Type {
		case EventTrackMute:
			x += fmt.Sprintf(":%s/%s=%v,%s,%s", ev.User, ev.Track.Name, ev.Track.State, ev.Track.MutedBy, ev.Track.Reason)
		case EventTrackAdd, EventTrackDel:
			x += ":" + ev.User + "/" + ev.Track.Name
		case EventUserAdd, EventUserDel, EventUserMod:
			for _, u := range ev.Users {
				x += fmt.Sprintf(":%s=%d", u.ID, u.Mode)
			}
		default:
			if ev.User != "" {
				x += ":" + ev.User
			}
		}
		s = append(s, x)
	}
	return s
}
