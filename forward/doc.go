// Package forward is callcore's forwarding core: one published track fanned
// out to many subscribers, each with its own SSRC, payload type, header
// extension IDs, sequence numbers and timestamps.
//
// A publisher transport calls [Track.HandleRTP] for every packet, from one
// goroutine. The track validates the packet, extends its sequence number and
// timestamp to 64 bits, and hands it to every attached [Subscriber]: the
// payload is shared, and each subscriber's header is patched in a buffer the
// track owns, so the packet path neither allocates nor locks.
//
// Subscribers are added, removed, paused (their gate) and switched between
// tracks (a splice) from any goroutine without blocking the packet path.
// Their output stays continuous: withheld packets leave no gap, upstream
// loss keeps its gap for NACKs, and timestamps advance with wall time across
// splices.
package forward
