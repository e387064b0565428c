package mute_test

import (
	"errors"
	"fmt"

	"github.com/callcore/callcore/mute"
)

func ExampleBlackKeyFrame() {
	key, err := mute.BlackKeyFrame("video/VP8", 1280, 720)
	if err != nil {
		panic(err)
	}
	w, h, ok := mute.VP8FrameSize(key)
	fmt.Println(w, h, ok)

	_, err = mute.BlackKeyFrame("video/H264", 1279, 720)
	fmt.Println(errors.Is(err, mute.ErrInvalidSize))
	// Output:
	// 1280 720 true
	// true
}

func ExampleRepeatFrame() {
	key, _ := mute.BlackKeyFrame("video/H264", 640, 360)
	rep, _ := mute.RepeatFrame("video/H264", 640, 360)
	// Send key once, then rep at the stream's frame rate.
	fmt.Println(len(rep) < len(key)/10)
	// Output: true
}

func ExampleVP8FrameSize() {
	// The first bytes of a 640×360 VP8 key frame: frame tag, start code,
	// 14-bit width and height with 2-bit scales.
	frame := []byte{0x50, 0x42, 0x00, 0x9d, 0x01, 0x2a, 0x80, 0x02, 0x68, 0x01}
	fmt.Println(mute.VP8FrameSize(frame))
	// Output: 640 360 true
}
