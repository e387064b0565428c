package forward

import "strings"

// codec is what the core knows of a track's payload format: enough to find
// key frames.
type codec uint8

const (
	codecOther codec = iota // audio and unknown formats: every packet starts a frame
	codecVP8
	codecVP9
	codecH264
	codecAV1
)

func codecOf(mime string) codec {
	switch strings.ToLower(mime) {
	case "video/vp8":
		return codecVP8
	case "video/vp9":
		return codecVP9
	case "video/h264":
		return codecH264
	case "video/av1":
		return codecAV1
	}
	return codecOther
}

// startsKeyFrame reports whether an RTP payload begins a key frame: the
// packet a decoder can start on.
func startsKeyFrame(c codec, p []byte) bool {
	switch c {
	case codecVP8:
		return vp8Key(p)
	case codecVP9:
		// RFC 9628: I|P|L|F|B|E|V|Z; a key frame is not inter-predicted
		// (P=0) and this packet begins the frame (B=1).
		return len(p) > 0 && p[0]&0x40 == 0 && p[0]&0x08 != 0
	case codecH264:
		return h264Key(p)
	case codecAV1:
		// AV1 RTP aggregation header Z|Y|W W|N|-|-|-: N starts a new coded
		// video sequence, which begins with a key frame.
		return len(p) > 0 && p[0]&0x08 != 0 && p[0]&0x80 == 0
	}
	return false
}

// vp8Key reads the RFC 7741 payload descriptor (S set, partition 0) and
// the VP8 frame tag's key-frame bit.
func vp8Key(p []byte) bool {
	i := vp8DescLen(p)
	return i > 0 && p[0]&0x10 != 0 && p[0]&0x07 == 0 && p[i]&0x01 == 0
}

// vp8DescLen returns the length of an RFC 7741 payload descriptor, 0 when
// it is malformed.
func vp8DescLen(p []byte) int {
	if len(p) < 1 {
		return 0
	}
	i := 1
	if p[0]&0x80 != 0 {
		if len(p) < 2 {
			return 0
		}
		ext := p[1]
		i = 2
		if ext&0x80 != 0 {
			if len(p) <= i {
				return 0
			}
			if p[i]&0x80 != 0 {
				i++
			}
			i++
		}
		if ext&0x40 != 0 {
			i++
		}
		if ext&0x30 != 0 {
			i++
		}
	}
	if i >= len(p) {
		return 0
	}
	return i
}

// h264Key reports whether the payload carries an SPS or the start of an
// IDR slice, in a single NAL unit, a STAP-A or the first FU-A fragment.
func h264Key(p []byte) bool {
	if len(p) < 1 {
		return false
	}
	switch t := p[0] & 0x1f; {
	case t == 5 || t == 7:
		return true
	case t == 24: // STAP-A: 16-bit sizes, then NAL units
		for i := 1; i+2 < len(p); {
			n := int(p[i])<<8 | int(p[i+1])
			if n == 0 || i+2+n > len(p) {
				return false
			}
			if nt := p[i+2] & 0x1f; nt == 5 || nt == 7 {
				return true
			}
			i += 2 + n
		}
	case t == 28: // FU-A: start bit and the fragmented NAL's type
		return len(p) > 1 && p[1]&0x80 != 0 && (p[1]&0x1f == 5 || p[1]&0x1f == 7)
	}
	return false
}

// KeyFrameStart returns a function that reports whether an RTP payload of
// the format mime begins a key frame (the packet a decoder can start on),
// nil for formats the core finds no key frames in (audio). The function
// allocates nothing.
func KeyFrameStart(mime string) func(payload []byte) bool {
	c := codecOf(mime)
	if c == codecOther {
		return nil
	}
	return func(p []byte) bool { return startsKeyFrame(c, p) }
}
