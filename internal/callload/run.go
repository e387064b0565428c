package callload

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/pion/interceptor"
	pion "github.com/pion/webrtc/v4"

	"github.com/callcore/callcore/internal/pionloop"
)

// runner holds what the participants share.
type runner struct {
	cfg    Config
	api    *pion.API
	tokens tokens
	log    io.Writer
	gate   gate // pauses the publishers at the window's edges
}

// Run runs the load cfg describes against a running server and reports
// what it measured: it joins every participant (publishers first, each
// channel's creator before the rest), lets media flow for cfg.Warmup,
// measures for cfg.Duration, stops the publishers, waits briefly for the
// packets in flight, and leaves. Progress lines go to log (nil: none).
// Every wait is bounded: the run takes at most JoinTimeout + Warmup +
// Duration and a few seconds to drain and close.
func Run(ctx context.Context, cfg Config, log io.Writer) (*Report, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	if cfg.Prefix == "" {
		cfg.Prefix = "load-" + randomSuffix()
	}
	if log == nil {
		log = io.Discard
	}
	log = &lockedWriter{w: log}
	if cfg.ServerPID != 0 {
		if _, err := procCPU(cfg.ServerPID); err != nil {
			return nil, fmt.Errorf("%w: ServerPID %d: %v", ErrInvalidConfig, cfg.ServerPID, err)
		}
	}
	api, err := newAPI(*cfg.LoopbackICE)
	if err != nil {
		return nil, err
	}
	r := &runner{cfg: cfg, api: api, log: log,
		tokens: tokens{secret: cfg.Secret, url: cfg.TokenURL, client: &http.Client{Timeout: 10 * time.Second}}}
	sources, err := r.sources()
	if err != nil {
		return nil, err
	}
	ps := plan(cfg)
	media, stopMedia := context.WithCancel(ctx)
	var senders sync.WaitGroup
	defer func() {
		stopMedia()
		senders.Wait()
		closeAll(ps)
	}()

	if err := r.joinAll(ctx, ps, func(p *participant) {
		if p.publisher {
			r.startSending(media, &senders, p, sources())
		}
	}); err != nil {
		return nil, err
	}
	fmt.Fprintf(log, "callload: %d participants joined; warming up %v\n", len(ps), cfg.Warmup)
	if err := sleep(ctx, cfg.Warmup); err != nil {
		return nil, err
	}
	// The window starts with nothing in flight: the publishers pause
	// between frames until what they sent has arrived.
	r.gate.hold(ctx)
	drain(ctx, ps)
	s0 := take(ps, cfg.ServerPID)
	r.gate.release()
	fmt.Fprintf(log, "callload: measuring for %v\n", cfg.Duration)
	if err := sleep(ctx, cfg.Duration); err != nil {
		return nil, err
	}
	// It ends with the publishers stopped, so that what they sent is
	// known; what is in flight then counts for loss after the drain.
	r.gate.hold(ctx)
	s1 := take(ps, cfg.ServerPID)
	stopMedia()
	senders.Wait()
	drain(ctx, ps)
	s2 := take(ps, 0)
	return r.report(ps, s0, s1, s2)
}

// newAPI builds the participants' pion API: pion's default codecs and
// interceptors, as an application's client has them; ICE confined to
// 127.0.0.1 when loopback.
func newAPI(loopback bool) (*pion.API, error) {
	if loopback {
		return pionloop.ClientAPI()
	}
	me := &pion.MediaEngine{}
	if err := me.RegisterDefaultCodecs(); err != nil {
		return nil, err
	}
	ir := &interceptor.Registry{}
	if err := pion.RegisterDefaultInterceptors(me, ir); err != nil {
		return nil, err
	}
	return pion.NewAPI(pion.WithMediaEngine(me), pion.WithInterceptorRegistry(ir)), nil
}

// sources checks the video source and returns a maker of one source per
// publisher.
func (r *runner) sources() (func() frameSource, error) {
	if r.cfg.IVF != "" {
		v, err := openIVF(r.cfg.IVF)
		if err != nil {
			return nil, err
		}
		v.close()
		return func() frameSource {
			v, err := openIVF(r.cfg.IVF)
			if err != nil {
				return failed{err}
			}
			return v
		}, nil
	}
	key, delta, err := syntheticFrames(r.cfg)
	if err != nil {
		return nil, err
	}
	return func() frameSource { return newSynthetic(r.cfg, key, delta) }, nil
}

// failed is a source that could not be opened.
type failed struct{ err error }

func (f failed) next(bool) ([]byte, time.Duration, error) { return nil, 0, f.err }
func (f failed) interval() time.Duration                  { return time.Second }
func (f failed) close()                                   {}

// plan names the participants and spreads them over the channels, round
// robin: publishers first, so that a channel with a publisher is created
// by one.
func plan(cfg Config) []*participant {
	var ps []*participant
	created := map[string]bool{}
	pubs := map[string]int{}
	add := func(user string, i int, pub bool) {
		ch := fmt.Sprintf("%s-c%d", cfg.Prefix, i%cfg.Channels)
		ps = append(ps, &participant{user: user, channel: ch, publisher: pub, creates: !created[ch]})
		created[ch] = true
		if pub {
			pubs[ch]++
		}
	}
	for i := range cfg.Publishers {
		add(fmt.Sprintf("%s-p%d", cfg.Prefix, i), i, true)
	}
	for i := range cfg.Subscribers {
		add(fmt.Sprintf("%s-s%d", cfg.Prefix, i), i, false)
	}
	urls := append([]string{cfg.URL}, cfg.URLs...)
	for i, p := range ps {
		p.url = urls[i%len(urls)]
		n := pubs[p.channel]
		if p.publisher {
			n--
		}
		p.expectsMedia = n > 0
	}
	return ps
}

// joinAll joins the creators, then the other publishers, then the
// subscribers, JoinParallel at a time, within JoinTimeout, and waits for
// every participant that sends or expects media to be connected. joined runs for
// each participant once it has joined.
func (r *runner) joinAll(ctx context.Context, ps []*participant, joined func(*participant)) error {
	ctx, cancel := context.WithTimeout(ctx, r.cfg.JoinTimeout)
	defer cancel()
	var creators, pubs, subs []*participant
	for _, p := range ps {
		switch {
		case p.creates:
			creators = append(creators, p)
		case p.publisher:
			pubs = append(pubs, p)
		default:
			subs = append(subs, p)
		}
	}
	for _, group := range [][]*participant{creators, pubs, subs} {
		if err := r.joinGroup(ctx, group, joined); err != nil {
			return err
		}
	}
	for _, p := range ps {
		if !p.expectsMedia && !p.publisher {
			continue
		}
		select {
		case <-p.connected:
		case <-ctx.Done():
			return fmt.Errorf("%w: %s: media not connected within %v", ErrJoin, p.user, r.cfg.JoinTimeout)
		}
	}
	return nil
}

// joinGroup joins ps, JoinParallel at a time; the first failure ends it.
func (r *runner) joinGroup(ctx context.Context, ps []*participant, joined func(*participant)) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	slots := make(chan struct{}, r.cfg.JoinParallel)
	var wg sync.WaitGroup
	for _, p := range ps {
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Go(func() {
			defer func() { <-slots }()
			if err := p.join(ctx, r); err != nil {
				cancel(fmt.Errorf("%w: %s in %s: %v", ErrJoin, p.user, p.channel, err))
				return
			}
			joined(p)
		})
	}
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		if errors.Is(err, ErrJoin) {
			return err
		}
		return fmt.Errorf("%w: %v", ErrJoin, err)
	}
	return nil
}

// startSending starts a publisher's senders.
func (r *runner) startSending(ctx context.Context, wg *sync.WaitGroup, p *participant, src frameSource) {
	wg.Go(func() {
		if err := p.sendVideo(ctx, &r.gate, src); err != nil {
			fmt.Fprintf(r.log, "callload: %s: video stopped: %v\n", p.user, err)
		}
	})
	if p.audio != nil {
		wg.Go(func() {
			if err := p.sendAudio(ctx, &r.gate); err != nil {
				fmt.Fprintf(r.log, "callload: %s: audio stopped: %v\n", p.user, err)
			}
		})
	}
}

// closeAll closes every participant, 32 at a time.
func closeAll(ps []*participant) {
	slots := make(chan struct{}, 32)
	var wg sync.WaitGroup
	for _, p := range ps {
		slots <- struct{}{}
		wg.Go(func() {
			defer func() { <-slots }()
			p.close()
		})
	}
	wg.Wait()
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// drain waits, with the publishers stopped, until no packet has arrived
// for 200 ms, at most 2 s.
func drain(ctx context.Context, ps []*participant) {
	total := func() (n uint64) {
		for _, p := range ps {
			n += p.received.Load()
		}
		return n
	}
	end := time.Now().Add(2 * time.Second)
	last, quiet := total(), time.Now()
	for time.Now().Before(end) && time.Since(quiet) < 200*time.Millisecond {
		if sleep(ctx, 20*time.Millisecond) != nil {
			return
		}
		if n := total(); n != last {
			last, quiet = n, time.Now()
		}
	}
}

// snapshot is the counters at one moment.
type snapshot struct {
	at                         time.Time
	received, gaps, late, sent []uint64
	dups                       []uint64
	keyReqs                    uint64
	self, server               time.Duration
	serverErr                  error
	rcvbufErrs, sndbufErrs     uint64
}

// take reads every counter, and the server's CPU when pid is not 0.
func take(ps []*participant, pid int) snapshot {
	s := snapshot{at: time.Now()}
	for _, p := range ps {
		s.received = append(s.received, p.received.Load())
		s.gaps = append(s.gaps, p.gaps.Load())
		s.late = append(s.late, p.late.Load())
		s.dups = append(s.dups, p.dups.Load())
		s.sent = append(s.sent, p.sent.Load())
		s.keyReqs += p.keyReqs.Load()
	}
	s.self, _ = procCPU(0)
	s.rcvbufErrs, s.sndbufErrs, _ = udpErrors()
	if pid != 0 {
		s.server, s.serverErr = procCPU(pid)
	}
	return s
}

// compile-time check that the source types satisfy frameSource.
var (
	_ frameSource = (*synthetic)(nil)
	_ frameSource = (*ivf)(nil)
	_ frameSource = failed{}
)

// lockedWriter serialises the participants' and senders' log lines.
type lockedWriter struct {
	mu sync.Mutex // guards w
	w  io.Writer
}

func (l *lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}
