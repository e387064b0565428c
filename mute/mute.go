package mute

import (
	"fmt"
	"strings"
	"time"
)

// MIME types of the codecs this package builds frames for, spelled as in
// SDP and pion. Arguments are compared case-insensitively.
const (
	MimeTypeVP8  = "video/VP8"
	MimeTypeH264 = "video/H264"
	MimeTypeOpus = "audio/opus"
	MimeTypePCMU = "audio/PCMU"
	MimeTypePCMA = "audio/PCMA"
)

// Picture size limits. A picture may be landscape or portrait: its longer
// side is at most MaxLongSide and its shorter side at most MaxShortSide.
const (
	MinSide      = 16
	MaxLongSide  = 4096
	MaxShortSide = 2304
)

type videoCodec int

const (
	codecVP8 videoCodec = iota + 1
	codecH264
)

func videoCodecOf(mimeType string) (videoCodec, error) {
	switch {
	case strings.EqualFold(mimeType, MimeTypeVP8):
		return codecVP8, nil
	case strings.EqualFold(mimeType, MimeTypeH264):
		return codecH264, nil
	}
	return 0, fmt.Errorf("%w: %q", ErrUnsupportedCodec, mimeType)
}

// checkSize validates a picture size for codec c.
func checkSize(c videoCodec, width, height int) error {
	long, short := max(width, height), min(width, height)
	if short < MinSide || long > MaxLongSide || short > MaxShortSide {
		return fmt.Errorf("%w: %d×%d is outside %d×%d to %d×%d",
			ErrInvalidSize, width, height, MinSide, MinSide, MaxLongSide, MaxShortSide)
	}
	if c == codecH264 && (width%2 != 0 || height%2 != 0) {
		return fmt.Errorf("%w: %d×%d: H.264 4:2:0 sizes must be even",
			ErrInvalidSize, width, height)
	}
	return nil
}

// BlackKeyFrame returns one key frame of width×height pixels whose every
// pixel decodes black (luma 16, chroma 128).
//
// For MimeTypeVP8 it is a VP8 frame as RFC 6386 defines it (frame tag,
// key-frame header and partitions, no RTP payload descriptor); any size in
// range is allowed. For MimeTypeH264 it is an Annex B byte stream of an SPS,
// a PPS and an IDR slice, using the private parameter set ids H264SPSID and
// H264PPSID; width and height must be even.
//
// Sizes range from 16×16 to 4096×2304, landscape or portrait. The returned
// slice is newly allocated on every call.
func BlackKeyFrame(mimeType string, width, height int) ([]byte, error) {
	c, err := videoCodecOf(mimeType)
	if err != nil {
		return nil, err
	}
	if err := checkSize(c, width, height); err != nil {
		return nil, err
	}
	if c == codecVP8 {
		return vp8KeyFrame(width, height), nil
	}
	return h264KeyFrame(width, height), nil
}

// RepeatFrame returns an inter frame, for a picture of width×height, in
// which every macroblock is skipped: it repeats the previous picture. Sent
// after BlackKeyFrame of the same size and codec, it keeps a muted stream's
// cadence at a fraction of the key frame's size, and the same bytes may be
// sent any number of times.
//
// For MimeTypeVP8 it is an inter frame predicting every macroblock from the
// last frame with a zero motion vector. For MimeTypeH264 it is a
// non-reference P slice (nal_ref_idc 0, frame_num 1) with one mb_skip_run
// covering the picture, referencing the black IDR through the same private
// parameter sets; it carries no SPS or PPS.
func RepeatFrame(mimeType string, width, height int) ([]byte, error) {
	c, err := videoCodecOf(mimeType)
	if err != nil {
		return nil, err
	}
	if err := checkSize(c, width, height); err != nil {
		return nil, err
	}
	mbw, mbh := (width+15)/16, (height+15)/16
	if c == codecVP8 {
		return vp8InterFrame(mbw, mbh), nil
	}
	return h264RepeatFrame(mbw, mbh), nil
}

// SilentFrame returns one audio frame of duration d whose every sample
// decodes to zero.
//
// For MimeTypeOpus d is 10, 20, 40 or 60 ms and the frame is a CELT
// silence packet (at 20 ms the well-known F8 FF FE); a decoder outputs
// exact zeros once the previous signal has died out, which takes one frame.
// For MimeTypePCMU (0xFF per sample, exactly zero) and MimeTypePCMA (0xD5
// per sample: A-law has no zero, this is its smallest magnitude) d is a
// whole number of 8 kHz samples (a multiple of 125 µs) up to MaxPCMDuration.
func SilentFrame(mimeType string, d time.Duration) ([]byte, error) {
	switch {
	case strings.EqualFold(mimeType, MimeTypeOpus):
		return opusSilence(d)
	case strings.EqualFold(mimeType, MimeTypePCMU):
		return g711Silence(d, pcmuSilence)
	case strings.EqualFold(mimeType, MimeTypePCMA):
		return g711Silence(d, pcmaSilence)
	}
	return nil, fmt.Errorf("%w: %q", ErrUnsupportedCodec, mimeType)
}
