package channel

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/callcore/callcore/permission"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestSlowConsumer(t *testing.T) {
	h := newHarness(t, Config{EventBuffer: 4}, CreateOptions{})
	h.join("slow")
	h.drain("own")
	for _, u := range []string{"a", "b", "c"} {
		h.join(u)
		for _, r := range []string{"own", "a", "b", "c"} {
			if h.subs[r] != nil {
				h.drain(r)
			}
		}
	}
	h.join("d")
	evs, end := h.drain("slow")
	eq(t, "slow consumer's buffer", types(evs), []string{"2:user:join:slow", "3:user:join:a", "4:user:join:b", "5:user:join:c"})
	if !errors.Is(end, ErrSlowConsumer) {
		t.Errorf("slow consumer's end: %v", end)
	}
	evs, _ = h.drain("d")
	eq(t, "others", types(evs), []string{"6:user:join:d", "7:user:left:slow"})
	if h.c.Gate("slow").Load() != 0 {
		t.Error("slow consumer's gate open")
	}
	if calls := h.rec.take(); calls[len(calls)-1] != "UserGone room slow" {
		t.Errorf("media: %v", calls)
	}
	h.join("slow") // it may come back
}

// guard runs f and fails the run, with every goroutine's stack, if f has
// not returned within d, instead of hanging.
func guard(t *testing.T, d time.Duration, f func()) {
	t.Helper()
	name := t.Name()
	timer := time.AfterFunc(d, func() {
		buf := make([]byte, 1<<20)
		n := runtime.Stack(buf, true)
		panic(fmt.Sprintf("%s: deadlock guard: still running after %v\n%s", name, d, buf[:n]))
	})
	defer timer.Stop()
	f()
}

type seen struct {
	typ  EventType
	user string
}

// consume reads sub until it ends, checking that Seq only grows, and
// records what it saw.
func consume(t *testing.T, user string, sub *Subscription, out map[uint64]seen) {
	var last uint64
	for {
		ev, err := sub.Next(context.Background())
		if err != nil {
			return
		}
		if ev.Seq <= last {
			t.Errorf("%s: seq %d after %d", user, ev.Seq, last)
		}
		last = ev.Seq
		out[ev.Seq] = seen{ev.Type, ev.User}
	}
}

// TestStress runs concurrent joins, leaves, track changes, mutes and
// moderation by random actors, with a consumer per session, under a
// deadlock guard; every consumer must see one order, and Media must end in
// the state getUsers reports.
func TestStress(t *testing.T) {
	const users, opsPerUser = 16, 300
	h := newHarness(t, Config{EventBuffer: 64}, CreateOptions{})
	guard(t, 60*time.Second, func() {
		var wg, readers sync.WaitGroup
		var mu sync.Mutex // guards views
		var views []map[uint64]seen
		startReader := func(user string, sub *Subscription) {
			view := map[uint64]seen{}
			mu.Lock()
			views = append(views, view)
			mu.Unlock()
			readers.Go(func() { consume(t, user, sub, view) })
		}
		startReader("own", h.subs["own"])
		h.must(h.c.AddUsers("own", []string{"u0", "u1"}))
		h.must(h.c.ModUsers("own", []UserMode{{"u0", permission.All}, {"u1", permission.All}}))
		for i := range users {
			wg.Go(func() {
				rng := rand.New(rand.NewPCG(uint64(i), 1))
				me := fmt.Sprintf("u%d", i)
				for range opsPerUser {
					if sub := stressOp(h.c, rng, me, users); sub != nil {
						startReader(me, sub)
					}
				}
			})
		}
		wg.Wait()
		// The owner's consumer may have been too slow: it is then out.
		if sub, err := h.c.Join(context.Background(), "own", nil); err == nil {
			startReader("own", sub)
		}
		checkMediaMatches(t, h)
		if n := h.rec.overlaps.Load(); n != 0 {
			t.Errorf("%d Media calls overlapped another", n)
		}
		h.must(h.c.Delete("own", "done"))
		readers.Wait()
		checkOneOrder(t, views)
	})
}

// stressOp performs one random operation as me; it returns a new
// subscription when me joined.
func stressOp(c *Channel, rng *rand.Rand, me string, users int) *Subscription {
	other := fmt.Sprintf("u%d", rng.IntN(users))
	kind := Kind(1 + rng.IntN(2))
	name := []string{"a", "b", "c"}[rng.IntN(3)]
	action := MuteAction(rng.IntN(2) == 0)
	switch rng.IntN(10) {
	case 0, 1:
		sub, _ := c.Join(context.Background(), me, []TrackInfo{{name, kind}})
		return sub
	case 2:
		_ = c.Leave(me)
	case 3:
		_ = c.AddTracks(me, []TrackInfo{{name, kind}})
	case 4:
		_ = c.RemoveTracks(me, []string{name})
	case 5:
		_ = c.MuteTracks(me, []string{name}, action)
	case 6:
		_ = c.MuteUser(me, other, kind, action, "stress")
	case 7:
		_ = c.ModUsers(me, []UserMode{{other, permission.Mode(rng.IntN(8))}})
	case 8:
		if rng.IntN(4) == 0 {
			_ = c.DelUsers(me, []string{other})
		} else {
			_ = c.AddUsers(me, []string{other})
		}
	case 9:
		_ = c.Configure(me, CallConfig{Kind: Kind(1 + rng.IntN(3))})
		_, _ = c.GetUsers(me)
	}
	return nil
}

func checkMediaMatches(t *testing.T, h *harness) {
	t.Helper()
	s, err := h.c.GetUsers("own")
	h.must(err)
	for _, u := range s.Users {
		for _, tr := range u.Tracks {
			if got, ok := h.rec.muteOf("room", u.ID, tr.Name); !ok || got != tr.State {
				t.Errorf("%s/%s: Media told %v (%v), getUsers says %v", u.ID, tr.Name, got, ok, tr.State)
			}
		}
		if h.rec.recvOf("room", u.ID) != u.Mode.Has(permission.Recv) {
			t.Errorf("%s: Media's recv differs from mode %v", u.ID, u.Mode)
		}
	}
}

// checkOneOrder: any two consumers that saw the same sequence number saw
// the same event.
func checkOneOrder(t *testing.T, views []map[uint64]seen) {
	t.Helper()
	all := map[uint64]seen{}
	total := 0
	for _, v := range views {
		for seq, ev := range v {
			total++
			if prev, ok := all[seq]; ok && prev != ev {
				t.Fatalf("seq %d: %v and %v", seq, prev, ev)
			}
			all[seq] = ev
		}
	}
	if total == 0 {
		t.Fatal("no events seen")
	}
	t.Logf("%d sessions, %d distinct events, %d deliveries", len(views), len(all), total)
}

// TestNoGoroutineAfterDelete: consumers end and nothing is left running
// once the channel is deleted.
func TestNoGoroutineAfterDelete(t *testing.T) {
	h := newHarness(t, Config{IdleTimeout: time.Hour, JoinRequestTimeout: time.Hour}, CreateOptions{})
	var readers sync.WaitGroup
	for i := range 20 {
		h.join(fmt.Sprint("u", i), mic)
		sub := h.subs[fmt.Sprint("u", i)]
		readers.Go(func() { consume(t, "", sub, map[uint64]seen{}) })
	}
	h.must(h.c.Configure("own", CallConfig{JoinRequest: true}))
	done := make(chan error, 1)
	go func() { _, err := h.c.Join(context.Background(), "waiting", nil); done <- err }()
	for h.seqWithin(t, 5*time.Second) < 23 { // until cnl:req is out
		runtime.Gosched()
	}
	h.must(h.c.Delete("own", ""))
	readers.Wait()
	if err := <-done; !errors.Is(err, ErrClosed) {
		t.Errorf("pending join: %v", err)
	}
	goleak.VerifyNone(t)
}

// seqWithin returns the channel's sequence number, failing the test after
// d has passed since the first call for t.
func (h *harness) seqWithin(t *testing.T, d time.Duration) uint64 {
	if h.deadline.IsZero() {
		h.deadline = time.Now().Add(d)
	}
	if time.Now().After(h.deadline) {
		t.Fatal("condition not met before the deadline")
	}
	return h.seq()
}

// callbackMedia calls the channel back from inside Media calls.
type callbackMedia struct {
	NopMedia
	c     *Channel
	calls []string // made from one goroutine at a time
}

func (m *callbackMedia) MuteChanged(ch, user, track string, s MuteState) {
	m.calls = append(m.calls, fmt.Sprintf("%s/%s=%v", user, track, s))
	if s == MuteSelf {
		// A forwarding plane that escalates self mutes to admin mutes.
		if err := m.c.MuteUser("own", user, Audio, Mute, "escalated"); err != nil {
			panic(err)
		}
		if _, err := m.c.GetUsers("own"); err != nil {
			panic(err)
		}
	}
}

// TestMediaCallsBack: Media may call channel operations; their calls are
// made after the current ones, and nothing deadlocks.
func TestMediaCallsBack(t *testing.T) {
	media := &callbackMedia{}
	reg, err := NewRegistry(Config{Media: media})
	if err != nil {
		t.Fatal(err)
	}
	c, _, err := reg.Create("own", "room", CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	media.c = c
	if _, err := c.Join(context.Background(), "ann", []TrackInfo{mic}); err != nil {
		t.Fatal(err)
	}
	guard(t, 10*time.Second, func() {
		if err := c.MuteTracks("ann", []string{"mic"}, Mute); err != nil {
			t.Fatal(err)
		}
	})
	eq(t, "calls", media.calls, []string{"ann/mic=self", "ann/mic=admin"})
	reg.Close()
}

type panicMedia struct {
	NopMedia
	armed bool
	gone  []string
}

func (m *panicMedia) UserGone(ch, user string) {
	if m.armed {
		m.armed = false
		panic("media failed")
	}
	m.gone = append(m.gone, user)
}

// TestMediaPanics: a panic in Media reaches the caller, and the calls after
// it are made by the next operation.
func TestMediaPanics(t *testing.T) {
	media := &panicMedia{}
	reg, _ := NewRegistry(Config{Media: media})
	c, _, _ := reg.Create("own", "room", CreateOptions{})
	for _, u := range []string{"a", "b"} {
		if _, err := c.Join(context.Background(), u, nil); err != nil {
			t.Fatal(err)
		}
	}
	media.armed = true
	func() {
		defer func() {
			if recover() == nil {
				t.Error("no panic")
			}
		}()
		_ = c.DelUsers("own", []string{"a", "b"})
	}()
	if err := c.Leave("own"); err != nil {
		t.Fatal(err)
	}
	eq(t, "gone", media.gone, []string{"b", "own"})
	reg.Close()
}

// TestStressLifecycle races channel lifecycles: creates, joins (some as
// requests that admins approve or refuse, or that time out), leaves, idle
// closing after 1ms, deletes and finally Registry.Close, under the
// deadlock guard. Every call must end with a documented result.
func TestStressLifecycle(t *testing.T) {
	reg, err := NewRegistry(Config{IdleTimeout: time.Millisecond, JoinRequestTimeout: 5 * time.Millisecond, EventBuffer: 8})
	if err != nil {
		t.Fatal(err)
	}
	known := []error{ErrExists, ErrNotFound, ErrNotMember, ErrFull, ErrClosed, ErrUnauthorized, ErrKindNotAllowed, context.DeadlineExceeded}
	check := func(op string, err error) {
		if err == nil {
			return
		}
		for _, k := range known {
			if errors.Is(err, k) {
				return
			}
		}
		t.Errorf("%s: unexpected %v", op, err)
	}
	guard(t, 60*time.Second, func() {
		var wg sync.WaitGroup
		for i := range 8 {
			wg.Go(func() {
				rng := rand.New(rand.NewPCG(uint64(i), 2))
				me := fmt.Sprintf("u%d", i)
				for range 1000 {
					lifecycleOp(reg, rng, me, check)
				}
			})
		}
		wg.Wait()
		reg.Close()
	})
	if reg.Len() != 0 {
		t.Errorf("%d channels after Close", reg.Len())
	}
}

func lifecycleOp(reg *Registry, rng *rand.Rand, me string, check func(string, error)) {
	id := fmt.Sprintf("ch%d", rng.IntN(3))
	other := fmt.Sprintf("u%d", rng.IntN(8))
	if rng.IntN(6) == 0 {
		_, sub, err := reg.Create(me, id, CreateOptions{Config: CallConfig{JoinRequest: rng.IntN(2) == 0, MaxUsers: rng.IntN(6)}})
		check("create", err)
		drainAsync(sub)
		return
	}
	c, err := reg.Get(id)
	if err != nil {
		return
	}
	switch rng.IntN(6) {
	case 0, 1:
		ctx, cancel := context.WithTimeout(context.Background(), time.Duration(rng.IntN(3))*time.Millisecond)
		sub, err := c.Join(ctx, me, []TrackInfo{mic})
		cancel()
		check("join", err)
		drainAsync(sub)
	case 2:
		check("leave", c.Leave(me))
	case 3:
		check("addUsers", c.AddUsers(me, []string{other}))
	case 4:
		check("delUsers", c.DelUsers(me, []string{other}))
	case 5:
		if rng.IntN(4) == 0 {
			check("delete", c.Delete(me, ""))
		} else {
			check("muteUser", c.MuteUser(me, other, Audio, MuteAction(rng.IntN(2) == 0), ""))
		}
	}
}

// drainAsync reads sub until it ends.
func drainAsync(sub *Subscription) {
	if sub == nil {
		return
	}
	go func() {
		for range sub.C() {
		}
	}()
}
