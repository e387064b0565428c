package server

import (
	"context"

	"github.com/callcore/callcore/channel"
)

// Cluster shares the server's channels with other call servers (package
// cluster provides one, over NATS JetStream): with Config.Cluster set,
// create and join go to it instead of the server's own registry, and a
// channel may run on another node while its users are on this one. The
// server gives it its media plane once, before serving (UseMedia): the
// cluster tells the plane of the tracks and mutes of the channels this
// node has users in, in each channel's event order.
type Cluster interface {
	UseMedia(m channel.Media)
	// Create creates channel id with actor, connected here, as its owner.
	Create(ctx context.Context, actor, id string, opts channel.CreateOptions) (ClusterStay, error)
	// Join makes actor, connected here, an active user of channel id.
	Join(ctx context.Context, actor, id string, tracks []channel.TrackInfo) (ClusterStay, error)
}

// ClusterStay is a user's stay in a channel of the cluster: the channel's
// events for the user, from the one that made it active, and the
// channel's operations, as channel.Channel has them.
type ClusterStay interface {
	call
	events
}

// call is what a stay uses of its channel: *channel.Channel, or a
// ClusterStay.
type call interface {
	ID() string
	Owner() string
	Config() channel.CallConfig
	Leave(user string) error
	Delete(actor, reason string) error
	AddUsers(actor string, ids []string) error
	DelUsers(actor string, ids []string) error
	ModUsers(actor string, users []channel.UserMode) error
	GetUsers(actor string) (channel.Snapshot, error)
	UpdateConfig(actor string, p channel.ConfigPatch) error
	AddTracks(actor string, tracks []channel.TrackInfo) error
	RemoveTracks(actor string, names []string) error
	MuteTracks(actor string, names []string, a channel.MuteAction) error
	MuteUser(actor, target string, kind channel.Kind, a channel.MuteAction, reason string) error
}

// events is a stay's event stream: *channel.Subscription, or a
// ClusterStay.
type events interface {
	C() <-chan *channel.Event
	Next(ctx context.Context) (channel.Event, error)
}

// joinCluster creates or joins through the cluster. A join request waits
// for its answer here (bounded by the cluster's operation timeout).
func (ss *session) joinCluster(ctx context.Context, create, resume bool, c createData, tracks []channel.TrackInfo, ids map[string]string) (any, error) {
	if resume {
		if st := ss.srv.adopt(c.ChannelID, ss.user, ss); st != nil {
			return ss.resume(st)
		}
	}
	var cs ClusterStay
	var err error
	if create {
		opts := channel.CreateOptions{Tracks: tracks, Users: c.Users}
		if c.Config != nil {
			if opts.Config, err = configFromWire(*c.Config); err != nil {
				return nil, err
			}
		}
		cs, err = ss.srv.cfg.Cluster.Create(ctx, ss.user, c.ChannelID, opts)
	} else {
		cs, err = ss.srv.cfg.Cluster.Join(ctx, ss.user, c.ChannelID, tracks)
	}
	if err != nil {
		return nil, err
	}
	return ss.joined(ctx, cs, cs, ids)
}
