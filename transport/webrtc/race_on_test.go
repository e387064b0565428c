//go:build race

package webrtc

// raceEnabled: the race detector adds allocations of its own.
const raceEnabled = true
