//go:build !race

package rtpx

import "testing"

func TestAudioLevelAllocatesNothing(t *testing.T) {
	pkt := audioPacket(t, false, map[uint8][]byte{3: {1, 2, 3}, 1: {0x80 | 33}})
	var h Header
	if err := Parse(pkt, &h); err != nil {
		t.Fatal(err)
	}
	var sum int
	allocs := testing.AllocsPerRun(1000, func() {
		level, _, err := AudioLevel(pkt, &h, 1)
		if err == nil {
			sum += int(level)
		}
	})
	if allocs != 0 || sum == 0 {
		t.Fatalf("AudioLevel: %v allocs per call (sum %d)", allocs, sum)
	}
}

func BenchmarkAudioLevel(b *testing.B) {
	pkt := audioPacket(b, false, map[uint8][]byte{3: {1, 2, 3}, 5: {1, 2}, 1: {0x80 | 33}})
	var h Header
	if err := Parse(pkt, &h); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	var sum int
	for b.Loop() {
		level, _, _ := AudioLevel(pkt, &h, 1)
		sum += int(level)
	}
	if sum == 0 {
		b.Fatal("no level read")
	}
}
