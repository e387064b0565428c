package forward

import (
	"encoding/binary"
	"fmt"
	"time"

	"github.com/callcore/callcore/mute"
)

// maxGenPayload bounds the payload of a generated packet.
const maxGenPayload = 1100

// frameSet is the empty media of one track at one size, built once, off the
// packet path, and shared read-only: RTP payloads ready to send.
type frameSet struct {
	width, height int
	key, repeat   [][]byte // video: the packets of a black key frame and of a repeat frame
	silent        []byte   // audio: one silent frame
}

// buildFrames makes the empty media for a codec at a size.
func buildFrames(mime string, c codec, width, height int, audioFrame time.Duration) (*frameSet, error) {
	fs := &frameSet{width: width, height: height}
	switch c {
	case codecVP8, codecH264:
		key, err := mute.BlackKeyFrame(mime, width, height)
		if err != nil {
			return nil, err
		}
		rep, err := mute.RepeatFrame(mime, width, height)
		if err != nil {
			return nil, err
		}
		if c == codecVP8 {
			fs.key, fs.repeat = packetizeVP8(key), packetizeVP8(rep)
		} else {
			fs.key, fs.repeat = packetizeH264(key), packetizeH264(rep)
		}
	case codecOther:
		s, err := mute.SilentFrame(mime, audioFrame)
		if err != nil {
			return nil, err
		}
		fs.silent = s
	default:
		return nil, fmt.Errorf("%w: no empty frames for %q", ErrUnsupported, mime)
	}
	return fs, nil
}

// packetizeVP8 cuts a VP8 frame into RTP payloads (RFC 7741): a one-byte
// descriptor, S set on the first, no picture ID.
func packetizeVP8(frame []byte) [][]byte {
	var out [][]byte
	for first := true; len(frame) > 0 || first; first = false {
		n := min(len(frame), maxGenPayload)
		desc := byte(0x00)
		if first {
			desc = 0x10
		}
		out = append(out, append([]byte{desc}, frame[:n]...))
		frame = frame[n:]
	}
	return out
}

// packetizeH264 cuts an Annex B access unit into RTP payloads (RFC 6184,
// packetization mode 1): single NAL units, or FU-A fragments.
func packetizeH264(au []byte) [][]byte {
	var out [][]byte
	for _, nal := range mute.SplitAnnexB(au) {
		if len(nal) <= maxGenPayload {
			out = append(out, append([]byte(nil), nal...))
			continue
		}
		hdr, body := nal[0], nal[1:]
		for first := true; len(body) > 0; first = false {
			n := min(len(body), maxGenPayload-2)
			fu := hdr & 0x1f // FU header: S and E bits set below
			if first {
				fu |= 0x80
			}
			if n == len(body) {
				fu |= 0x40
			}
			out = append(out, append([]byte{hdr&0xe0 | 28, fu}, body[:n]...))
			body = body[n:]
		}
	}
	return out
}

// frameSize reads the picture size from the first packet of a key frame.
func frameSize(c codec, payload []byte) (w, h int, ok bool) {
	switch c {
	case codecVP8:
		if i := vp8DescLen(payload); i > 0 {
			return mute.VP8FrameSize(payload[i:])
		}
	case codecH264:
		eachNAL(payload, func(nal []byte) bool {
			if nal[0]&0x1f == 7 {
				w, h, ok = mute.H264SPSSize(nal)
				return false
			}
			return true
		})
		return w, h, ok
	}
	return 0, 0, false
}

// eachNAL calls fn for each whole NAL unit in a payload: a single NAL unit
// or the units of a STAP-A (fragments are not whole). It stops when fn
// returns false. fn must not keep the slice.
func eachNAL(p []byte, fn func(nal []byte) bool) {
	if len(p) < 1 {
		return
	}
	switch t := p[0] & 0x1f; {
	case t >= 1 && t <= 23:
		fn(p)
	case t == 24:
		for i := 1; i+2 <= len(p); {
			n := int(binary.BigEndian.Uint16(p[i:]))
			if n == 0 || i+2+n > len(p) || !fn(p[i+2:i+2+n]) {
				return
			}
			i += 2 + n
		}
	}
}

// stapA packs NAL units into one STAP-A payload.
func stapA(nals ...[]byte) []byte {
	out := []byte{nals[0][0]&0x60 | 24}
	for _, n := range nals {
		out = binary.BigEndian.AppendUint16(out, uint16(len(n)))
		out = append(out, n...)
	}
	return out
}
