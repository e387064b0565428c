package link

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/srtp/v3"

	"github.com/callcore/callcore/forward"
	"github.com/callcore/callcore/transport"
	"github.com/callcore/callcore/transport/rtp"
)

// profile is the SRTP profile of every link: AEAD_AES_128_GCM, about six
// times cheaper than AES_CM in pion.
const profile = rtp.ProfileAEADAES128GCM

// replayWindow is how far behind the newest index a packet may arrive.
const replayWindow = 1024

// session is one run of the link: a control connection, a UDP socket, and
// one pair of SRTP keys per direction drawn for it alone.
type session struct {
	l      *Link
	c      *ctrl
	conn   *net.UDPConn
	dialer bool
	id     string // the two nonces: the session's ID, for logs and stats
	local  *rtp.Keys
	remote *rtp.Keys
	fbSSRC uint32 // sender SSRC of this side's RTCP

	peer atomic.Pointer[netip.AddrPort] // where media goes; nil until the listener latches
	shut atomic.Bool
	poke chan struct{} // a relay saw its track's mute sources change
	done chan struct{}
	wg   sync.WaitGroup
	once sync.Once

	rtcpMu  sync.Mutex // guards rtcpCtx, rtcpBuf, rtcpOut and their use
	rtcpCtx *srtp.Context
	rtcpBuf []byte
	rtcpOut rawSender // non-blocking, as the writers' RTP

	mu        sync.Mutex // guards relayByID, inByID, nextSSRC
	relayByID map[string]*relay
	inByID    map[string]*inbound
	nextSSRC  uint32
	relays    atomic.Pointer[map[uint32]*relay]   // by link media SSRC, replaced whole under mu
	inbound   atomic.Pointer[map[uint32]*inbound] // by link media and RTX SSRC, replaced whole under mu

	rx receiver // owned by the receive goroutine
}

// newSession exchanges hellos on c and opens the session's UDP socket.
func newSession(l *Link, c net.Conn, dialer bool) (*session, error) {
	s := &session{l: l, c: newCtrl(c, l.cfg.Timeout), dialer: dialer,
		poke: make(chan struct{}, 1), done: make(chan struct{}),
		relayByID: map[string]*relay{}, inByID: map[string]*inbound{}}
	var err error
	if s.local, err = rtp.NewKeys(profile); err != nil {
		return nil, err
	}
	var nb [8]byte
	if _, err := rand.Read(nb[:]); err != nil {
		return nil, err
	}
	s.nextSSRC = binary.BigEndian.Uint32(nb[:]) | 1
	s.fbSSRC = binary.BigEndian.Uint32(nb[4:]) | 1
	// The hello (and a TLS handshake before it) must finish in time.
	if err := c.SetDeadline(time.Now().Add(l.cfg.Timeout)); err != nil {
		return nil, err
	}
	if err := s.openUDP(c); err != nil {
		return nil, err
	}
	if err := s.hello(c, hex.EncodeToString(nb[:])); err != nil {
		s.conn.Close()
		return nil, err
	}
	if s.rtcpCtx, err = newContext(s.local); err != nil {
		s.conn.Close()
		return nil, err
	}
	if s.rx.ctx, err = newContext(s.remote); err != nil {
		s.conn.Close()
		return nil, err
	}
	s.rtcpBuf = make([]byte, 0, l.cfg.MaxPacketSize+64)
	if err := s.rtcpOut.init(s.conn); err != nil {
		s.conn.Close()
		return nil, err
	}
	s.rx.buf = make([]byte, l.cfg.MaxPacketSize+64)
	s.rx.drop = l.cfg.dropIn
	s.relays.Store(&map[uint32]*relay{})
	s.inbound.Store(&map[uint32]*inbound{})
	return s, nil
}

func (s *session) openUDP(c net.Conn) error {
	local := s.l.cfg.Media
	if local == "" {
		ip := c.LocalAddr().(*net.TCPAddr).AddrPort().Addr().Unmap()
		local = netip.AddrPortFrom(ip, 0).String()
	}
	ua, err := net.ResolveUDPAddr("udp", local)
	if err != nil {
		return err
	}
	if s.conn, err = net.ListenUDP("udp", ua); err != nil {
		return err
	}
	_ = s.conn.SetReadBuffer(4 << 20)
	_ = s.conn.SetWriteBuffer(4 << 20)
	return nil
}

// hello sends this side's hello and reads the peer's.
func (s *session) hello(c net.Conn, nonce string) error {
	port := s.conn.LocalAddr().(*net.UDPAddr).Port
	if err := s.c.send(&msg{T: msgHello, V: protoVersion, Nonce: nonce, Keys: s.local.Inline(), Port: port}); err != nil {
		return err
	}
	m, err := s.c.recv()
	if err != nil {
		return err
	}
	if m.T != msgHello || m.V != protoVersion || m.Port <= 0 || m.Port > 65535 {
		return fmt.Errorf("%w: bad hello %q v%d", ErrProtocol, m.T, m.V)
	}
	if s.remote, err = rtp.ParseKeys(profile, m.Keys); err != nil {
		return fmt.Errorf("%w: %w", ErrProtocol, err)
	}
	if string(s.remote.Key) == string(s.local.Key) {
		return fmt.Errorf("%w: peer reuses our key", ErrProtocol)
	}
	if s.dialer {
		s.id = nonce + m.Nonce
		peer := s.l.cfg.PeerMedia
		if peer == "" {
			ip := c.RemoteAddr().(*net.TCPAddr).AddrPort().Addr()
			peer = netip.AddrPortFrom(ip, uint16(m.Port)).String()
		}
		ap, err := netip.ParseAddrPort(peer)
		if err != nil {
			return err
		}
		ap = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
		s.peer.Store(&ap)
	} else {
		s.id = m.Nonce + nonce
	}
	return nil
}

func newContext(k *rtp.Keys) (*srtp.Context, error) {
	return srtp.CreateContext(k.Key, k.Salt, srtp.ProtectionProfile(k.Profile),
		srtp.SRTPReplayProtection(replayWindow), srtp.SRTCPReplayProtection(replayWindow))
}

// serve runs the session until its control connection fails or it is
// closed.
func (s *session) serve() {
	s.mu.Lock()
	if s.shut.Load() {
		s.mu.Unlock()
		return
	}
	s.wg.Add(2)
	s.mu.Unlock()
	go s.receive()
	go s.tick()
	err := s.announceAll()
	for err == nil {
		var m *msg
		if m, err = s.c.recv(); err == nil {
			err = s.handle(m)
		}
	}
	if errors.Is(err, ErrProtocol) {
		s.l.cnt.protocolErrors.Add(1)
	}
}

// announceAll offers every track of the link, then says so.
func (s *session) announceAll() error {
	for id, t := range s.l.snapshotOffers() {
		if err := s.startRelay(id, t); err != nil {
			return err
		}
	}
	return s.c.send(&msg{T: msgSynced})
}

func (s *session) handle(m *msg) error {
	switch m.T {
	case msgTrack:
		return s.addInbound(m)
	case msgSynced:
		seen := s.inboundIDs()
		s.l.endRemotes(func(id string) bool { _, ok := seen[id]; return !ok })
	case msgEnd:
		s.removeInbound(m.ID)
		s.l.endRemotes(func(id string) bool { return id == m.ID })
	case msgMutes:
		if rt := s.l.Remote(m.ID); rt != nil {
			rt.mute.Store(m.Sources)
		}
	case msgMute:
		if t := s.l.offer(m.ID); t != nil {
			t.SetMute(forward.MuteSource(m.Source), m.On)
			s.pokeTick()
		}
	case msgPause, msgResume:
		s.mu.Lock() // SetOpen is an atomic store: no callback under the lock
		if r := s.relayByID[m.ID]; r != nil {
			r.paused = m.T == msgPause
			if r.sub != nil {
				r.sub.SetOpen(!r.paused)
			}
		}
		s.mu.Unlock()
	case msgPing:
	default:
		s.l.cnt.protocolErrors.Add(1) // unknown messages are skipped: newer peers may send more
	}
	return nil
}

// tick sends pings and keepalive RTCP (which lets a listening peer learn
// where to send media) and reports mute changes of offered tracks.
func (s *session) tick() {
	defer s.wg.Done()
	t := time.NewTicker(s.l.cfg.Timeout / 5)
	defer t.Stop()
	var rr [8]byte
	rr[0], rr[1], rr[3] = 0x80, 201, 1 // an empty receiver report
	binary.BigEndian.PutUint32(rr[4:], s.fbSSRC)
	if s.dialer {
		_ = s.WriteRTCP(rr[:])
	}
	for {
		select {
		case <-s.done:
			return
		case <-s.poke:
			s.reportMutes()
		case <-t.C:
			_ = s.c.send(&msg{T: msgPing})
			_ = s.WriteRTCP(rr[:])
			s.reportMutes()
		}
	}
}

func (s *session) pokeTick() {
	select {
	case s.poke <- struct{}{}:
	default:
	}
}

func (s *session) reportMutes() {
	s.mu.Lock()
	rs := make([]*relay, 0, len(s.relayByID))
	for _, r := range s.relayByID {
		rs = append(rs, r)
	}
	s.mu.Unlock()
	for _, r := range rs {
		m := uint32(r.track.MuteSources())
		if r.sentMute.Swap(m) != m {
			_ = s.c.send(&msg{T: msgMutes, ID: r.id, Sources: m})
		}
	}
}

// WriteRTCP protects pkt and sends it to the peer: the feedback of this
// side's inbound tracks (PLI, NACK) and keepalives. Safe for concurrent
// use. It never waits for room in the socket buffer (on Linux): a full
// buffer drops the packet, counted in WouldBlock, and the error wraps
// transport.ErrBufferFull (feedback is repeated or superseded anyway).
func (s *session) WriteRTCP(pkt []byte) error {
	if s.shut.Load() {
		return transport.ErrClosed
	}
	peer := s.peer.Load()
	if peer == nil {
		return ErrNotConnected
	}
	s.rtcpMu.Lock()
	out, err := s.rtcpCtx.EncryptRTCP(s.rtcpBuf[:0], pkt, nil)
	if err == nil {
		s.rtcpBuf = out[:0]
		err = s.rtcpOut.send(out, *peer)
	}
	s.rtcpMu.Unlock()
	if err != nil {
		if errors.Is(err, transport.ErrBufferFull) {
			s.l.cnt.wouldBlock.Add(1)
		} else {
			s.l.cnt.sendErrors.Add(1)
		}
		return err
	}
	s.l.cnt.rtcpOut.Add(1)
	return nil
}

// close ends the session: the sockets close, the goroutines stop, and the
// origin's subscribers for this session are closed.
func (s *session) close() {
	s.once.Do(func() {
		s.mu.Lock()
		s.shut.Store(true) // under mu: serve adds to wg only before this
		s.mu.Unlock()
		close(s.done)
		s.c.conn.Close()
		s.conn.Close()
		s.wg.Wait()
		s.mu.Lock()
		rs := s.relayByID
		s.relayByID = map[string]*relay{}
		s.mu.Unlock()
		for _, r := range rs {
			if r.sub != nil { // nil: startRelay is still subscribing, and closes it itself
				r.sub.Close()
			}
		}
	})
}
