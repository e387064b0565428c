package channel

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/callcore/callcore/permission"
)

// eventLog is a Media that keeps every event it is given (EventMedia).
type eventLog struct {
	NopMedia
	mu  sync.Mutex // guards evs
	evs []Event
}

func (l *eventLog) Emitted(ev *Event) {
	l.mu.Lock()
	l.evs = append(l.evs, *ev)
	l.mu.Unlock()
}

func (l *eventLog) all() []Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.evs)
}

// followRun drives random operations on a channel whose events are
// followed by a State (Apply), and checks after each one that the follower
// answers getUsers as the channel does for every user, that the events
// came numbered 1, 2, 3..., and that a channel restored from the
// channel's State has the same State and answers.
func followRun(t *testing.T, data []byte) {
	log := &eventLog{}
	reg, err := NewRegistry(Config{Media: log, Clock: &fakeClock{}, EventBuffer: 4096})
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	var cfg CallConfig
	if len(data) > 2 {
		cfg = fuzzConfig(data[0], data[1])
		cfg.Kind &= 3
		data = data[2:]
	}
	c, _, err := reg.Create("u0", "ch", CreateOptions{Config: cfg})
	if err != nil {
		t.Fatal(err)
	}
	var follower State
	applied := 0
	follow := func(op string) {
		evs := log.all()
		for _, ev := range evs[applied:] {
			if ev.Seq != uint64(applied+1) {
				t.Fatalf("%s: event %d numbered %d", op, applied+1, ev.Seq)
			}
			if !follower.Apply(&ev) {
				t.Fatalf("%s: event %d not applied", op, ev.Seq)
			}
			applied++
		}
		checkFollower(t, op, c, &follower)
	}
	follow("create")
	for i := 0; i+4 <= len(data) && i < 400; i += 4 {
		o, a, b, x := data[i], data[i+1], data[i+2], data[i+3]
		actor, target := fuzzUser(a), fuzzUser(b)
		follow(followOp(c, o, actor, target, b, x))
	}
	st := c.State()
	if st.Closed {
		return
	}
	reg2, err := NewRegistry(Config{Clock: &fakeClock{}, EventBuffer: 4096})
	if err != nil {
		t.Fatal(err)
	}
	defer reg2.Close()
	c2, subs, err := reg2.Restore(st)
	if err != nil {
		t.Fatalf("restore: %v", err)
	}
	if got := c2.State(); fmt.Sprintf("%+v", got) != fmt.Sprintf("%+v", st) {
		t.Fatalf("restored state\n got  %+v\n want %+v", got, st)
	}
	for _, u := range fuzzUsers {
		if _, active := subs[u]; active != st.Active(u) {
			t.Fatalf("restored %s: subscription %v, active %v", u, active, st.Active(u))
		}
	}
	checkFollower(t, "restored", c2, &follower)
	// The restored channel numbers on.
	if err := c2.SetSpeakers(nil); err == nil && len(st.Speakers) > 0 && c2.State().Seq != st.Seq+1 {
		t.Fatalf("restored channel numbered %d after %d", c2.State().Seq, st.Seq)
	}
}

func checkFollower(t *testing.T, op string, c *Channel, f *State) {
	t.Helper()
	for _, u := range fuzzUsers {
		want, werr := c.GetUsers(u)
		got, gerr := f.Users(u)
		if (werr == nil) != (gerr == nil) {
			t.Fatalf("%s: getUsers(%s): channel %v, follower %v", op, u, werr, gerr)
		}
		if werr == nil && fmt.Sprintf("%+v", got) != fmt.Sprintf("%+v", want) {
			t.Fatalf("%s: getUsers(%s):\n follower %+v\n channel  %+v", op, u, got, want)
		}
	}
}

// followOp performs one operation, whatever its outcome.
func followOp(c *Channel, o byte, actor, target string, b, x byte) string {
	switch o % 13 {
	case 0, 1:
		_, _, err := c.StartJoin(actor, fuzzTracks(int(x%3), b, x))
		return fmt.Sprintf("join(%s): %v", actor, err)
	case 2:
		return fmt.Sprintf("leave(%s): %v", actor, c.Leave(actor))
	case 3:
		return fmt.Sprintf("addUsers(%s): %v", actor, c.AddUsers(actor, fuzzIDs(b)))
	case 4:
		return fmt.Sprintf("delUsers(%s): %v", actor, c.DelUsers(actor, fuzzIDs(b&^1)))
	case 5:
		return fmt.Sprintf("modUsers(%s): %v", actor, c.ModUsers(actor, []UserMode{{ID: target, Mode: permission.Mode(x % 8)}}))
	case 6:
		cfg := fuzzConfig(b, x)
		cfg.Kind &= 3
		return fmt.Sprintf("configure(%s): %v", actor, c.Configure(actor, cfg))
	case 7:
		return fmt.Sprintf("addTracks(%s): %v", actor, c.AddTracks(actor, fuzzTracks(1+int(x%2), b, x)))
	case 8:
		return fmt.Sprintf("removeTracks(%s): %v", actor, c.RemoveTracks(actor, []string{fuzzTrack(x).Name}))
	case 9:
		return fmt.Sprintf("muteTracks(%s): %v", actor, c.MuteTracks(actor, []string{fuzzTrack(x).Name}, MuteAction(b&1 == 0)))
	case 10:
		kind := []Kind{Audio, Video}[x&1]
		return fmt.Sprintf("muteUser(%s, %s): %v", actor, target, c.MuteUser(actor, target, kind, MuteAction(b&2 == 0), "r"))
	case 11:
		return fmt.Sprintf("setSpeakers(%s): %v", actor, c.SetSpeakers([]Speaker{{User: actor, Level: int(x % 128)}}))
	default:
		if b%8 == 0 {
			return fmt.Sprintf("delete(%s): %v", actor, c.Delete(actor, "bye"))
		}
		return "nothing"
	}
}

// FuzzStateFollowsChannel checks State.Apply and Registry.Restore against
// the real channel (see followRun).
func FuzzStateFollowsChannel(f *testing.F) {
	f.Add([]byte{8, 3, 0, 1, 0, 3, 7, 1, 0, 9, 10, 0, 1, 9, 9, 0, 0, 0, 5, 0, 1, 5, 10, 0, 1, 0, 6, 0, 0, 7})
	f.Add([]byte{8, 3, 0, 1, 0, 0, 0, 2, 0, 0, 7, 2, 0, 2, 5, 0, 2, 0, 6, 0, 0, 1, 3, 0, 1, 17, 9, 1, 0, 8})
	f.Fuzz(func(t *testing.T, data []byte) {
		guard(t, 20*time.Second, func() { followRun(t, data) })
	})
}

func TestFollowerAgreesWithChannelOnRandomOps(t *testing.T) {
	for seed := range 200 {
		data := make([]byte, 202)
		x := uint32(seed*2654435761 + 1)
		for i := range data {
			x ^= x << 13
			x ^= x >> 17
			x ^= x << 5
			data[i] = byte(x)
		}
		t.Run(fmt.Sprint(seed), func(t *testing.T) { followRun(t, data) })
	}
}
