package browser

import (
	_ "embed"
	"testing"
)

// ProbeJS is the source of probe.js, which defines window.__probe (once per
// document) with these functions; the async ones return promises, which
// Tab.Eval and Tab.WaitFor await:
//
//   - videoStats(pc): the sums over pc's inbound-rtp video reports
//     {framesDecoded, framesReceived, packetsReceived, packetsLost,
//     bytesReceived, frameWidth, frameHeight, tracks}; frameWidth and
//     frameHeight are the largest; tracks has one entry per inbound-rtp
//     report (ordered by mid) with the fields below. Async.
//   - audioStats(pc): the sums over pc's inbound-rtp audio reports
//     {totalAudioEnergy, totalSamplesReceived, totalSamplesDuration,
//     packetsReceived, packetsLost, bytesReceived, tracks}. Async.
//   - trackStats(pc, trackOrId): the inbound-rtp report of ONE remote track,
//     found among pc.getReceivers() and read with receiver.getStats():
//     {kind, mid, trackIdentifier, ssrc, packetsReceived, packetsLost,
//     bytesReceived, framesReceived, framesDecoded, framesDropped,
//     keyFramesDecoded, frameWidth, frameHeight, framesPerSecond,
//     totalAudioEnergy, totalSamplesReceived, totalSamplesDuration,
//     concealedSamples, audioLevel}, all 0 before the first packet. Rejects
//     when pc has no receiver with that track. Async.
//   - remoteTracks(pc): [{id, kind, mid, muted, readyState}] of pc's
//     receivers.
//   - attach(track): renders a MediaStreamTrack in a new element appended
//     to the body (video: <video muted playsinline autoplay>; audio:
//     <audio autoplay>, unmuted, .play()) and returns the element's id.
//     Remote audio's totalAudioEnergy only grows while it plays like this.
//   - detach(id): stops and removes such an element.
//   - playback(elOrId): {paused, readyState, currentTime, videoWidth,
//     videoHeight, totalVideoFrames} of a media element.
//   - brightness(videoOrId): draws the current frame into a canvas and
//     returns the luma (BT.601, 0..255) {mean, max, min, width, height}, or
//     null while the element has no frame.
//   - isBlack(videoOrId, maxLuma = 20): a frame exists and its max luma is
//     <= maxLuma.
//   - isNotBlack(videoOrId, minMean = 30): a frame exists and its mean luma
//     is > minMean.
//
//go:embed probe.js
var ProbeJS string

// VideoStats is the result of __probe.videoStats(pc).
type VideoStats struct {
	FramesDecoded   int          `json:"framesDecoded"`
	FramesReceived  int          `json:"framesReceived"`
	PacketsReceived int          `json:"packetsReceived"`
	PacketsLost     int          `json:"packetsLost"`
	BytesReceived   int64        `json:"bytesReceived"`
	FrameWidth      int          `json:"frameWidth"`
	FrameHeight     int          `json:"frameHeight"`
	Tracks          []TrackStats `json:"tracks"`
}

// AudioStats is the result of __probe.audioStats(pc).
type AudioStats struct {
	TotalAudioEnergy     float64      `json:"totalAudioEnergy"`
	TotalSamplesReceived int64        `json:"totalSamplesReceived"`
	TotalSamplesDuration float64      `json:"totalSamplesDuration"`
	PacketsReceived      int          `json:"packetsReceived"`
	PacketsLost          int          `json:"packetsLost"`
	BytesReceived        int64        `json:"bytesReceived"`
	Tracks               []TrackStats `json:"tracks"`
}

// TrackStats is the inbound-rtp report of one remote track, the result of
// __probe.trackStats(pc, track) and an entry of VideoStats.Tracks and
// AudioStats.Tracks.
type TrackStats struct {
	Kind                 string  `json:"kind"`
	Mid                  *string `json:"mid"`
	TrackIdentifier      string  `json:"trackIdentifier"`
	SSRC                 uint32  `json:"ssrc"`
	PacketsReceived      int     `json:"packetsReceived"`
	PacketsLost          int     `json:"packetsLost"`
	BytesReceived        int64   `json:"bytesReceived"`
	FramesReceived       int     `json:"framesReceived"`
	FramesDecoded        int     `json:"framesDecoded"`
	FramesDropped        int     `json:"framesDropped"`
	KeyFramesDecoded     int     `json:"keyFramesDecoded"`
	FrameWidth           int     `json:"frameWidth"`
	FrameHeight          int     `json:"frameHeight"`
	FramesPerSecond      float64 `json:"framesPerSecond"`
	TotalAudioEnergy     float64 `json:"totalAudioEnergy"`
	TotalSamplesReceived int64   `json:"totalSamplesReceived"`
	TotalSamplesDuration float64 `json:"totalSamplesDuration"`
	ConcealedSamples     int64   `json:"concealedSamples"`
	AudioLevel           float64 `json:"audioLevel"`
}

// Brightness is the result of __probe.brightness(video): the luma (BT.601,
// 0..255) of the current frame.
type Brightness struct {
	Mean   float64 `json:"mean"`
	Max    float64 `json:"max"`
	Min    float64 `json:"min"`
	Width  int     `json:"width"`
	Height int     `json:"height"`
}

// VideoStats returns __probe.videoStats(pc), where pc is a JavaScript
// expression for an RTCPeerConnection (such as "window.pc").
func (tab *Tab) VideoStats(t testing.TB, pc string) VideoStats {
	t.Helper()
	var s VideoStats
	tab.Eval(t, "__probe.videoStats("+pc+")", &s)
	return s
}

// AudioStats returns __probe.audioStats(pc), where pc is a JavaScript
// expression for an RTCPeerConnection.
func (tab *Tab) AudioStats(t testing.TB, pc string) AudioStats {
	t.Helper()
	var s AudioStats
	tab.Eval(t, "__probe.audioStats("+pc+")", &s)
	return s
}

// TrackStats returns __probe.trackStats(pc, track), where pc and track are
// JavaScript expressions for an RTCPeerConnection and for a remote
// MediaStreamTrack or its id.
func (tab *Tab) TrackStats(t testing.TB, pc, track string) TrackStats {
	t.Helper()
	var s TrackStats
	tab.Eval(t, "__probe.trackStats("+pc+", "+track+")", &s)
	return s
}

// Brightness returns __probe.brightness(video), where video is a JavaScript
// expression for a <video> element or its id; nil while it has no frame.
func (tab *Tab) Brightness(t testing.TB, video string) *Brightness {
	t.Helper()
	var b *Brightness
	tab.Eval(t, "__probe.brightness("+video+")", &b)
	return b
}

// Attach renders a remote track with __probe.attach(track), where track is
// a JavaScript expression for a MediaStreamTrack, and returns the id of the
// new <video> or <audio> element.
func (tab *Tab) Attach(t testing.TB, track string) string {
	t.Helper()
	var id string
	tab.Eval(t, "__probe.attach("+track+")", &id)
	return id
}
