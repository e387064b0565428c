package bwe

import "errors"

// Errors returned by the package. Parse errors wrap ErrMalformed.
var (
	// ErrMalformed is returned for RTCP that is not valid, or a
	// transport-wide feedback or REMB whose fields contradict its length.
	ErrMalformed = errors.New("bwe: malformed feedback")
	// ErrInvalidConfig is returned by Config.Validate and New.
	ErrInvalidConfig = errors.New("bwe: invalid config")
)
