//go:build !race

package server

// raceSlowdown is how much longer the end-to-end waits are under the race
// detector.
const raceSlowdown = 1
