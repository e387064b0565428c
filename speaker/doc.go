// Package speaker finds who speaks in a channel: the dominant speaker and
// the order of the others, from the RFC 6464 audio levels publishers put
// in their packets.
//
// The decision follows I. Volfin and I. Cohen, "Dominant speaker
// identification for multipoint videoconferencing" (Computer Speech and
// Language, 2013), in the form that works on audio levels instead of
// spectra. Each source's levels make 20 ms frames; over the last second
// the Detector measures three horizons: the immediate one (how loud the
// newest frame is, in 13 steps), the medium one (how many of the last 5
// frames are loud) and the long one (how many of the last ten 100 ms
// blocks were loud throughout). Each count becomes an activity score, the
// log-likelihood of that much activity under a binomial model weighed by
// an exponential prior. A challenger takes the dominant role only when
// its scores beat the dominant speaker's on all three horizons, so a
// cough or a key click (loud, but not for a whole block while the
// dominant speaker keeps the long horizon) does not take it, while a
// speaker who goes on talking after the dominant one stops does, within
// a few hundred milliseconds. A noise floor per source, tracked slowly,
// keeps a steady background noise from counting as speech.
//
// The order reported is the dominant speaker, then every other source
// with a whole loud block within the last second, the most active first.
// It changes only on decisions, so OnChange runs at most once per
// Config.Interval per Detector.
//
// # Cost and concurrency
//
// One Group serves a node: one goroutine, one ticker (Config.Interval,
// 300 ms by default), running only while some Detector has audible
// sources. Each channel has a Detector, each audio track a Source whose
// Level method is the packet path: an atomic add and store and two loads,
// no lock, no allocation. A decision reads the newest levels of each
// source of a busy Detector. docs/speaking.md gives the parameters and
// the measured cost.
package speaker
