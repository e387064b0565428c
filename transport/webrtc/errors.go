package webrtc

import "errors"

// Errors returned by the webrtc transport. Match them with errors.Is.
var (
	// ErrInvalidConfig is wrapped by every Validate failure.
	ErrInvalidConfig = errors.New("webrtc: invalid config")
	// ErrCodecMismatch is returned when a subscriber cannot receive a
	// published track's codec: the SFU forwards, it never transcodes.
	ErrCodecMismatch = errors.New("webrtc: codec mismatch")
	// ErrClosed is returned by operations on a closed peer or engine.
	ErrClosed = errors.New("webrtc: closed")
	// ErrGlare is returned by Answer when the client's offer crosses one
	// of the server's: the server is the impolite peer, so the client must
	// roll back and answer the server's offer.
	ErrGlare = errors.New("webrtc: offer collision (glare)")
	// ErrNoOffer is returned by SetAnswer when no offer is outstanding.
	ErrNoOffer = errors.New("webrtc: no offer outstanding")
	// ErrTooManyStreams refuses a published track past
	// PeerConfig.MaxStreams.
	ErrTooManyStreams = errors.New("webrtc: too many published streams")
	// ErrNotLayered is returned by SetMaxLayer on a subscription of one
	// track.
	ErrNotLayered = errors.New("webrtc: subscription is not of layers")
)
