package mute

import (
	"bytes"
	"fmt"
	"time"
)

const (
	// MaxPCMDuration is the longest PCMU or PCMA frame SilentFrame builds.
	MaxPCMDuration = 120 * time.Millisecond

	pcmuSilence = 0xFF // μ-law code of 0
	pcmaSilence = 0xD5 // A-law code of +8/32768, the smallest magnitude
	g711Rate    = 8000
)

// celtSilence is the payload of one CELT frame whose silence flag (the
// first symbol, coded with probability 1/32768) is set: the decoder then
// reads nothing else and outputs silence.
var celtSilence = [2]byte{0xFF, 0xFE}

// opusSilence builds an Opus packet (RFC 6716) of CELT-only, fullband, mono
// silence frames.
func opusSilence(d time.Duration) ([]byte, error) {
	const (
		toc10ms = 30 << 3 // configuration 30: CELT FB 10 ms
		toc20ms = 31 << 3 // configuration 31: CELT FB 20 ms
	)
	s := celtSilence[:]
	switch d {
	case 10 * time.Millisecond:
		return []byte{toc10ms, s[0], s[1]}, nil
	case 20 * time.Millisecond:
		return []byte{toc20ms, s[0], s[1]}, nil
	case 40 * time.Millisecond:
		// Code 1: two frames of equal size.
		return []byte{toc20ms | 1, s[0], s[1], s[0], s[1]}, nil
	case 60 * time.Millisecond:
		// Code 3, constant bit rate, no padding, three frames.
		return []byte{toc20ms | 3, 3, s[0], s[1], s[0], s[1], s[0], s[1]}, nil
	}
	return nil, fmt.Errorf("%w: %v for Opus: want 10, 20, 40 or 60 ms",
		ErrInvalidDuration, d)
}

// g711Silence builds a G.711 frame of d at 8 kHz filled with code.
func g711Silence(d time.Duration, code byte) ([]byte, error) {
	const sample = time.Second / g711Rate
	if d <= 0 || d > MaxPCMDuration || d%sample != 0 {
		return nil, fmt.Errorf("%w: %v for G.711: want a multiple of %v up to %v",
			ErrInvalidDuration, d, sample, MaxPCMDuration)
	}
	return bytes.Repeat([]byte{code}, int(d/sample)), nil
}
