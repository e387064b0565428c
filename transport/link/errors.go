package link

import "errors"

// Errors returned by the link package. Match them with errors.Is. Writes
// after Close return transport.ErrClosed.
var (
	// ErrInvalidConfig is wrapped by every Validate failure.
	ErrInvalidConfig = errors.New("link: invalid config")
	// ErrNotConnected is returned when a message or packet needs a session
	// and the link has none at the moment.
	ErrNotConnected = errors.New("link: not connected")
	// ErrDuplicate is returned by Offer for an ID already offered.
	ErrDuplicate = errors.New("link: track ID already offered")
	// ErrUnknownTrack is returned for a track ID the link does not know.
	ErrUnknownTrack = errors.New("link: unknown track")
	// ErrProtocol is wrapped when the peer breaks the control protocol;
	// the session is ended.
	ErrProtocol = errors.New("link: protocol error")
)
