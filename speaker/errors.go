package speaker

import "errors"

// Errors returned by the speaker package. Match them with errors.Is.
var (
	// ErrInvalidConfig is wrapped by every Validate failure.
	ErrInvalidConfig = errors.New("speaker: invalid config")
	// ErrLevel is returned for an audio level above 127 (-dBov).
	ErrLevel = errors.New("speaker: audio level out of range")
	// ErrUnknownSource is returned for a key no source was added with.
	ErrUnknownSource = errors.New("speaker: unknown source")
	// ErrDuplicateSource is returned by Add for a key already added.
	ErrDuplicateSource = errors.New("speaker: source already added")
	// ErrRemoved is returned by Source.Level once the source was removed.
	ErrRemoved = errors.New("speaker: source removed")
	// ErrEmptyKey is returned by Add for an empty key.
	ErrEmptyKey = errors.New("speaker: empty source key")
	// ErrClosed is returned by a closed Group or Detector.
	ErrClosed = errors.New("speaker: closed")
)
