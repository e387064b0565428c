package webrtc

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/pion/rtp"
	pion "github.com/pion/webrtc/v4"

	"github.com/callcore/callcore/forward"
	"github.com/callcore/callcore/transport"
)

// Subscription sends one forward.Track to a peer's user: a pion TrackLocal
// whose binding takes the core's rewritten packets, and a read loop that
// hands the user's RTCP for it (NACK, PLI, FIR) to the core.
type Subscription struct {
	peer  *Peer
	track *forward.Track
	local *localTrack
	out   rtpOut

	sender *pion.RTPSender // set and cleared with the peer's negMu held

	sub    atomic.Pointer[forward.Subscriber] // set when pion binds the track
	openMu sync.Mutex                         // orders SetOpen and SetMaxLayer with Bind
	paused bool                               // guarded by openMu
	layers *layered                           // a layered source's; nil for one track (layers.go)
	// Guarded by openMu: the allocation of the peer's downlink
	// (allocate.go).
	bw       bwLimit
	priority int
	onLimit  atomic.Pointer[func()]
	err      atomic.Pointer[error]
	closed   atomic.Bool
	rr       rrState // the RTCP loop's (rrloss.go)
}

// Subscribe sends track to the peer's user. The change is negotiated by
// the server (OnNegotiationNeeded); packets flow once the client's answer
// is set and its transport is up, from the track's next key frame. info
// names the stream to the client (its track and stream IDs; generated when
// empty). A codec the server does not negotiate, or that the client's
// last description lacks, gives ErrCodecMismatch.
func (p *Peer) Subscribe(track *forward.Track, info PublishInfo) (*Subscription, error) {
	return p.subscribe(track, info, nil)
}

// subscribe is Subscribe, of a layered source when layers is set (track
// is then one of its layers).
func (p *Peer) subscribe(track *forward.Track, info PublishInfo, layers *layered) (*Subscription, error) {
	tc := track.Config()
	if !supported(tc.MimeType) || remoteRejects(p.pc.RemoteDescription(), tc.Kind, tc.MimeType) {
		return nil, ErrCodecMismatch
	}
	n := strconv.FormatUint(p.ids.Add(1), 10)
	if info.TrackID == "" {
		info.TrackID = "callcore-track-" + n
	}
	if info.StreamID == "" {
		info.StreamID = "callcore-stream-" + n
	}
	s := &Subscription{peer: p, track: track, layers: layers, bw: bwLimit{max: forward.LayerF}}
	s.out.batch = noFlush{}
	s.out.clock = p.cfg.Engine.clock
	if sock := p.cfg.Engine.sock; sock != nil && layers == nil { // a track's batch is its own fan-out's
		s.out.sock = sock
		s.out.tb = sock.acquire(track)
		s.out.batch = s.out.tb
	}
	s.out.po = newPaceOut(p, &s.out, tc.Kind == forward.Video, forward.KeyFrameStart(tc.MimeType), s.requestKeyFrame)
	s.local = &localTrack{
		s: s, id: info.TrackID, streamID: info.StreamID, kind: tc.Kind,
		mime: tc.MimeType, clock: tc.ClockRate, fmtp: info.SDPFmtpLine,
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		if s.out.tb != nil {
			s.out.sock.release(track, s.out.tb)
		}
		return nil, ErrClosed
	}
	p.subs[s] = struct{}{}
	p.armReports()
	p.ops = append(p.ops, op{sub: s, add: true})
	p.mu.Unlock()
	p.kick()
	return s, nil
}

// requestKeyFrame asks the publisher of what the subscription sends for
// a key frame (every layer of a layered source). It never waits.
func (s *Subscription) requestKeyFrame() {
	if s.layers == nil {
		s.track.RequestKeyFrame()
		return
	}
	for _, t := range s.layers.l.Tracks() {
		if t != nil {
			t.RequestKeyFrame()
		}
	}
}

// Subscriber returns the core's subscriber (for its gate and stats), nil
// until the client's answer has bound the track.
func (s *Subscription) Subscriber() *forward.Subscriber { return s.sub.Load() }

// SetOpen pauses (false) or resumes (true) the subscription without
// renegotiating: it sets the core subscriber's gate. While paused nothing
// is sent to the user (the track's other subscribers are not affected);
// on resume the stream continues on a key frame, with continuous sequence
// numbers (the core splices it and asks the publisher for a key frame if
// none is cached). It may be called before the client's answer has bound
// the track: the subscriber then starts paused.
func (s *Subscription) SetOpen(open bool) {
	s.openMu.Lock()
	defer s.openMu.Unlock()
	s.paused = !open
	if fs := s.sub.Load(); fs != nil {
		fs.SetOpen(open && !s.bw.paused)
	}
}

// Open reports whether the subscription is open (not paused).
func (s *Subscription) Open() bool {
	s.openMu.Lock()
	defer s.openMu.Unlock()
	return !s.paused
}

// Err returns why the subscription failed, nil if it did not.
func (s *Subscription) Err() error {
	if e := s.err.Load(); e != nil {
		return *e
	}
	return nil
}

func (s *Subscription) fail(err error) {
	s.err.CompareAndSwap(nil, &err)
}

// Close stops the subscription: the core stops writing to it at once, and
// the peer renegotiates the track away.
func (s *Subscription) Close() error {
	if !s.detach() {
		return nil
	}
	p := s.peer
	p.mu.Lock()
	delete(p.subs, s)
	queued := false
	for i, o := range p.ops {
		if o.sub == s && o.add { // never added: drop the add, nothing to negotiate
			p.ops = append(p.ops[:i], p.ops[i+1:]...)
			queued = true
			break
		}
	}
	if !queued && !p.closed {
		p.ops = append(p.ops, op{sub: s})
	}
	p.mu.Unlock()
	p.kick()
	return nil
}

// detach stops the core's writes; it reports false if already done.
func (s *Subscription) detach() bool {
	if s.closed.Swap(true) {
		return false
	}
	s.out.closed.Store(true)
	if fs := s.sub.Load(); fs != nil {
		_ = fs.Close()
	}
	if s.out.tb != nil {
		s.out.sock.release(s.track, s.out.tb)
	}
	return true
}

// readRTCP is the subscription's RTCP read loop: the user's feedback goes
// to the core, which answers NACKs from its cache and merges key-frame
// requests upstream. It ends when the sender stops.
func (s *Subscription) readRTCP(sender *pion.RTPSender) {
	buf := make([]byte, readBufSize)
	for {
		n, _, err := sender.Read(buf)
		if errors.Is(err, io.ErrShortBuffer) {
			continue
		}
		if err != nil {
			return
		}
		s.peer.readFeedback(buf[:n])
		s.readLoss(buf[:n])
		if fs := s.sub.Load(); fs != nil {
			// The core's retransmissions go out at once: no fan-out
			// flushes them (trackBatch).
			s.out.immediate.Store(true)
			_ = fs.HandleRTCP(buf[:n]) // malformed RTCP is counted by the core
			s.out.immediate.Store(false)
		}
	}
}

// rtpOut is the subscriber's writer, in the calling goroutine; it never
// waits. With the UDP mux on an IPv4 socket, once the peer's SRTP keys
// are known, it encrypts the core's rewritten packet itself into a slot
// of the track's batch, which the core flushes after the fan-out
// (direct.go, transport.Batcher). Otherwise the packet goes to pion's
// write stream (SRTP, socket); packets written before DTLS is up are
// dropped by pion.
type rtpOut struct {
	ws    atomic.Pointer[pion.TrackLocalWriter]
	fast  atomic.Pointer[fastOut] // the direct path, once the peer's keys are known
	clock sendClock               // the engine's
	ssrc  atomic.Uint32           // the main SSRC, set by Bind

	// For sender reports (reports.go): written by the writer, read by
	// the peer's report timer.
	packets, octets atomic.Uint32
	last            atomic.Uint64 // RTP timestamp << 32 | sendClock time of its first packet
	closed          atomic.Bool
	batch           transport.Flusher // tb, or noFlush without the direct path; never changes
	sock            *sendSock         // the engine's, nil without the direct path
	tb              *trackBatch       // the batch of the track's subscriptions on the engine
	immediate       atomic.Bool       // set by the RTCP loop: its writes are not batched
	scratch         []byte            // immediate direct writes: the SRTP datagram

	// The transport-wide sequence number extension (twcc.go): its ID,
	// 0 when the peer did not negotiate it, and the peer's history. Set
	// by Bind before ws, never changed.
	twccID uint8
	down   *downlink
	gaps   seqGaps // the main stream's numbers skipped (rrloss.go)
	tw     [2]byte // pion's path: the extension's value
	extHdr []byte  // the direct path: the header with the extension added

	// Pacing (pace.go), nil when off. Set at subscribe, never changed.
	po *paceOut

	// Reused: the core calls from one goroutine at a time.
	hdr rtp.Header
	buf []byte // a payload whose first bytes came in header
}

func (w *rtpOut) WriteRTP(header, payload []byte) error {
	if w.closed.Load() {
		return transport.ErrClosed
	}
	ws := w.ws.Load()
	if ws == nil {
		return transport.ErrClosed
	}
	w.gaps.note(header, w.ssrc.Load())
	if po := w.po; po != nil {
		if po.q == nil {
			w.charge(header, payload)
		} else if done, err := w.pace(header, payload); done {
			return err
		}
	}
	if f := w.fast.Load(); f != nil {
		// An invalid address: the peer's pair moved to ICE-TCP, pion's path.
		if to := *f.to.Load(); to.IsValid() {
			return w.writeDirect(f, to, header, payload)
		}
	}
	return w.writePion(*ws, &w.hdr, &w.tw, &w.buf, header, payload)
}

// writePion writes the packet to pion's write stream ws, with the
// transport-wide number taken now, using the scratch hdr, tw and buf
// (the writer's, or the pacing scheduler's for a queued packet).
func (w *rtpOut) writePion(ws pion.TrackLocalWriter, hdr *rtp.Header, tw *[2]byte, buf *[]byte, header, payload []byte) error {
	n, err := hdr.Unmarshal(header)
	if err != nil {
		return err
	}
	octets := len(header) - n + len(payload)
	padOnly := paddingOnly(header, payload)
	hdr.PaddingSize = 0
	if hdr.Padding {
		// pion writes the padding from PaddingSize, which Header.Unmarshal
		// leaves at 0: take it off the payload.
		if len(payload) == 0 || int(payload[len(payload)-1]) > len(payload) || payload[len(payload)-1] == 0 {
			return fmt.Errorf("%w: padding longer than the payload", forward.ErrMalformed)
		}
		hdr.PaddingSize = payload[len(payload)-1]
		payload = payload[:len(payload)-int(hdr.PaddingSize)]
	}
	var seq uint16
	if w.twccID != 0 {
		seq = w.down.hist.Next()
		binary.BigEndian.PutUint16(tw[:], seq)
		if err := hdr.SetExtension(w.twccID, tw[:]); err != nil {
			return err
		}
	}
	if n < len(header) {
		// The core rewrote the payload's first bytes (a VP8 descriptor's
		// picture ID) and passed them at the end of header: join them.
		if *buf == nil {
			*buf = make([]byte, 0, readBufSize)
		}
		*buf = append(append((*buf)[:0], header[n:]...), payload...)
		payload = *buf
	}
	if _, err = ws.WriteRTP(hdr, payload); err != nil {
		if w.closed.Load() { // closed while this write was under way: pion's error is its own
			return fmt.Errorf("%w: %w", transport.ErrClosed, err)
		}
		return err
	}
	if w.twccID != 0 {
		w.down.put(seq, hdr.MarshalSize()+octets, padOnly)
	}
	w.countHdr(hdr, w.clock.now(), octets)
	return nil
}

// Batch returns the flush point of the track's subscriptions on the
// engine (its trackBatch), or a no-op without the direct path.
func (w *rtpOut) Batch() transport.Flusher { return w.batch }

// localTrack is the pion TrackLocal of a subscription. Bind subscribes
// the core with the negotiated SSRC, payload type, header extension IDs
// and RTX stream.
type localTrack struct {
	s            *Subscription
	id, streamID string
	kind         forward.Kind
	mime, fmtp   string
	clock        uint32
	bound        atomic.Bool
}

func (l *localTrack) ID() string       { return l.id }
func (l *localTrack) RID() string      { return "" }
func (l *localTrack) StreamID() string { return l.streamID }

func (l *localTrack) Kind() pion.RTPCodecType {
	if l.kind == forward.Audio {
		return pion.RTPCodecTypeAudio
	}
	return pion.RTPCodecTypeVideo
}

func (l *localTrack) Bind(ctx pion.TrackLocalContext) (pion.RTPCodecParameters, error) {
	s := l.s
	codec, ok := pickCodec(ctx.CodecParameters(), l.mime, l.clock, l.fmtp)
	if !ok {
		// The client cannot decode the track. Failing Bind would fail the
		// whole SetAnswer and leave the other new senders unstarted, so
		// bind to any codec, send nothing, and renegotiate the track away.
		s.fail(ErrCodecMismatch)
		_ = s.Close()
		if cs := ctx.CodecParameters(); len(cs) > 0 {
			return cs[0], nil
		}
		return pion.RTPCodecParameters{}, ErrCodecMismatch
	}
	if l.bound.Swap(true) {
		return codec, nil // bound once per subscription
	}
	ws := ctx.WriteStream()
	s.out.ssrc.Store(uint32(ctx.SSRC()))
	s.out.down = s.peer.down
	if !s.peer.cfg.Engine.cfg.NoCongestionControl {
		s.out.twccID = twccID(ctx.HeaderExtensions())
	}
	s.goDirect()
	s.out.ws.Store(&ws)
	cfg := forward.SubscriberConfig{
		Writer:         &s.out,
		SSRC:           uint32(ctx.SSRC()),
		PayloadType:    uint8(codec.PayloadType),
		Extensions:     extensions(ctx.HeaderExtensions()),
		FirstSeq:       uint16(rand.Uint32()),
		FirstTimestamp: rand.Uint32(),
	}
	if pt := rtxFor(ctx.CodecParameters(), codec.PayloadType); pt != 0 && ctx.SSRCRetransmission() != 0 {
		cfg.RTX = &forward.RTX{SSRC: uint32(ctx.SSRCRetransmission()), PayloadType: pt}
	}
	fs, err := forward.NewSubscriber(cfg)
	if err != nil {
		s.fail(err)
		return pion.RTPCodecParameters{}, err
	}
	// The gate is set before the subscriber is attached, so a paused
	// subscription never sends a packet.
	s.openMu.Lock()
	fs.SetOpen(!s.paused && !s.bw.paused)
	err = s.attach(fs)
	if err == nil {
		s.sub.Store(fs)
	}
	s.openMu.Unlock()
	if err != nil {
		s.fail(err)
		return pion.RTPCodecParameters{}, err
	}
	if s.closed.Load() { // Close raced with the binding
		_ = fs.Close()
	}
	return codec, nil
}

// Unbind stops the core's writes; Close or the peer's Close detaches the
// core's subscriber (not here: pion may hold its sender's lock).
func (l *localTrack) Unbind(pion.TrackLocalContext) error {
	l.s.out.closed.Store(true)
	return nil
}
