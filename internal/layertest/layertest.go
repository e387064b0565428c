// Package layertest makes a synthetic VP8 source published as three layers
// (real black frames from mute at three sizes, RFC 7741 descriptors with
// 15-bit picture IDs, TL0PICIDX and TID) and checks what a subscriber of
// it receives: continuous numbering, switches only on key frames, no packet
// of the old layer after the new one started, and decodable first frames.
// It is shared by the tests of forward, fuzz and bench.
package layertest

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"sort"
	"sync/atomic"

	"github.com/pion/rtp"
	xvp8 "golang.org/x/image/vp8"

	"github.com/callcore/callcore/internal/rtcpx"
	"github.com/callcore/callcore/mute"
)

// TagURI is a header extension every test packet carries: its layer and
// its publisher sequence number, so a subscriber's packets can be traced
// back. TagID is its ID on both sides.
const (
	TagURI = "urn:callcore:test:layer-tag"
	TagID  = 7
	PT     = 96
)

// Sizes are the layers' picture sizes, smallest first.
var Sizes = [3][2]int{{160, 90}, {320, 180}, {640, 360}}

// Stream is one layer's publisher: one frame a call to Frame, a key frame
// every KeyEvery frames or at the next frame after a PLI (WriteRTCP).
type Stream struct {
	Layer    int
	SSRC     uint32
	W, H     int
	KeyEvery int
	seq      uint16
	ts       uint32
	pic      uint16
	tl0      uint8
	frame    int
	keyNow   atomic.Bool
	PLIs     atomic.Int64
	key, rep []byte
}

// NewStream makes layer's stream with its own SSRC and starting numbers.
func NewStream(layer int, seq uint16, ts uint32, pic uint16, keyEvery int) (*Stream, error) {
	w, h := Sizes[layer][0], Sizes[layer][1]
	key, err := mute.BlackKeyFrame(mute.MimeTypeVP8, w, h)
	if err != nil {
		return nil, err
	}
	rep, err := mute.RepeatFrame(mute.MimeTypeVP8, w, h)
	if err != nil {
		return nil, err
	}
	return &Stream{Layer: layer, SSRC: 0x1000 + uint32(layer), W: w, H: h, KeyEvery: keyEvery,
		seq: seq, ts: ts, pic: pic & 0x7fff, tl0: uint8(pic), key: key, rep: rep}, nil
}

// WriteRTCP takes the track's feedback: a PLI makes the next frame a key
// frame.
func (s *Stream) WriteRTCP(pkt []byte) error {
	var fb rtcpx.Feedback
	if _, err := rtcpx.Parse(pkt, s.SSRC, &fb); err == nil && fb.KeyFrame {
		s.keyNow.Store(true)
		s.PLIs.Add(1)
	}
	return nil
}

// AskKey makes the next frame a key frame (a PLI read by a real client).
func (s *Stream) AskKey() { s.keyNow.Store(true); s.PLIs.Add(1) }

// Frame returns the RTP packets of the next frame (3000 ticks after the
// last) and whether it is a key frame. Frames alternate TID 0 and 1; the
// TL0PICIDX advances at each TID 0 frame.
func (s *Stream) Frame() (pkts [][]byte, key bool) {
	key = s.frame%s.KeyEvery == 0 || s.keyNow.Swap(false)
	if key {
		s.frame = 0
	}
	data := s.rep
	if key {
		data = s.key
	}
	tid := byte(s.frame % 2)
	if key {
		tid = 0
	}
	if tid == 0 {
		s.tl0++
	}
	n := 3
	chunk := (len(data) + n - 1) / n
	for i := 0; i < n && len(data) > 0; i++ {
		part := data[:min(chunk, len(data))]
		data = data[len(part):]
		// KEYIDX (meaningless with K clear, passed through untouched)
		// carries the layer + 1, so a packet's layer can be read where
		// the tag extension is not negotiated (LayerOf).
		desc := []byte{0x80, 0xe0, 0x80 | byte(s.pic>>8), byte(s.pic), s.tl0, tid<<6 | byte(s.Layer+1)}
		if i == 0 {
			desc[0] |= 0x10
		}
		if tid == 0 {
			desc[5] |= 0x20 // Y
		}
		p := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: PT, SequenceNumber: s.seq, Timestamp: s.ts,
			SSRC: s.SSRC, Marker: len(data) == 0}, Payload: append(desc, part...)}
		tag := []byte{byte(s.Layer), byte(s.seq >> 8), byte(s.seq)}
		if err := p.SetExtension(TagID, tag); err != nil {
			panic(err)
		}
		b, err := p.Marshal()
		if err != nil {
			panic(err)
		}
		pkts = append(pkts, b)
		s.seq++
	}
	s.frame++
	s.pic = (s.pic + 1) & 0x7fff
	s.ts += 3000
	return pkts, key
}

// Out is one packet a subscriber received, read back.
type Out struct {
	Seq      uint16
	TS       uint32
	Layer    int
	OrigSeq  uint16
	Pic      uint16
	TL0      uint8
	Start    bool // S: the first packet of a frame
	Key      bool // a key frame's first packet
	Marker   bool
	Frame    []byte // the VP8 data after the descriptor
	Original []byte // the whole packet
}

// Read parses a subscriber's packets.
func Read(pkts [][]byte) ([]Out, error) {
	out := make([]Out, 0, len(pkts))
	for i, b := range pkts {
		var p rtp.Packet
		if err := p.Unmarshal(b); err != nil {
			return nil, fmt.Errorf("packet %d: %w", i, err)
		}
		pl := p.Payload
		if len(pl) < 7 || LayerOf(pl) < 0 {
			return nil, fmt.Errorf("packet %d: no full descriptor: %x", i, pl[:min(len(pl), 8)])
		}
		// Without the tag (not negotiated) the layer comes from KEYIDX
		// and the publisher's numbers are unknown: runs are told apart
		// by layer only.
		layer, orig := LayerOf(pl), p.SequenceNumber
		if tag := p.GetExtension(TagID); len(tag) == 3 {
			layer, orig = int(tag[0]), binary.BigEndian.Uint16(tag[1:])
		}
		o := Out{Seq: p.SequenceNumber, TS: p.Timestamp, Layer: layer, OrigSeq: orig,
			Pic: uint16(pl[2]&0x7f)<<8 | uint16(pl[3]), TL0: pl[4], Start: pl[0]&0x10 != 0, Marker: p.Marker,
			Frame: pl[6:], Original: b}
		o.Key = o.Start && pl[6]&1 == 0
		out = append(out, o)
	}
	return out, nil
}

// Ordered parses a subscriber's packets (Read) and returns them in
// sequence order, once each (retransmissions and duplicates dropped).
func Ordered(pkts [][]byte) ([]Out, error) {
	out, err := Read(pkts)
	if err != nil || len(out) == 0 {
		return out, err
	}
	base := out[0].Seq
	sort.SliceStable(out, func(i, j int) bool { return int16(out[i].Seq-base) < int16(out[j].Seq-base) })
	k := 0
	for i := range out {
		if i == 0 || out[i].Seq != out[k-1].Seq {
			out[k] = out[i]
			k++
		}
	}
	return out[:k], nil
}

// Decode decodes the frame starting at out[i] (its packets up to the
// marker) and returns its size.
func Decode(out []Out, i int) (w, h int, err error) {
	var frame []byte
	for j := i; j < len(out); j++ {
		if j > i && (out[j].Start || out[j].TS != out[i].TS) {
			return 0, 0, fmt.Errorf("frame at %d is incomplete", i)
		}
		frame = append(frame, out[j].Frame...)
		if out[j].Marker {
			return DecodeFrame(frame)
		}
	}
	return 0, 0, fmt.Errorf("frame at %d has no end", i)
}

// Continuity checks what must hold of any subscriber's packets, whatever
// the switches and the upstream loss. Inside a segment (a run of one
// layer's packets between splices), sequence numbers move with the
// publisher's (loss keeps its gap), and picture IDs and TL0PICIDX never go
// back. A splice (every change of layer, or a new segment on the same
// layer after a switch called off) starts on a key frame whose sequence
// number, picture ID and TL0PICIDX follow the last ones sent by one.
// Timestamps never go back. It returns the indexes where segments after
// the first start.
func Continuity(out []Out) (splices []int, err error) {
	var lastPic uint16
	var lastTL0 uint8
	for i := range out {
		o := &out[i]
		if i == 0 {
			if !o.Key {
				return nil, fmt.Errorf("the first packet is not a key frame's")
			}
			lastPic, lastTL0 = o.Pic, o.TL0
			continue
		}
		p := &out[i-1]
		if int32(o.TS-p.TS) < 0 {
			return nil, fmt.Errorf("packet %d: timestamp %d after %d", i, o.TS, p.TS)
		}
		inRun := o.Layer == p.Layer && o.Seq-p.Seq == o.OrigSeq-p.OrigSeq
		if !inRun {
			splices = append(splices, i)
			switch {
			case !o.Key:
				return nil, fmt.Errorf("packet %d: layer %d (publisher's %d after %d) starts a segment without a key frame", i, o.Layer, o.OrigSeq, p.OrigSeq)
			case o.Seq != p.Seq+1:
				return nil, fmt.Errorf("packet %d: seq %d after %d at a splice", i, o.Seq, p.Seq)
			case o.Pic != (lastPic+1)&0x7fff:
				return nil, fmt.Errorf("packet %d: picture ID %d after %d at a splice", i, o.Pic, lastPic)
			case o.TL0 != lastTL0+1:
				return nil, fmt.Errorf("packet %d: TL0PICIDX %d after %d at a splice", i, o.TL0, lastTL0)
			case o.TS == p.TS:
				return nil, fmt.Errorf("packet %d: the new segment's frame has the old one's timestamp", i)
			}
		} else {
			switch {
			case o.TS == p.TS && (o.Pic != p.Pic || o.TL0 != p.TL0):
				return nil, fmt.Errorf("packet %d: picture %d/%d inside frame %d/%d", i, o.Pic, o.TL0, p.Pic, p.TL0)
			case o.TS != p.TS && !(int16((o.Pic-p.Pic)<<1) > 0):
				return nil, fmt.Errorf("packet %d: picture ID %d after %d", i, o.Pic, p.Pic)
			case o.TS != p.TS && int8(o.TL0-p.TL0) < 0:
				return nil, fmt.Errorf("packet %d: TL0PICIDX %d after %d", i, o.TL0, p.TL0)
			}
		}
		if int16((o.Pic-lastPic)<<1) > 0 {
			lastPic = o.Pic
		}
		if int8(o.TL0-lastTL0) > 0 {
			lastTL0 = o.TL0
		}
	}
	return splices, nil
}

// LayerOf reads the layer a test packet's payload belongs to from its
// descriptor (KEYIDX), -1 if it has none.
func LayerOf(payload []byte) int {
	if len(payload) < 6 || payload[0]&0x80 == 0 || payload[1]&0xe0 != 0xe0 || payload[2]&0x80 == 0 {
		return -1
	}
	return int(payload[5]&0x1f) - 1
}

// DecodeFrame decodes one VP8 key frame and returns its size.
func DecodeFrame(frame []byte) (w, h int, err error) {
	d := xvp8.NewDecoder()
	d.Init(bytes.NewReader(frame), len(frame))
	fh, err := d.DecodeFrameHeader()
	if err != nil {
		return 0, 0, err
	}
	if _, err := d.DecodeFrame(); err != nil {
		return 0, 0, err
	}
	return fh.Width, fh.Height, nil
}

// DescLen returns the length of an RFC 7741 payload descriptor.
func DescLen(p []byte) int {
	i := 1
	if p[0]&0x80 != 0 {
		x := p[1]
		i = 2
		if x&0x80 != 0 {
			if p[i]&0x80 != 0 {
				i++
			}
			i++
		}
		if x&0x40 != 0 {
			i++
		}
		if x&0x30 != 0 {
			i++
		}
	}
	return i
}

// Segments checks out with Continuity and that the first frame of every
// segment decodes at its layer's size, and returns the layer of each
// segment in order.
func Segments(out []Out) (layers []int, err error) {
	splices, err := Continuity(out)
	if err != nil {
		return nil, err
	}
	for _, at := range append([]int{0}, splices...) {
		layers = append(layers, out[at].Layer)
		w, h, err := Decode(out, at)
		if err != nil {
			return nil, err
		}
		if want := Sizes[out[at].Layer]; w != want[0] || h != want[1] {
			return nil, fmt.Errorf("layer %d's first frame (packet %d) is %dx%d", out[at].Layer, at, w, h)
		}
	}
	return layers, nil
}
