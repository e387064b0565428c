// Package bwe estimates the bandwidth of a transport's downlink from its
// receiver's feedback, in the manner of Google congestion control.
//
// A sender takes a transport-wide sequence number for each packet it sends
// from the transport's [History] ([History.Record]), writes it in the
// packet's transport-wide sequence number extension, and hands the
// receiver's RTCP to the transport's [Estimator] ([Estimator.HandleRTCP]):
// transport-wide congestion control feedback and REMB are parsed in place
// ([ParseRTCP]) without allocating. The estimate is the minimum of:
//
//   - a delay-based estimate: packets grouped by send time, the growth of
//     one-way delay between groups fitted with a line, an adaptive
//     threshold on its slope that detects over-use, and an
//     additive-increase multiplicative-decrease rate controller (cut to
//     0.85 × the acknowledged receive rate on over-use);
//   - a loss-based bound: cut by half the loss fraction when more than
//     10 % of the packets sent since the last cut are lost (never under
//     half the acknowledged rate, at most once a second), raised by 8 % a
//     second under 2 %;
//   - the receiver's own estimate, when it sends REMB.
//
// A transport that wants to send more than the estimate probes: a
// [Prober] plans clusters of padding above the estimate, the sender
// records their packets with [History.RecordProbe] (or PutProbe), and the
// estimator raises the estimate to the rate a cluster was delivered at
// when it came through as fast as it was sent, with no over-use.
//
// Loss inherited from upstream never lowers the estimate: transport-wide
// sequence numbers belong to the packets actually sent, and receiver
// reports' loss is given with its inherited part ([Estimator.HandleLoss]).
//
// Recording is lock-free and may run on any number of packet paths at
// once; feedback is serialised by the estimator. Time is injected: the
// history reads a [Clock], the estimator takes the time of each feedback.
package bwe
