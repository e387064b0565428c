package memory

import "math/rand/v2"

// Loss returns a hook that drops each packet with probability rate, from a
// seeded generator, so a run is repeatable.
func Loss(rate float64, seed uint64) Hook {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	return func(uint64, []byte) Action { return Action{Drop: r.Float64() < rate} }
}

// Swap returns a hook that delivers every k-th packet after the one that
// follows it.
func Swap(k uint64) Hook {
	return func(n uint64, _ []byte) Action {
		if k > 0 && n%k == 0 {
			return Action{After: 1}
		}
		return Action{}
	}
}
