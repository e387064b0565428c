package speaker_test

import (
	"fmt"
	"sync/atomic"
	"time"

	"github.com/callcore/callcore/speaker"
)

// manualClock is a clock the example moves by hand.
type manualClock struct{ ns atomic.Int64 }

func (c *manualClock) Nanotime() int64 { return c.ns.Load() }

// A channel with two users: ann talks, then bob. The packet path feeds each
// audio packet's RFC 6464 level to its Source; the Group decides every
// 300 ms on its own goroutine and reports the order when it changes.
func Example() {
	clock := &manualClock{}
	g, err := speaker.NewGroup(speaker.Config{Clock: clock})
	if err != nil {
		panic(err)
	}
	defer g.Close()
	changes := make(chan []speaker.Speaker, 16)
	d, err := g.NewDetector(speaker.DetectorConfig{
		OnChange: func(order []speaker.Speaker) { changes <- order },
	})
	if err != nil {
		panic(err)
	}
	ann, _ := d.Add("ann")
	bob, _ := d.Add("bob")

	// Three seconds of 20 ms packets: ann talks (about -35 dBov) for the
	// first 1.5 s, then bob; the silent one sends 127 (silence).
	for f := 0; f < 150; f++ {
		annLevel, bobLevel := uint8(35), uint8(127)
		if f >= 75 {
			annLevel, bobLevel = 127, 35
		}
		_ = ann.Level(annLevel, true, clock.Nanotime())
		_ = bob.Level(bobLevel, true, clock.Nanotime())
		clock.ns.Add(int64(20 * time.Millisecond))
		if f == 50 {
			// The Group's ticker runs on real time: wait for its first
			// decision.
			order := <-changes
			fmt.Println("dominant:", order[0].Key, "level", order[0].Level)
		}
	}
	for order := range changes {
		if order[0].Key == "bob" {
			fmt.Println("dominant:", order[0].Key, "level", order[0].Level)
			break
		}
	}
	// Output:
	// dominant: ann level 35
	// dominant: bob level 35
}
