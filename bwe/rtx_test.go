package bwe_test

import (
	"testing"

	"github.com/callcore/callcore/bwe"
)

// TestRetransmissionsComeOffTheBudget: a NACK storm's rate counts at once
// in what the allocation shares, fades once it stops, and never takes
// more than half the estimate; with it, a stream that fitted moves down.
func TestRetransmissionsComeOffTheBudget(t *testing.T) {
	var c bwe.CounterRate
	now := int64(1e9)
	var bytes uint64
	step := func(rate float64) float64 { // 250 ms of retransmissions at rate
		bytes += uint64(rate / 8 / 4)
		now += 250e6
		return c.Update(bytes, now)
	}
	if r := c.Update(0, now); r != 0 {
		t.Fatalf("first reading: %v", r)
	}
	if r := step(0); r != 0 {
		t.Fatalf("no retransmissions: %v", r)
	}
	if r := step(200e3); r < 199e3 || r > 201e3 {
		t.Fatalf("a storm at 200 kbit/s measured at %v", r)
	}
	var rates []float64
	for range 4 {
		rates = append(rates, step(0))
	}
	if rates[0] < 99e3 || rates[0] > 101e3 || rates[1] >= rates[0] || rates[3] > 13e3 {
		t.Fatalf("after the storm: %v", rates)
	}
	// A reading within 100 ms keeps the rate; a counter that went back
	// starts again.
	bytes += 1000
	if r := c.Update(bytes, now+50e6); r != rates[3] {
		t.Fatalf("a reading 50 ms later: %v, want %v", r, rates[3])
	}
	if r := c.Update(0, now+300e6); r != 0 {
		t.Fatalf("a counter that went back: %v", r)
	}

	if b := bwe.Budget(1e6, 0); b != 1e6 {
		t.Fatalf("no retransmissions: budget %v", b)
	}
	if b := bwe.Budget(1e6, 200e3); b != 800e3 {
		t.Fatalf("200 kbit/s of retransmissions: budget %v", b)
	}
	if b := bwe.Budget(1e6, 3e6); b != 500e3 {
		t.Fatalf("a storm over the estimate: budget %v", b)
	}

	// 900 kbit/s estimated: a 600 kbit/s layer fits with its audio
	// (50 kbit/s); with 300 kbit/s of retransmissions it does not, and
	// the stream goes down to 300.
	a := bwe.NewAllocator(bwe.AllocConfig{})
	audio := &bwe.Stream{Audio: true, Rates: [bwe.MaxLayers]float64{50e3}}
	video := &bwe.Stream{Rates: [bwe.MaxLayers]float64{100e3, 300e3, 600e3}, Max: 2}
	streams := []*bwe.Stream{audio, video}
	a.Allocate(bwe.Budget(900e3, 0), 1e9, streams)
	if video.Layer != 2 {
		t.Fatalf("900 kbit/s, no retransmissions: layer %d", video.Layer)
	}
	a.Allocate(bwe.Budget(900e3, 300e3), 2e9, streams)
	if video.Layer != 1 || !video.Limited || audio.Layer != 0 {
		t.Fatalf("900 kbit/s with 300 of retransmissions: video layer %d (limited %v), audio %d", video.Layer, video.Limited, audio.Layer)
	}
}
