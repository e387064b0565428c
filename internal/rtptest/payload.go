package rtptest

import (
	"encoding/binary"

	"github.com/callcore/callcore/mute"
)

// VP8 returns the RTP payloads of one VP8 frame of size bytes (RFC 7741):
// a one-byte descriptor on each packet (S and partition 0 on the first),
// then the frame cut into pieces of at most maxPayload bytes. A key frame starts
// with the 10-byte key frame header (frame tag with the key bit clear,
// the start code 9d 01 2a, width and height), so parsers find its size.
func VP8(key bool, width, height, size, maxPayload int) [][]byte {
	frame := make([]byte, max(size, 10))
	for i := range frame {
		frame[i] = byte(i)
	}
	// Frame tag: bit 0 is 0 for a key frame; version 0, show_frame set,
	// first partition size 0 (enough for the parsers that read the tag).
	frame[0], frame[1], frame[2] = 0x10, 0, 0
	if !key {
		frame[0] |= 0x01
	} else {
		frame[3], frame[4], frame[5] = 0x9d, 0x01, 0x2a
		binary.LittleEndian.PutUint16(frame[6:], uint16(width))
		binary.LittleEndian.PutUint16(frame[8:], uint16(height))
	}
	var out [][]byte
	for first := true; len(frame) > 0; first = false {
		n := min(len(frame), maxPayload-1)
		desc := byte(0)
		if first {
			desc = 0x10 // S
		}
		out = append(out, append([]byte{desc}, frame[:n]...))
		frame = frame[n:]
	}
	return out
}

// H264 returns the RTP payloads of one H.264 access unit (RFC 6184,
// packetization mode 1). A key frame is an SPS (for width x height), a PPS and an IDR slice,
// each a single NAL unit packet when it fits in maxPayload bytes; other frames
// are one non-IDR slice. A slice larger than maxPayload is cut into FU-A
// fragments. The slices' bytes are filler, not a decodable picture.
func H264(key bool, width, height, size, maxPayload int) [][]byte {
	var out [][]byte
	sliceType := byte(1) // non-IDR
	if key {
		// The SPS and PPS of the muter's black key frame: a real SPS, so
		// parsers learn the picture size from it.
		au, err := mute.BlackKeyFrame("video/H264", width, height)
		if err != nil {
			panic("rtptest: " + err.Error())
		}
		for _, nal := range mute.SplitAnnexB(au) {
			if t := nal[0] & 0x1f; t == 7 || t == 8 {
				out = append(out, append([]byte(nil), nal...))
			}
		}
		sliceType = 5 // IDR
	}
	nal := make([]byte, max(size, 2))
	nal[0] = 0x60 | sliceType // nal_ref_idc 3
	for i := 1; i < len(nal); i++ {
		nal[i] = byte(i) | 0x01
	}
	if len(nal) <= maxPayload {
		return append(out, nal)
	}
	hdr, body := nal[0], nal[1:]
	for first := true; len(body) > 0; first = false {
		n := min(len(body), maxPayload-2)
		fu := hdr & 0x1f
		if first {
			fu |= 0x80
		}
		if n == len(body) {
			fu |= 0x40
		}
		out = append(out, append([]byte{hdr&0xe0 | 28, fu}, body[:n]...))
		body = body[n:]
	}
	return out
}

// Opus returns the payload of one 20 ms Opus packet of size bytes
// (RFC 7587): a TOC byte for CELT fullband 20 ms, one frame, then filler.
func Opus(size int) []byte {
	b := make([]byte, max(size, 1))
	b[0] = 0xfc // config 31 (CELT FB 20 ms), mono, code 0
	for i := 1; i < len(b); i++ {
		b[i] = byte(i)
	}
	return b
}

// Clock rates and frame steps of the streams above.
const (
	VideoClock = 90000
	VideoStep  = 3000 // 30 frames a second
	OpusClock  = 48000
	OpusStep   = 960 // 20 ms
)
