package cluster

import (
	"testing"
	"time"

	"github.com/callcore/callcore/channel"
)

// The owner node dies (killed: no handoff, nothing released) with a user
// of its own in the channel. Another node takes the channel over within 5
// s, the dead node's users leave, and the survivors' sessions go on with
// the events numbered on: none lost, none twice, the same on both.
func TestOwnerKilledAnotherNodeTakesTheChannelOver(t *testing.T) {
	ownerKilled(t, false, 5*time.Second)
}

// The owner node dies with the NATS server it was connected to: the
// engine's groups that server led elect new leaders first (NATS's election
// timeout is 4 to 9 s), then the lease runs out as above.
func TestOwnerKilledWithItsNATSServer(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for the engine's elections")
	}
	ownerKilled(t, true, 30*time.Second)
}

func ownerKilled(t *testing.T, withServer bool, within time.Duration) {
	// A lease of 2 s: renewals of a replicated key under -race on a busy
	// machine take a few hundred ms at times.
	const lease = 2 * time.Second
	eng := startEngine(t, 3)
	a := startNodeTTL(t, "a", eng[0].ClientURL(), 3, lease)
	b := startNodeTTL(t, "b", eng[1].ClientURL(), 3, lease)
	c := startNodeTTL(t, "c", eng[2].ClientURL(), 3, lease)
	ctx := ctxFor(t, 60*time.Second)
	const room = "room"

	_, err := a.Create(ctx, "alice", room, channel.CreateOptions{})
	must(t, err)
	_, err = a.Join(ctx, "amy", room, nil)
	must(t, err)
	sb, err := b.Join(ctx, "bob", room, []channel.TrackInfo{{Name: "mic", Kind: channel.Audio}})
	must(t, err)
	sc, err := c.Join(ctx, "carol", room, []channel.TrackInfo{{Name: "cam", Kind: channel.Video}})
	must(t, err)
	_, err = a.Do(ctx, Op{Name: OpModUsers, Channel: room, Actor: "alice", Modes: []channel.UserMode{{ID: "bob", Mode: 7}}})
	must(t, err)
	before, err := b.Do(ctx, Op{Name: OpMuteTracks, Channel: room, Actor: "bob", Names: []string{"mic"}, Mute: true})
	must(t, err)
	// Every node's snapshot reflects the last operation before the kill
	// or not: both must work. Wait until both survivors have applied it.
	must(t, c.followerOf(room).waitSeq(ctx, before))

	killed := time.Now()
	a.Kill()
	if withServer {
		eng[0].Shutdown()
	}
	var claimed time.Duration
	eventually(t, within, "another node owns the channel", func() bool {
		o, err := b.Owner(ctx, room)
		if err == nil && o != "a" {
			claimed = time.Since(killed)
			return true
		}
		return false
	})
	// bob, an admin now, mutes carol's camera: the operation reaches the
	// new owner.
	seq, err := b.Do(ctx, Op{Name: OpMuteUser, Channel: room, Actor: "bob", Target: "carol", Kind: channel.Video, Mute: true, Reason: "after failover"})
	must(t, err)
	served := time.Since(killed)
	t.Logf("failover (NATS server killed too: %v): channel claimed %v after the kill, first operation answered after %v", withServer, claimed, served)
	if served > within {
		t.Fatalf("first operation after the kill took %v", served)
	}
	// alice and amy were on the dead node: they leave.
	eventually(t, within, "the dead node's users leave", func() bool {
		snap, err := c.GetUsers(ctx, "carol", room)
		return err == nil && len(snap.Users) == 2 && snap.Users[0].ID == "bob" && snap.Users[1].ID == "carol"
	})
	last, err := c.Do(ctx, Op{Name: OpAddTracks, Channel: room, Actor: "carol", Tracks: []channel.TrackInfo{{Name: "screen", Kind: channel.Video}}})
	must(t, err)
	if last <= seq {
		t.Fatalf("numbering went from %d to %d", seq, last)
	}
	eb := events(t, sb, 10*time.Second, seqIs(last))
	ec := events(t, sc, 10*time.Second, seqIs(last))
	checkSuffix(t, eb, ec)
	for _, evs := range [][]channel.Event{eb, ec} {
		for i := 1; i < len(evs); i++ {
			if evs[i].Seq != evs[i-1].Seq+1 {
				t.Fatalf("events not numbered one by one: %v", names(evs))
			}
		}
	}
	var left []string
	for _, ev := range eb {
		if ev.Type == channel.EventLeft {
			left = append(left, ev.User)
		}
	}
	if len(left) != 2 {
		t.Fatalf("bob saw %v leave, want alice and amy: %v", left, names(eb))
	}
	for _, n := range []*Node{b, c} {
		_, _, seqs := n.followerOf(room).state()
		for i := 1; i < len(seqs); i++ {
			if seqs[i] != seqs[i-1]+1 {
				t.Fatalf("%s applied %v", n.ID(), seqs)
			}
		}
	}
	sbu, err := b.GetUsers(ctx, "bob", room)
	must(t, err)
	scu, err := c.GetUsers(ctx, "carol", room)
	must(t, err)
	if sbu.Seq != last || scu.Seq != last || len(sbu.Users) != 2 || len(scu.Users) != 2 || scu.Users[1].Tracks[0].State != channel.MuteAdmin {
		t.Fatalf("getUsers after failover:\n b %+v\n c %+v", sbu, scu)
	}
}

// A node that closes cleanly releases its channels at once: another node
// with users in them takes them over without waiting for the lease, and
// the channel numbers on.
func TestOwnerClosedHandsTheChannelOver(t *testing.T) {
	const lease = 5 * time.Second
	eng := startEngine(t, 1)
	a := startNodeTTL(t, "a", eng[0].ClientURL(), 1, lease)
	b := startNodeTTL(t, "b", eng[0].ClientURL(), 1, lease)
	ctx := ctxFor(t, 20*time.Second)
	_, err := a.Create(ctx, "alice", "r", channel.CreateOptions{})
	must(t, err)
	sb, err := b.Join(ctx, "bob", "r", nil)
	must(t, err)
	closed := time.Now()
	a.Close()
	seq, err := b.Do(ctx, Op{Name: OpAddTracks, Channel: "r", Actor: "bob", Tracks: []channel.TrackInfo{{Name: "mic", Kind: channel.Audio}}})
	must(t, err)
	took := time.Since(closed)
	t.Logf("handover after a clean close: first operation answered after %v", took)
	if owner, err := b.Owner(ctx, "r"); err != nil || owner != "b" {
		t.Fatalf("owner %q, %v", owner, err)
	}
	evs := events(t, sb, 5*time.Second, seqIs(seq))
	for i := 1; i < len(evs); i++ {
		if evs[i].Seq != evs[i-1].Seq+1 {
			t.Fatalf("events not numbered one by one: %v", names(evs))
		}
	}
	if took >= lease { // the handover did not wait for the lease to run out
		t.Fatalf("handover took %v, as long as the lease", took)
	}
}
