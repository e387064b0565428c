package channel

import (
	"context"
	"fmt"

	"github.com/callcore/callcore/permission"
)

// EventType names an event of the call API.
type EventType uint8

// Event types, with the Event fields each one fills.
const (
	// EventTrackAdd: User published Track; Tracks is all of User's tracks
	// with their mute state.
	EventTrackAdd EventType = iota + 1
	// EventTrackMute: Track's effective state changed (Track.Muted,
	// Track.State; Track.MutedBy and Track.Reason when an admin source
	// muted it).
	EventTrackMute
	// EventTrackDel: User stopped publishing Track.Name.
	EventTrackDel
	// EventCreate: Sender created the channel with Config.
	EventCreate
	// EventConfig: Sender configured the channel; Config is the new
	// configuration.
	EventConfig
	// EventDelete: Sender deleted the channel (empty when it closed idle),
	// with Reason. It is every subscription's last event.
	EventDelete
	// EventRequest: User asks to join (delivered to admins only).
	EventRequest
	// EventJoin: User joined.
	EventJoin
	// EventLeft: User left or was disconnected as a slow consumer.
	EventLeft
	// EventUserAdd: Sender added Users (id and mode) as members.
	EventUserAdd
	// EventUserDel: Sender removed Users (ids); active ones were
	// disconnected.
	EventUserDel
	// EventUserMod: Sender set the modes of Users.
	EventUserMod
	// EventSpeakers: the order of the channel's speakers changed;
	// Speakers is the new order, the dominant speaker first (empty when
	// nobody speaks).
	EventSpeakers
)

var eventNames = [...]string{"", "track:add", "track:mute", "track:del", "cnl:create", "cnl:config", "cnl:delete", "cnl:req", "user:join", "user:left", "user:add", "user:del", "user:mod", "cnl:speakers"}

// String returns the event's name in the call API ("track:add", ...).
func (t EventType) String() string {
	if t > 0 && int(t) < len(eventNames) {
		return eventNames[t]
	}
	return fmt.Sprintf("EventType(%d)", uint8(t))
}

// TrackState is a published track as getUsers and events report it.
type TrackState struct {
	Name string
	Kind Kind
	// Muted is the effective mute state as the call API's boolean: State
	// is not MuteNone.
	Muted bool
	State MuteState
	// MutedBy and Reason name the admin source that muted the track, as of
	// the track:mute event that announced its state (empty unless State is
	// MuteAdmin). Reason is the muteUser reason, ReasonSendRevoked or
	// ReasonKindNotAllowed.
	MutedBy string
	Reason  string
}

// Reasons given for admin mutes that muteUser did not cause.
const (
	ReasonSendRevoked    = "send permission revoked"
	ReasonKindNotAllowed = "kind not allowed"
)

// UserMode is a user id with its mode.
type UserMode struct {
	ID   string
	Mode permission.Mode
}

// Event is one event of a channel. Its slices are shared by every
// subscriber: read them, do not modify them.
type Event struct {
	// Seq is the channel's sequence number: 1 for cnl:create, then one
	// more per event. Every active user sees the channel's events in Seq
	// order; cnl:req goes to admins only, so others see a gap there.
	Seq      uint64
	Type     EventType
	Channel  string
	Sender   string
	User     string
	Track    TrackState
	Tracks   []TrackState
	Users    []UserMode
	Config   CallConfig
	Reason   string
	Speakers []Speaker
}

// Speaker is one entry of cnl:speakers: an active user who speaks and the
// loudest audio level of its last 100 ms, in -dBov (0 the loudest, 127
// silence).
type Speaker struct {
	User  string
	Level int
}

// Subscription is one active user's stream of events, from its join (the
// user:join, or cnl:create for the owner) to the event that ends its stay
// (user:left, user:del, cnl:delete). After the last event Next returns the
// reason it ended: ErrLeft, ErrNotMember (removed), ErrClosed (deleted),
// ErrSlowConsumer (its buffer filled up: it was disconnected). Events are
// buffered; a Subscription owns no goroutine and needs no closing.
type Subscription struct {
	q chan *Event // one shared *Event per event, for every subscriber
	// err is written once, before q is closed, and read after.
	err error
	// ended is guarded by the channel's mu.
	ended bool
}

func newSubscription(n int) *Subscription { return &Subscription{q: make(chan *Event, n)} }

// Next returns the next event, blocking until there is one, the
// subscription ends (its reason) or ctx is done (ctx.Err()).
func (s *Subscription) Next(ctx context.Context) (Event, error) {
	select {
	case ev, ok := <-s.q:
		if !ok {
			return Event{}, s.err
		}
		return *ev, nil
	case <-ctx.Done():
		return Event{}, ctx.Err()
	}
}

// C returns the events as a Go channel, for select loops, closed after the
// last one; Next then returns why the subscription ended. Every subscriber
// receives the same *Event: read it, do not modify it.
func (s *Subscription) C() <-chan *Event { return s.q }

// push queues ev without blocking; false when the buffer is full. The
// channel's mu is held.
func (s *Subscription) push(ev *Event) bool {
	if s.ended {
		return true
	}
	select {
	case s.q <- ev:
		return true
	default:
		return false
	}
}

// end closes the stream with err. The channel's mu is held.
func (s *Subscription) end(err error) {
	if s.ended {
		return
	}
	s.ended = true
	s.err = err
	close(s.q)
}
