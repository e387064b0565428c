package speaker

import (
	"errors"
	"runtime"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// feed sends one level per 20 ms for dur through src, in the synctest
// bubble's time.
func feed(t *testing.T, clock Clock, src *Source, dur time.Duration, level func(time.Duration) int) {
	t.Helper()
	for at := time.Duration(0); at < dur; at += frameMs * time.Millisecond {
		if err := src.Level(uint8(level(at)), true, clock.Nanotime()); err != nil {
			t.Fatal(err)
		}
		time.Sleep(frameMs * time.Millisecond) // the bubble's clock: one frame
	}
}

func TestGroupTicksOnlyWhileAudible(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g, err := NewGroup(Config{})
		if err != nil {
			t.Fatal(err)
		}
		defer g.Close()
		var mu sync.Mutex
		var got [][]Speaker
		d, err := g.NewDetector(DetectorConfig{OnChange: func(o []Speaker) {
			mu.Lock()
			got = append(got, o)
			mu.Unlock()
		}})
		if err != nil {
			t.Fatal(err)
		}
		ann, _ := d.Add("ann")
		bob, _ := d.Add("bob")

		// Silence (a publisher without DTX) wakes nothing.
		feed(t, g.cfg.Clock, bob, 3*time.Second, func(time.Duration) int { return silent })
		synctest.Wait()
		if g.Ticks() != 0 {
			t.Fatalf("%d ticks with only silence", g.Ticks())
		}
		feed(t, g.cfg.Clock, ann, 2*time.Second, func(at time.Duration) int { return speech(at.Milliseconds()) })
		synctest.Wait()
		mu.Lock()
		if len(got) != 1 || len(got[0]) != 1 || got[0][0].Key != "ann" {
			t.Fatalf("OnChange calls %v, want one with ann", got)
		}
		mu.Unlock()
		if g.Ticks() == 0 || g.Ticks() > 7 {
			t.Fatalf("%d ticks in 2 s of speech, want about 2 s / 300 ms", g.Ticks())
		}
		// Once nobody is heard for the window, the ticker stops.
		time.Sleep(2 * time.Second)
		synctest.Wait()
		idle := g.Ticks()
		time.Sleep(time.Minute)
		synctest.Wait()
		if g.Ticks() != idle {
			t.Fatalf("ticked %d times in a silent minute", g.Ticks()-idle)
		}
		if o := d.Speakers(); len(o) != 1 || o[0].Key != "ann" {
			t.Fatalf("Speakers() = %v, want the sticky dominant ann", o)
		}
		// A mute wakes the Group even in silence: ann leaves the order.
		if err := d.SetMuted("ann", true); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Second)
		synctest.Wait()
		mu.Lock()
		defer mu.Unlock()
		if last := got[len(got)-1]; len(last) != 0 {
			t.Fatalf("after muting the silent dominant speaker the order is %v", last)
		}
	})
}

func TestGroupRunsAllDetectorsOnOneGoroutine(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g, err := NewGroup(Config{})
		if err != nil {
			t.Fatal(err)
		}
		const channels = 50
		var mu sync.Mutex
		dominant := map[int]string{}
		srcs := make([]*Source, channels)
		for i := range channels {
			d, err := g.NewDetector(DetectorConfig{OnChange: func(o []Speaker) {
				mu.Lock()
				if len(o) > 0 {
					dominant[i] = o[0].Key
				}
				mu.Unlock()
			}})
			if err != nil {
				t.Fatal(err)
			}
			if srcs[i], err = d.Add("user"); err != nil {
				t.Fatal(err)
			}
		}
		// Counted by what they run, not by runtime.NumGoroutine, which
		// other tests' goroutines still ending would throw off, once the
		// bubble's goroutines have started and blocked.
		synctest.Wait()
		if n := groupGoroutines(); n != 1 {
			t.Fatalf("%d goroutines running a Group for %d channels, want 1", n, channels)
		}
		for at := time.Duration(0); at < time.Second; at += frameMs * time.Millisecond {
			for _, s := range srcs {
				if err := s.Level(uint8(speech(at.Milliseconds())), true, g.cfg.Clock.Nanotime()); err != nil {
					t.Fatal(err)
				}
			}
			time.Sleep(frameMs * time.Millisecond)
		}
		synctest.Wait()
		g.Close()
		if len(dominant) != channels {
			t.Fatalf("%d of %d channels found their speaker", len(dominant), channels)
		}
		if _, err := g.NewDetector(DetectorConfig{OnChange: func([]Speaker) {}}); !errors.Is(err, ErrClosed) {
			t.Fatalf("NewDetector on a closed Group: %v", err)
		}
	})
}

func TestOnChangeRunsWithoutLocks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g, err := NewGroup(Config{})
		if err != nil {
			t.Fatal(err)
		}
		defer g.Close()
		var d *Detector
		calls := 0
		d, err = g.NewDetector(DetectorConfig{OnChange: func(o []Speaker) {
			calls++
			// Calling back into the Detector would deadlock under its lock.
			_ = d.Speakers()
			if len(o) > 0 {
				if err := d.SetMuted(o[0].Key, true); err != nil {
					t.Error(err)
				}
			}
		}})
		if err != nil {
			t.Fatal(err)
		}
		ann, _ := d.Add("ann")
		feed(t, g.cfg.Clock, ann, time.Second, func(at time.Duration) int { return speech(at.Milliseconds()) })
		synctest.Wait()
		if calls != 2 || len(d.Speakers()) != 0 {
			t.Fatalf("OnChange ran %d times (want ann, then the empty order after her mute); order %v", calls, d.Speakers())
		}
	})
}

func TestBadInputIsRefusedAndCounted(t *testing.T) {
	g, err := newGroup(Config{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := newGroup(Config{Interval: time.Millisecond}); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("1 ms interval: %v", err)
	}
	if _, err := g.NewDetector(DetectorConfig{}); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("no OnChange: %v", err)
	}
	d, err := g.NewDetector(DetectorConfig{OnChange: func([]Speaker) {}})
	if err != nil {
		t.Fatal(err)
	}
	ann, _ := d.Add("ann")
	if _, err := d.Add("ann"); !errors.Is(err, ErrDuplicateSource) {
		t.Fatalf("duplicate Add: %v", err)
	}
	if _, err := d.Add(""); !errors.Is(err, ErrEmptyKey) {
		t.Fatalf("empty key: %v", err)
	}
	if err := ann.Level(128, true, 0); !errors.Is(err, ErrLevel) {
		t.Fatalf("level 128: %v", err)
	}
	if ann.count.Load() != 0 {
		t.Fatal("a refused level was stored")
	}
	if err := d.Level("zed", 30, true, 0); !errors.Is(err, ErrUnknownSource) {
		t.Fatalf("unknown key: %v", err)
	}
	if err := d.SetMuted("zed", true); !errors.Is(err, ErrUnknownSource) {
		t.Fatalf("SetMuted unknown: %v", err)
	}
	if err := d.Remove("zed"); !errors.Is(err, ErrUnknownSource) {
		t.Fatalf("Remove unknown: %v", err)
	}
	if err := d.Remove("ann"); err != nil {
		t.Fatal(err)
	}
	if err := ann.Level(30, true, 0); !errors.Is(err, ErrRemoved) {
		t.Fatalf("level on a removed source: %v", err)
	}
	if d.Refused() != 3 {
		t.Fatalf("Refused() = %d, want 3", d.Refused())
	}
	if err := d.Level("ann", 30, true, 0); !errors.Is(err, ErrUnknownSource) {
		t.Fatalf("level for a removed key: %v", err)
	}
}

// groupGoroutines counts the goroutines running a Group's loop.
func groupGoroutines() int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			return strings.Count(string(buf[:n]), "speaker.(*Group).run(")
		}
		buf = make([]byte, 2*len(buf))
	}
}
