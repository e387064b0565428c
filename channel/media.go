package channel

import "time"

// MuteState is a track's effective mute state.
type MuteState uint8

// Mute states, from the layers of muting: an admin source (muteUser, a
// cleared send bit, a kind no longer allowed) means MuteAdmin; otherwise a
// self mute means MuteSelf; otherwise MuteNone.
const (
	// MuteNone: media flows.
	MuteNone MuteState = iota
	// MuteSelf: subscribers receive empty frames (black video, silence).
	MuteSelf
	// MuteAdmin: the track is not forwarded at all.
	MuteAdmin
)

func (s MuteState) String() string {
	switch s {
	case MuteNone:
		return "none"
	case MuteSelf:
		return "self"
	case MuteAdmin:
		return "admin"
	}
	return "MuteState(?)"
}

// TrackInfo describes a track to publish: its name, unique per user, and its
// kind (Audio or Video).
type TrackInfo struct {
	Name string
	Kind Kind
}

// Media is what a channel needs from the forwarding plane. Calls are made
// outside channel locks, in the channel's event order, from one goroutine
// per channel at a time. An operation's calls are made before it returns,
// unless another goroutine is making this channel's calls at that moment:
// that goroutine then makes them, before its own operation returns. Media
// may call the channel back, operations included: their calls are queued
// behind the current ones.
//
// A user Media has not heard of, or has been told is gone, receives
// (recv on); ReceiveChanged(false) follows a join without the recv bit.
type Media interface {
	// TrackAdded: a user published a track. state is its initial
	// effective mute state.
	TrackAdded(ch, user string, track TrackInfo, state MuteState)
	// TrackRemoved: the user stopped publishing the track.
	TrackRemoved(ch, user, track string)
	// MuteChanged: the effective state of a track changed (none / self =
	// empty frames / admin = not forwarded).
	MuteChanged(ch, user, track string, state MuteState)
	// ReceiveChanged: the user's recv bit changed (false pauses everything
	// forwarded to it, its connection kept; true resumes each track on a
	// key frame).
	ReceiveChanged(ch, user string, on bool)
	// UserGone: the user left, was removed or disconnected, or the channel
	// was deleted: tear down its publications and subscriptions.
	UserGone(ch, user string)
}

// ConfigMedia is an optional Media ability: a Media that implements it is
// told a channel's configuration each time a user joins (the owner's
// create included), before that user's tracks, and each time it changes;
// called like Media's other methods.
type ConfigMedia interface {
	ConfigChanged(ch string, cfg CallConfig)
}

// NopMedia is a Media that does nothing.
type NopMedia struct{}

// TrackAdded does nothing.
func (NopMedia) TrackAdded(string, string, TrackInfo, MuteState) {}

// TrackRemoved does nothing.
func (NopMedia) TrackRemoved(string, string, string) {}

// MuteChanged does nothing.
func (NopMedia) MuteChanged(string, string, string, MuteState) {}

// ReceiveChanged does nothing.
func (NopMedia) ReceiveChanged(string, string, bool) {}

// UserGone does nothing.
func (NopMedia) UserGone(string, string) {}

// Notifier delivers the newcall notification: sender added user to channel
// ch (by create or addUsers) and user is not in the call. The embedding
// server knows who is online and drops the notification for the others.
// It is called like Media: outside locks, in event order.
type Notifier interface {
	NewCall(ch, sender, user string)
}

// NopNotifier is a Notifier that does nothing.
type NopNotifier struct{}

// NewCall does nothing.
func (NopNotifier) NewCall(string, string, string) {}

// Clock schedules the registry's timers (idle closing, join-request expiry).
// It is called outside channel locks; f runs on a goroutine of its own.
type Clock interface {
	AfterFunc(d time.Duration, f func()) Timer
}

// Timer is a scheduled call that can be cancelled.
type Timer interface {
	// Stop prevents the call if it has not started; it reports whether it
	// did.
	Stop() bool
}

// SystemClock is the default Clock: time.AfterFunc. Under testing/synctest
// its timers follow the bubble's fake time.
type SystemClock struct{}

// AfterFunc calls time.AfterFunc.
func (SystemClock) AfterFunc(d time.Duration, f func()) Timer { return time.AfterFunc(d, f) }
