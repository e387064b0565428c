package cluster

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/callcore/callcore/channel"
)

// mediaLog records a node's Media calls.
type mediaLog struct {
	mu    sync.Mutex // guards calls
	calls []string
}

func (m *mediaLog) add(s string) {
	m.mu.Lock()
	m.calls = append(m.calls, s)
	m.mu.Unlock()
}

func (m *mediaLog) all() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.calls)
}

func (m *mediaLog) TrackAdded(ch, user string, t channel.TrackInfo, s channel.MuteState) {
	m.add(fmt.Sprintf("add %s %s/%s %v %v", ch, user, t.Name, t.Kind, s))
}
func (m *mediaLog) TrackRemoved(ch, user, track string) {
	m.add(fmt.Sprintf("del %s %s/%s", ch, user, track))
}
func (m *mediaLog) MuteChanged(ch, user, track string, s channel.MuteState) {
	m.add(fmt.Sprintf("mute %s %s/%s %v", ch, user, track, s))
}
func (m *mediaLog) ReceiveChanged(ch, user string, on bool) {
	m.add(fmt.Sprintf("recv %s %s %v", ch, user, on))
}
func (m *mediaLog) UserGone(ch, user string) { m.add(fmt.Sprintf("gone %s %s", ch, user)) }
func (m *mediaLog) ConfigChanged(ch string, cfg channel.CallConfig) {
	m.add(fmt.Sprintf("config %s %v", ch, cfg.Kind))
}

// Every node with users in a channel tells its plane what the channel's
// events mean for media, in event order: the same calls on each node,
// whichever node runs the channel.
func TestEveryNodeTellsItsPlaneTheChannelsMediaChanges(t *testing.T) {
	eng := startEngine(t, 1)
	a := startNode(t, "a", eng[0].ClientURL(), 1)
	b := startNode(t, "b", eng[0].ClientURL(), 1)
	la, lb := &mediaLog{}, &mediaLog{}
	a.UseMedia(la)
	b.UseMedia(lb)
	ctx := ctxFor(t, 20*time.Second)
	sa, err := a.Create(ctx, "alice", "r", channel.CreateOptions{})
	must(t, err)
	_, err = b.Join(ctx, "bob", "r", []channel.TrackInfo{{Name: "mic", Kind: channel.Audio}})
	must(t, err)
	_, err = a.Do(ctx, Op{Name: OpMuteUser, Channel: "r", Actor: "alice", Target: "bob", Kind: channel.Audio, Mute: true})
	must(t, err)
	_, err = a.Do(ctx, Op{Name: OpModUsers, Channel: "r", Actor: "alice", Modes: []channel.UserMode{{ID: "bob", Mode: 2}}})
	must(t, err)
	_, err = b.Do(ctx, Op{Name: OpRemoveTracks, Channel: "r", Actor: "bob", Names: []string{"mic"}})
	must(t, err)
	last, err := b.Do(ctx, Op{Name: OpLeave, Channel: "r", Actor: "bob"})
	must(t, err)
	events(t, sa, 5*time.Second, seqIs(last))
	want := []string{
		"config r audioVideo", // alice's create
		"config r audioVideo", // bob's join
		"add r bob/mic audio none",
		"mute r bob/mic admin",
		"recv r bob false",
		"del r bob/mic",
		"gone r bob",
	}
	got := la.all()
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("a's plane was told\n %q\nwant\n %q", got, want)
	}
	// b followed the channel from bob's join (replaying what came before
	// from the snapshot or the stream) until bob left: the same calls from
	// bob's track on.
	eventually(t, 5*time.Second, "b's plane told of bob's leave", func() bool {
		gb := lb.all()
		return len(gb) > 0 && gb[len(gb)-1] == "gone r bob"
	})
	gb := lb.all()
	if len(gb) < 6 || fmt.Sprint(gb[len(gb)-5:]) != fmt.Sprint(want[2:]) || gb[0] != "config r audioVideo" {
		t.Fatalf("b's plane was told\n %q\nwant it to end with\n %q", gb, want[2:])
	}
}
