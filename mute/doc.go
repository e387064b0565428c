// Package mute builds the frames a subscriber of a self-muted track
// receives: video key frames whose every pixel decodes black at the
// publisher's own resolution, inter frames that repeat them, and audio
// frames whose every sample decodes to zero.
//
// BlackKeyFrame makes a VP8 key frame (RFC 6386) or an H.264 Annex B
// access unit (SPS, PPS, IDR) of any size from 16×16 to 4096×2304, in
// either orientation. RepeatFrame makes the matching inter frame in which
// every macroblock is skipped, so a muted stream keeps its cadence without
// a key frame each time. SilentFrame makes an Opus, PCMU or PCMA frame of
// silence. VP8FrameSize and H264SPSSize read the picture size of a
// publisher's key frame or SPS, the size the black frames must have.
//
// The frames are minimal encodings of a flat picture. Intra prediction of
// the top-left macroblock has no neighbours and predicts mid-grey, so that
// macroblock alone carries a residual (VP8: one second-order DC
// coefficient; H.264: an I_PCM macroblock); every other macroblock predicts
// black from its decoded neighbours with no residual. The H.264 frames use
// their own parameter set ids (H264SPSID, H264PPSID) so that they never
// overwrite a publisher's parameter sets in a subscriber's decoder.
//
// Every function is safe for concurrent use. Making a frame costs time
// linear in the number of macroblocks; callers that send frames often
// should cache them per size.
package mute
