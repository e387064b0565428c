package speaker

import "math"

// The time horizons of the decision, in 20 ms frames. Volumes are 127
// minus the RFC 6464 level, so 0 is silence and 127 the loudest.
const (
	frameMs   = 20 // one Opus frame
	blockLen  = 5  // frames in a medium block (100 ms)
	numBlocks = 10 // medium blocks in the long window (1 s)
	numFrames = blockLen * numBlocks

	subbands  = 13                              // quantisation steps of the immediate horizon
	subunit   = (127 + subbands - 1) / subbands // volume per step: 10
	loudStep  = 7                               // a frame is loud above this step (volume >= 80)
	fullBlock = 4                               // a block counts with more loud frames than this

	// maxGapFrames is the longest run of missing frames filled from its
	// neighbours (jitter, 40 and 60 ms packets); longer gaps are silence.
	maxGapFrames = 3

	// wakeVolume is the volume (-dBov 87) from which a frame can score on
	// the immediate horizon; quieter frames never wake a Detector.
	wakeVolume = 40

	// floorWindowMs is how often the noise floor may rise, to the lowest
	// volume seen since it last moved.
	floorWindowMs = 15_000
)

// Switch thresholds: a challenger must beat the dominant speaker's log
// score by more than these on the immediate, medium and long horizons.
const (
	c1 = 3.0
	c2 = 2.0
	c3 = 0.0
)

// Log activity scores by the number of active sub-units on each horizon:
// the log-likelihood of v active of n under a binomial model (p = 1/2)
// against an exponential prior of rate lambda, floored at 1e-10 as in the
// paper's formulation.
var (
	immediateScore = scoreTable(subbands, 0.78)
	mediumScore    = scoreTable(blockLen, 24)
	longScore      = scoreTable(numBlocks, 47)
)

func scoreTable(n int, lambda float64) []float64 {
	t := make([]float64, n+1)
	for v := range t {
		lgN, _ := math.Lgamma(float64(n + 1))
		lgV, _ := math.Lgamma(float64(v + 1))
		lgR, _ := math.Lgamma(float64(n - v + 1))
		s := lgN - lgV - lgR + float64(n)*math.Log(0.5) - math.Log(lambda) + lambda*float64(v)
		t[v] = math.Log(max(s, 1e-10))
	}
	return t
}

// activity is one source's state on the three horizons at a decision.
type activity struct {
	immediate int // active sub-units of the newest frame, 0..12
	medium    int // loud frames in the newest block, 0..5
	long      int // full blocks in the window, 0..10
	loudest   uint8
	heard     bool // a frame of the window reached wakeVolume
}

func (a *activity) scores() (float64, float64, float64) {
	return immediateScore[a.immediate], mediumScore[a.medium], longScore[a.long]
}

// measure computes a source's activity from its frames (newest first),
// ignoring volumes within one sub-unit of its noise floor.
func measure(f *[numFrames]uint8, floor uint8) activity {
	var a activity
	gate := int(floor) + subunit
	loudInBlock := 0
	for i, v := range f {
		if v >= wakeVolume {
			a.heard = true
		}
		if i < blockLen && v > a.loudest {
			a.loudest = v
		}
		step := 0
		if int(v) >= gate {
			step = int(v) / subunit
		}
		if i == 0 {
			a.immediate = step
		}
		if step > loudStep {
			loudInBlock++
		}
		if i%blockLen == blockLen-1 {
			if i == blockLen-1 {
				a.medium = loudInBlock
			}
			if loudInBlock > fullBlock {
				a.long++
			}
			loudInBlock = 0
		}
	}
	return a
}

// beats reports by how much challenger c beats dominant d on the medium
// horizon, and whether it beats it on all three.
func beats(c, d *activity) (float64, bool) {
	ci, cm, cl := c.scores()
	di, dm, dl := d.scores()
	dMed := cm - dm
	return dMed, ci-di > c1 && dMed > c2 && cl-dl > c3
}
