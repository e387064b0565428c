// follow.js: a remote video track's preference (setPreference) kept in
// line with the element that shows it (Calls.followElement).

/**
 * followElement keeps the preference calls (a Calls) has of a remote
 * video track in line with the element showing it: maxHeight its
 * rendered height in device pixels (ResizeObserver, times
 * devicePixelRatio), paused while it is not visible (IntersectionObserver)
 * or has no height. A change is sent once the one before was answered;
 * the preference is sent again when the track arrives (a new stay).
 * Returns a function that stops following (the last preference stays).
 * log(...) reports failures.
 */
export function followElement(calls, userId, trackName, element, log) {
  const g = globalThis;
  let height = element.clientHeight || 0;
  let visible = true;
  let sent = null; // the preference last sent, as 'maxHeight/paused'
  let busy = false;
  let stopped = false;
  let arrivals = 0; // track:adds of the track seen
  const want = () => {
    const maxHeight = Math.ceil(height * (g.devicePixelRatio || 1));
    return { maxHeight, paused: !visible || maxHeight === 0 };
  };
  const sync = async () => {
    if (busy || stopped) return;
    const pref = want();
    const key = `${pref.maxHeight}/${pref.paused}`;
    if (key === sent) return;
    busy = true;
    const seen = arrivals;
    try {
      await calls.setPreference(userId, trackName, pref);
      sent = key;
    } catch (e) {
      // NotFound: not received yet; its track:add sends it again.
      if (e.code !== 'NotFound') log('followElement: setPreference', e);
      sent = null;
      busy = false;
      if (arrivals !== seen) sync(); // it arrived meanwhile
      return;
    }
    busy = false;
    sync();
  };
  const ro = g.ResizeObserver
    ? new g.ResizeObserver((entries) => {
        for (const e of entries) height = e.contentRect.height;
        sync();
      })
    : null;
  const io = g.IntersectionObserver
    ? new g.IntersectionObserver((entries) => {
        for (const e of entries) visible = e.isIntersecting;
        sync();
      })
    : null;
  if (ro) ro.observe(element);
  if (io) io.observe(element);
  const off = calls.on('track:add', (ev) => {
    if (ev.userId !== userId || ev.trackName !== trackName) return;
    arrivals++;
    sent = null;
    sync();
  });
  sync();
  return () => {
    stopped = true;
    if (ro) ro.disconnect();
    if (io) io.disconnect();
    off();
  };
}
