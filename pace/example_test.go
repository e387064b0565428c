package pace_test

import (
	"fmt"
	"time"

	"github.com/callcore/callcore/pace"
)

// printer prints the packets the scheduler sends.
type printer chan string

func (p printer) Send(buf []byte, meta uint64, queued, now int64) { p <- string(buf) }

// A burst of three 1,250-byte packets at 1 Mbit/s: the first leaves at
// once, the others wait in the queue and leave 10 ms apart.
func Example() {
	s, err := pace.New(pace.Config{})
	if err != nil {
		panic(err)
	}
	defer s.Close()
	var b pace.Bucket
	b.SetRate(125_000, 0)
	out := make(printer, 3)
	q := s.NewQueue(16, 1500, out)
	for _, name := range []string{"first", "second", "third"} {
		now := s.Now()
		due, _ := b.Reserve(now, 1250, int64(100*time.Millisecond))
		if !q.Busy() && due <= now {
			fmt.Println("at once:", name)
			continue
		}
		slot := q.Slot()
		q.Push(len(append(slot, name...)), due, now, 0)
	}
	fmt.Println("paced:", <-out)
	fmt.Println("paced:", <-out)
	// Output:
	// at once: first
	// paced: second
	// paced: third
}
