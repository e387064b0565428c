package channel

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/callcore/callcore/permission"
)

// benchChannel returns a channel with users active users, each publishing
// a mic and each with a consumer goroutine reading its events, and a
// function that deletes the channel and waits for the consumers.
func benchChannel(b *testing.B, users int) (*Channel, func()) {
	reg, err := NewRegistry(Config{EventBuffer: 1024})
	if err != nil {
		b.Fatal(err)
	}
	c, sub, err := reg.Create("owner", "bench", CreateOptions{Tracks: []TrackInfo{mic}})
	if err != nil {
		b.Fatal(err)
	}
	var readers sync.WaitGroup
	read := func(s *Subscription) {
		readers.Go(func() {
			for range s.C() {
			}
		})
	}
	read(sub)
	for i := 1; i < users; i++ {
		s, err := c.Join(context.Background(), fmt.Sprint("user", i), []TrackInfo{mic})
		if err != nil {
			b.Fatal(err)
		}
		read(s)
	}
	return c, func() {
		if err := c.Delete("owner", ""); err != nil {
			b.Fatal(err)
		}
		readers.Wait()
	}
}

// BenchmarkChannelOps measures channel operations per second with 1,000
// active users, each event delivered to every one of them (read by a
// goroutine per user).
func BenchmarkChannelOps(b *testing.B) {
	const users = 1000
	ops := []struct {
		name   string
		perRun int // operations per iteration
		op     func(c *Channel, i int) error
	}{
		{"join+leave", 2, func(c *Channel, i int) error {
			s, err := c.Join(context.Background(), "guest", []TrackInfo{mic})
			if err != nil {
				return err
			}
			go func() {
				for range s.C() {
				}
			}()
			return c.Leave("guest")
		}},
		{"muteTracks", 1, func(c *Channel, i int) error {
			return c.MuteTracks("user1", []string{"mic"}, MuteAction(i%2 == 0))
		}},
		{"modUsers", 1, func(c *Channel, i int) error {
			mode := permission.Default
			if i%2 == 0 {
				mode = permission.Recv
			}
			return c.ModUsers("owner", []UserMode{{"user1", mode}})
		}},
	}
	for _, o := range ops {
		b.Run(fmt.Sprintf("%s/users=%d", o.name, users), func(b *testing.B) {
			c, done := benchChannel(b, users)
			defer done()
			b.ReportAllocs()
			start := time.Now()
			i := 0
			for b.Loop() {
				if err := o.op(c, i); err != nil {
					b.Fatal(err)
				}
				i++
			}
			b.ReportMetric(float64(i*o.perRun)/time.Since(start).Seconds(), "ops/s")
		})
	}
}
