package cluster

import (
	"fmt"
	"testing"
	"time"

	"github.com/callcore/callcore/channel"
)

// Three nodes on one NATS server: users of one channel on every node see
// the same events with the same numbers, getUsers agrees everywhere, and
// an admin's muteUser on one node reaches the publisher on another.
func TestUsersOnThreeNodesSeeOneOrder(t *testing.T) {
	eng := startEngine(t, 1)
	a := startNode(t, "a", eng[0].ClientURL(), 1)
	b := startNode(t, "b", eng[0].ClientURL(), 1)
	c := startNode(t, "c", eng[0].ClientURL(), 1)
	ctx := ctxFor(t, 30*time.Second)

	sa, err := a.Create(ctx, "alice", "room.1 *>", channel.CreateOptions{})
	must(t, err)
	sb, err := b.Join(ctx, "bob", "room.1 *>", []channel.TrackInfo{{Name: "mic", Kind: channel.Audio}})
	must(t, err)
	sc, err := c.Join(ctx, "carol", "room.1 *>", []channel.TrackInfo{{Name: "cam", Kind: channel.Video}})
	must(t, err)
	if _, err := a.Create(ctx, "dave", "room.1 *>", channel.CreateOptions{}); !errorsIs(err, channel.ErrExists) {
		t.Fatalf("second create: %v, want ErrExists", err)
	}
	owner, err := c.Owner(ctx, "room.1 *>")
	must(t, err)
	if owner != "a" {
		t.Fatalf("owner %q, want a", owner)
	}
	// alice (an admin, on a) mutes carol's video (carol on c).
	seq, err := a.Do(ctx, Op{Name: OpMuteUser, Channel: "room.1 *>", Actor: "alice", Target: "carol", Kind: channel.Video, Mute: true, Reason: "test"})
	must(t, err)
	// bob (on b) self-mutes, forwarded to a.
	seq2, err := b.Do(ctx, Op{Name: OpMuteTracks, Channel: "room.1 *>", Actor: "bob", Names: []string{"mic"}, Mute: true})
	must(t, err)
	if seq2 <= seq {
		t.Fatalf("sequence went from %d to %d", seq, seq2)
	}
	if _, err := b.Do(ctx, Op{Name: OpMuteUser, Channel: "room.1 *>", Actor: "bob", Target: "carol", Kind: channel.Video}); !errorsIs(err, channel.ErrUnauthorized) {
		t.Fatalf("bob's muteUser: %v, want ErrUnauthorized", err)
	}

	ea := events(t, sa, 10*time.Second, seqIs(seq2))
	eb := events(t, sb, 10*time.Second, seqIs(seq2))
	ec := events(t, sc, 10*time.Second, seqIs(seq2))
	// Each sees the events from its own join on, the same ones.
	checkSuffix(t, ea, eb)
	checkSuffix(t, ea, ec)
	mute := ec[len(ec)-2]
	if mute.Type != channel.EventTrackMute || mute.User != "carol" || mute.Track.State != channel.MuteAdmin || mute.Track.MutedBy != "alice" {
		t.Fatalf("carol saw %+v, want her track admin-muted by alice", mute)
	}
	var want string
	for i, n := range []*Node{a, b, c} {
		u := []string{"alice", "bob", "carol"}[i]
		snap, err := n.GetUsers(ctx, u, "room.1 *>")
		must(t, err)
		if snap.Seq != seq2 || len(snap.Users) != 3 {
			t.Fatalf("%s: getUsers %+v, want 3 users at %d", n.ID(), snap, seq2)
		}
		if got := fmt.Sprintf("%+v", snap); want == "" {
			want = got
		} else if got != want {
			t.Fatalf("%s: getUsers\n %s\n want %s", n.ID(), got, want)
		}
	}
	// Membership: every node is listed, with its load.
	eventually(t, 5*time.Second, "three nodes listed with their users", func() bool {
		infos, err := b.Nodes(ctx)
		users := 0
		for _, in := range infos {
			users += in.Users
		}
		return err == nil && len(infos) == 3 && users == 3
	})
	if sa, sb := a.Stats(), b.Stats(); sb.Forwarded == 0 || sa.Served == 0 || sa.Published < seq2 || sb.Applied == 0 || sa.Fenced != 0 {
		t.Fatalf("stats: a %+v, b %+v", sa, sb)
	}
	// carol leaves: her session ends with user:left, the others see it.
	seq3, err := c.Do(ctx, Op{Name: OpLeave, Channel: "room.1 *>", Actor: "carol"})
	must(t, err)
	if evs := events(t, sc, 5*time.Second, seqIs(seq3)); evs[len(evs)-1].Type != channel.EventLeft {
		t.Fatalf("carol's last event %v", names(evs))
	}
	if _, err := sc.Next(ctx); !errorsIs(err, channel.ErrLeft) {
		t.Fatalf("carol's session ended with %v", err)
	}
	events(t, sb, 5*time.Second, seqIs(seq3))
	// The owner deletes the channel: every session ends with ErrClosed.
	_, err = a.Do(ctx, Op{Name: OpDelete, Channel: "room.1 *>", Actor: "alice", Reason: "done"})
	must(t, err)
	for _, s := range []*Session{sa, sb} {
		events(t, s, 5*time.Second, func(ev channel.Event) bool { return ev.Type == channel.EventDelete })
		if _, err := s.Next(ctx); !errorsIs(err, channel.ErrClosed) {
			t.Fatalf("%s's session ended with %v", s.User(), err)
		}
	}
	// The id can be used again, from another node.
	s2, err := b.Create(ctx, "bob", "room.1 *>", channel.CreateOptions{})
	must(t, err)
	if ev := events(t, s2, 5*time.Second, seqIs(1)); ev[0].Type != channel.EventCreate || ev[0].Seq != 1 {
		t.Fatalf("new channel starts with %v", names(ev))
	}
}

// checkSuffix checks that short is the end of long, event for event.
func checkSuffix(t *testing.T, long, short []channel.Event) {
	t.Helper()
	if len(short) > len(long) {
		long, short = short, long
	}
	tail := long[len(long)-len(short):]
	if fmt.Sprintf("%+v", tail) != fmt.Sprintf("%+v", short) {
		t.Fatalf("events differ:\n %v\n %v", names(tail), names(short))
	}
}
