package forward

import "errors"

// Errors returned by the forward package. Match them with errors.Is.
var (
	// ErrInvalidConfig is wrapped by every Validate failure.
	ErrInvalidConfig = errors.New("forward: invalid config")
	// ErrMalformed is returned for a packet that is not valid RTP.
	ErrMalformed = errors.New("forward: malformed packet")
	// ErrOversized is returned for a packet larger than MaxPacketSize.
	ErrOversized = errors.New("forward: packet too large")
	// ErrUnknownSSRC is returned for a packet of another stream.
	ErrUnknownSSRC = errors.New("forward: unknown SSRC")
	// ErrUnknownPayloadType is returned for a payload type the track was
	// not configured with.
	ErrUnknownPayloadType = errors.New("forward: unknown payload type")
	// ErrDuplicate is returned for a packet already received.
	ErrDuplicate = errors.New("forward: duplicate packet")
	// ErrOutOfWindow is returned for a packet too old to forward, or whose
	// sequence number jumped too far (RFC 3550 A.1 probation).
	ErrOutOfWindow = errors.New("forward: sequence number out of window")
	// ErrTimestamp is returned for a reordered packet whose timestamp does
	// not fit between its neighbours'.
	ErrTimestamp = errors.New("forward: timestamp out of order")
	// ErrNoMedia is returned for an RTX packet that carries no original
	// packet (bandwidth probing), which is counted and dropped.
	ErrNoMedia = errors.New("forward: no media in packet")
	// ErrUnsupported is returned when the muter has no empty frames for a
	// track's codec.
	ErrUnsupported = errors.New("forward: unsupported codec")
	// ErrClosed is returned by operations on a closed track or subscriber.
	ErrClosed = errors.New("forward: closed")
	// ErrAttached is returned when attaching a subscriber that already has
	// a source.
	ErrAttached = errors.New("forward: subscriber already attached")
	// ErrNotLayered is returned when a Layers is asked about a subscriber
	// it does not feed.
	ErrNotLayered = errors.New("forward: subscriber not of these layers")
	// ErrPadding is returned by Pad for a subscriber with no RTX stream,
	// not attached, or asked for a padding size outside 1..255.
	ErrPadding = errors.New("forward: padding refused")
)
