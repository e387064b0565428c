package cluster

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/callcore/callcore/channel"
	"github.com/callcore/callcore/forward"
	"github.com/callcore/callcore/plane"
	"github.com/callcore/callcore/plane/linkplane"
	"github.com/callcore/callcore/transport/link"
)

// Media across nodes. A node that follows a channel and learns of a
// track of a user on another node (the origin) asks the origin, by
// request/reply on calls.link.<origin>, for the channel's tracks. The
// origin keeps one link per far node, on which it listens (on its
// LinkAddr, a free port); it attaches one linkplane.Endpoint per channel
// and far node to its plane, as a pseudo-user, which offers its own
// users' tracks (and no others: a track another node relays is fetched
// from its own origin). The far node dials that link once, whatever the
// number of channels and subscribers, and publishes each remote track in
// its plane as the remote user's track. So a track crosses to a node
// once. When the far node has no more users of the origin's node in a
// channel, or no more users in it, it tells the origin, which detaches
// the pseudo-user; a link with no channel left is closed on both sides.

const linkPrefix = "calls.link."

// linkReq asks the origin to start (On) or stop offering a channel's
// tracks to node From.
type linkReq struct {
	From    string `json:"from"`
	Channel string `json:"channel"`
	On      bool   `json:"on"`
}

type linkReply struct {
	Addr  string `json:"addr,omitempty"`
	Error string `json:"error,omitempty"`
}

// errNotLocal refuses a track of a user of another node: it is not
// relayed through this one.
var errNotLocal = errors.New("cluster: track of another node's user")

// LinkTLS protects the links between nodes: Server is used by the node
// offering tracks (it listens), Client by the node receiving them (it
// dials). Both should authenticate the peer (mutual TLS).
type LinkTLS struct {
	Server, Client *tls.Config
}

// MediaStats counts a node's media across nodes.
type MediaStats struct {
	LinksOut      int    // links on which this node offers its users' tracks, open now
	LinksIn       int    // links from which this node receives tracks, open now
	LinksOpened   uint64 // links made, both kinds
	LinksClosed   uint64 // links closed as idle, both kinds
	RemoteTracks  uint64 // remote tracks published on the local plane
	RequestErrors uint64 // link requests that failed (retried on the next track)
}

// hub is a node's media across nodes; nil without a plane or LinkAddr.
type hub struct {
	n   *Node
	pl  *plane.Plane
	tls *LinkTLS
	via func(addr string) string // tests: the address to dial for a link's; nil dials it

	opened, closed, remote, reqErrs atomic.Uint64

	mu  sync.Mutex          // guards out, in; never held while closing a link or calling the plane
	out map[string]*outLink // by far node
	in  map[string]*inLink  // by origin node
	// sent is the RTP packets sent to each far node over its closed links.
	sent map[string]uint64
}

// outLink is a link on which this node offers tracks to one far node.
type outLink struct {
	l     *link.Link
	chans map[string]bool // channels the far node asked for
}

// inLink is a link from which this node receives one origin's tracks.
type inLink struct {
	l       *link.Link // nil until the origin answered
	addr    string
	chans   map[string]bool
	pubs    map[string]*linkplane.Publication // by track id
	pending map[string]*link.RemoteTrack      // offered before the plane knew the track
	known   map[string]bool                   // tracks the plane was told of (trackAdded)
}

// pseudoUser is the far node's user id in a channel on the origin's plane.
func pseudoUser(node string) string { return "\x00node:" + node }

// trackID names a channel's track on a link shared by channels.
func trackID(ch, user, name string) string {
	e := base64.RawURLEncoding.EncodeToString
	return e([]byte(ch)) + "." + e([]byte(user)) + "." + e([]byte(name))
}

func parseTrackID(id string) (ch, user, name string, ok bool) {
	parts := strings.Split(id, ".")
	if len(parts) != 3 {
		return "", "", "", false
	}
	var out [3][]byte
	for i, p := range parts {
		b, err := base64.RawURLEncoding.Strict().DecodeString(p) // one spelling per ID
		if err != nil {
			return "", "", "", false
		}
		out[i] = b
	}
	ch, user, name = string(out[0]), string(out[1]), string(out[2])
	// The decoder skips \r and \n: only the one spelling trackID gives
	// is an ID.
	if trackID(ch, user, name) != id {
		return "", "", "", false
	}
	return ch, user, name, true
}

// nodeOf returns the node of an active user of a followed channel, "" if
// unknown.
func (n *Node) nodeOf(ch, user string) string {
	n.mu.Lock()
	f := n.follows[ch]
	n.mu.Unlock()
	if f == nil {
		return ""
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.nodes[user]
}

// usersOn reports whether a followed channel has an active user on node.
func (n *Node) usersOn(ch, node string) bool {
	n.mu.Lock()
	f := n.follows[ch]
	n.mu.Unlock()
	if f == nil {
		return false
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.ended {
		return false
	}
	for _, nd := range f.nodes {
		if nd == node {
			return true
		}
	}
	return false
}

// hubMedia is the plane as the followers tell it the channels' media
// changes, with the hub watching for remote tracks.
type hubMedia struct {
	*plane.Plane
	h *hub
}

func (m hubMedia) TrackAdded(ch, user string, info channel.TrackInfo, s channel.MuteState) {
	m.Plane.TrackAdded(ch, user, info, s)
	m.h.trackAdded(ch, user, info.Name)
}

func (m hubMedia) UserGone(ch, user string) {
	m.Plane.UserGone(ch, user)
	m.h.n.goTrack(func() { m.h.recheck(ch) })
}

func (h *hub) trackAdded(ch, user, name string) {
	origin := h.n.nodeOf(ch, user)
	if origin == "" || origin == h.n.cfg.Node {
		return
	}
	id := trackID(ch, user, name)
	h.mu.Lock()
	in := h.in[origin]
	if in == nil {
		in = &inLink{chans: map[string]bool{}, pubs: map[string]*linkplane.Publication{},
			pending: map[string]*link.RemoteTrack{}, known: map[string]bool{}}
		h.in[origin] = in
	}
	in.known[id] = true
	want := !in.chans[ch]
	in.chans[ch] = true
	h.mu.Unlock()
	h.tryPublish(origin, id)
	if want {
		h.n.goTrack(func() { h.want(origin, ch) })
	}
}

// want asks origin for channel ch's tracks and dials its link. A request
// that fails is tried again a few times (0.1 s, doubling), then left to
// the channel's next track.
func (h *hub) want(origin, ch string) {
	r, err := h.request(origin, linkReq{From: h.n.cfg.Node, Channel: ch, On: true})
	for wait := 100 * time.Millisecond; err != nil && wait <= 2*time.Second; wait *= 2 {
		h.reqErrs.Add(1)
		select {
		case <-h.n.ctx.Done():
			return
		case <-time.After(wait):
		}
		if !h.wanted(origin, ch) {
			return
		}
		r, err = h.request(origin, linkReq{From: h.n.cfg.Node, Channel: ch, On: true})
	}
	h.mu.Lock()
	in := h.in[origin]
	if in == nil || !in.chans[ch] {
		h.mu.Unlock()
		return // dropped meanwhile
	}
	if err != nil {
		delete(in.chans, ch) // asked again on the next track
		h.mu.Unlock()
		h.reqErrs.Add(1)
		return
	}
	var old *link.Link
	if in.l == nil || in.addr != r.Addr {
		old = in.l
		dial := r.Addr
		if h.via != nil {
			dial = h.via(dial)
		}
		l, err := link.New(link.Config{Dial: dial, TLS: h.clientTLS(),
			OnTrack: func(rt *link.RemoteTrack) { h.publish(origin, rt) }, OnTrackEnded: func(rt *link.RemoteTrack) { h.ended(origin, rt) }})
		if err != nil {
			delete(in.chans, ch)
			h.mu.Unlock()
			h.reqErrs.Add(1)
			return
		}
		in.l, in.addr = l, r.Addr
		h.opened.Add(1)
	}
	h.mu.Unlock()
	if old != nil {
		_ = old.Close()
	}
}

func (h *hub) wanted(origin, ch string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	in := h.in[origin]
	return in != nil && in.chans[ch]
}

// nodeGone closes the links with a node whose membership ended: what it
// was offered is detached, what it offered stops feeding the plane (its
// users' tracks end with their user:left).
func (h *hub) nodeGone(node string) {
	h.mu.Lock()
	var chans []string
	var ls []*link.Link
	if o := h.out[node]; o != nil {
		delete(h.out, node)
		for ch := range o.chans {
			chans = append(chans, ch)
		}
		h.sent[node] += o.l.Stats().RTPOut
		ls = append(ls, o.l)
	}
	var pubs []*linkplane.Publication
	if in := h.in[node]; in != nil {
		delete(h.in, node)
		for _, p := range in.pubs {
			pubs = append(pubs, p)
		}
		if in.l != nil {
			ls = append(ls, in.l)
		}
	}
	h.mu.Unlock()
	for _, ch := range chans {
		h.pl.UserGone(ch, pseudoUser(node))
	}
	for _, p := range pubs {
		_ = p.Close()
	}
	for _, l := range ls {
		_ = l.Close()
		h.closed.Add(1)
	}
}

func (h *hub) clientTLS() *tls.Config {
	if h.tls == nil {
		return nil
	}
	return h.tls.Client
}

func (h *hub) request(node string, req linkReq) (linkReply, error) {
	b, _ := json.Marshal(req)
	ctx, cancel := context.WithTimeout(h.n.ctx, h.n.cfg.OpTimeout)
	defer cancel()
	msg, err := h.n.nc.RequestWithContext(ctx, linkPrefix+node, b)
	if err != nil {
		return linkReply{}, fmt.Errorf("%w: link from %s: %v", ErrUnavailable, node, err)
	}
	var r linkReply
	if err := json.Unmarshal(msg.Data, &r); err != nil {
		return linkReply{}, fmt.Errorf("%w: link reply: %v", ErrBadMessage, err)
	}
	if r.Error != "" {
		return r, fmt.Errorf("%w: link from %s: %s", ErrUnavailable, node, r.Error)
	}
	return r, nil
}

// publish makes a remote track of origin's link the remote user's track
// on the local plane; a track the plane does not know yet waits for its
// track:add (trackAdded publishes it then).
func (h *hub) publish(origin string, rt *link.RemoteTrack) {
	if _, _, _, ok := parseTrackID(rt.ID()); !ok {
		h.n.stats.BadMessages.Add(1)
		return
	}
	h.mu.Lock()
	in := h.in[origin]
	if in == nil || in.pubs[rt.ID()] != nil {
		h.mu.Unlock()
		return
	}
	in.pending[rt.ID()] = rt
	h.mu.Unlock()
	h.tryPublish(origin, rt.ID())
}

// tryPublish publishes a pending remote track. The plane learns of a
// track before trackAdded marks it known: a track refused as unknown
// while it is known is tried again.
func (h *hub) tryPublish(origin, id string) {
	ch, user, name, _ := parseTrackID(id)
	for range 2 {
		h.mu.Lock()
		in := h.in[origin]
		var rt *link.RemoteTrack
		if in != nil {
			rt = in.pending[id]
			delete(in.pending, id)
		}
		h.mu.Unlock()
		if rt == nil {
			return
		}
		p, err := linkplane.Publish(h.pl, ch, user, name, rt)
		h.mu.Lock()
		in = h.in[origin]
		switch {
		case in == nil:
			h.mu.Unlock()
			if p != nil {
				_ = p.Close()
			}
			return
		case err == nil:
			in.pubs[id] = p
			h.mu.Unlock()
			h.remote.Add(1)
			return
		case errors.Is(err, plane.ErrUnknownTrack):
			in.pending[id] = rt
			if !in.known[id] {
				h.mu.Unlock()
				return
			}
		}
		h.mu.Unlock()
	}
}

// ended stops feeding the plane from a track the origin withdrew.
func (h *hub) ended(origin string, rt *link.RemoteTrack) {
	h.mu.Lock()
	var p *linkplane.Publication
	if in := h.in[origin]; in != nil {
		p = in.pubs[rt.ID()]
		delete(in.pubs, rt.ID())
		delete(in.pending, rt.ID())
		delete(in.known, rt.ID())
	}
	h.mu.Unlock()
	if p != nil {
		_ = p.Close()
	}
}

// recheck drops the origins that have no active user left in channel ch
// (or all of them, when this node follows ch no more).
func (h *hub) recheck(ch string) {
	h.mu.Lock()
	var drop []string
	for origin, in := range h.in {
		if in.chans[ch] {
			drop = append(drop, origin)
		}
	}
	h.mu.Unlock()
	for _, origin := range drop {
		if !h.n.usersOn(ch, origin) {
			h.drop(origin, ch)
		}
	}
}

// drop stops receiving channel ch from origin; the link closes when it
// carries no channel.
func (h *hub) drop(origin, ch string) {
	h.mu.Lock()
	in := h.in[origin]
	if in == nil || !in.chans[ch] {
		h.mu.Unlock()
		return
	}
	delete(in.chans, ch)
	var l *link.Link
	var pubs []*linkplane.Publication
	if len(in.chans) == 0 {
		delete(h.in, origin)
		l = in.l
		for _, p := range in.pubs {
			pubs = append(pubs, p)
		}
	}
	h.mu.Unlock()
	_, _ = h.request(origin, linkReq{From: h.n.cfg.Node, Channel: ch})
	for _, p := range pubs {
		_ = p.Close()
	}
	if l != nil {
		_ = l.Close()
		h.closed.Add(1)
	}
}

// serveLink answers a far node's link request; without media across
// nodes, with an error.
func (n *Node) serveLink(msg *nats.Msg) {
	if h := n.hubOf(); h != nil {
		h.serve(msg)
		return
	}
	b, _ := json.Marshal(linkReply{Error: "no media links on this node"})
	_ = msg.Respond(b)
}

// serve answers a far node's link request, one at a time (the
// subscription's goroutine).
func (h *hub) serve(msg *nats.Msg) {
	var req linkReq
	reply := func(r linkReply) {
		b, _ := json.Marshal(r)
		_ = msg.Respond(b)
	}
	if len(msg.Data) > maxWireBytes || json.Unmarshal(msg.Data, &req) != nil || checkNodeID(req.From) != nil ||
		req.From == h.n.cfg.Node || req.Channel == "" {
		h.n.stats.BadMessages.Add(1)
		reply(linkReply{Error: "bad request"})
		return
	}
	if !req.On {
		h.stopOffer(req.From, req.Channel)
		reply(linkReply{})
		return
	}
	addr, err := h.offer(req.From, req.Channel)
	if err != nil {
		reply(linkReply{Error: err.Error()})
		return
	}
	reply(linkReply{Addr: addr})
}

// offer attaches far node's pseudo-user to channel ch, on the link to far
// (made if there is none), and returns the link's address.
func (h *hub) offer(far, ch string) (string, error) {
	h.mu.Lock()
	o := h.out[far]
	if o == nil {
		var srv *tls.Config
		if h.tls != nil {
			srv = h.tls.Server
		}
		l, err := link.New(link.Config{Listen: net.JoinHostPort(h.n.cfg.LinkAddr, "0"), TLS: srv})
		if err != nil {
			h.mu.Unlock()
			return "", err
		}
		o = &outLink{l: l, chans: map[string]bool{}}
		h.out[far] = o
		h.opened.Add(1)
	}
	first := !o.chans[ch]
	o.chans[ch] = true
	l := o.l
	h.mu.Unlock()
	if first {
		ep := farEndpoint{n: h.n, ch: ch, ep: linkplane.Endpoint{Link: l, ID: func(from, name string) string { return trackID(ch, from, name) }}}
		if err := h.pl.Attach(ch, pseudoUser(far), ep); err != nil && !errors.Is(err, plane.ErrAttached) {
			return "", err
		}
	}
	return l.Addr().String(), nil
}

// stopOffer detaches far's pseudo-user from ch; the link closes when it
// offers no channel.
func (h *hub) stopOffer(far, ch string) {
	h.mu.Lock()
	o := h.out[far]
	if o == nil || !o.chans[ch] {
		h.mu.Unlock()
		return
	}
	delete(o.chans, ch)
	var l *link.Link
	if len(o.chans) == 0 {
		delete(h.out, far)
		l = o.l
		h.sent[far] += l.Stats().RTPOut // as it closes
	}
	h.mu.Unlock()
	h.pl.UserGone(ch, pseudoUser(far))
	if l != nil {
		_ = l.Close()
		h.closed.Add(1)
	}
}

// close closes every link.
func (h *hub) close() {
	h.mu.Lock()
	var ls []*link.Link
	for _, o := range h.out {
		ls = append(ls, o.l)
	}
	var pubs []*linkplane.Publication
	for _, in := range h.in {
		if in.l != nil {
			ls = append(ls, in.l)
		}
		for _, p := range in.pubs {
			pubs = append(pubs, p)
		}
	}
	h.out, h.in = map[string]*outLink{}, map[string]*inLink{}
	h.mu.Unlock()
	for _, p := range pubs {
		_ = p.Close()
	}
	for _, l := range ls {
		_ = l.Close()
	}
}

// farEndpoint offers a channel's tracks of this node's users over a link.
type farEndpoint struct {
	n  *Node
	ch string
	ep linkplane.Endpoint
}

func (e farEndpoint) local(from string) bool { return e.n.nodeOf(e.ch, from) == e.n.cfg.Node }

func (e farEndpoint) Subscribe(from string, info channel.TrackInfo, t *forward.Track) (plane.Reception, error) {
	if !e.local(from) {
		return nil, errNotLocal
	}
	return e.ep.Subscribe(from, info, t)
}

func (e farEndpoint) SubscribeLayers(from string, info channel.TrackInfo, l *forward.Layers, max forward.Layer) (plane.LayerReception, error) {
	if !e.local(from) {
		return nil, errNotLocal
	}
	return e.ep.SubscribeLayers(from, info, l, max)
}

// MediaStats returns the node's counters of media across nodes.
func (n *Node) MediaStats() MediaStats {
	h := n.hubOf()
	if h == nil {
		return MediaStats{}
	}
	h.mu.Lock()
	s := MediaStats{LinksOut: len(h.out), LinksIn: len(h.in)}
	h.mu.Unlock()
	s.LinksOpened, s.LinksClosed, s.RemoteTracks, s.RequestErrors = h.opened.Load(), h.closed.Load(), h.remote.Load(), h.reqErrs.Load()
	return s
}

// LinkPackets returns the RTP packets this node has sent to each far
// node over the links it offered its users' tracks on, closed ones
// included: one stream per track crosses, whatever the far node's
// subscribers.
func (n *Node) LinkPackets() map[string]uint64 {
	out := map[string]uint64{}
	h := n.hubOf()
	if h == nil {
		return out
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for far, c := range h.sent {
		out[far] = c
	}
	for far, o := range h.out {
		out[far] += o.l.Stats().RTPOut
	}
	return out
}

// Links returns, for tests and metrics, the links this node offers on
// (by far node) and receives from (by origin node).
func (n *Node) Links() (out, in map[string]link.Stats) {
	out, in = map[string]link.Stats{}, map[string]link.Stats{}
	h := n.hubOf()
	if h == nil {
		return out, in
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for k, o := range h.out {
		out[k] = o.l.Stats()
	}
	for k, i := range h.in {
		if i.l != nil {
			in[k] = i.l.Stats()
		}
	}
	return out, in
}

func (n *Node) hubOf() *hub {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.hub
}
