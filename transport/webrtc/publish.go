package webrtc

import (
	"errors"
	"fmt"
	"io"

	"github.com/pion/rtcp"
	pion "github.com/pion/webrtc/v4"

	"github.com/callcore/callcore/forward"
)

// readBufSize holds any packet pion's SRTP layer hands out (its receive
// MTU is 1460) and the core's default MaxPacketSize; a published track's
// buffer grows to a larger MaxPacketSize.
const readBufSize = 1500

// onTrack turns a remote track into a forward.Track fed by a read loop.
// pion calls it once the first packet of the track has arrived, and again
// for the same remote track when a new SSRC is mapped onto it; a track is
// read once. Whether the track is wanted (Admit, MaxStreams) is decided
// before anything is built for it.
func (p *Peer) onTrack(remote *pion.TrackRemote, recv *pion.RTPReceiver) {
	codec := remote.Codec()
	info := PublishInfo{
		TrackID:     remote.ID(),
		StreamID:    remote.StreamID(),
		RID:         remote.RID(),
		Kind:        kindOf(remote.Kind()),
		MimeType:    codec.MimeType,
		ClockRate:   codec.ClockRate,
		PayloadType: uint8(payloadType(remote, codec)),
		SDPFmtpLine: codec.SDPFmtpLine,
		SSRC:        uint32(remote.SSRC()),
	}
	if err := p.admit(remote, info); err != nil {
		p.refuse(remote, recv, info, err)
		return
	}
	cfg := p.cfg.Track
	cfg.Kind = info.Kind
	cfg.ClockRate = info.ClockRate
	cfg.PayloadType = info.PayloadType
	cfg.MimeType = info.MimeType
	cfg.SSRC = info.SSRC
	cfg.Extensions = publishedExtensions(recv.GetParameters().HeaderExtensions)
	cfg.RTX = nil // pion unwraps RTX: TrackRemote.Read returns repaired packets as the original stream
	cfg.Feedback = feedback{pc: p.pc}
	cfg.NACKUpstream = false // pion's NACK generator already asks the publisher
	track, err := forward.NewTrack(cfg)
	if err != nil {
		p.release(remote)
		p.refuse(remote, recv, info, err)
		return
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		_ = track.Close()
		return
	}
	p.pubs[track] = info
	p.mu.Unlock()
	if p.cfg.OnPublish != nil {
		p.cfg.OnPublish(track, info)
	}
	if !p.spawn(func() { p.readRTP(remote, track, info) }) {
		_ = track.Close()
		return
	}
	p.spawn(func() { drainRTCP(recv, info.RID) })
}

// payloadType is the remote track's payload type: pion leaves
// TrackRemote.PayloadType zero for a track found by its rid, whose codec
// carries it.
func payloadType(remote *pion.TrackRemote, codec pion.RTPCodecParameters) pion.PayloadType {
	if pt := remote.PayloadType(); pt != 0 {
		return pt
	}
	return codec.PayloadType
}

// admit decides whether remote gets a read loop, and claims it when it
// does: not twice, not past MaxStreams, not when Admit refuses.
func (p *Peer) admit(remote *pion.TrackRemote, info PublishInfo) error {
	p.mu.Lock()
	switch {
	case p.closed:
		p.mu.Unlock()
		return ErrClosed
	case p.remotes[remote]:
		p.mu.Unlock()
		return nil // read already: its loop goes on with the new stream
	case len(p.remotes) >= p.cfg.MaxStreams:
		p.mu.Unlock()
		return fmt.Errorf("%w: %d at most", ErrTooManyStreams, p.cfg.MaxStreams)
	}
	p.remotes[remote] = true
	p.mu.Unlock()
	if p.cfg.Admit != nil {
		if err := p.cfg.Admit(info); err != nil {
			p.release(remote)
			return err
		}
	}
	return nil
}

// release gives back remote's claim on MaxStreams.
func (p *Peer) release(remote *pion.TrackRemote) {
	p.mu.Lock()
	delete(p.remotes, remote)
	p.mu.Unlock()
}

// refuse drops a track that was not admitted: the receiver is stopped
// when it carries nothing admitted (pion frees its streams and buffers),
// and a client that keeps publishing refused tracks loses its peer.
func (p *Peer) refuse(remote *pion.TrackRemote, recv *pion.RTPReceiver, info PublishInfo, err error) {
	if errors.Is(err, ErrClosed) {
		return
	}
	p.mu.Lock()
	p.refused++
	abuse := p.refused > p.cfg.MaxStreams
	shared := false
	for _, t := range recv.Tracks() {
		shared = shared || (t != remote && p.remotes[t])
	}
	p.mu.Unlock()
	if p.cfg.OnRefused != nil {
		p.cfg.OnRefused(info, err)
	}
	if !shared {
		_ = recv.Stop()
	}
	if abuse && !p.isClosed() {
		go p.end() // not on pion's goroutine: Close waits for pion
	}
}

// readRTP is a published track's read loop: one goroutine per track, as
// HandleRTP wants, reading into one buffer for the track's life.
func (p *Peer) readRTP(remote *pion.TrackRemote, track *forward.Track, info PublishInfo) {
	buf := make([]byte, max(readBufSize, track.Config().MaxPacketSize))
	for {
		n, _, err := remote.Read(buf)
		if errors.Is(err, io.ErrShortBuffer) {
			continue
		}
		if err != nil {
			break
		}
		_ = track.HandleRTP(buf[:n]) // refused packets are counted in the track's stats
	}
	_ = track.Close()
	p.mu.Lock()
	delete(p.pubs, track)
	delete(p.remotes, remote)
	p.mu.Unlock()
	if p.cfg.OnUnpublish != nil {
		p.cfg.OnUnpublish(track, info)
	}
}

// drainRTCP reads a receiver's RTCP (sender reports) so pion's report
// interceptor sees it and its buffer never fills; a layer (rid) has its
// own.
func drainRTCP(recv *pion.RTPReceiver, rid string) {
	buf := make([]byte, readBufSize)
	for {
		var err error
		if rid != "" {
			_, _, err = recv.ReadSimulcast(buf, rid)
		} else {
			_, _, err = recv.Read(buf)
		}
		if err != nil && !errors.Is(err, io.ErrShortBuffer) {
			return
		}
	}
}

// feedback is a track's Feedback writer: RTCP (key-frame requests) to the
// publisher. pion's WriteRTCP does not wait for the network.
type feedback struct{ pc *pion.PeerConnection }

func (f feedback) WriteRTCP(b []byte) error {
	pkts, err := rtcp.Unmarshal(b)
	if err != nil {
		return err
	}
	return f.pc.WriteRTCP(pkts)
}
