package mute

import "testing"

// fuzzSize maps two fuzzed values onto a picture size in range: width
// 16..4096, height 16..2304, stepping by step.
func fuzzSize(a, b uint16, step int) (w, h int) {
	w = MinSide + step*(int(a)%((MaxLongSide-MinSide)/step+1))
	h = MinSide + step*(int(b)%((MaxShortSide-MinSide)/step+1))
	return w, h
}

// FuzzBlackKeyFrame checks that a VP8 black key frame of every size in
// range decodes, in pure Go, to a black picture of that size.
func FuzzBlackKeyFrame(f *testing.F) {
	f.Add(uint16(0), uint16(0))
	f.Add(uint16(1), uint16(1))
	f.Add(uint16(4080), uint16(2288))
	f.Fuzz(func(t *testing.T, a, b uint16) {
		w, h := fuzzSize(a, b, 1)
		checkVP8Black(t, w, h)
	})
}

// FuzzH264SPSSize checks that H264SPSSize reads back the size of every SPS
// this package writes, and never panics on anything else.
func FuzzH264SPSSize(f *testing.F) {
	f.Add(uint16(0), uint16(0), []byte{})
	f.Add(uint16(152), uint16(82), []byte{0x67, 0x42, 0xe0, 0x1f, 0xff})
	f.Add(uint16(2040), uint16(1144), []byte{0x67, 0x64, 0x00, 0x28, 0xac, 0xd9, 0x40, 0x78, 0x02, 0x27})
	f.Fuzz(func(t *testing.T, a, b uint16, data []byte) {
		w, h := fuzzSize(a, b, 2)
		nal := appendNAL(nil, h264NALSPS, h264SPS(w, h))[4:]
		if gw, gh, ok := H264SPSSize(nal); !ok || gw != w || gh != h {
			t.Fatalf("H264SPSSize(SPS of %d×%d) = %d×%d, %v", w, h, gw, gh, ok)
		}
		H264SPSSize(data)
		H264SPSSize(append([]byte{0x67}, data...))
		for i, c := range data {
			nal[(i+1)%len(nal)] ^= c
		}
		H264SPSSize(nal)
		H264SPSSize(nal[:len(nal)*int(a%8)/8])
	})
}
