package cluster

import (
	"encoding/base64"
	"encoding/json"
	"fmt"

	"github.com/callcore/callcore/channel"
)

// Subjects, buckets and the stream. A channel id can hold any byte, so it
// is written base64url (RawURLEncoding) in subjects and keys.
const (
	eventStream  = "CALLCORE_EVENTS"
	eventPrefix  = "calls.ev."
	opPrefix     = "calls.op."
	nodesBucket  = "callcore_nodes"
	ownersBucket = "callcore_owners"
	snapsBucket  = "callcore_snapshots"
	headerNode   = "Callcore-Node"
	headerFence  = "Callcore-Fence"
	maxWireBytes = 1 << 20
	maxNodeIDLen = 64
	opNameMaxLen = 32
)

func chanKey(id string) string      { return base64.RawURLEncoding.EncodeToString([]byte(id)) }
func eventSubject(id string) string { return eventPrefix + chanKey(id) }

// Op is one call-API operation on a channel by an authenticated user, as
// it crosses nodes. Name is the call API's operation name; the other
// fields are its arguments (those it does not use stay empty).
type Op struct {
	Name    string               `json:"op"`
	Channel string               `json:"channel"`
	Actor   string               `json:"actor"`
	Tracks  []channel.TrackInfo  `json:"tracks,omitempty"`
	Users   []string             `json:"users,omitempty"`
	Modes   []channel.UserMode   `json:"modes,omitempty"`
	Names   []string             `json:"names,omitempty"`
	Mute    bool                 `json:"mute,omitempty"`
	Kind    channel.Kind         `json:"kind,omitempty"`
	Target  string               `json:"target,omitempty"`
	Reason  string               `json:"reason,omitempty"`
	Config  channel.CallConfig   `json:"config"`
	Patch   *channel.ConfigPatch `json:"patch,omitempty"`
	// Node is the node the actor is connected to (set by the cluster).
	Node string `json:"node"`
}

// Operation names.
const (
	OpJoin         = "join"
	OpLeave        = "leave"
	OpDelete       = "delete"
	OpAddUsers     = "addUsers"
	OpDelUsers     = "delUsers"
	OpModUsers     = "modUsers"
	OpConfigure    = "configure"
	OpAddTracks    = "addTracks"
	OpRemoveTracks = "removeTracks"
	OpMuteTracks   = "muteTracks"
	OpMuteUser     = "muteUser"
	OpUpdateConfig = "updateConfig"
)

// opReply is the owner's answer: the sequence number of the channel's last
// event when the operation returned (its events included), or an error.
type opReply struct {
	Seq  uint64 `json:"seq"`
	Code string `json:"code,omitempty"`
	Msg  string `json:"msg,omitempty"`
}

func decodeOp(b []byte) (Op, error) {
	var op Op
	if len(b) > maxWireBytes {
		return op, fmt.Errorf("%w: operation of %d bytes", ErrBadMessage, len(b))
	}
	if err := json.Unmarshal(b, &op); err != nil {
		return op, fmt.Errorf("%w: operation: %v", ErrBadMessage, err)
	}
	if op.Name == "" || len(op.Name) > opNameMaxLen || op.Node == "" {
		return op, fmt.Errorf("%w: operation without a name or node", ErrBadMessage)
	}
	return op, nil
}

func decodeReply(b []byte) (opReply, error) {
	var r opReply
	if err := json.Unmarshal(b, &r); err != nil {
		return r, fmt.Errorf("%w: reply: %v", ErrBadMessage, err)
	}
	return r, nil
}

// decodeEvent decodes a channel event as the owner published it.
func decodeEvent(b []byte) (*channel.Event, error) {
	if len(b) > maxWireBytes {
		return nil, fmt.Errorf("%w: event of %d bytes", ErrBadMessage, len(b))
	}
	ev := new(channel.Event)
	if err := json.Unmarshal(b, ev); err != nil {
		return nil, fmt.Errorf("%w: event: %v", ErrBadMessage, err)
	}
	if ev.Seq == 0 || ev.Type == 0 || ev.Type.String() == fmt.Sprintf("EventType(%d)", uint8(ev.Type)) {
		return nil, fmt.Errorf("%w: event without a sequence number or type", ErrBadMessage)
	}
	return ev, nil
}

// snapshot is what the owner keeps in the snapshot bucket after its
// operations: the channel's state, the node of each active user, the
// stream sequence of the last event the state reflects, and the owner's
// fencing token.
type snapshot struct {
	State     channel.State     `json:"state"`
	Nodes     map[string]string `json:"nodes"`
	StreamSeq uint64            `json:"streamSeq"`
	Fence     uint64            `json:"fence"`
}

func decodeSnapshot(b []byte) (snapshot, error) {
	var s snapshot
	if err := json.Unmarshal(b, &s); err != nil {
		return s, fmt.Errorf("%w: snapshot: %v", ErrBadMessage, err)
	}
	if s.Nodes == nil {
		s.Nodes = map[string]string{}
	}
	return s, nil
}

// ownerValue is the ownership key's value.
type ownerValue struct {
	Node   string `json:"node"`
	Closed bool   `json:"closed,omitempty"`
}

// NodeInfo is a live node as its membership key says.
type NodeInfo struct {
	ID       string `json:"id"`
	LinkAddr string `json:"link,omitempty"`
	Channels int    `json:"channels"` // channels it owns
	Users    int    `json:"users"`    // users connected to it, in channels
}
