package cluster

import (
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/callcore/callcore/channel"
)

// FuzzDecodeOp: any bytes either decode to an operation that encodes and
// decodes to itself, or are refused with ErrBadMessage.
func FuzzDecodeOp(f *testing.F) {
	good, _ := json.Marshal(Op{Name: OpMuteUser, Channel: "c", Actor: "a", Target: "b", Kind: channel.Video, Mute: true, Node: "n"})
	f.Add(good)
	f.Add([]byte(`{"op":"join","node":"x","tracks":[{"Name":"a","Kind":1}]}`))
	f.Add([]byte(`{"op":""}`))
	f.Add([]byte(`[`))
	f.Fuzz(func(t *testing.T, b []byte) {
		op, err := decodeOp(b)
		if err != nil {
			if !errors.Is(err, ErrBadMessage) {
				t.Fatalf("error %v does not wrap ErrBadMessage", err)
			}
			return
		}
		again, err := json.Marshal(op)
		if err != nil {
			t.Fatal(err)
		}
		op2, err := decodeOp(again)
		if err != nil || fmt.Sprintf("%+v", op2) != fmt.Sprintf("%+v", op) {
			t.Fatalf("round trip: %+v, %v; want %+v", op2, err, op)
		}
	})
}

// FuzzDecodeEvent: any bytes either decode to an event with a number and
// a known type that encodes and decodes to itself, or are refused with
// ErrBadMessage; a replica applies a decoded event without panicking.
func FuzzDecodeEvent(f *testing.F) {
	good, _ := json.Marshal(channel.Event{Seq: 3, Type: channel.EventTrackMute, Channel: "c", User: "u", Track: channel.TrackState{Name: "cam", Kind: channel.Video, Muted: true, State: channel.MuteAdmin}})
	f.Add(good)
	f.Add([]byte(`{"Seq":1,"Type":4,"Sender":"a"}`))
	f.Add([]byte(`{"Seq":0,"Type":4}`))
	f.Add([]byte(`{"Seq":2,"Type":99}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		ev, err := decodeEvent(b)
		if err != nil {
			if !errors.Is(err, ErrBadMessage) {
				t.Fatalf("error %v does not wrap ErrBadMessage", err)
			}
			return
		}
		if ev.Seq == 0 || ev.Type < channel.EventTrackAdd || ev.Type > channel.EventSpeakers {
			t.Fatalf("accepted %+v", ev)
		}
		again, _ := json.Marshal(ev)
		ev2, err := decodeEvent(again)
		if err != nil || fmt.Sprintf("%+v", *ev2) != fmt.Sprintf("%+v", *ev) {
			t.Fatalf("round trip: %+v, %v; want %+v", ev2, err, ev)
		}
		var st channel.State
		if !st.Apply(ev) || st.Seq != ev.Seq {
			t.Fatalf("replica at %d after applying %d", st.Seq, ev.Seq)
		}
	})
}

func TestErrorsCrossNodesAsTheirSentinels(t *testing.T) {
	for _, w := range wireErrors {
		err := codeErr(errCode(fmt.Errorf("ctx: %w", w.err)), "detail")
		if !errors.Is(err, w.err) {
			t.Errorf("%s: %v does not wrap %v", w.code, err, w.err)
		}
	}
	if err := codeErr("nonsense", "x"); !errors.Is(err, ErrUnavailable) {
		t.Errorf("unknown code: %v", err)
	}
	if codeErr("", "") != nil || errCode(nil) != "" {
		t.Error("nil does not round-trip")
	}
}

func TestConfigValidateRefusesBadConfigs(t *testing.T) {
	ok := Config{Node: "n1", URL: "nats://127.0.0.1:4222"}
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]Config{
		"no node":        {URL: "x"},
		"bad node":       {Node: "a.b", URL: "x"},
		"long node":      {Node: string(make([]byte, 65)), URL: "x"},
		"no engine":      {Node: "n"},
		"both engines":   {Node: "n", URL: "x", Embedded: &EmbeddedConfig{Name: "s", StoreDir: "/tmp"}},
		"short ttl":      {Node: "n", URL: "x", TTL: time.Millisecond},
		"replicas":       {Node: "n", URL: "x", Replicas: 6},
		"embedded name":  {Node: "n", Embedded: &EmbeddedConfig{StoreDir: "/tmp"}},
		"routes no name": {Node: "n", Embedded: &EmbeddedConfig{Name: "s", StoreDir: "/tmp", Routes: []string{"nats://127.0.0.1:1"}}},
		"channels":       {Node: "n", URL: "x", Channels: channel.Config{EventBuffer: -1}},
	} {
		if err := c.Validate(); err == nil {
			t.Errorf("%s: accepted", name)
		} else if !errors.Is(err, ErrInvalid) && !errors.Is(err, channel.ErrInvalid) {
			t.Errorf("%s: %v wraps no ErrInvalid", name, err)
		}
		if _, err := Start(c); err == nil {
			t.Errorf("%s: started", name)
		}
	}
}

// Garbage sent to a node's operation subject is answered with
// ErrBadMessage and counted; an unknown operation with ErrInvalid; the
// channel is unchanged.
func TestBadOperationsAreRefusedAndChangeNothing(t *testing.T) {
	eng := startEngine(t, 1)
	a := startNode(t, "a", eng[0].ClientURL(), 1)
	b := startNode(t, "b", eng[0].ClientURL(), 1)
	ctx := ctxFor(t, 20*time.Second)
	_, err := a.Create(ctx, "alice", "r", channel.CreateOptions{})
	must(t, err)
	_, err = b.Join(ctx, "bob", "r", nil)
	must(t, err)
	before, err := b.GetUsers(ctx, "bob", "r")
	must(t, err)
	nc, err := nats.Connect(eng[0].ClientURL())
	must(t, err)
	defer nc.Close()
	for _, raw := range []string{"not json", `{"op":"join"}`, `{"op":"","node":"x"}`} {
		msg, err := nc.RequestWithContext(ctx, opPrefix+"a", []byte(raw))
		must(t, err)
		r, err := decodeReply(msg.Data)
		must(t, err)
		if !errors.Is(codeErr(r.Code, r.Msg), ErrBadMessage) {
			t.Fatalf("%q answered %+v", raw, r)
		}
	}
	if got := a.Stats().BadMessages; got != 3 {
		t.Fatalf("counted %d bad messages, want 3", got)
	}
	if _, err := b.Do(ctx, Op{Name: "explode", Channel: "r", Actor: "bob"}); !errors.Is(err, channel.ErrInvalid) {
		t.Fatalf("unknown operation: %v", err)
	}
	if _, err := b.Do(ctx, Op{Name: OpLeave, Channel: "nowhere", Actor: "bob"}); !errors.Is(err, channel.ErrNotFound) {
		t.Fatalf("operation on no channel: %v", err)
	}
	after, err := b.GetUsers(ctx, "bob", "r")
	must(t, err)
	if fmt.Sprintf("%+v", after) != fmt.Sprintf("%+v", before) {
		t.Fatalf("channel changed:\n %+v\n %+v", after, before)
	}
}

// A message that is not the owner's, published on a channel's subject,
// is dropped and counted by the followers; the owner, whose next publish
// it fences, loses the channel, and a node with users in it takes it over
// from the snapshot and the stream (skipping the message): the channel
// goes on, numbered without a gap.
func TestForeignMessageOnTheEventSubjectIsSkipped(t *testing.T) {
	eng := startEngine(t, 1)
	a := startNode(t, "a", eng[0].ClientURL(), 1)
	b := startNode(t, "b", eng[0].ClientURL(), 1)
	ctx := ctxFor(t, 30*time.Second)
	_, err := a.Create(ctx, "alice", "r", channel.CreateOptions{})
	must(t, err)
	sb, err := b.Join(ctx, "bob", "r", nil)
	must(t, err)
	nc, err := nats.Connect(eng[0].ClientURL())
	must(t, err)
	defer nc.Close()
	js, err := jetstream.New(nc)
	must(t, err)
	for _, raw := range []string{"garbage", `{"Seq":3,"Type":8,"Channel":"elsewhere","User":"mallory"}`} {
		_, err := js.Publish(ctx, eventSubject("r"), []byte(raw))
		must(t, err)
	}
	eventually(t, 5*time.Second, "b drops the two messages", func() bool { return b.Stats().BadMessages >= 2 })
	seq, err := b.Do(ctx, Op{Name: OpAddTracks, Channel: "r", Actor: "bob", Tracks: []channel.TrackInfo{{Name: "mic", Kind: channel.Audio}}})
	must(t, err)
	evs := events(t, sb, 10*time.Second, seqIs(seq))
	for i := 1; i < len(evs); i++ {
		if evs[i].Seq != evs[i-1].Seq+1 {
			t.Fatalf("events not numbered one by one: %v", names(evs))
		}
	}
	snap, err := b.GetUsers(ctx, "bob", "r")
	must(t, err)
	if len(snap.Users) != 2 || snap.Seq != seq {
		t.Fatalf("getUsers %+v at %d", snap, seq)
	}
}
