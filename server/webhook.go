package server

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/callcore/callcore/channel"
)

// ErrBadSignature is returned by VerifySignature for a webhook whose
// signature is missing, malformed, too old or wrong.
var ErrBadSignature = errors.New("server: bad webhook signature")

// Webhook event types.
const (
	HookChannelCreated = "channel.created"
	HookChannelEnded   = "channel.ended"
	HookUserJoined     = "user.joined"
	HookUserLeft       = "user.left"
	HookTrackPublished = "track.published"
	HookTrackEnded     = "track.ended"
)

// SignatureHeader carries a webhook's signature: "t=<unix seconds>,v1=<hex
// HMAC-SHA256 of t + "." + body under the webhook secret>".
const SignatureHeader = "Callcore-Signature"

// MinWebhookSecretLen is the shortest webhook secret accepted.
const MinWebhookSecretLen = 16

// WebhookConfig configures the webhooks: signed HTTP POSTs of the
// channels' lifecycle to URLs. The zero value sends none.
type WebhookConfig struct {
	// URLs receive every event (http or https). None: no webhooks.
	URLs []string
	// Secret signs the events (at least MinWebhookSecretLen bytes);
	// required with URLs.
	Secret []byte
	// Queue is how many events may wait for each URL; past it events are
	// dropped and counted. Default 1024.
	Queue int
	// Attempts is how many times an event is tried before it is dropped
	// and counted. Default 5.
	Attempts int
	// Backoff is the wait before the first retry, doubled for each next
	// one up to MaxBackoff. Defaults 500 ms and 30 s.
	Backoff, MaxBackoff time.Duration
	// Timeout bounds one POST. Default 5 s.
	Timeout time.Duration
}

func (c WebhookConfig) withDefaults() WebhookConfig {
	if c.Queue == 0 {
		c.Queue = 1024
	}
	if c.Attempts == 0 {
		c.Attempts = 5
	}
	if c.Backoff == 0 {
		c.Backoff = 500 * time.Millisecond
	}
	if c.MaxBackoff == 0 {
		c.MaxBackoff = 30 * time.Second
	}
	if c.Timeout == 0 {
		c.Timeout = 5 * time.Second
	}
	return c
}

// Validate reports whether the config is usable; errors wrap
// ErrInvalidConfig.
func (c WebhookConfig) Validate() error {
	c = c.withDefaults()
	if len(c.URLs) == 0 {
		return nil
	}
	if len(c.Secret) < MinWebhookSecretLen {
		return fmt.Errorf("%w: a webhook secret of at least %d bytes is required", ErrInvalidConfig, MinWebhookSecretLen)
	}
	if c.Queue < 1 || c.Attempts < 1 || c.Backoff < 0 || c.MaxBackoff < c.Backoff || c.Timeout < 0 {
		return fmt.Errorf("%w: webhook Queue, Attempts, Backoff, MaxBackoff or Timeout out of range", ErrInvalidConfig)
	}
	for _, u := range c.URLs {
		p, err := url.Parse(u)
		if err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
			return fmt.Errorf("%w: webhook URL %q is not an http or https URL", ErrInvalidConfig, u)
		}
	}
	return nil
}

// hookEvent is one webhook's body.
type hookEvent struct {
	ID        string `json:"id"`   // unique: the channel, its event's seq and an index
	Type      string `json:"type"` // HookChannelCreated, ...
	Time      string `json:"time"` // RFC 3339, when the server saw the channel's event
	ChannelID string `json:"channelId"`
	Seq       uint64 `json:"seq"` // the channel's event sequence number
	UserID    string `json:"userId,omitempty"`
	Track     string `json:"track,omitempty"`
	Kind      string `json:"kind,omitempty"`
	Reason    string `json:"reason,omitempty"`
}

// hookState is what the webhooks know of one channel while stays of it
// exist. Its fields are guarded by webhooks.mu.
type hookState struct {
	last     uint64                   // the last event sent
	active   map[string]struct{}      // users in the call
	streams  map[events]*hookStream   // the stays' event streams
	reporter events                   // the oldest stream: its events are sent
	pending  map[uint64]channel.Event // events other streams showed ahead of the reporter
}

// hookStream is one stay's event stream.
type hookStream struct {
	order uint64 // registration order: the oldest stream reports
	pos   uint64 // the last event it showed
}

// maxPending bounds a channel's pending events; past it the oldest go.
const maxPending = 4096

// webhooks turns the channels' events into webhook events and delivers
// them. Each stay's event stream is registered when the stay starts (join
// order) and shown to it as the stay's pump reads it, then, when the stay
// ends, what the pump did not read (its own user:left among them). The
// oldest stream of a channel reports: it holds every event since its
// user joined, so the events are sent once and in the channel's order.
// The others' events are kept while they are ahead of the reporter; when
// the reporter ends, the next oldest takes over from where it stopped.
// What it does not see is not sent: a channel that closes idle (nobody in
// it) sends no channel.ended, and when two users join at the same moment
// and outlive everyone older, the one registered first may report
// without the other's join.
type webhooks struct {
	cfg     WebhookConfig
	log     *slog.Logger
	client  *http.Client
	ctx     context.Context // ends with stop: aborts retries
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	senders []*hookSender

	mu       sync.Mutex            // guards the fields below and the states; held to order events, never while sending
	channels map[string]*hookState // channels with stays; guarded by mu
	order    uint64                // streams registered; guarded by mu
	closed   bool                  // guarded by mu

	delivered, failed, dropped atomic.Uint64
	lastWarn                   atomic.Int64 // unix nanoseconds of the last drop logged
}

// warn logs a drop at most once a second (all are counted).
func (w *webhooks) warn(msg string, args ...any) {
	now := time.Now().UnixNano()
	last := w.lastWarn.Load()
	if now-last < int64(time.Second) || !w.lastWarn.CompareAndSwap(last, now) {
		return
	}
	w.log.Warn(msg, args...)
}

// hookSender delivers to one URL from its own bounded queue.
type hookSender struct {
	url string
	q   chan []byte
}

// newWebhooks starts the senders; nil when cfg has no URLs.
func newWebhooks(cfg WebhookConfig, log *slog.Logger) *webhooks {
	if len(cfg.URLs) == 0 {
		return nil
	}
	cfg = cfg.withDefaults()
	ctx, cancel := context.WithCancel(context.Background())
	w := &webhooks{cfg: cfg, log: log, client: &http.Client{Timeout: cfg.Timeout}, ctx: ctx, cancel: cancel,
		channels: map[string]*hookState{}}
	for _, u := range cfg.URLs {
		s := &hookSender{url: u, q: make(chan []byte, cfg.Queue)}
		w.senders = append(w.senders, s)
		w.wg.Add(1)
		go func() { defer w.wg.Done(); w.run(s) }()
	}
	return w
}

// join registers a stay's event stream before its pump starts.
func (w *webhooks) join(ch string, sub events) {
	if w == nil {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	st := w.channels[ch]
	if st == nil {
		st = &hookState{active: map[string]struct{}{}, streams: map[events]*hookStream{}, pending: map[uint64]channel.Event{}}
		w.channels[ch] = st
	}
	w.order++
	st.streams[sub] = &hookStream{order: w.order}
	if st.reporter == nil {
		st.reporter = sub
	}
}

// observe takes an event a stay's stream showed. It never blocks.
func (w *webhooks) observe(sub events, ev *channel.Event) {
	if w == nil {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	st := w.channels[ev.Channel]
	if st == nil {
		return
	}
	hs := st.streams[sub]
	if hs == nil {
		return
	}
	hs.pos = ev.Seq
	if sub == st.reporter {
		w.flush(st, ev.Seq-1) // what ended streams showed before it (or admins only saw)
		w.send(st, ev)
		return
	}
	if ev.Seq > st.last {
		st.pending[ev.Seq] = *ev
		if len(st.pending) > maxPending {
			st.trim()
		}
	}
}

// trim drops the pending events sent already and, past maxPending, the
// oldest (counted).
func (st *hookState) trim() {
	var seqs []uint64
	for seq := range st.pending {
		if seq <= st.last {
			delete(st.pending, seq)
		} else {
			seqs = append(seqs, seq)
		}
	}
	if over := len(seqs) - maxPending; over > 0 {
		slices.Sort(seqs)
		for _, seq := range seqs[:over] {
			delete(st.pending, seq)
		}
	}
}

// rest shows w the events left in a stay's stream once the stay has
// ended (the pump stopped reading them; when its user was the last one
// in the channel nobody else saw its user:left) and forgets the stream.
// It never blocks.
func (w *webhooks) rest(ch string, sub events) {
	if w == nil || sub == nil {
		return
	}
	for done := false; !done; {
		select {
		case ev, ok := <-sub.C():
			if !ok {
				done = true
				break
			}
			w.observe(sub, ev)
		default:
			done = true
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	st := w.channels[ch]
	if st == nil || st.streams[sub] == nil {
		return
	}
	delete(st.streams, sub)
	if len(st.streams) == 0 { // what younger streams showed after the last reporter's end
		w.flush(st, math.MaxUint64)
		delete(w.channels, ch)
		return
	}
	if st.reporter != sub {
		return
	}
	// The next oldest stream reports: first what it showed already.
	var next events
	for s, hs := range st.streams {
		if next == nil || hs.order < st.streams[next].order {
			next = s
		}
	}
	st.reporter = next
	w.flush(st, st.streams[next].pos)
}

// flush sends the pending events up to seq upto, in order.
func (w *webhooks) flush(st *hookState, upto uint64) {
	if len(st.pending) == 0 || upto <= st.last {
		return
	}
	var seqs []uint64
	for seq := range st.pending {
		if seq <= upto {
			seqs = append(seqs, seq)
		}
	}
	slices.Sort(seqs)
	for _, seq := range seqs {
		ev := st.pending[seq]
		delete(st.pending, seq)
		w.send(st, &ev)
	}
}

// send turns the channel's event ev into webhook events for every URL,
// once: an event at or before the last one sent is not sent again.
func (w *webhooks) send(st *hookState, ev *channel.Event) {
	if w.closed || ev.Seq <= st.last {
		return
	}
	st.last = ev.Seq
	delete(st.pending, ev.Seq)
	base := hookEvent{Time: time.Now().UTC().Format(time.RFC3339Nano), ChannelID: ev.Channel, Seq: ev.Seq}
	var out []hookEvent
	add := func(typ, user string) *hookEvent {
		e := base
		e.Type, e.UserID = typ, user
		e.ID = ev.Channel + "/" + strconv.FormatUint(ev.Seq, 10) + "/" + strconv.Itoa(len(out))
		out = append(out, e)
		return &out[len(out)-1]
	}
	switch ev.Type {
	case channel.EventCreate:
		add(HookChannelCreated, ev.Sender)
		add(HookUserJoined, ev.Sender)
		st.active[ev.Sender] = struct{}{}
	case channel.EventJoin:
		add(HookUserJoined, ev.User)
		st.active[ev.User] = struct{}{}
	case channel.EventLeft:
		add(HookUserLeft, ev.User)
		delete(st.active, ev.User)
	case channel.EventUserDel:
		for _, u := range ev.Users {
			if _, ok := st.active[u.ID]; ok {
				add(HookUserLeft, u.ID).Reason = "removed"
				delete(st.active, u.ID)
			}
		}
	case channel.EventTrackAdd:
		e := add(HookTrackPublished, ev.User)
		e.Track, e.Kind = ev.Track.Name, ev.Track.Kind.String()
	case channel.EventTrackDel:
		add(HookTrackEnded, ev.User).Track = ev.Track.Name
	case channel.EventDelete:
		add(HookChannelEnded, ev.Sender).Reason = ev.Reason
	}
	for _, e := range out {
		b, err := json.Marshal(e)
		if err != nil {
			continue
		}
		for _, s := range w.senders {
			select {
			case s.q <- b:
			default:
				w.dropped.Add(1)
				w.warn("webhook queue full: event dropped", "url", s.url, "type", e.Type)
			}
		}
	}
}

// run sends s's events in order, each retried with backoff.
func (w *webhooks) run(s *hookSender) {
	for {
		select {
		case <-w.ctx.Done():
			return
		case b, ok := <-s.q:
			if !ok {
				return
			}
			w.deliver(s.url, b)
		}
	}
}

// deliver posts one event until it is taken (2xx) or its attempts run out.
func (w *webhooks) deliver(u string, body []byte) {
	wait := w.cfg.Backoff
	for attempt := 1; ; attempt++ {
		err := w.post(u, body)
		if err == nil {
			w.delivered.Add(1)
			return
		}
		w.failed.Add(1)
		if attempt >= w.cfg.Attempts {
			w.dropped.Add(1)
			w.warn("webhook dropped after its attempts", "url", u, "attempts", attempt, "err", err)
			return
		}
		t := time.NewTimer(wait)
		select {
		case <-w.ctx.Done():
			t.Stop()
			w.dropped.Add(1)
			return
		case <-t.C:
		}
		wait = min(2*wait, w.cfg.MaxBackoff)
	}
}

// post sends one signed POST.
func (w *webhooks) post(u string, body []byte) error {
	req, err := http.NewRequestWithContext(w.ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(SignatureHeader, Sign(w.cfg.Secret, time.Now(), body))
	resp, err := w.client.Do(req)
	if err != nil {
		return err
	}
	_ = resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	return nil
}

// stop lets the senders deliver what is queued until ctx ends, then
// aborts them.
func (w *webhooks) stop(ctx context.Context) {
	if w == nil {
		return
	}
	w.mu.Lock()
	w.closed = true
	for _, s := range w.senders {
		close(s.q)
	}
	w.mu.Unlock()
	done := make(chan struct{})
	go func() { w.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		w.cancel()
		<-done
	}
	w.cancel()
}

// Sign is the value of SignatureHeader for body sent at t.
func Sign(secret []byte, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(ts))
	mac.Write([]byte("."))
	mac.Write(body)
	return "t=" + ts + ",v1=" + hex.EncodeToString(mac.Sum(nil))
}

// VerifySignature checks a webhook's SignatureHeader value against its
// body: the HMAC must match and its time be within tolerance of now.
// Receivers written in Go use it; the recipe for others is in the README.
func VerifySignature(secret []byte, header string, body []byte, now time.Time, tolerance time.Duration) error {
	var ts, sig string
	for _, part := range bytes.Split([]byte(header), []byte(",")) {
		k, v, _ := bytes.Cut(bytes.TrimSpace(part), []byte("="))
		switch string(k) {
		case "t":
			ts = string(v)
		case "v1":
			sig = string(v)
		}
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || sig == "" {
		return fmt.Errorf("%w: malformed signature header", ErrBadSignature)
	}
	if d := now.Sub(time.Unix(sec, 0)); d > tolerance || d < -tolerance {
		return fmt.Errorf("%w: signed %v ago", ErrBadSignature, d)
	}
	want, err := hex.DecodeString(sig)
	if err != nil {
		return fmt.Errorf("%w: malformed signature", ErrBadSignature)
	}
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(ts))
	mac.Write([]byte("."))
	mac.Write(body)
	if !hmac.Equal(mac.Sum(nil), want) {
		return fmt.Errorf("%w: signature does not match", ErrBadSignature)
	}
	return nil
}
