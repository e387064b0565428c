package forward

// BeforeBuildingFrames makes t call f whenever it is about to build its
// empty media (in SetMute or Pump, outside the exclusive section), so a
// test can put a publisher packet exactly where a real one may come while
// the frames are being built. It must be called before t is used.
func BeforeBuildingFrames(t *Track, f func()) { t.mt.beforeBuild = f }
