// Package linkplane carries a channel's tracks over links between callcore
// nodes (transport/link): it is the adapter between the transport, which
// knows nothing of channels, and the plane.
//
// On the origin node, Endpoint is the far node's connection in a channel:
// attached as a user, it is handed every other user's track and offers it
// over the link under the ID "user/name". Each track crosses through its
// own relay (a forward.Subscriber writing into a forward.Track the link
// offers), so the plane can gate it (a cleared receive permission, lastN)
// without touching the link, and a layered track crosses as one stream
// that moves between layers (SetMaxLayer).
//
// On the far node, Publish makes a link's remote track a channel user's
// track on that node's plane: a plane track fed by a subscriber of the
// link.RemoteTrack, so it stays the same track across link drops (the link
// splices the subscriber onto each new session's track) and the far
// channel's muting and permissions apply to it.
package linkplane

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"

	"github.com/callcore/callcore/channel"
	"github.com/callcore/callcore/forward"
	"github.com/callcore/callcore/plane"
	"github.com/callcore/callcore/transport/link"
)

// ErrNoCodec is returned for a layered track none of whose layers exists.
var ErrNoCodec = errors.New("linkplane: no layer to take the codec from")

// relay feeds a track from a subscriber: each packet the subscriber
// writes, the track takes as a sender's. The subscriber is fed in its
// source's exclusive section, so WriteRTP is never called concurrently
// and buf is its own.
type relay struct {
	sub *forward.Subscriber
	out *forward.Track
	buf []byte
}

// WriteRTP hands the packet to the relay's track.
func (r *relay) WriteRTP(header, payload []byte) error {
	n := len(header) + len(payload)
	if n > len(r.buf) {
		return fmt.Errorf("%w: %d bytes", forward.ErrOversized, n)
	}
	copy(r.buf, header)
	copy(r.buf[len(header):], payload)
	return r.out.HandleRTP(r.buf[:n])
}

// feedback is the relay track's Feedback: the key-frame requests and
// NACKs of its subscribers go upstream through the relay's subscriber,
// set once it exists.
type feedback struct {
	s atomic.Pointer[forward.Subscriber]
}

func (f *feedback) WriteRTCP(pkt []byte) error {
	s := f.s.Load()
	if s == nil {
		return forward.ErrClosed
	}
	return s.HandleRTCP(pkt)
}

// newRelay makes a relay of a stream of codec: mk makes its track, sub
// its subscriber (which may start writing at once).
func newRelay(codec forward.TrackConfig, mk func(forward.TrackConfig) (*forward.Track, error),
	sub func(forward.SubscriberConfig) (*forward.Subscriber, error)) (*relay, error) {
	ssrc := rand.Uint32() | 1
	size := codec.MaxPacketSize
	if size <= 0 {
		size = 1500
	}
	fb := &feedback{}
	out, err := mk(forward.TrackConfig{Kind: codec.Kind, MimeType: codec.MimeType, ClockRate: codec.ClockRate,
		PayloadType: codec.PayloadType, SSRC: ssrc, Feedback: fb, MaxPacketSize: size})
	if err != nil {
		return nil, err
	}
	r := &relay{out: out, buf: make([]byte, size)}
	s, err := sub(forward.SubscriberConfig{Writer: r, SSRC: ssrc, PayloadType: codec.PayloadType})
	if err != nil {
		out.Close()
		return nil, err
	}
	r.sub = s
	fb.s.Store(s)
	return r, nil
}

func (r *relay) close() error { return errors.Join(r.sub.Close(), r.out.Close()) }

// Endpoint is a link's far node attached to a channel on the origin node
// (plane.Attach(ch, farNodeUser, linkplane.Endpoint{Link: l})).
type Endpoint struct {
	Link *link.Link
	// ID, when set, names each track on the link (a link shared by
	// several channels names its tracks by channel too). Default
	// "from/name".
	ID func(from, name string) string
}

var _ plane.Endpoint = Endpoint{}

// Subscribe offers user from's track over the link as "from/name".
func (e Endpoint) Subscribe(from string, info channel.TrackInfo, t *forward.Track) (plane.Reception, error) {
	r, err := newRelay(t.Config(), forward.NewTrack, forward.NewSubscriber)
	if err != nil {
		return nil, err
	}
	if err := r.sub.SwitchTo(t); err != nil {
		r.close()
		return nil, err
	}
	return e.offer(e.id(from, info.Name), r)
}

func (e Endpoint) id(from, name string) string {
	if e.ID != nil {
		return e.ID(from, name)
	}
	return from + "/" + name
}

// SubscribeLayers offers user from's layered track over the link as one
// stream, fed by one layer at a time.
func (e Endpoint) SubscribeLayers(from string, info channel.TrackInfo, l *forward.Layers, max forward.Layer) (plane.LayerReception, error) {
	var codec *forward.TrackConfig
	for _, t := range l.Tracks() {
		if t != nil {
			c := t.Config()
			codec = &c
			break
		}
	}
	if codec == nil {
		return nil, ErrNoCodec
	}
	r, err := newRelay(*codec, forward.NewTrack, forward.NewSubscriber)
	if err != nil {
		return nil, err
	}
	lr, err := plane.AttachLayers(r.sub, l, max)
	if err != nil {
		r.close()
		return nil, err
	}
	rc, err := e.offer(e.id(from, info.Name), r)
	if err != nil {
		return nil, err
	}
	return &layerOffer{offer: rc, lr: lr}, nil
}

func (e Endpoint) offer(id string, r *relay) (*offer, error) {
	if err := e.Link.Offer(id, r.out); err != nil {
		r.close()
		return nil, err
	}
	return &offer{l: e.Link, id: id, r: r}, nil
}

// offer is one track offered over the link through its relay.
type offer struct {
	l    *link.Link
	id   string
	r    *relay
	once sync.Once
}

// SetOpen opens or closes the relay's gate: the link stays up, nothing
// crosses while closed, and it resumes on a key frame.
func (o *offer) SetOpen(open bool) { o.r.sub.SetOpen(open) }

// Close withdraws the track from the link and closes the relay.
func (o *offer) Close() error {
	var err error
	o.once.Do(func() { err = errors.Join(o.l.Withdraw(o.id), o.r.close()) })
	return err
}

// layerOffer is a layered track offered over the link.
type layerOffer struct {
	*offer
	lr plane.LayerReception
}

func (o *layerOffer) SetMaxLayer(max forward.Layer) error { return o.lr.SetMaxLayer(max) }

// Publication is a link's remote track published on a plane.
type Publication struct {
	r    *relay
	once sync.Once
}

// Publish publishes the link's remote track rt as user id's channel track
// name in ch on pl. The plane owns the published track (it ends with the
// user's channel track); Close stops feeding it.
func Publish(pl *plane.Plane, ch, id, name string, rt *link.RemoteTrack) (*Publication, error) {
	r, err := newRelay(rt.Config(), pl.NewTrack, rt.Subscribe)
	if err != nil {
		return nil, err
	}
	if err := pl.Published(ch, id, name, r.out); err != nil {
		r.close()
		return nil, err
	}
	return &Publication{r: r}, nil
}

// Close stops feeding the published track.
func (p *Publication) Close() error {
	var err error
	p.once.Do(func() { err = p.r.sub.Close() })
	return err
}

// Track returns the published track (the plane's).
func (p *Publication) Track() *forward.Track { return p.r.out }
