package server

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/callcore/callcore/channel"
)

var hookSecret = []byte("webhook-secret-0123456789")

// hookReceiver is a webhook endpoint on loopback that checks each POST's
// signature by the documented recipe and keeps the events in order.
type hookReceiver struct {
	t      *testing.T
	srv    *httptest.Server
	events chan hookEvent
}

func newHookReceiver(t *testing.T) *hookReceiver {
	h := &hookReceiver{t: t, events: make(chan hookEvent, 256)}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			return
		}
		sig := r.Header.Get(SignatureHeader)
		// The recipe: split t and v1, HMAC-SHA256(secret, t + "." + body).
		var ts, v1 string
		for _, part := range strings.Split(sig, ",") {
			k, v, _ := strings.Cut(part, "=")
			switch k {
			case "t":
				ts = v
			case "v1":
				v1 = v
			}
		}
		mac := hmac.New(sha256.New, hookSecret)
		mac.Write([]byte(ts + "." + string(body)))
		if hex.EncodeToString(mac.Sum(nil)) != v1 {
			t.Errorf("bad signature %q for %s", sig, body)
		}
		if err := VerifySignature(hookSecret, sig, body, time.Now(), time.Minute); err != nil {
			t.Errorf("VerifySignature: %v", err)
		}
		var e hookEvent
		if err := json.Unmarshal(body, &e); err != nil {
			t.Errorf("bad body %s: %v", body, err)
		}
		h.events <- e
	}))
	t.Cleanup(h.srv.Close)
	return h
}

// next returns the next event.
func (h *hookReceiver) next() hookEvent {
	h.t.Helper()
	select {
	case e := <-h.events:
		return e
	case <-time.After(deadline):
		h.t.Fatal("no webhook")
		return hookEvent{}
	}
}

// expect reads the next events and checks them: "type user [track]".
func (h *hookReceiver) expect(want ...string) {
	h.t.Helper()
	for _, w := range want {
		e := h.next()
		got := strings.TrimSpace(e.Type + " " + e.UserID + " " + e.Track)
		if got != w {
			h.t.Fatalf("webhook %q (seq %d), want %q", got, e.Seq, w)
		}
	}
}

func hookConfig(urls ...string) func(*Config) {
	return func(c *Config) {
		c.Webhooks = WebhookConfig{URLs: urls, Secret: hookSecret, Backoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond}
	}
}

// TestWebhooksOfACall: a real call's lifecycle reaches the receiver
// signed, once each and in the channel's order: the channel and alice's
// track, bob joining and leaving, the channel deleted; then a user who
// leaves a channel last is reported too (nobody else saw it leave).
func TestWebhooksOfACall(t *testing.T) {
	leaks := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, leaks) })
	h := newHookReceiver(t)
	ts := newTestServer(t, hookConfig(h.srv.URL))
	alice, bob, _ := videoCall(t, ts)
	bob.must("leave", nil)
	alice.must("delete", reasonData{Reason: "done"})
	h.expect("channel.created alice", "user.joined alice", "track.published alice cam", "user.joined bob", "user.left bob")
	end := h.next()
	if end.Type != HookChannelEnded || end.Reason != "done" || end.ChannelID != "c" {
		t.Errorf("end: %+v", end)
	}

	alice.must("create", createData{ChannelID: "d"})
	alice.must("leave", nil)
	h.expect("channel.created alice", "user.joined alice", "user.left alice")
	select {
	case e := <-h.events:
		t.Errorf("an extra webhook: %+v", e)
	default:
	}
	waitFor(t, "9 deliveries counted", func() bool {
		return scrapeOf(t, ts.Server).value("callcore_webhooks_total", "result", "delivered") == 9
	})
}

// TestWebhooksNeverBlock: a receiver that hangs and one that is down do
// not hold the call up: requests are answered and media flows while
// their events are dropped (queue full, attempts exhausted) and counted.
func TestWebhooksNeverBlock(t *testing.T) {
	leaks := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, leaks) })
	release := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	down := httptest.NewServer(http.NotFoundHandler())
	downURL := down.URL
	down.Close() // nothing listens there any more
	ts := newTestServer(t, func(c *Config) {
		hookConfig(slow.URL, downURL)(c)
		c.Webhooks.Queue = 2
		c.Webhooks.Attempts = 2
	})
	t.Cleanup(slow.Close)
	t.Cleanup(func() { close(release) }) // before the server's shutdown
	alice, _, pb := videoCall(t, ts)
	carol := login(t, ts, "carol", false)
	for range 10 {
		start := time.Now()
		carol.must("join", joinData{ChannelID: "c"})
		carol.must("leave", nil)
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("a join and leave took %v", d)
		}
	}
	n := pb.received.Load()
	waitFor(t, "media while the receivers fail", func() bool { return pb.received.Load() >= n+10 })
	alice.must("getUsers", nil)
	waitFor(t, "drops to be counted", func() bool {
		sc := scrapeOf(t, ts.Server)
		return sc.value("callcore_webhooks_total", "result", "dropped") >= 10 && sc.value("callcore_webhook_failed_attempts_total") >= 2
	})
}

// TestWebhookConfig: webhooks need a secret and http(s) URLs; a
// signature is refused when altered, stale or malformed.
func TestWebhookConfig(t *testing.T) {
	for _, c := range []WebhookConfig{
		{URLs: []string{"http://127.0.0.1:1/"}},
		{URLs: []string{"ftp://127.0.0.1/"}, Secret: hookSecret},
		{URLs: []string{"127.0.0.1:80"}, Secret: hookSecret},
		{URLs: []string{"http://127.0.0.1/"}, Secret: hookSecret, Queue: -1},
	} {
		if err := c.Validate(); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("%+v: %v", c, err)
		}
	}
	body := []byte(`{"type":"user.joined"}`)
	now := time.Now()
	sig := Sign(hookSecret, now, body)
	if err := VerifySignature(hookSecret, sig, body, now, time.Minute); err != nil {
		t.Fatal(err)
	}
	for name, check := range map[string]error{
		"altered body": VerifySignature(hookSecret, sig, []byte(`{"type":"user.left"}`), now, time.Minute),
		"other secret": VerifySignature([]byte("another-secret-0123456789"), sig, body, now, time.Minute),
		"stale":        VerifySignature(hookSecret, sig, body, now.Add(10*time.Minute), time.Minute),
		"malformed":    VerifySignature(hookSecret, "v1=zz", body, now, time.Minute),
	} {
		if !errors.Is(check, ErrBadSignature) {
			t.Errorf("%s: %v", name, check)
		}
	}
}

// FuzzVerifySignature: any header and body are refused or accepted
// without panicking; an accepted one is exactly the HMAC of its t and the
// body (the reference: Sign at that time), and what Sign makes is always
// accepted.
func FuzzVerifySignature(f *testing.F) {
	now := time.Unix(1_700_000_000, 0)
	f.Add("t=1700000000,v1=00", []byte("{}"))
	f.Add(Sign(hookSecret, now, []byte(`{"a":1}`)), []byte(`{"a":1}`))
	f.Add("t=,v1=", []byte(""))
	f.Fuzz(func(t *testing.T, header string, body []byte) {
		if err := VerifySignature(hookSecret, Sign(hookSecret, now, body), body, now, time.Minute); err != nil {
			t.Fatalf("Sign's own signature refused: %v", err)
		}
		err := VerifySignature(hookSecret, header, body, now, time.Minute)
		if err != nil {
			if !errors.Is(err, ErrBadSignature) {
				t.Fatalf("error %v does not wrap ErrBadSignature", err)
			}
			return
		}
		var ts, v1 string
		for _, part := range strings.Split(header, ",") {
			k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
			switch k {
			case "t":
				ts = v
			case "v1":
				v1 = v
			}
		}
		mac := hmac.New(sha256.New, hookSecret)
		mac.Write([]byte(ts + "." + string(body)))
		if !strings.EqualFold(v1, hex.EncodeToString(mac.Sum(nil))) {
			t.Fatalf("accepted %q for %q", header, body)
		}
	})
}

// FuzzWebhookOrder: a channel's events reach the webhooks through several
// stays' streams, registered in join order, each showing a stretch of the
// events in order (from its user's join to its leave), interleaved as the
// fuzzer decides, each stream's rest shown when it ends. Invariant: every
// event some stream showed is sent once, in the channel's order.
func FuzzWebhookOrder(f *testing.F) {
	f.Add([]byte{0, 1, 2, 0, 1, 2, 1, 1, 0, 2})
	f.Add([]byte{2, 2, 2, 1, 1, 1, 0, 0, 0})
	f.Add([]byte{0, 30, 5, 9, 3, 7, 1, 0, 2, 2})
	f.Fuzz(func(t *testing.T, plan []byte) {
		if len(plan) < 8 {
			return
		}
		const n = 40
		types := []channel.EventType{channel.EventJoin, channel.EventTrackAdd, channel.EventTrackDel, channel.EventLeft}
		events := make([]channel.Event, n)
		events[0] = channel.Event{Seq: 1, Type: channel.EventCreate, Channel: "c", Sender: "owner"}
		for i := 1; i < n; i++ {
			events[i] = channel.Event{Seq: uint64(i + 1), Type: types[int(plan[i%len(plan)])%len(types)], Channel: "c", User: "u" + strconv.Itoa(i%3)}
		}
		// Four streams, the first from the creation: [from, to) stretches.
		type stream struct {
			sub      *channel.Subscription
			next, to int
		}
		var streams []*stream
		from := 0
		for k := range 4 {
			if k > 0 {
				from += int(plan[k]) % 12
			}
			if from >= n {
				break
			}
			streams = append(streams, &stream{sub: new(channel.Subscription), next: from, to: min(n, from+1+int(plan[k+4])%n)})
		}
		seen := map[uint64]bool{}
		q := make(chan []byte, 4*n)
		w := &webhooks{log: slog.New(slog.NewTextHandler(io.Discard, nil)), channels: map[string]*hookState{}, senders: []*hookSender{{q: q}}}
		for _, s := range streams {
			w.join("c", s.sub) // in join order (from)
			for i := s.next; i < s.to; i++ {
				seen[events[i].Seq] = true
			}
		}
		for i := 0; ; i++ {
			var live []*stream
			for _, s := range streams {
				if s.next < s.to {
					live = append(live, s)
				}
			}
			if len(live) == 0 {
				break
			}
			s := live[int(plan[i%len(plan)])%len(live)]
			w.observe(s.sub, &events[s.next])
			if s.next++; s.next == s.to {
				w.rest("c", s.sub)
			}
		}
		close(q)
		var last uint64
		got := map[uint64]bool{}
		for b := range q {
			var e hookEvent
			if err := json.Unmarshal(b, &e); err != nil {
				t.Fatal(err)
			}
			if e.Seq < last || (e.Seq == last && e.Type != HookUserJoined) {
				t.Fatalf("seq %d (%s) after %d", e.Seq, e.Type, last)
			}
			last = e.Seq
			got[e.Seq] = true
		}
		for seq := range seen {
			if !got[seq] {
				for _, s := range streams {
					t.Logf("stream %+v", *s)
				}
				t.Fatalf("event %d (%s) shown but not sent; plan %v", seq, events[seq-1].Type, plan)
			}
		}
		for seq := range got {
			if !seen[seq] {
				t.Fatalf("event %d sent but never shown", seq)
			}
		}
		if len(w.channels) != 0 {
			t.Fatal("the channel's state outlived its streams")
		}
	})
}
