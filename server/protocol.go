package server

import (
	"bytes"
	"errors"
	"fmt"
	"unicode"
	"unicode/utf8"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/callcore/callcore/channel"
	"github.com/callcore/callcore/permission"
	"github.com/callcore/callcore/transport/webrtc"
)

// The wire protocol of docs/protocol.md: JSON envelopes and the data of
// each request, answer and push.

// request is a client's message.
type request struct {
	ID   uint64         `json:"id"`
	Type string         `json:"type"`
	Data jsontext.Value `json:"data,omitempty"`
}

// answer is the server's reply to one request, or a push when ID is 0.
type answer struct {
	ID    uint64     `json:"id,omitempty"`
	Type  string     `json:"type"`
	Data  any        `json:"data,omitempty"`
	Error *wireError `json:"error,omitempty"`
}

type wireError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Error codes of the protocol beyond the call API's (docs/api.md).
const (
	CodeGlare       = "Glare"
	CodeRateLimited = "RateLimited"
	CodeInternal    = "Internal"
)

// codes maps the channel's sentinel errors to the call API's error names (docs/api.md), in
// the order they are tried.
var codes = []struct {
	err  error
	code string
}{
	{channel.ErrUnauthorized, "UnAuthorized"},
	{channel.ErrExists, "Exists"},
	{channel.ErrNotFound, "NotFound"},
	{channel.ErrNotMember, "NotMember"},
	{channel.ErrFull, "Full"},
	{channel.ErrKindNotAllowed, "KindNotAllowed"},
	{channel.ErrInvalid, "Invalid"},
	{channel.ErrClosed, "Closed"},
	{channel.ErrSlowConsumer, "Closed"},
	{ErrUnauthenticated, "UnAuthorized"},
	{ErrInvalidMessage, "Invalid"},
	{ErrRateLimited, CodeRateLimited},
	{ErrDraining, CodeDraining},
	{webrtc.ErrGlare, CodeGlare},
	{webrtc.ErrNoOffer, "Invalid"},
	{webrtc.ErrCodecMismatch, "Invalid"},
	{webrtc.ErrClosed, "Closed"},
}

// codeOf names err for the client: the call API's name for the channel's
// sentinels, Internal for anything unexpected.
func codeOf(err error) string {
	for _, c := range codes {
		if errors.Is(err, c.err) {
			return c.code
		}
	}
	return CodeInternal
}

// decodeStrict decodes one JSON value into v and refuses what a lenient
// decoder would let through: unknown fields, field names that differ from
// the protocol's only in case, a name given twice, invalid UTF-8, and
// anything after the value. Empty data decodes as {}. It uses the JSON v2
// decoder (github.com/go-json-experiment/json), whose defaults are these
// rules.
func decodeStrict(data []byte, v any) error {
	if len(bytes.TrimSpace(data)) == 0 {
		data = []byte("{}")
	}
	if err := jsonv2.Unmarshal(data, v, jsonv2.RejectUnknownMembers(true)); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidMessage, err)
	}
	return nil
}

// Request data.

type authData struct {
	Token string `json:"token"`
}

type trackData struct {
	Name    string `json:"name"`
	Kind    string `json:"kind"`
	TrackID string `json:"trackId"`
}

type createData struct {
	ChannelID string      `json:"channelId"`
	Tracks    []trackData `json:"tracks"`
	Config    *configData `json:"config"`
	Users     []string    `json:"users"`
}

type joinData struct {
	ChannelID string      `json:"channelId"`
	Tracks    []trackData `json:"tracks"`
	Resume    bool        `json:"resume"`
}

type reasonData struct {
	Reason string `json:"reason"`
}

type usersData struct {
	Users []string `json:"users"`
}

type userModeData struct {
	ID   string `json:"id"`
	Mode int    `json:"mode"`
}

type modUsersData struct {
	Users []userModeData `json:"users"`
}

type configureData struct {
	Config configPatch `json:"config"`
}

// configPatch is configure's argument: the fields given change, the
// others keep their current values.
type configPatch struct {
	Kind              *string `json:"kind"`
	JoinRequest       *bool   `json:"joinRequest"`
	MaxUsers          *int    `json:"maxUsers"`
	DefaultPermission *int    `json:"defaultPermission"`
	LastN             *int    `json:"lastN"`
}

// patch checks p and turns it into the channel's patch.
func (p configPatch) patch() (channel.ConfigPatch, error) {
	var out channel.ConfigPatch
	if p.Kind != nil {
		cfg, err := configFromWire(configData{Kind: *p.Kind})
		if err != nil || *p.Kind == "" {
			return out, fmt.Errorf("%w: config kind %q", channel.ErrInvalid, *p.Kind)
		}
		out.Kind = &cfg.Kind
	}
	if p.MaxUsers != nil && *p.MaxUsers < 0 {
		return out, fmt.Errorf("%w: maxUsers %d", channel.ErrInvalid, *p.MaxUsers)
	}
	if p.DefaultPermission != nil {
		if *p.DefaultPermission < 0 || *p.DefaultPermission > int(permission.Admin|permission.Send|permission.Recv) {
			return out, fmt.Errorf("%w: defaultPermission %d", channel.ErrInvalid, *p.DefaultPermission)
		}
		m := permission.Mode(*p.DefaultPermission)
		out.DefaultPermission = &m
	}
	if p.LastN != nil && (*p.LastN < 0 || *p.LastN > channel.MaxLastN) {
		return out, fmt.Errorf("%w: lastN %d", channel.ErrInvalid, *p.LastN)
	}
	out.JoinRequest, out.MaxUsers, out.LastN = p.JoinRequest, p.MaxUsers, p.LastN
	return out, nil
}

type tracksData struct {
	Tracks []trackData `json:"tracks"`
}

type namesData struct {
	Names []string `json:"names"`
}

type muteTracksData struct {
	Names []string `json:"names"`
	State *bool    `json:"state"`
}

type preferenceData struct {
	UserID    string `json:"userId"`
	TrackName string `json:"trackName"`
	MaxHeight *int   `json:"maxHeight"`
	Paused    *bool  `json:"paused"`
}

// layerPush is the layer push: what the connection's user receives of
// another user's layered track now.
type layerPush struct {
	ChannelID string  `json:"channelId"`
	UserID    string  `json:"userId"`
	TrackName string  `json:"trackName"`
	Layer     *string `json:"layer"` // null when paused
	Width     int     `json:"width"`
	Height    int     `json:"height"`
	LimitedBy *string `json:"limitedBy"`
}

type muteUserData struct {
	UserID string `json:"userId"`
	Kind   string `json:"kind"`
	State  *bool  `json:"state"`
	Reason string `json:"reason"`
}

type sdpData struct {
	SDP string `json:"sdp"`
}

type candidateData struct {
	Candidate        string  `json:"candidate"`
	SDPMid           *string `json:"sdpMid"`
	SDPMLineIndex    *uint16 `json:"sdpMLineIndex"`
	UsernameFragment *string `json:"usernameFragment"`
}

// configData is CallConfig on the wire.
type configData struct {
	Kind              string `json:"kind,omitempty"`
	JoinRequest       bool   `json:"joinRequest"`
	MaxUsers          int    `json:"maxUsers"`
	DefaultPermission int    `json:"defaultPermission"`
	LastN             int    `json:"lastN"`
}

// Answer data.

type statusResult struct {
	Status bool `json:"status"`
}

type stayResult struct {
	Status    bool         `json:"status"`
	ChannelID string       `json:"channelId"`
	Owner     string       `json:"owner"`
	Resumed   bool         `json:"resumed,omitempty"`
	Seq       uint64       `json:"seq"`
	Users     []activeUser `json:"users"`
	Config    configData   `json:"config"`
}

type usersResult struct {
	Seq   uint64       `json:"seq"`
	Users []activeUser `json:"users"`
}

type authResult struct {
	UserID     string             `json:"userId"`
	CanCreate  bool               `json:"canCreate"`
	ICEServers []webrtc.ICEServer `json:"iceServers"`
	ExpiresAt  int64              `json:"expiresAt"` // the token's expiry, Unix seconds
}

type activeUser struct {
	ID     string       `json:"id"`
	Mode   int          `json:"mode"`
	Tracks []trackState `json:"tracks"`
}

type trackState struct {
	Name       string `json:"name"`
	Kind       string `json:"kind"`
	Muted      bool   `json:"muted"`
	MutedBy    string `json:"mutedBy,omitempty"`
	MuteReason string `json:"muteReason,omitempty"`
}

type eventData struct {
	Event      string       `json:"event"`
	Seq        uint64       `json:"seq"`
	ChannelID  string       `json:"channelId"`
	SenderID   string       `json:"senderId,omitempty"`
	UserID     string       `json:"userId,omitempty"`
	TrackName  string       `json:"trackName,omitempty"`
	Value      *bool        `json:"value,omitempty"`
	MutedBy    string       `json:"mutedBy,omitempty"`
	MuteReason string       `json:"muteReason,omitempty"`
	Track      *trackState  `json:"track,omitempty"`
	Tracks     []trackState `json:"tracks,omitempty"`
	Users      any          `json:"users,omitempty"`
	Config     *configData  `json:"config,omitempty"`
	Reason     *string      `json:"reason,omitempty"`
	Speakers   any          `json:"speakers,omitempty"` // []speakerData, empty but present when nobody speaks
}

// speakerData is one entry of cnl:speakers.
type speakerData struct {
	UserID string `json:"userId"`
	Level  int    `json:"level"`
}

type statusPush struct {
	Status string `json:"status"`
}

type newcallPush struct {
	ChannelID string `json:"channelId"`
	SenderID  string `json:"senderId"`
}

// Conversions between the wire and the channel package.

// validName reports whether a user id or track name is valid UTF-8 that
// can be carried in SDP (a=msid) and shown without deceiving: no
// whitespace, control or format characters (zero-width characters and
// bidirectional overrides are format characters: "owner\u200b" would
// look like "owner"), no private-use or unassigned code points, no U+FFFD
// (what invalid UTF-8 becomes on the way through JSON).
func validName(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if r == utf8.RuneError || unicode.IsSpace(r) || unicode.In(r, unicode.Cc, unicode.Cf, unicode.Co) || !unicode.In(r, unicode.L, unicode.M, unicode.N, unicode.P, unicode.S) {
			return false
		}
	}
	return true
}

func kindFromWire(s string) (channel.Kind, error) {
	switch s {
	case "audio":
		return channel.Audio, nil
	case "video":
		return channel.Video, nil
	}
	return 0, fmt.Errorf("%w: kind %q is not audio or video", channel.ErrInvalid, s)
}

func configFromWire(c configData) (channel.CallConfig, error) {
	var cfg channel.CallConfig
	switch c.Kind {
	case "", "audioVideo":
		cfg.Kind = channel.AudioVideo
	case "audio":
		cfg.Kind = channel.Audio
	case "video":
		cfg.Kind = channel.Video
	default:
		return cfg, fmt.Errorf("%w: config kind %q", channel.ErrInvalid, c.Kind)
	}
	if c.MaxUsers < 0 || c.DefaultPermission < 0 || c.DefaultPermission > int(permission.Admin|permission.Send|permission.Recv) {
		return cfg, fmt.Errorf("%w: maxUsers or defaultPermission out of range", channel.ErrInvalid)
	}
	cfg.JoinRequest = c.JoinRequest
	cfg.MaxUsers = c.MaxUsers
	cfg.DefaultPermission = permission.Mode(c.DefaultPermission)
	cfg.LastN = c.LastN
	return cfg, cfg.Validate()
}

func configToWire(c channel.CallConfig) configData {
	kind := "audioVideo"
	switch c.Kind {
	case channel.Audio:
		kind = "audio"
	case channel.Video:
		kind = "video"
	}
	return configData{Kind: kind, JoinRequest: c.JoinRequest, MaxUsers: c.MaxUsers, DefaultPermission: int(c.DefaultPermission), LastN: c.LastN}
}

func trackToWire(t channel.TrackState) trackState {
	return trackState{Name: t.Name, Kind: t.Kind.String(), Muted: t.Muted, MutedBy: t.MutedBy, MuteReason: t.Reason}
}

func tracksToWire(ts []channel.TrackState) []trackState {
	out := make([]trackState, len(ts))
	for i, t := range ts {
		out[i] = trackToWire(t)
	}
	return out
}

func usersToWire(us []channel.ActiveUser) []activeUser {
	out := make([]activeUser, len(us))
	for i, u := range us {
		out[i] = activeUser{ID: u.ID, Mode: int(u.Mode), Tracks: tracksToWire(u.Tracks)}
	}
	return out
}

// eventToWire turns a channel event into the event push's data.
func eventToWire(ev *channel.Event) eventData {
	d := eventData{Event: ev.Type.String(), Seq: ev.Seq, ChannelID: ev.Channel}
	switch ev.Type {
	case channel.EventTrackAdd:
		d.UserID, d.TrackName = ev.User, ev.Track.Name
		t := trackToWire(ev.Track)
		d.Track, d.Tracks = &t, tracksToWire(ev.Tracks)
	case channel.EventTrackMute:
		d.UserID, d.TrackName = ev.User, ev.Track.Name
		v := ev.Track.Muted
		d.Value, d.MutedBy, d.MuteReason = &v, ev.Track.MutedBy, ev.Track.Reason
	case channel.EventTrackDel:
		d.UserID, d.TrackName = ev.User, ev.Track.Name
	case channel.EventCreate, channel.EventConfig:
		c := configToWire(ev.Config)
		d.SenderID, d.Config = ev.Sender, &c
	case channel.EventDelete:
		r := ev.Reason
		d.SenderID, d.Reason = ev.Sender, &r
	case channel.EventRequest, channel.EventJoin, channel.EventLeft:
		d.UserID = ev.User
	case channel.EventUserAdd, channel.EventUserMod:
		us := make([]userModeData, len(ev.Users))
		for i, u := range ev.Users {
			us[i] = userModeData{ID: u.ID, Mode: int(u.Mode)}
		}
		d.SenderID, d.Users = ev.Sender, us
	case channel.EventUserDel:
		ids := make([]string, len(ev.Users))
		for i, u := range ev.Users {
			ids[i] = u.ID
		}
		d.SenderID, d.Users = ev.Sender, ids
	case channel.EventSpeakers:
		sp := make([]speakerData, len(ev.Speakers))
		for i, s := range ev.Speakers {
			sp[i] = speakerData{UserID: s.User, Level: s.Level}
		}
		d.Speakers = sp
	}
	return d
}
