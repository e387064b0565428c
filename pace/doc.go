// Package pace smooths a sender's bursts: packets that would leave faster
// than a rate wait in a queue and are sent at their time by one shared
// scheduler.
//
// Three parts, none of which knows what a packet is:
//
//   - [Bucket]: a token bucket (the generic cell rate algorithm: one
//     atomic virtual time) at a rate and a burst depth. [Bucket.Reserve]
//     gives a packet the time it may leave, or refuses it when that would
//     be more than a bound away; [Bucket.Charge] counts a packet that
//     never waits (audio). Lock-free: any number of senders share one
//     bucket.
//   - [Queue]: a ring of fixed slots (allocated once, on its first use)
//     with one producer and the scheduler as consumer. While it holds
//     packets, the producer's later packets queue behind them, so nothing
//     overtakes: a producer that finds it empty knows every packet queued
//     before has been sent, because the scheduler counts a round's packets
//     out only after its [Sender] sent them and [Config.OnRound] (where a
//     batching Sender flushes) returned.
//   - [Scheduler]: one goroutine and a timer wheel of [Config.Slot] slots
//     holding only the queues that have packets. A queue registers itself
//     when its first packet goes in and leaves when its last is sent. The
//     goroutine, started on the first registration, sleeps on a channel
//     with no timer armed while no queue has packets: nothing ticks for
//     nothing.
//
// Times are nanoseconds on the scheduler's monotonic clock
// ([Scheduler.Now]).
package pace
