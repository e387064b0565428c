package cluster

import (
	"encoding/json"
	"errors"
	"testing"
	"time"
)

// FuzzTrackID: a track's ID on a link reads back as the channel, user
// and track it was made of, whatever their bytes; any other string either
// does not read or is exactly the ID of what it reads as.
func FuzzTrackID(f *testing.F) {
	f.Add("room", "alice", "cam", "")
	f.Add("a.b", "c/d", "", "x.y.z")
	f.Add("\x00", "é", "..", "a..b")
	f.Fuzz(func(t *testing.T, ch, user, name, raw string) {
		id := trackID(ch, user, name)
		c, u, n, ok := parseTrackID(id)
		if !ok || c != ch || u != user || n != name {
			t.Fatalf("%q %q %q → %q → %q %q %q %v", ch, user, name, id, c, u, n, ok)
		}
		if c, u, n, ok := parseTrackID(raw); ok && trackID(c, u, n) != raw {
			t.Fatalf("%q reads as %q %q %q, whose ID is %q", raw, c, u, n, trackID(c, u, n))
		}
	})
}

// A link request that does not decode, names no channel or names the
// node itself is refused with an error reply and counted; the node keeps
// no link for it.
func TestBadLinkRequestsAreRefusedAndCounted(t *testing.T) {
	eng := startEngine(t, 1)
	a := startMediaNode(t, "a", eng[0].ClientURL())
	ctx := ctxFor(t, 10*time.Second)
	before := a.Stats().BadMessages
	bad := [][]byte{
		[]byte("not json"),
		[]byte(`{"from":"b","on":true}`),                 // no channel
		[]byte(`{"from":"a","channel":"r","on":true}`),   // itself
		[]byte(`{"from":"b c","channel":"r","on":true}`), // not a node id
		[]byte(`{"from":"","channel":"r","on":true}`),    // no node
	}
	for _, b := range bad {
		msg, err := a.nc.RequestWithContext(ctx, linkPrefix+"a", b)
		if err != nil {
			t.Fatal(err)
		}
		var r linkReply
		if err := json.Unmarshal(msg.Data, &r); err != nil || r.Error == "" || r.Addr != "" {
			t.Errorf("%s: reply %s", b, msg.Data)
		}
	}
	if got := a.Stats().BadMessages - before; got != uint64(len(bad)) {
		t.Errorf("%d bad messages counted, want %d", got, len(bad))
	}
	if ms := a.MediaStats(); ms.LinksOpened != 0 || ms.LinksOut != 0 {
		t.Errorf("links after bad requests: %+v", ms)
	}
}

func TestLinkAddrMustBeAnIP(t *testing.T) {
	err := Config{Node: "a", URL: "nats://127.0.0.1:4222", LinkAddr: "127.0.0.1:7000"}.Validate()
	if !errors.Is(err, ErrInvalid) {
		t.Fatalf("LinkAddr host:port: %v, want ErrInvalid", err)
	}
	if err := (Config{Node: "a", URL: "nats://127.0.0.1:4222", LinkAddr: "::1"}).Validate(); err != nil {
		t.Fatalf("LinkAddr ::1: %v", err)
	}
}
