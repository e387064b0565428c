package channel

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/callcore/callcore/permission"
)

type joinAnswer struct {
	sub *Subscription
	err error
}

// request starts user's join in the background and waits until the bubble
// is idle (the join answered or pending).
func (h *harness) request(ctx context.Context, user string, tracks ...TrackInfo) chan joinAnswer {
	done := make(chan joinAnswer, 1)
	go func() {
		sub, err := h.c.Join(ctx, user, tracks)
		done <- joinAnswer{sub, err}
	}()
	synctest.Wait()
	return done
}

func answered(t *testing.T, done chan joinAnswer) (joinAnswer, bool) {
	t.Helper()
	synctest.Wait()
	select {
	case a := <-done:
		return a, true
	default:
		return joinAnswer{}, false
	}
}

func TestJoinRequest(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, Config{JoinRequestTimeout: time.Minute},
			CreateOptions{Config: CallConfig{JoinRequest: true}, Users: []string{"adm", "mem"}})
		h.join("adm")
		h.join("mem")
		h.must(h.c.ModUsers("own", []UserMode{{"adm", permission.All}}))
		for _, u := range []string{"own", "adm", "mem"} {
			h.drain(u)
		}
		eq(t, "newcall at creation", h.notes.take(), []string{"room own adm", "room own mem"})

		// A request: admins see cnl:req, others a gap in Seq.
		out := h.request(t.Context(), "out", mic)
		if _, ok := answered(t, out); ok {
			t.Fatal("an outsider joined without approval")
		}
		evs, _ := h.drain("adm")
		eq(t, "admin sees", types(evs), []string{"5:cnl:req:out"})
		if evs, _ := h.drain("mem"); len(evs) != 0 {
			t.Errorf("a non-admin saw %v", types(evs))
		}
		if _, err := h.c.Join(t.Context(), "out", nil); !errors.Is(err, ErrExists) {
			t.Errorf("second request: %v", err)
		}
		// Approval completes the join.
		h.must(h.c.AddUsers("adm", []string{"out"}))
		a, ok := answered(t, out)
		if !ok || a.err != nil {
			t.Fatalf("approved join: %v %v", ok, a.err)
		}
		h.subs["out"] = a.sub
		evs, _ = h.drain("out")
		eq(t, "approved joiner", types(evs), []string{"7:user:join:out", "8:track:add:out/mic"})
		evs, _ = h.drain("mem")
		eq(t, "others", types(evs), []string{"6:user:add:out=6", "7:user:join:out", "8:track:add:out/mic"})
		if n := h.notes.take(); len(n) != 0 {
			t.Errorf("newcall to a user now in the call: %v", n)
		}

		// Refusal.
		ref := h.request(t.Context(), "ref")
		h.must(h.c.DelUsers("own", []string{"ref"}))
		if a, ok := answered(t, ref); !ok || !errors.Is(a.err, ErrNotMember) {
			t.Errorf("refused request: %v %v", ok, a.err)
		}

		// Expiry, on the bubble's fake clock.
		late := h.request(t.Context(), "late")
		time.Sleep(time.Minute - time.Millisecond)
		if _, ok := answered(t, late); ok {
			t.Fatal("request expired early")
		}
		time.Sleep(time.Millisecond)
		if a, ok := answered(t, late); !ok || !errors.Is(a.err, ErrNotMember) {
			t.Errorf("expired request: %v %v", ok, a.err)
		}

		// Withdrawal by the requester's context.
		ctx, cancel := context.WithCancel(t.Context())
		can := h.request(ctx, "can")
		cancel()
		if a, ok := answered(t, can); !ok || !errors.Is(a.err, context.Canceled) {
			t.Errorf("withdrawn request: %v %v", ok, a.err)
		}
		// Approval of a join past maxUsers: a member, but the join fails.
		h.must(h.c.Configure("own", CallConfig{JoinRequest: true, MaxUsers: 4}))
		full := h.request(t.Context(), "can")
		h.must(h.c.AddUsers("own", []string{"can"}))
		if a, ok := answered(t, full); !ok || !errors.Is(a.err, ErrFull) {
			t.Errorf("approved past maxUsers: %v %v", ok, a.err)
		}
		eq(t, "newcall", h.notes.take(), []string{"room own can"})

		checkDeleteFailsRequests(t, h)
	})
}

func checkDeleteFailsRequests(t *testing.T, h *harness) {
	last := h.request(t.Context(), "last")
	h.must(h.c.Delete("own", ""))
	if a, ok := answered(t, last); !ok || !errors.Is(a.err, ErrClosed) {
		t.Errorf("request on a deleted channel: %v %v", ok, a.err)
	}
}

func TestIdleClose(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, Config{IdleTimeout: 10 * time.Second}, CreateOptions{})
		h.must(h.c.Leave("own"))
		time.Sleep(9 * time.Second)
		h.join("own") // rejoined in time: the timer is cancelled
		time.Sleep(time.Hour)
		synctest.Wait()
		if h.r.Len() != 1 {
			t.Fatal("a channel with an active user closed")
		}
		h.must(h.c.Leave("own"))
		time.Sleep(10 * time.Second)
		synctest.Wait()
		if h.r.Len() != 0 {
			t.Fatal("an idle channel stayed open")
		}
		if err := h.c.Leave("own"); !errors.Is(err, ErrClosed) {
			t.Errorf("after idle close: %v", err)
		}
	})
}

func TestIdleTimeoutZeroKeeps(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, Config{}, CreateOptions{})
		h.must(h.c.Leave("own"))
		time.Sleep(24 * time.Hour)
		synctest.Wait()
		if h.r.Len() != 1 {
			t.Fatal("closed without an IdleTimeout")
		}
		h.r.Close()
		if h.r.Len() != 0 {
			t.Fatal("Close kept channels")
		}
		if _, _, err := h.r.Create("own", "x", CreateOptions{}); !errors.Is(err, ErrClosed) {
			t.Errorf("create after Close: %v", err)
		}
	})
}

// TestStartJoin: StartJoin says at once whether a join is a request; the
// request is filed (admins see cnl:req) and Wait gets its answer; a
// request nobody waits for still times out and can be filed again.
func TestStartJoin(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, Config{JoinRequestTimeout: time.Minute},
			CreateOptions{Config: CallConfig{JoinRequest: true}, Users: []string{"mem"}})
		h.drain("own")
		// A member joins at once.
		sub, pend, err := h.c.StartJoin("mem", nil)
		if err != nil || sub == nil || pend != nil {
			t.Fatalf("member: %v %v %v", sub, pend, err)
		}
		h.subs["mem"] = sub
		h.drain("own")
		// An outsider's join is a request.
		sub, pend, err = h.c.StartJoin("out", []TrackInfo{mic})
		if err != nil || sub != nil || pend == nil {
			t.Fatalf("outsider: %v %v %v", sub, pend, err)
		}
		evs, _ := h.drain("own")
		eq(t, "owner sees", types(evs), []string{"3:cnl:req:out"})
		if _, _, err := h.c.StartJoin("out", nil); !errors.Is(err, ErrExists) {
			t.Errorf("second request: %v", err)
		}
		done := make(chan joinAnswer, 1)
		go func() {
			sub, err := pend.Wait(t.Context())
			done <- joinAnswer{sub, err}
		}()
		h.must(h.c.AddUsers("own", []string{"out"}))
		a, ok := answered(t, done)
		if !ok || a.err != nil || a.sub == nil {
			t.Fatalf("approved: %v %+v", ok, a)
		}
		h.subs["out"] = a.sub

		// Nobody waits: the request times out all the same.
		if _, pend, err = h.c.StartJoin("idle", nil); err != nil || pend == nil {
			t.Fatalf("idle: %v %v", pend, err)
		}
		time.Sleep(time.Minute)
		synctest.Wait()
		if _, err := pend.Wait(t.Context()); !errors.Is(err, ErrNotMember) {
			t.Errorf("timed out request: %v", err)
		}
		if _, pend, err = h.c.StartJoin("idle", nil); err != nil || pend == nil {
			t.Errorf("request again after the timeout: %v %v", pend, err)
		}
	})
}
