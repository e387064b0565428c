package channel

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/callcore/callcore/permission"
)

const (
	fuzzIdle    = time.Hour
	fuzzRequest = 2 * time.Hour
)

// fakeClock holds timers until the test fires them.
type fakeClock struct {
	mu     sync.Mutex // guards timers
	timers []*fakeTimer
}

type fakeTimer struct {
	clock *fakeClock
	d     time.Duration
	f     func()
	done  bool // fired or stopped; guarded by clock.mu
}

func (c *fakeClock) AfterFunc(d time.Duration, f func()) Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &fakeTimer{clock: c, d: d, f: f}
	c.timers = append(c.timers, t)
	return t
}

func (t *fakeTimer) Stop() bool {
	t.clock.mu.Lock()
	defer t.clock.mu.Unlock()
	was := !t.done
	t.done = true
	return was
}

// fire runs every live timer of duration d, as if d passed.
func (c *fakeClock) fire(d time.Duration) {
	c.mu.Lock()
	var due []*fakeTimer
	for _, t := range c.timers {
		if !t.done && t.d == d {
			t.done = true
			due = append(due, t)
		}
	}
	c.mu.Unlock()
	for _, t := range due {
		t.f()
	}
}

var fuzzUsers = []string{"u0", "u1", "u2", "u3"}

func fuzzUser(x byte) string {
	switch i := int(x) % 16; {
	case i < 14:
		return fuzzUsers[i%4]
	case i == 14:
		return ""
	default:
		return strings.Repeat("u", MaxIDLen+1)
	}
}

func fuzzTrack(x byte) TrackInfo {
	name := []string{"a", "b", "a", "b", "a", "b", "c", ""}[x&7]
	kind := []Kind{Audio, Audio, Audio, Video, Video, Video, Video, AudioVideo}[(x>>3)&7]
	return TrackInfo{name, kind}
}

func fuzzTracks(n int, b, c byte) []TrackInfo {
	return []TrackInfo{fuzzTrack(b), fuzzTrack(c)}[:n]
}

func fuzzIDs(b byte) []string {
	var ids []string
	for i, u := range fuzzUsers {
		if b&(1<<i) != 0 {
			ids = append(ids, u)
		}
	}
	if b&16 != 0 {
		ids = append(ids, "u4")
	}
	if b&32 != 0 && len(ids) > 0 {
		ids = append(ids, ids[0])
	}
	if b&64 != 0 {
		ids = append(ids, "")
	}
	return ids
}

func fuzzConfig(b, c byte) CallConfig {
	cfg := CallConfig{
		Kind:              Kind(c & 3),
		JoinRequest:       c&48 == 48,
		MaxUsers:          []int{0, 0, 2, 3}[c>>6],
		DefaultPermission: permission.Default,
	}
	if b&8 == 0 {
		cfg.DefaultPermission = permission.Mode(b % 8)
	}
	if (c>>2)&3 == 3 {
		cfg.Kind = 4
	}
	return cfg
}

// fuzzRun is one run: the channel, the model, and the sessions.
type fuzzRun struct {
	t       *testing.T
	c       *Channel
	m       *refModel
	rec     *boundaryRecorder
	notes   *notifyRecorder
	clock   *fakeClock
	subs    map[string]*Subscription
	reqs    map[string]*joinRequest
	got     map[string][]Event
	checked map[string]int // events of got already compared
	answers map[string]error
}

// FuzzChannelOps runs random operations by random actors against the
// reference model: every operation must return the model's result or
// error, every user must receive the model's events in its order, and
// Media, the gates and the notifications must agree with the model.
func FuzzChannelOps(f *testing.F) {
	f.Add([]byte{0, 1, 0, 3, 0, 2, 0, 1, 11, 1, 1, 0, 10, 1, 0, 8, 5, 0, 2, 0, 6, 2, 0, 0})
	f.Add([]byte{7, 0, 0, 16, 0, 1, 0, 0, 0, 2, 0, 0, 3, 0, 2, 0, 12, 0, 0, 0, 4, 0, 8, 0})
	f.Add([]byte{7, 0, 1, 1, 8, 0, 0, 9, 11, 0, 1, 3, 1, 0, 0, 0, 13, 0, 0, 0, 2, 0, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 400 {
			data = data[:400]
		}
		guard(t, 20*time.Second, func() { fuzzOps(t, data) })
	})
}

func fuzzOps(t *testing.T, data []byte) { fuzzOpsRun(t, data) }

func fuzzOpsRun(t *testing.T, data []byte) *fuzzRun {
	r := &fuzzRun{t: t, rec: newBoundaryRecorder(), notes: &notifyRecorder{}, clock: &fakeClock{},
		subs: map[string]*Subscription{}, reqs: map[string]*joinRequest{}, got: map[string][]Event{}, checked: map[string]int{},
		answers: map[string]error{}}
	var cfg CallConfig
	var users []string
	buf := 4096
	if len(data) >= 3 {
		cfg = fuzzConfig(data[0], data[1])
		cfg.Kind &= 3
		users = fuzzIDs(data[0] & 15)
		buf = []int{4096, 4096, 3, 6}[data[2]&3]
		data = data[3:]
	}
	reg, err := NewRegistry(Config{Media: r.rec, Notifier: r.notes, Clock: r.clock,
		IdleTimeout: fuzzIdle, JoinRequestTimeout: fuzzRequest, EventBuffer: buf})
	if err != nil {
		t.Fatal(err)
	}
	c, sub, err := reg.Create("u0", "ch", CreateOptions{Config: cfg, Users: users})
	if err != nil {
		t.Fatal(err)
	}
	r.c, r.m, r.subs["u0"] = c, newRefModel("u0", cfg.withDefaults(), users, buf), sub
	r.check("create", true)
	for i := 0; i+4 <= len(data); i += 4 {
		op := r.step(data[i], data[i+1], data[i+2], data[i+3])
		// Most of the time the consumers do not read: with a small
		// buffer, some fall behind and are disconnected.
		r.check(fmt.Sprintf("op %d: %s", i/4, op), data[i]&96 == 0)
	}
	r.check("end", true)
	reg.Close()
	if !r.m.closed {
		r.m.close("", "registry closed")
	}
	r.check("registry closed", true)
	return r
}

func (r *fuzzRun) same(op string, got, want error) {
	if (got == nil) != (want == nil) || (want != nil && !errors.Is(got, want)) {
		r.t.Fatalf("%s: got error %v, model says %v", op, got, want)
	}
}

// step performs one operation on both the channel and the model.
func (r *fuzzRun) step(o, a, b, x byte) string {
	code := o % 20
	switch code {
	case 15, 16:
		code = 0 // join more often
	case 17:
		code = 8
	case 18:
		code = 10
	case 19:
		code = 11
	}
	switch {
	case code == 2 && b%4 != 0:
		code = 1 // delete seldom
	case code == 13 && b%4 != 0:
		code = 6 // idle seldom
	}
	actor, target := fuzzUser(a), fuzzUser(b)
	var op string
	var got, want error
	switch {
	case code == 0:
		ts := fuzzTracks(int(x%3), b, x)
		return r.join(fmt.Sprintf("join(%q, %v)", actor, ts), actor, ts)
	case code <= 2 || code >= 12:
		op, got, want = r.stepLife(code, actor, b)
	case code <= 7:
		op, got, want = r.stepUsers(code, actor, target, b, x)
	default:
		op, got, want = r.stepTracks(code, actor, target, b, x)
	}
	r.m.settle()
	r.same(op, got, want)
	return op
}

// stepLife: leave, delete, timeouts, withdrawing a request.
func (r *fuzzRun) stepLife(code byte, actor string, b byte) (op string, got, want error) {
	c, m := r.c, r.m
	switch code {
	case 1:
		op = fmt.Sprintf("leave(%q)", actor)
		got, want = c.Leave(actor), r.valid(refValidID(actor), func() error { return m.leave(actor) })
	case 2:
		reason := []string{"", "bye", strings.Repeat("r", MaxReasonLen+1)}[b%3]
		op = fmt.Sprintf("delete(%q, %d bytes)", actor, len(reason))
		got = c.Delete(actor, reason)
		want = r.valid(refValidID(actor) && len(reason) <= 256, func() error { return m.deleteCall(actor, reason) })
	case 12:
		op = "request timeout"
		r.clock.fire(fuzzRequest)
		m.expireAll()
	case 13:
		op = "idle timeout"
		r.clock.fire(fuzzIdle)
		m.idle()
	case 14:
		op = fmt.Sprintf("withdraw(%q)", actor)
		if req := r.reqs[actor]; req != nil {
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			delete(r.reqs, actor)
			_, err := c.await(ctx, req)
			r.answers[actor] = err
		}
		m.withdraw(actor)
	}
	return op, got, want
}

// stepUsers: addUsers, delUsers, modUsers, getUsers, configure.
func (r *fuzzRun) stepUsers(code byte, actor, target string, b, x byte) (op string, got, want error) {
	c, m := r.c, r.m
	switch code {
	case 3, 4:
		ids := fuzzIDs(b)
		ok := refValidID(actor) && refValidIDs(ids)
		op = fmt.Sprintf("users(%d, %q, %q)", code, actor, ids)
		if code == 3 {
			got, want = c.AddUsers(actor, ids), r.valid(ok, func() error { return m.addUsers(actor, ids) })
		} else {
			got, want = c.DelUsers(actor, ids), r.valid(ok, func() error { return m.delUsers(actor, ids) })
		}
	case 5:
		us := []UserMode{{target, permission.Mode(x % 9)}}
		if x&64 != 0 {
			us = append(us, UserMode{fuzzUser(x), permission.Mode(b % 8)})
		}
		op = fmt.Sprintf("modUsers(%q, %v)", actor, us)
		ok := refValidID(actor) && refValidIDs([]string{us[0].ID}) && us[0].Mode <= 7
		if len(us) > 1 {
			ok = ok && refValidIDs([]string{us[0].ID, us[1].ID})
		}
		got, want = c.ModUsers(actor, us), r.valid(ok, func() error { return m.modUsers(actor, us) })
	case 6:
		op = fmt.Sprintf("getUsers(%q)", actor)
		r.getUsers(op, actor)
	case 7:
		cfg := fuzzConfig(b, x)
		op = fmt.Sprintf("configure(%q, %+v)", actor, cfg)
		got = c.Configure(actor, cfg)
		want = r.valid(refValidID(actor) && refValidConfig(cfg), func() error { return m.configure(actor, cfg) })
	}
	return op, got, want
}

// stepTracks: addTracks, removeTracks, muteTracks, muteUser.
func (r *fuzzRun) stepTracks(code byte, actor, target string, b, x byte) (op string, got, want error) {
	c, m := r.c, r.m
	action := MuteAction(x&128 != 0)
	switch code {
	case 8:
		ts := fuzzTracks(1+int(x%2), b, x)
		op = fmt.Sprintf("addTracks(%q, %v)", actor, ts)
		got = c.AddTracks(actor, ts)
		want = r.valid(refValidID(actor) && refValidTracks(ts, 1), func() error { return m.addTracks(actor, ts) })
	case 9, 10:
		var names []string
		for _, t := range fuzzTracks(1+int(x%2), b, x>>1) {
			names = append(names, t.Name)
		}
		ok := refValidID(actor) && refValidIDs(names)
		op = fmt.Sprintf("tracks(%d, %q, %q, %v)", code, actor, names, action)
		if code == 9 {
			got, want = c.RemoveTracks(actor, names), r.valid(ok, func() error { return m.removeTracks(actor, names) })
		} else {
			got, want = c.MuteTracks(actor, names, action), r.valid(ok, func() error { return m.muteTracks(actor, names, bool(action)) })
		}
	case 11:
		kind := []Kind{Audio, Video, Audio, Video, Video, Audio, AudioVideo, 0}[x&7]
		reason := []string{"", "noise", strings.Repeat("r", MaxReasonLen+1)}[(x>>3)%3]
		op = fmt.Sprintf("muteUser(%q, %q, %v, %v, %d bytes)", actor, target, kind, action, len(reason))
		got = c.MuteUser(actor, target, kind, action, reason)
		ok := refValidID(actor) && refValidID(target) && (kind == Audio || kind == Video) && len(reason) <= 256
		want = r.valid(ok, func() error { return m.muteUser(actor, target, kind, bool(action), reason) })
	}
	return op, got, want
}

// valid returns ErrInvalid for bad arguments, else runs the model.
func (r *fuzzRun) valid(ok bool, model func() error) error {
	if !ok {
		return ErrInvalid
	}
	return model()
}

func (r *fuzzRun) join(op, actor string, ts []TrackInfo) string {
	sub, req, err := r.c.startJoin(actor, ts)
	var pending bool
	want := r.valid(refValidID(actor) && refValidTracks(ts, 0), func() (err error) {
		pending, err = r.m.join(actor, ts)
		return err
	})
	r.m.settle()
	r.same(op, err, want)
	if (req != nil) != pending {
		r.t.Fatalf("%s: pending %v, model says %v", op, req != nil, pending)
	}
	if sub != nil {
		r.session(actor, sub)
	}
	if req != nil {
		r.reqs[actor] = req
	}
	return op
}

func (r *fuzzRun) session(user string, sub *Subscription) {
	r.drain() // the ended session's last events
	r.subs[user] = sub
	r.drain() // the model counts queues from here
}

func (r *fuzzRun) getUsers(op, actor string) {
	s, err := r.c.GetUsers(actor)
	var ws Snapshot
	want := r.valid(refValidID(actor), func() (err error) {
		ws, err = r.m.getUsers(actor)
		return err
	})
	r.same(op, err, want)
	if err == nil && fmt.Sprintf("%+v", s) != fmt.Sprintf("%+v", ws) {
		r.t.Fatalf("%s:\n got  %+v\n want %+v", op, s, ws)
	}
}

// checkEvents compares what each user received, and how its sessions
// ended, with the model.
func (r *fuzzRun) checkEvents(op string) {
	for _, u := range fuzzUsers {
		got, want, k := r.got[u], r.m.events[u], r.checked[u]
		if len(got) != len(want) || fmt.Sprintf("%+v", got[k:]) != fmt.Sprintf("%+v", want[k:]) {
			i := k
			for i < len(got) && i < len(want) && fmt.Sprintf("%+v", got[i]) == fmt.Sprintf("%+v", want[i]) {
				i++
			}
			r.t.Fatalf("%s: %s's events differ at %d (got %d, want %d):\n got  %v\n want %v",
				op, u, i, len(got), len(want), types(got[i:]), types(want[i:]))
		}
		r.checked[u] = len(got)
	}
}

// drain reads every session's queued events.
func (r *fuzzRun) drain() {
	defer r.m.drained()
	for u, sub := range r.subs {
		for done := false; !done; {
			select {
			case ev, ok := <-sub.C():
				if !ok {
					_, err := sub.Next(context.Background())
					r.got[u] = append(r.got[u], endMark(err))
					delete(r.subs, u)
					done = true
					break
				}
				r.got[u] = append(r.got[u], *ev)
			default:
				done = true
			}
		}
	}
}

// check compares everything observable with the model; the events and
// how sessions ended only when the consumers read.
func (r *fuzzRun) check(op string, read bool) {
	r.collectAnswers()
	if read {
		r.drain()
		r.checkEvents(op)
	}
	for _, u := range fuzzUsers {
		r.checkMedia(op, u)
	}
	for u, w := range r.m.answers {
		g, ok := r.answers[u]
		if !ok || (g == nil) != (w == nil) || (w != nil && !errors.Is(g, w)) {
			r.t.Fatalf("%s: join request of %s answered %v (%v), model says %v", op, u, g, ok, w)
		}
	}
	if len(r.answers) != len(r.m.answers) {
		r.t.Fatalf("%s: join answers %v, model says %v", op, r.answers, r.m.answers)
	}
	clear(r.answers)
	clear(r.m.answers)
	if g, w := r.notes.take(), r.m.notes; !slices.Equal(g, w) {
		r.t.Fatalf("%s: newcall %q, model says %q", op, g, w)
	}
	r.m.notes = nil
}

func (r *fuzzRun) collectAnswers() {
	for u, req := range r.reqs {
		select {
		case a := <-req.done:
			delete(r.reqs, u)
			r.answers[u] = a.err
			if a.sub != nil {
				r.session(u, a.sub)
			}
		default:
		}
	}
}

// checkMedia: the state the channel last told Media, and the gate, match
// the model.
func (r *fuzzRun) checkMedia(op, u string) {
	m := r.m
	want := map[string]MuteState{}
	for k, s := range m.media {
		if strings.HasPrefix(k, u+"/") {
			want["ch/"+k] = s
		}
	}
	r.rec.mu.Lock()
	got := map[string]MuteState{}
	for k, s := range r.rec.mute {
		if strings.HasPrefix(k, "ch/"+u+"/") {
			got[k] = s
		}
	}
	recv := r.rec.recv["ch/"+u]
	_, told := r.rec.recv["ch/"+u]
	r.rec.mu.Unlock()
	if !maps.Equal(got, want) {
		r.t.Fatalf("%s: Media's tracks of %s %v, model says %v", op, u, got, want)
	}
	if off := told && !recv; off != m.recv[u] {
		r.t.Fatalf("%s: Media's recv of %s off=%v, model says %v", op, u, off, m.recv[u])
	}
	var mode permission.Mode
	if m.active[u] {
		mode = m.mode[u]
	}
	if g := r.c.Gate(u).Load(); g != mode {
		r.t.Fatalf("%s: %s's gate %v, model says %v", op, u, g, mode)
	}
}

// TestChannelOpsRandom runs FuzzChannelOps' oracle on random operation
// sequences, so that plain go test explores beyond the seed corpus.
func TestChannelOpsRandom(t *testing.T) {
	n := 400
	if testing.Short() {
		n = 50
	}
	rng := rand.New(rand.NewPCG(6, 6))
	for range n {
		data := make([]byte, 3+4*(1+rng.IntN(100)))
		for i := range data {
			data[i] = byte(rng.Uint32())
		}
		func() {
			defer func() {
				if t.Failed() {
					t.Logf("input: %v", data)
				}
			}()
			fuzzOps(t, data)
		}()
	}
}
