// Package forward is callcore's forwarding core: one published track fanned
// out to many subscribers, each with its own SSRC, payload type, header
// extension IDs, sequence numbers and timestamps.
//
// A publisher transport calls [Track.HandleRTP] for every packet, from one
// goroutine. The track validates the packet, extends its sequence number and
// timestamp to 64 bits, keeps a copy in its retransmission cache and hands
// it to every attached [Subscriber]: the payload is shared, and each
// subscriber's header is patched in a buffer the track owns, so the packet
// path neither allocates nor waits for another track or subscriber.
//
// A subscriber transport passes the subscriber's RTCP to
// [Subscriber.HandleRTCP]: NACKs are answered from the shared cache, and
// key-frame requests are merged into one request to the publisher, at most
// one per interval, repeated until a key frame comes. Each subscriber's
// key-frame requests, NACKs and retransmissions are budgeted. Work that
// needs a track's media state while another goroutine holds it is handed
// to that goroutine: nothing waits for a track in a loop. Subscribers start, and
// start again after a pause, a switch of source or a refused write, on a
// key frame: the cached run from the last one when it is recent, otherwise
// the next one.
//
// Subscribers are added, removed, paused (their gate) and switched between
// tracks (a splice) from any goroutine. Their output stays continuous:
// withheld packets leave no gap, upstream loss keeps its gap for NACKs, and
// timestamps advance with wall time across splices.
//
// [Track.SetMute] applies the layers of muting: a self mute replaces the
// publisher's media with black video and silent audio at the publisher's
// size and cadence; an admin source forwards nothing after a short flush;
// unmuting resumes on the publisher's key frame. A [Pulse] keeps a muted
// track's cadence when its publisher sends nothing.
//
// docs/architecture.md describes the threading model and the policies.
package forward
