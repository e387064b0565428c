package mute

import "errors"

// Sentinel errors returned by this package. Match them with errors.Is: the
// returned errors wrap them with the offending value.
var (
	// ErrUnsupportedCodec is returned for a MIME type this package cannot
	// build frames for.
	ErrUnsupportedCodec = errors.New("mute: unsupported codec")
	// ErrInvalidSize is returned for a picture size outside the supported
	// range (16×16 up to 4096×2304, either orientation) or, for H.264, an odd
	// width or height.
	ErrInvalidSize = errors.New("mute: invalid picture size")
	// ErrInvalidDuration is returned for an audio duration the codec cannot
	// carry in one frame.
	ErrInvalidDuration = errors.New("mute: invalid frame duration")
)
