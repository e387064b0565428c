package webrtc

import (
	"errors"
	"net/netip"
	"reflect"
	"strings"
	"sync/atomic"
	"unsafe"

	"github.com/pion/dtls/v3"
	"github.com/pion/srtp/v3"
	pion "github.com/pion/webrtc/v4"
)

// The direct send path (single-port mode, the mux socket a *net.UDPConn
// of either family): a
// subscription's writer encrypts the core's packet with SRTP itself, into
// a slot of its track's batch (trackBatch), addressed to the peer's
// selected ICE candidate pair. pion's per-packet send path (interceptor
// chain, SRTP session and its locks, mux endpoint, ICE conn, UDP mux
// accounting) is not on it.
//
// Keys: pion does not export its SRTP session, so the keys are derived as
// pion derives them (RFC 5764: the DTLS exporter "EXTRACTOR-dtls_srtp",
// srtp.Config.ExtractSessionKeysFromDTLS) from the peer's DTLS connection,
// read from pion's DTLSTransport by reflection (pinned pion version; when
// the field is not found the peer stays on pion's path, and
// TestDirectPath fails). Each subscription has its own srtp.Context with
// the peer's local master key: the contexts never share an SSRC, and
// pion's own context never writes a subscription's SSRCs once its writer
// is direct, so no (SSRC, index) is encrypted twice with different
// contents.

// sendKeys are a peer's outbound SRTP master key and salt.
type sendKeys struct {
	profile   srtp.ProtectionProfile
	key, salt []byte
}

// direct is a peer's direct-path state.
type direct struct {
	keys atomic.Pointer[sendKeys]
	to   atomic.Pointer[netip.AddrPort] // the selected pair's remote address
}

// fastOut is a subscription writer's direct path. ctx is used by the
// writer only (one goroutine at a time).
type fastOut struct {
	ctx *srtp.Context
	to  *atomic.Pointer[netip.AddrPort]
}

var errNoDTLSConn = errors.New("webrtc: DTLS connection not reachable")

// dtlsConnOf reads pion's DTLSTransport.conn (unexported).
func dtlsConnOf(t *pion.DTLSTransport) (*dtls.Conn, error) {
	f := reflect.ValueOf(t).Elem().FieldByName("conn")
	if !f.IsValid() || f.Type() != reflect.TypeFor[*dtls.Conn]() {
		return nil, errNoDTLSConn
	}
	c := *(**dtls.Conn)(unsafe.Pointer(f.UnsafeAddr()))
	if c == nil {
		return nil, errNoDTLSConn
	}
	return c, nil
}

// setupOf returns the a=setup value of an SDP.
func setupOf(sdp string) string {
	i := strings.Index(sdp, "a=setup:")
	if i < 0 {
		return ""
	}
	v := sdp[i+len("a=setup:"):]
	if j := strings.IndexAny(v, "\r\n"); j >= 0 {
		v = v[:j]
	}
	return v
}

// dtlsClient reports whether the peer is the DTLS client, as pion decides
// it from the descriptions (a=setup).
func dtlsClient(pc *pion.PeerConnection) (bool, bool) {
	local, remote := pc.CurrentLocalDescription(), pc.CurrentRemoteDescription()
	if local == nil || remote == nil {
		return false, false
	}
	switch setupOf(local.SDP) {
	case "active":
		return true, true
	case "passive":
		return false, true
	}
	switch setupOf(remote.SDP) {
	case "active":
		return false, true
	case "passive":
		return true, true
	}
	return false, false
}

// setupDirect derives the peer's outbound SRTP keys and the remote address
// once DTLS is up, then switches its subscriptions' writers to the direct
// path. It runs on pion's state goroutines; it does nothing without a
// batching engine, or when already done.
func (p *Peer) setupDirect() {
	if p.cfg.Engine.sock == nil || p.direct.keys.Load() != nil {
		return
	}
	dt := p.pc.SCTP().Transport()
	if dt.State() != pion.DTLSTransportStateConnected { // also orders our read after pion's write of conn
		return
	}
	conn, err := dtlsConnOf(dt)
	if err != nil {
		return
	}
	prof, ok := conn.SelectedSRTPProtectionProfile()
	if !ok {
		return
	}
	client, ok := dtlsClient(p.pc)
	if !ok {
		return
	}
	state, ok := conn.ConnectionState()
	if !ok {
		return
	}
	var profile srtp.ProtectionProfile
	switch prof {
	case dtls.SRTP_AEAD_AES_128_GCM:
		profile = srtp.ProtectionProfileAeadAes128Gcm
	case dtls.SRTP_AEAD_AES_256_GCM:
		profile = srtp.ProtectionProfileAeadAes256Gcm
	case dtls.SRTP_AES128_CM_HMAC_SHA1_80:
		profile = srtp.ProtectionProfileAes128CmHmacSha1_80
	default: // not one the engine offers: pion's path
		return
	}
	cfg := srtp.Config{Profile: profile}
	if err := cfg.ExtractSessionKeysFromDTLS(&state, client); err != nil {
		return
	}
	it := dt.ICETransport()
	addr := func(pair *pion.ICECandidatePair) *netip.AddrPort {
		if pair == nil || pair.Remote == nil {
			return nil
		}
		if pair.Remote.Protocol != pion.ICEProtocolUDP {
			// ICE over TCP: pion's path. A peer whose pair moves to TCP
			// after it went direct gets the invalid address, which sends
			// its writers back to pion's path.
			return &netip.AddrPort{}
		}
		ip, err := netip.ParseAddr(pair.Remote.Address)
		if err != nil {
			return nil
		}
		to := netip.AddrPortFrom(ip.Unmap(), pair.Remote.Port)
		if !p.cfg.Engine.sock.reaches(to) { // an IPv6 peer of an IPv4 socket: pion's path
			return &netip.AddrPort{}
		}
		return &to
	}
	// A change (ICE restart) replaces the address; the pair read below
	// only fills it if no change came first.
	it.OnSelectedCandidatePairChange(func(pair *pion.ICECandidatePair) {
		if to := addr(pair); to != nil {
			p.direct.to.Store(to)
		}
	})
	pair, err := it.GetSelectedCandidatePair()
	if err != nil {
		return
	}
	if to := addr(pair); to != nil {
		p.direct.to.CompareAndSwap(nil, to)
	}
	if to := p.direct.to.Load(); to == nil || !to.IsValid() {
		return
	}
	if !p.direct.keys.CompareAndSwap(nil, &sendKeys{profile: cfg.Profile, key: cfg.Keys.LocalMasterKey, salt: cfg.Keys.LocalMasterSalt}) {
		return
	}
	p.mu.Lock()
	subs := make([]*Subscription, 0, len(p.subs))
	for s := range p.subs {
		subs = append(subs, s)
	}
	p.mu.Unlock()
	for _, s := range subs {
		s.goDirect()
	}
}

// goDirect switches the subscription's writer to the direct path, once
// the peer's keys are known.
func (s *Subscription) goDirect() {
	k := s.peer.direct.keys.Load()
	if k == nil || s.out.tb == nil || s.out.fast.Load() != nil {
		return
	}
	ctx, err := srtp.CreateContext(k.key, k.salt, k.profile)
	if err != nil {
		return
	}
	s.out.fast.CompareAndSwap(nil, &fastOut{ctx: ctx, to: &s.peer.direct.to})
}

// writeDirect is the writer's direct path: SRTP into the track's batch,
// or, from the RTCP loop, into the writer's scratch buffer and out at once.
func (w *rtpOut) writeDirect(f *fastOut, to netip.AddrPort, header, payload []byte) error {
	var seq uint16
	padOnly := paddingOnly(header, payload)
	if w.twccID != 0 {
		if len(header)+twccExtra > batchSlot {
			return errTooLarge
		}
		if w.extHdr == nil {
			w.extHdr = make([]byte, batchSlot)
		}
		seq = w.down.hist.Next()
		header = w.extHdr[:putTWCC(w.extHdr, header, w.twccID, seq)]
	}
	var at uint32
	if !w.immediate.Load() {
		var err error
		if at, err = w.tb.write(f.ctx, &w.hdr, header, payload, to); err != nil {
			return err
		}
	} else {
		n := len(header) + len(payload)
		if n+srtpOverhead > batchSlot || !w.sock.reaches(to) {
			return errTooLarge
		}
		if w.scratch == nil {
			w.scratch = make([]byte, batchSlot)
		}
		copy(w.scratch[copy(w.scratch, header):n], payload)
		out, err := f.ctx.EncryptRTP(w.scratch, w.scratch[:n], &w.hdr)
		if err != nil {
			return err
		}
		if _, err := w.sock.conn.WriteToUDPAddrPort(out, to); err != nil {
			return err
		}
		at = w.sock.clock.now()
	}
	if w.twccID != 0 {
		w.down.put(seq, len(header)+len(payload), padOnly)
	}
	w.count(at, len(header)+len(payload)-w.hdr.MarshalSize())
	return nil
}
