package server

import (
	"testing"
	"testing/synctest"
	"time"
)

// A budget outlives its last holder until it has filled up again, so a
// user who reconnects gets no fresh burst; once full it is forgotten.
func TestBudgetIsForgottenOnlyWhenFullAgain(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		bs := newBudgets(10, 2) // 10 tokens a second, burst 2
		b := bs.acquire("u")
		now := time.Now()
		for i := range 2 {
			if !bs.take(b, now) {
				t.Fatalf("a fresh budget refused token %d of its burst of 2", i+1)
			}
		}
		if bs.take(b, now) {
			t.Fatal("an empty budget gave a token")
		}
		bs.release("u", b)
		if got := bs.len(); got != 1 {
			t.Fatalf("released while empty: %d budgets kept, want 1", got)
		}

		// Reconnecting before the refill finds the same, empty budget.
		b2 := bs.acquire("u")
		if b2 != b {
			t.Fatal("reconnecting before the refill got a new budget")
		}
		if bs.take(b2, time.Now()) {
			t.Fatal("reconnecting gave a fresh burst")
		}
		bs.release("u", b2)

		// Two tokens at 10/s take 200ms to come back; the budget is then
		// forgotten, and only then.
		time.Sleep(100 * time.Millisecond)
		synctest.Wait()
		if got := bs.len(); got != 1 {
			t.Fatalf("half refilled: %d budgets kept, want 1", got)
		}
		time.Sleep(150 * time.Millisecond)
		synctest.Wait()
		if got := bs.len(); got != 0 {
			t.Fatalf("full again: %d budgets kept, want 0", got)
		}
	})
}

// A budget someone still holds is never forgotten, however full.
func TestBudgetHeldIsKept(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		bs := newBudgets(10, 2)
		a := bs.acquire("u")
		b := bs.acquire("u")
		bs.release("u", a)
		time.Sleep(time.Second)
		synctest.Wait()
		if got := bs.len(); got != 1 {
			t.Fatalf("held by one connection: %d budgets kept, want 1", got)
		}
		bs.release("u", b)
		if got := bs.len(); got != 0 {
			t.Fatalf("full and released: %d budgets kept, want 0", got)
		}
	})
}
