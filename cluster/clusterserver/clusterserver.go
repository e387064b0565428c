// Package clusterserver connects a cluster.Node to the reference call
// server: Of(node) is a server.Cluster.
package clusterserver

import (
	"context"

	"github.com/callcore/callcore/channel"
	"github.com/callcore/callcore/cluster"
	"github.com/callcore/callcore/server"
)

// Of returns node as the server's Cluster.
func Of(node *cluster.Node) server.Cluster { return adapter{node} }

type adapter struct{ n *cluster.Node }

func (a adapter) UseMedia(m channel.Media) { a.n.UseMedia(m) }

func (a adapter) Create(ctx context.Context, actor, id string, opts channel.CreateOptions) (server.ClusterStay, error) {
	s, err := a.n.Create(ctx, actor, id, opts)
	if err != nil {
		return nil, err
	}
	return s, nil
}

func (a adapter) Join(ctx context.Context, actor, id string, tracks []channel.TrackInfo) (server.ClusterStay, error) {
	s, err := a.n.Join(ctx, actor, id, tracks)
	if err != nil {
		return nil, err
	}
	return s, nil
}
