package bwe_test

import (
	"fmt"

	"github.com/callcore/callcore/bwe"
)

// An estimate of 700 kbit/s shared by an audio stream and two three-layer
// video streams, one of them with an explicit preference.
func ExampleAllocator() {
	a := bwe.NewAllocator(bwe.AllocConfig{})
	audio := &bwe.Stream{Audio: true, Rates: [bwe.MaxLayers]float64{40e3}}
	speaker := &bwe.Stream{Priority: 1, Max: 2, Rates: [bwe.MaxLayers]float64{150e3, 450e3, 1500e3}}
	other := &bwe.Stream{Max: 2, Rates: [bwe.MaxLayers]float64{150e3, 450e3, 1500e3}}
	a.Allocate(700e3, 0, []*bwe.Stream{audio, other, speaker})
	fmt.Println("speaker layer", speaker.Layer, "limited", speaker.Limited)
	fmt.Println("other layer", other.Layer, "limited", other.Limited)
	a.Allocate(200e3, 1e9, []*bwe.Stream{audio, other, speaker})
	fmt.Println("at 200 kbit/s: speaker", speaker.Layer, "other", other.Layer)
	// Output:
	// speaker layer 1 limited true
	// other layer 0 limited true
	// at 200 kbit/s: speaker 0 other -1
}
