package channel_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/callcore/callcore/channel"
	"github.com/callcore/callcore/permission"
)

// printMedia prints what a channel asks of the forwarding plane.
type printMedia struct{}

func (printMedia) TrackAdded(ch, user string, t channel.TrackInfo, s channel.MuteState) {
	fmt.Printf("media: %s publishes %s (%v), %v\n", user, t.Name, t.Kind, s)
}
func (printMedia) TrackRemoved(ch, user, track string) {
	fmt.Printf("media: %s unpublishes %s\n", user, track)
}
func (printMedia) MuteChanged(ch, user, track string, s channel.MuteState) {
	fmt.Printf("media: %s/%s is now %v\n", user, track, s)
}
func (printMedia) ReceiveChanged(ch, user string, on bool) {
	fmt.Printf("media: forwarding to %s: %v\n", user, on)
}
func (printMedia) UserGone(ch, user string) { fmt.Printf("media: %s gone\n", user) }

func printEvents(who string, sub *channel.Subscription) {
	for {
		select {
		case ev := <-sub.C():
			line := fmt.Sprintf("%s sees %d %v", who, ev.Seq, ev.Type)
			if ev.User != "" {
				line += " " + ev.User
			}
			if ev.Track.Name != "" {
				line += "/" + ev.Track.Name
			}
			fmt.Println(line)
		default:
			return
		}
	}
}

// Create a call, join it and publish: every active user sees the same
// numbered events, and Media is told what to forward.
func Example() {
	reg, err := channel.NewRegistry(channel.Config{Media: printMedia{}})
	if err != nil {
		panic(err)
	}
	defer reg.Close()
	call, alice, err := reg.Create("alice", "standup", channel.CreateOptions{
		Tracks: []channel.TrackInfo{{Name: "mic", Kind: channel.Audio}},
	})
	if err != nil {
		panic(err)
	}
	bob, err := call.Join(context.Background(), "bob", []channel.TrackInfo{{Name: "cam", Kind: channel.Video}})
	if err != nil {
		panic(err)
	}
	if err := call.MuteTracks("bob", []string{"cam"}, channel.Mute); err != nil {
		panic(err)
	}
	printEvents("alice", alice)
	printEvents("bob", bob)
	users, _ := call.GetUsers("bob")
	for _, u := range users.Users {
		fmt.Printf("as of %d: %s mode %v tracks %+v\n", users.Seq, u.ID, u.Mode, u.Tracks)
	}
	// Output:
	// media: alice publishes mic (audio), none
	// media: bob publishes cam (video), none
	// media: bob/cam is now self
	// alice sees 1 cnl:create
	// alice sees 2 track:add alice/mic
	// alice sees 3 user:join bob
	// alice sees 4 track:add bob/cam
	// alice sees 5 track:mute bob/cam
	// bob sees 3 user:join bob
	// bob sees 4 track:add bob/cam
	// bob sees 5 track:mute bob/cam
	// as of 5: alice mode admin+send+recv tracks [{Name:mic Kind:audio Muted:false State:none MutedBy: Reason:}]
	// as of 5: bob mode send+recv tracks [{Name:cam Kind:video Muted:true State:self MutedBy: Reason:}]
	// media: alice gone
	// media: bob gone
}

// Moderation: an admin mutes a user's video, which the user cannot lift;
// clearing recv pauses what is forwarded to it; removing it disconnects
// it.
func Example_moderation() {
	reg, _ := channel.NewRegistry(channel.Config{Media: printMedia{}})
	call, _, _ := reg.Create("alice", "class", channel.CreateOptions{})
	bob, _ := call.Join(context.Background(), "bob", []channel.TrackInfo{{Name: "cam", Kind: channel.Video}})

	_ = call.MuteUser("alice", "bob", channel.Video, channel.Mute, "please stop")
	err := call.MuteTracks("bob", []string{"cam"}, channel.Unmute)
	fmt.Println("bob unmutes himself:", errors.Is(err, channel.ErrUnauthorized))
	err = call.MuteUser("bob", "alice", channel.Audio, channel.Mute, "")
	fmt.Println("bob mutes the owner:", errors.Is(err, channel.ErrUnauthorized))

	_ = call.ModUsers("alice", []channel.UserMode{{ID: "bob", Mode: permission.Send}})
	fmt.Println("bob's gate can receive:", call.Gate("bob").CanRecv())

	_ = call.DelUsers("alice", []string{"bob"})
	for {
		ev, err := bob.Next(context.Background())
		if err != nil {
			fmt.Println("bob's events end:", errors.Is(err, channel.ErrNotMember))
			break
		}
		fmt.Printf("bob sees %v (mutedBy %q, reason %q, sender %q)\n", ev.Type, ev.Track.MutedBy, ev.Track.Reason, ev.Sender)
	}
	_, err = call.Join(context.Background(), "bob", nil)
	fmt.Println("bob rejoins:", errors.Is(err, channel.ErrNotMember))
	// Output:
	// media: bob publishes cam (video), none
	// media: bob/cam is now admin
	// bob unmutes himself: true
	// bob mutes the owner: true
	// media: forwarding to bob: false
	// bob's gate can receive: false
	// media: bob gone
	// bob sees user:join (mutedBy "", reason "", sender "")
	// bob sees track:add (mutedBy "", reason "", sender "")
	// bob sees track:mute (mutedBy "alice", reason "please stop", sender "")
	// bob sees user:mod (mutedBy "", reason "", sender "alice")
	// bob sees user:del (mutedBy "", reason "", sender "alice")
	// bob's events end: true
	// bob rejoins: true
}
