// Package cluster runs callcore's channels on several nodes through NATS
// JetStream: any node serves any user, each channel runs on one owner
// node, and every node with users in a channel follows its events in the
// one order the owner gave them.
//
// A [Node] registers itself in a key-value bucket whose TTL is its lease
// (renewed every TTL/4), with its link address and load. A channel is
// created on the node its creator is connected to, which claims it with a
// compare-and-set create of the channel's key in the owners bucket (the
// key's revision is the node's fencing token) and runs the real
// channel.Channel in a channel.Registry of its own. Every event of the
// channel is published to the stream (subject calls.ev.<channel id,
// base64url>, a message id for de-duplication, the expected last sequence
// of the subject so that a node that lost the channel cannot write), and
// a snapshot of the channel (channel.State, the node of each user, the
// stream sequence it reflects) is kept in the snapshots bucket.
//
// A node with users in a channel follows it: an ordered consumer of the
// channel's subject, from the last snapshot on, applies each event to a
// replica (channel.State.Apply), which answers getUsers, and hands it to
// the node's [Session]s it is for (channel.Recipients). Operations go to
// the owner (request/reply on calls.op.<node>, with the authenticated
// user id) and come back with the sequence number of the channel's last
// event; the caller waits until its replica reflects it.
//
// When the owner's lease ends (its key expires or is deleted), the nodes
// that follow the channel race to update the key against its last
// revision; the one that wins rebuilds the channel from the snapshot and
// the events after it (channel.Registry.Restore) and numbers on. The users
// of nodes whose membership ended are made to leave.
//
// With a plane ([Node.UseMedia]) and a LinkAddr, the channels' media
// crosses nodes over transport/link: a node with users in a channel asks
// the node of each remote publisher (calls.link.<node>) for the channel's
// tracks; that node offers its own users' tracks over one link per far
// node (a linkplane.Endpoint per channel, attached to its plane as a
// pseudo-user), and the far node publishes each on its plane as the
// remote user's track, once whatever its subscribers. Links close when
// no channel needs them.
//
// See docs/scaling.md.
package cluster
