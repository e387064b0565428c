package webrtc

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	pion "github.com/pion/webrtc/v4"

	"github.com/callcore/callcore/forward"
)

// Status is a peer's connection status, as the call API names it (docs/api.md).
type Status string

// Connection statuses.
const (
	StatusConnecting   Status = "connecting"   // created, or ICE not yet checking
	StatusChecking     Status = "checking"     // ICE connectivity checks running
	StatusConnected    Status = "connected"    // ICE and DTLS up: media flows
	StatusDisconnected Status = "disconnected" // ICE lost, failed or the peer closed
)

// ICECandidate is a trickled ICE candidate as the browser API carries it.
type ICECandidate = pion.ICECandidateInit

// PublishInfo describes a track a peer publishes.
type PublishInfo struct {
	TrackID, StreamID, RID string
	Kind                   forward.Kind
	MimeType               string
	ClockRate              uint32
	PayloadType            uint8
	SDPFmtpLine            string
	SSRC                   uint32
}

// PeerConfig configures one peer.
type PeerConfig struct {
	// Engine is the server's shared ICE and media setup. Required.
	Engine *Engine
	// Track is the template of the published tracks' configs: its tunables
	// (cache size, reorder window, mute, clock, pool) are used; Kind,
	// ClockRate, PayloadType, MimeType, SSRC, Extensions, RTX and Feedback
	// come from the negotiation, and NACKUpstream is off (pion's NACK
	// generator asks the publisher).
	Track forward.TrackConfig
	// OnPublish is called once per track the client publishes, before its
	// first packet reaches the core: subscribe others to it here.
	OnPublish func(*forward.Track, PublishInfo)
	// OnUnpublish is called when a published track ends; the track is
	// closed by then.
	OnUnpublish func(*forward.Track, PublishInfo)
	// OnCandidate receives local ICE candidates (trickle ICE). When nil,
	// Offer and Answer wait for gathering to complete and return SDP with
	// every candidate in it.
	OnCandidate func(ICECandidate)
	// OnNegotiationNeeded is called when the server has changes to offer
	// (subscriptions added or removed): the embedder calls Offer, sends it,
	// and calls SetAnswer with the client's answer.
	OnNegotiationNeeded func()
	// OnStatus is called when the connection status changes.
	OnStatus func(Status)
	// Grace is how long a peer may stay disconnected before it is gone:
	// then OnGone is called (the embedder makes the user leave its
	// channel) and the peer is closed, freeing its resources. Zero keeps a
	// disconnected peer until Close.
	Grace time.Duration
	// OnGone is called once when the peer has been disconnected for Grace,
	// or has been closed because its client kept publishing streams that
	// were refused (see MaxStreams).
	OnGone func()

	// Admit, when set, is asked about each track the client publishes
	// before the track costs anything (no forward.Track, no read loop): an
	// error refuses it. The server admits only the media ids its user
	// announced.
	Admit func(PublishInfo) error
	// MaxStreams bounds the tracks the client publishes at once (each
	// simulcast layer is one); a track past it is refused with
	// ErrTooManyStreams. The client's refused tracks over the peer's life
	// are bounded too: once there have been more than MaxStreams of them
	// the peer is closed and OnGone called, so whatever a client sends,
	// the memory it holds stays bounded. Default 16.
	MaxStreams int
	// OnRefused is called for each refused track, with the reason (Admit's
	// error, or ErrTooManyStreams); never with a lock held.
	OnRefused func(PublishInfo, error)
}

// Validate reports whether the config is usable. Errors wrap
// ErrInvalidConfig.
func (c PeerConfig) Validate() error {
	if c.Engine == nil {
		return fmt.Errorf("%w: no engine", ErrInvalidConfig)
	}
	if c.Grace < 0 {
		return fmt.Errorf("%w: grace %v", ErrInvalidConfig, c.Grace)
	}
	if c.MaxStreams < 0 {
		return fmt.Errorf("%w: MaxStreams %d", ErrInvalidConfig, c.MaxStreams)
	}
	return nil
}

// Peer is one connected user: one bundled PeerConnection carrying what the
// user publishes and what it subscribes to. Callbacks are never called
// with a lock held, but they must not call Close.
type Peer struct {
	cfg  PeerConfig
	pc   *pion.PeerConnection
	done chan struct{} // closed by Close
	ids  atomic.Uint64

	goneOnce sync.Once     // OnGone's one call
	buffers  streamBuffers // pion's stream buffers, bounded

	direct direct    // the direct send path's keys and address (single-port mode)
	down   *downlink // congestion control of what the server sends (twcc.go)
	alloc  allocator // its allocation among the subscriptions (allocate.go)

	// negMu serialises signalling and the application of queued changes.
	// It is held across pion calls, never while calling back, and never
	// taken while mu is held.
	negMu sync.Mutex

	mu       sync.Mutex // guards the fields below; never held across pion calls
	closed   bool
	offering bool // a local offer awaits its answer
	needed   bool // changes were applied that no offer has carried yet
	restart  bool // the next offer restarts ICE (RestartICE)
	ops      []op // changes waiting for a stable signalling state
	subs     map[*Subscription]struct{}
	pubs     map[*forward.Track]PublishInfo
	remotes  map[*pion.TrackRemote]bool // remote tracks with a read loop
	refused  int                        // tracks refused over the peer's life
	status   Status
	grace    *time.Timer    // runs while disconnected, with Grace set
	wg       sync.WaitGroup // read loops and the report timer's runs
	reports  *time.Timer    // sender reports (sendReports); nil until the first subscription
	// reportsArmed: reports is armed or its run has not finished. It is
	// armed only while the peer has subscriptions (armReports).
	reportsArmed bool
}

// op is a queued change: a subscription to add or to remove.
type op struct {
	sub *Subscription
	add bool
}

// NewPeer creates a peer.
func NewPeer(cfg PeerConfig) (*Peer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.MaxStreams == 0 {
		cfg.MaxStreams = 16
	}
	p := &Peer{
		cfg:     cfg,
		done:    make(chan struct{}),
		subs:    map[*Subscription]struct{}{},
		pubs:    map[*forward.Track]PublishInfo{},
		remotes: map[*pion.TrackRemote]bool{},
		status:  StatusConnecting,
	}
	p.buffers.limit, p.buffers.onAbuse = p.streamLimit, p.end
	down, err := newDownlink(cfg.Engine.clock.epoch, !cfg.Engine.cfg.NoProbing)
	if err != nil {
		return nil, err
	}
	p.down = down
	se := cfg.Engine.se
	se.BufferFactory = p.buffers.factory
	api := pion.NewAPI(pion.WithSettingEngine(se), pion.WithMediaEngine(cfg.Engine.me), pion.WithInterceptorRegistry(cfg.Engine.ir))
	pc, err := api.NewPeerConnection(pion.Configuration{
		BundlePolicy:  pion.BundlePolicyMaxBundle,
		RTCPMuxPolicy: pion.RTCPMuxPolicyRequire,
	})
	if err != nil {
		return nil, err
	}
	p.pc = pc
	if cfg.OnCandidate != nil {
		pc.OnICECandidate(func(c *pion.ICECandidate) {
			if c != nil {
				cfg.OnCandidate(c.ToJSON())
			}
		})
	}
	pc.OnICEConnectionStateChange(func(pion.ICEConnectionState) { p.updateStatus() })
	pc.OnConnectionStateChange(func(pion.PeerConnectionState) { p.updateStatus() })
	pc.OnTrack(p.onTrack)
	return p, nil
}

// Status returns the connection status.
func (p *Peer) Status() Status {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.status
}

func (p *Peer) updateStatus() {
	if p.pc.ConnectionState() == pion.PeerConnectionStateConnected {
		p.setupDirect()
	}
	p.setStatus("", false)
}

// currentStatus computes the status from pion's current states.
func (p *Peer) currentStatus() Status {
	switch p.pc.ConnectionState() {
	case pion.PeerConnectionStateConnected:
		return StatusConnected
	case pion.PeerConnectionStateDisconnected, pion.PeerConnectionStateFailed, pion.PeerConnectionStateClosed:
		return StatusDisconnected
	}
	switch p.pc.ICEConnectionState() {
	case pion.ICEConnectionStateChecking, pion.ICEConnectionStateConnected, pion.ICEConnectionStateCompleted:
		return StatusChecking // ICE is through or nearly; DTLS is not yet
	case pion.ICEConnectionStateDisconnected, pion.ICEConnectionStateFailed, pion.ICEConnectionStateClosed:
		return StatusDisconnected
	}
	return StatusConnecting
}

// setStatus records s and reports a change. pion runs some state handlers
// on goroutines of their own, so s is computed from the current states,
// never from the event; after Close only Close's final "disconnected"
// counts.
//
// An empty s means the current status, computed under p.mu: pion calls
// its two state handlers concurrently, and a status computed before the
// lock could be stored after a newer one (a peer left "connected" after
// it failed would never be gone).
func (p *Peer) setStatus(s Status, final bool) {
	p.mu.Lock()
	if p.closed && !final {
		p.mu.Unlock()
		return
	}
	if s == "" {
		s = p.currentStatus()
	}
	changed := s != p.status
	p.status = s
	if changed && p.cfg.Grace > 0 {
		switch {
		case final && p.grace != nil:
			p.grace.Stop()
		case !final && s == StatusDisconnected && p.grace == nil:
			p.grace = time.AfterFunc(p.cfg.Grace, p.gone)
		case s != StatusDisconnected && p.grace != nil:
			p.grace.Stop()
			p.grace = nil
		}
	}
	p.mu.Unlock()
	if changed && p.cfg.OnStatus != nil {
		p.cfg.OnStatus(s)
	}
}

// gone ends a peer that stayed disconnected for its grace period.
func (p *Peer) gone() {
	p.mu.Lock()
	still := !p.closed && p.status == StatusDisconnected && p.grace != nil
	p.grace = nil
	p.mu.Unlock()
	if !still {
		return
	}
	p.end()
}

// streamLimit bounds the SRTP and SRTCP streams pion may hold for the
// peer at once: four for each published stream (RTP and RTCP, with RTX's)
// up to MaxStreams, four for each subscription, and 32 to spare.
func (p *Peer) streamLimit() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return 32 + 4*p.cfg.MaxStreams + 4*len(p.subs)
}

// end tells the embedder the peer is gone (once) and closes it.
func (p *Peer) end() {
	p.goneOnce.Do(func() {
		if p.cfg.OnGone != nil {
			p.cfg.OnGone()
		}
	})
	_ = p.Close()
}

// Offer creates the server's offer and sets it as the local description.
// Queued changes wait until its answer has been set with SetAnswer.
func (p *Peer) Offer() (string, error) {
	p.negMu.Lock()
	sdp, err := p.offer()
	p.negUnlock(false)
	return sdp, err
}

func (p *Peer) offer() (string, error) {
	if p.isClosed() {
		return "", ErrClosed
	}
	p.mu.Lock()
	restart := p.restart
	p.mu.Unlock()
	var opts *pion.OfferOptions
	if restart {
		opts = &pion.OfferOptions{ICERestart: true}
	}
	offer, err := p.pc.CreateOffer(opts)
	if err != nil {
		return "", err
	}
	sdp, err := p.setLocal(offer)
	if err != nil {
		return "", err
	}
	// pion refuses a changed local offer: the client gets the offer
	// without the extension ids pion chose itself, which the server then
	// does not send.
	sdp = withoutProposedExtensionIDs(sdp, p.pc.CurrentRemoteDescription())
	p.mu.Lock()
	p.offering, p.needed = true, false
	if restart {
		p.restart = false
	}
	p.mu.Unlock()
	return sdp, nil
}

// RestartICE asks for an ICE restart: the server's next offer carries new
// ICE credentials (and gathers anew), and the client runs connectivity
// checks again (the server, a lite agent, answers them) while media goes
// on over the old pair until the new one is selected. It goes through the negotiation queue: OnNegotiationNeeded
// fires at once, or after the answer to an offer outstanding now; the
// embedder calls Offer, sends it and calls SetAnswer as for any change.
// A client-initiated restart (an offer with new credentials) is simply
// answered by Answer.
func (p *Peer) RestartICE() error {
	p.negMu.Lock()
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		p.negMu.Unlock()
		return ErrClosed
	}
	p.restart, p.needed = true, true
	fire := !p.offering // otherwise SetAnswer fires it
	p.mu.Unlock()
	p.negUnlock(fire)
	return nil
}

// setLocal sets the local description and, without trickle ICE, waits
// for gathering so the SDP carries every candidate.
func (p *Peer) setLocal(desc pion.SessionDescription) (string, error) {
	var gathered <-chan struct{}
	if p.cfg.OnCandidate == nil {
		gathered = pion.GatheringCompletePromise(p.pc)
	}
	if err := p.pc.SetLocalDescription(desc); err != nil {
		return "", err
	}
	if gathered != nil {
		select {
		case <-gathered:
		case <-p.done:
			return "", ErrClosed
		}
	}
	return p.pc.LocalDescription().SDP, nil
}

// SetAnswer applies the client's answer to the outstanding offer. On
// failure the offer stays outstanding (pion cannot roll back a local
// offer): set a corrected answer, or call Offer for a new offer.
func (p *Peer) SetAnswer(sdp string) error {
	p.negMu.Lock()
	p.mu.Lock()
	offering := p.offering
	p.mu.Unlock()
	if !offering {
		p.negUnlock(false)
		return ErrNoOffer
	}
	err := p.pc.SetRemoteDescription(pion.SessionDescription{Type: pion.SDPTypeAnswer, SDP: sdp})
	needed := false
	if err == nil {
		p.mu.Lock()
		p.offering = false
		needed = p.needed // an ICE restart asked for while the offer was out
		p.mu.Unlock()
	}
	p.negUnlock(needed)
	return err
}

// Answer applies a client's offer (its first one, or a renegotiation of
// its own) and returns the server's answer. An offer that crosses one of
// the server's gets ErrGlare: the server is impolite, the client rolls
// back and answers the server's offer.
func (p *Peer) Answer(sdp string) (string, error) {
	p.negMu.Lock()
	p.mu.Lock()
	offering, closed := p.offering, p.closed
	p.mu.Unlock()
	if closed || offering {
		p.negUnlock(false)
		if closed {
			return "", ErrClosed
		}
		return "", ErrGlare
	}
	ans, err := p.answer(sdp)
	p.mu.Lock()
	needed := p.needed // changes applied earlier still want an offer
	p.mu.Unlock()
	p.negUnlock(needed)
	return ans, err
}

func (p *Peer) answer(sdp string) (string, error) {
	if err := p.pc.SetRemoteDescription(pion.SessionDescription{Type: pion.SDPTypeOffer, SDP: sdp}); err != nil {
		return "", err
	}
	ans, err := p.pc.CreateAnswer(nil)
	if err != nil {
		return "", err
	}
	return p.setLocal(ans)
}

// AddICECandidate adds a client's trickled candidate.
func (p *Peer) AddICECandidate(c ICECandidate) error { return p.pc.AddICECandidate(c) }

// negUnlock applies the queued changes if signalling is stable, releases
// negMu and calls OnNegotiationNeeded when there is something to offer.
// A change queued while another goroutine held negMu is picked up here.
func (p *Peer) negUnlock(fire bool) {
	for {
		fire = p.applyOps() || fire
		p.negMu.Unlock()
		if fire && p.cfg.OnNegotiationNeeded != nil && !p.isClosed() {
			p.cfg.OnNegotiationNeeded()
		}
		// Loop only while another goroutine's changes can be applied now:
		// with signalling not stable (an offer or answer in flight, or the
		// connection closed) they wait for the call that makes it stable,
		// instead of spinning here.
		if !p.opsReady() || p.pc.SignalingState() != pion.SignalingStateStable || !p.negMu.TryLock() {
			return
		}
		fire = false
	}
}

// kick applies queued changes unless another goroutine holds negMu, which
// then does it on release.
func (p *Peer) kick() {
	if p.negMu.TryLock() {
		p.negUnlock(false)
	}
}

func (p *Peer) opsReady() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.ops) > 0 && !p.offering && !p.closed
}

func (p *Peer) isClosed() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.closed
}

// applyOps applies the queued changes, with negMu held, when no offer is
// outstanding. It reports whether anything changed.
func (p *Peer) applyOps() bool {
	if p.pc.SignalingState() != pion.SignalingStateStable || !p.opsReady() {
		return false
	}
	p.mu.Lock()
	ops := p.ops
	p.ops = nil
	p.mu.Unlock()
	changed := false
	for _, o := range ops {
		s := o.sub
		switch {
		case o.add:
			sender, err := p.pc.AddTrack(s.local)
			if err != nil {
				s.fail(err)
				continue
			}
			s.sender = sender
			p.onlyCodecOf(sender, s.local.mime)
			changed = true
			p.spawn(func() { s.readRTCP(sender) })
		case s.sender != nil:
			tr := p.transceiverOf(s.sender)
			if err := p.pc.RemoveTrack(s.sender); err == nil {
				changed = true
			}
			if tr != nil {
				// Every codec again: a section whose one codec the client
				// rejected would otherwise be left out of the next offer.
				_ = tr.SetCodecPreferences(nil)
			}
			s.sender = nil
		}
	}
	if changed {
		p.mu.Lock()
		p.needed = true
		p.mu.Unlock()
	}
	return changed
}

// onlyCodecOf restricts the m-section of sender to the one codec it
// forwards (and its RTX). Offering every registered codec in a server
// offer can collide, inside the BUNDLE group, with payload types the
// client mapped to other formats in its own sections (Chrome refuses such
// an offer: "Bundled payload type collision").
func (p *Peer) onlyCodecOf(sender *pion.RTPSender, mime string) {
	var keep []pion.RTPCodecParameters
	var pts []string
	for _, c := range codecList() {
		if strings.EqualFold(c.MimeType, mime) {
			keep = append(keep, c)
			pts = append(pts, "apt="+strconv.Itoa(int(c.PayloadType)))
		}
	}
	for _, c := range codecList() {
		if strings.EqualFold(c.MimeType, pion.MimeTypeRTX) && slices.Contains(pts, c.SDPFmtpLine) {
			keep = append(keep, c)
		}
	}
	if tr := p.transceiverOf(sender); tr != nil && len(keep) > 0 {
		_ = tr.SetCodecPreferences(keep) // on failure the section offers every codec, as before
	}
}

// transceiverOf returns the transceiver of sender, nil if none has it.
func (p *Peer) transceiverOf(sender *pion.RTPSender) *pion.RTPTransceiver {
	for _, tr := range p.pc.GetTransceivers() {
		if tr.Sender() == sender {
			return tr
		}
	}
	return nil
}

// spawn runs fn on a goroutine Close waits for, unless the peer is closed.
func (p *Peer) spawn(fn func()) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		fn()
	}()
	return true
}

// Close detaches the peer's subscriptions, closes the PeerConnection
// gracefully, waits for its read loops and closes its published tracks.
// Its last status report is "disconnected", before Close returns.
func (p *Peer) Close() error {
	p.down.stopProbe() // before p.mu: a cluster's step takes p.mu under the prober's lock
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	close(p.done)
	if p.reportsArmed && p.reports.Stop() {
		p.wg.Done() // the run it was armed for will not happen
	}
	p.reportsArmed = false
	subs := make([]*Subscription, 0, len(p.subs))
	for s := range p.subs {
		subs = append(subs, s)
	}
	p.ops = nil
	p.mu.Unlock()
	for _, s := range subs {
		s.detach()
	}
	err := p.pc.GracefulClose()
	p.wg.Wait()
	p.mu.Lock()
	pubs := make([]*forward.Track, 0, len(p.pubs))
	for t := range p.pubs {
		pubs = append(pubs, t)
	}
	p.mu.Unlock()
	for _, t := range pubs {
		_ = t.Close()
	}
	p.setStatus(StatusDisconnected, true)
	return err
}
