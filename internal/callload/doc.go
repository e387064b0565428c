// Package callload loads a running call server the way real clients do
// and measures it: the machinery of cmd/callload.
//
// A run (Run, described by a Config) joins publishers and subscribers,
// spread over channels, through the server's signalling protocol
// (docs/protocol.md) with one pion PeerConnection each, as the browser
// SDK does. Publishers send VP8 in real time, from an IVF file or a
// synthetic stream of black key frames and repeat frames (package mute)
// padded to a chosen bit rate, and Opus silence when asked. After a
// warm-up the run measures a window: join and first-media times, packets
// sent and delivered, loss against what was sent and as sequence gaps,
// and, given the server's pid, its CPU time per delivered packet and its
// RSS, read from /proc. The Report prints as a table or marshals to JSON.
package callload
