package mute

import (
	"fmt"
	"testing"
	"time"
)

var benchSizes = [][2]int{{320, 180}, {640, 360}, {1280, 720}, {1920, 1080}, {4096, 2304}}

func benchVideo(b *testing.B, fn func(string, int, int) ([]byte, error)) {
	for _, codec := range []struct{ name, mime string }{{"vp8", MimeTypeVP8}, {"h264", MimeTypeH264}} {
		for _, s := range benchSizes {
			b.Run(fmt.Sprintf("%s-%dx%d", codec.name, s[0], s[1]), func(b *testing.B) {
				b.ReportAllocs()
				var n int
				for b.Loop() {
					f, err := fn(codec.mime, s[0], s[1])
					if err != nil {
						b.Fatal(err)
					}
					n = len(f)
				}
				b.ReportMetric(float64(n), "frame-bytes")
			})
		}
	}
}

func BenchmarkBlackKeyFrame(b *testing.B) { benchVideo(b, BlackKeyFrame) }

func BenchmarkRepeatFrame(b *testing.B) { benchVideo(b, RepeatFrame) }

func BenchmarkSilentFrame(b *testing.B) {
	for _, c := range []struct{ name, mime string }{
		{"opus", MimeTypeOpus}, {"pcmu", MimeTypePCMU}, {"pcma", MimeTypePCMA},
	} {
		b.Run(c.name+"-20ms", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := SilentFrame(c.mime, 20*time.Millisecond); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkH264SPSSize(b *testing.B) {
	nal := splitAnnexB(must(BlackKeyFrame(MimeTypeH264, 1920, 1080)))[0]
	b.ReportAllocs()
	for b.Loop() {
		if _, _, ok := H264SPSSize(nal); !ok {
			b.Fatal("not parsed")
		}
	}
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}
