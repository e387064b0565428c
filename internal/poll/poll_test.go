package poll_test

import (
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/callcore/callcore/internal/poll"
)

// Until returns once the condition holds, having asked it again after it
// first did not.
func TestUntilReturnsOnceTheConditionHolds(t *testing.T) {
	var asked atomic.Int32
	poll.Until(t, 10*time.Second, "the third question", func() bool { return asked.Add(1) >= 3 })
	if n := asked.Load(); n != 3 {
		t.Fatalf("asked %d times, want 3", n)
	}
}

// failing is a test that records its failure and ends its goroutine, as
// testing.T's FailNow does.
type failing struct {
	testing.TB
	failed atomic.Bool
}

func (f *failing) Helper() {}

func (f *failing) Fatalf(string, ...any) {
	f.failed.Store(true)
	runtime.Goexit()
}

// Until fails the test when the condition never holds.
func TestUntilFailsAfterTheDeadline(t *testing.T) {
	f := &failing{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		poll.Until(f, 20*time.Millisecond, "nothing", func() bool { return false })
	}()
	<-done
	if !f.failed.Load() {
		t.Fatal("a condition that never held passed")
	}
}
