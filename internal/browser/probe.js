// probe.js: measurement helpers for end-to-end tests, installed as
// window.__probe by the Go package internal/browser (see probe.go).
//
// Every stats function is async (it returns a promise); Tab.Eval and
// Tab.WaitFor await promises. Numbers that the browser does not report yet
// are 0, never undefined, so comparisons in test expressions are safe.
(() => {
  'use strict';
  if (window.__probe) return;

  const num = (v) => (typeof v === 'number' && isFinite(v) ? v : 0);
  let seq = 0;
  let canvas = null;

  // inbound turns one inbound-rtp stats report into a plain object.
  function inbound(r) {
    return {
      kind: r.kind,
      mid: r.mid ?? null,
      trackIdentifier: r.trackIdentifier ?? null,
      ssrc: num(r.ssrc),
      packetsReceived: num(r.packetsReceived),
      packetsLost: num(r.packetsLost),
      bytesReceived: num(r.bytesReceived),
      // video
      framesReceived: num(r.framesReceived),
      framesDecoded: num(r.framesDecoded),
      framesDropped: num(r.framesDropped),
      keyFramesDecoded: num(r.keyFramesDecoded),
      frameWidth: num(r.frameWidth),
      frameHeight: num(r.frameHeight),
      framesPerSecond: num(r.framesPerSecond),
      // audio
      totalAudioEnergy: num(r.totalAudioEnergy),
      totalSamplesReceived: num(r.totalSamplesReceived),
      totalSamplesDuration: num(r.totalSamplesDuration),
      concealedSamples: num(r.concealedSamples),
      audioLevel: num(r.audioLevel),
    };
  }

  // zero is the stats of a receiver that has no inbound-rtp report yet
  // (no packet arrived).
  function zero(kind, trackIdentifier, mid) {
    const z = inbound({});
    z.kind = kind;
    z.trackIdentifier = trackIdentifier;
    z.mid = mid;
    return z;
  }

  async function inboundOf(pc, kind) {
    if (!(pc instanceof RTCPeerConnection)) {
      throw new TypeError('__probe: not an RTCPeerConnection: ' + pc);
    }
    const out = [];
    (await pc.getStats()).forEach((r) => {
      if (r.type === 'inbound-rtp' && r.kind === kind) out.push(inbound(r));
    });
    out.sort((a, b) => String(a.mid).localeCompare(String(b.mid)));
    return out;
  }

  function sum(list, field) {
    return list.reduce((s, r) => s + r[field], 0);
  }

  function max(list, field) {
    return list.reduce((m, r) => Math.max(m, r[field]), 0);
  }

  function element(v) {
    const el = typeof v === 'string' ? document.getElementById(v) : v;
    if (!(el instanceof HTMLMediaElement)) {
      throw new TypeError('__probe: no media element ' + v);
    }
    return el;
  }

  window.__probe = Object.freeze({
    // videoStats(pc) sums the inbound-rtp video reports of pc:
    // {framesDecoded, framesReceived, packetsReceived, packetsLost,
    //  bytesReceived, frameWidth, frameHeight (the largest), tracks: [per
    //  inbound-rtp: the same fields plus kind, mid, trackIdentifier, ...]}.
    async videoStats(pc) {
      const tracks = await inboundOf(pc, 'video');
      return {
        framesDecoded: sum(tracks, 'framesDecoded'),
        framesReceived: sum(tracks, 'framesReceived'),
        packetsReceived: sum(tracks, 'packetsReceived'),
        packetsLost: sum(tracks, 'packetsLost'),
        bytesReceived: sum(tracks, 'bytesReceived'),
        frameWidth: max(tracks, 'frameWidth'),
        frameHeight: max(tracks, 'frameHeight'),
        tracks,
      };
    },

    // audioStats(pc) sums the inbound-rtp audio reports of pc:
    // {totalAudioEnergy, totalSamplesReceived, totalSamplesDuration,
    //  packetsReceived, packetsLost, bytesReceived, tracks: [...]}.
    // totalAudioEnergy only grows while the track plays through an unmuted
    // <audio> element (see attach).
    async audioStats(pc) {
      const tracks = await inboundOf(pc, 'audio');
      return {
        totalAudioEnergy: sum(tracks, 'totalAudioEnergy'),
        totalSamplesReceived: sum(tracks, 'totalSamplesReceived'),
        totalSamplesDuration: sum(tracks, 'totalSamplesDuration'),
        packetsReceived: sum(tracks, 'packetsReceived'),
        packetsLost: sum(tracks, 'packetsLost'),
        bytesReceived: sum(tracks, 'bytesReceived'),
        tracks,
      };
    },

    // trackStats(pc, track) is the inbound-rtp report of ONE remote track,
    // found among pc.getReceivers() by the MediaStreamTrack or by its id, and
    // read with receiver.getStats(). It has the fields of one entry of
    // videoStats().tracks (all 0 before the first packet). It rejects when
    // no receiver of pc has that track.
    async trackStats(pc, track) {
      const id = typeof track === 'string' ? track : track && track.id;
      const rcv = pc.getReceivers().find((r) => r.track && r.track.id === id);
      if (!rcv) throw new Error('__probe.trackStats: no receiver for track ' + id);
      const tc = pc.getTransceivers().find((t) => t.receiver === rcv);
      const mid = tc ? tc.mid : null;
      let found = null;
      (await rcv.getStats()).forEach((r) => {
        if (r.type === 'inbound-rtp' && r.kind === rcv.track.kind) found = inbound(r);
      });
      return found || zero(rcv.track.kind, id, mid);
    },

    // remoteTracks(pc) lists the tracks of pc's receivers:
    // [{id, kind, mid, muted, readyState}].
    remoteTracks(pc) {
      return pc.getTransceivers()
        .filter((t) => t.receiver && t.receiver.track)
        .map((t) => ({
          id: t.receiver.track.id,
          kind: t.receiver.track.kind,
          mid: t.mid,
          muted: t.receiver.track.muted,
          readyState: t.receiver.track.readyState,
        }));
    },

    // attach(track) renders a MediaStreamTrack in the page: a muted,
    // playsinline, autoplay <video> for video, an unmuted autoplay <audio>
    // (with .play()) for audio. It returns the new element's id.
    attach(track) {
      if (!(track instanceof MediaStreamTrack)) {
        throw new TypeError('__probe.attach: not a MediaStreamTrack: ' + track);
      }
      const video = track.kind === 'video';
      const el = document.createElement(video ? 'video' : 'audio');
      el.id = '__probe-' + track.kind + '-' + (++seq);
      el.autoplay = true;
      if (video) {
        el.muted = true;
        el.playsInline = true;
      }
      el.srcObject = new MediaStream([track]);
      (document.body || document.documentElement).appendChild(el);
      el.play().catch((e) => console.warn('__probe.attach: play ' + el.id + ': ' + e));
      return el.id;
    },

    // detach(id) stops and removes an element that attach made.
    detach(id) {
      const el = element(id);
      el.pause();
      el.srcObject = null;
      el.remove();
    },

    // playback(el) describes a media element (or its id): {paused,
    // readyState, currentTime, videoWidth, videoHeight, totalVideoFrames}.
    playback(v) {
      const el = element(v);
      const q = el.getVideoPlaybackQuality ? el.getVideoPlaybackQuality() : null;
      return {
        paused: el.paused,
        readyState: el.readyState,
        currentTime: el.currentTime,
        videoWidth: el.videoWidth || 0,
        videoHeight: el.videoHeight || 0,
        totalVideoFrames: q ? q.totalVideoFrames : 0,
      };
    },

    // brightness(video) draws the current frame of a <video> (or its id)
    // into a canvas and returns {mean, max, min, width, height}: the luma
    // (BT.601, 0..255) of its pixels. It returns null while the element has
    // no frame yet.
    brightness(v) {
      const el = element(v);
      const w = el.videoWidth, h = el.videoHeight;
      if (!w || !h || el.readyState < 2) return null;
      if (!canvas) canvas = document.createElement('canvas');
      canvas.width = w;
      canvas.height = h;
      const ctx = canvas.getContext('2d', { willReadFrequently: true });
      ctx.drawImage(el, 0, 0, w, h);
      const d = ctx.getImageData(0, 0, w, h).data;
      let s = 0, mx = 0, mn = 255;
      for (let i = 0; i < d.length; i += 4) {
        const y = 0.299 * d[i] + 0.587 * d[i + 1] + 0.114 * d[i + 2];
        s += y;
        if (y > mx) mx = y;
        if (y < mn) mn = y;
      }
      return { mean: s / (w * h), max: mx, min: mn, width: w, height: h };
    },

    // isBlack(video, maxLuma = 20) reports whether the current frame has no
    // pixel brighter than maxLuma. False while there is no frame.
    isBlack(v, maxLuma = 20) {
      const b = this.brightness(v);
      return b !== null && b.max <= maxLuma;
    },

    // isNotBlack(video, minMean = 30) reports whether the current frame's
    // mean luma is above minMean. False while there is no frame.
    isNotBlack(v, minMean = 30) {
      const b = this.brightness(v);
      return b !== null && b.mean > minMean;
    },
  });
})();
