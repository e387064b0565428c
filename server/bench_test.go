package server

import (
	"testing"
)

// BenchmarkRequest: one client's getUsers round trips over the WebSocket
// (decode, rate limit, channel snapshot, encode, write), in a channel of
// 10 users.
func BenchmarkRequest(b *testing.B) {
	ts := newTestServer(b, func(c *Config) { c.RequestRate = 1e9; c.RequestBurst = 1 << 30 })
	owner := login(b, ts, "owner", true)
	owner.must("create", createData{ChannelID: "c"})
	for i := range 9 {
		u := login(b, ts, "u"+string(rune('a'+i)), false)
		u.must("join", joinData{ChannelID: "c"})
	}
	b.ResetTimer()
	for b.Loop() {
		owner.must("getUsers", nil)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
}

// BenchmarkJoinLeave: join and leave round trips of one client (a channel
// stay each: a WebRTC peer made, attached to the plane and closed).
func BenchmarkJoinLeave(b *testing.B) {
	ts := newTestServer(b, func(c *Config) { c.RequestRate = 1e9; c.RequestBurst = 1 << 30 })
	owner := login(b, ts, "owner", true)
	owner.must("create", createData{ChannelID: "c"})
	u := login(b, ts, "u", false)
	b.ResetTimer()
	for b.Loop() {
		u.must("join", joinData{ChannelID: "c"})
		u.must("leave", nil)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "stays/s")
}
