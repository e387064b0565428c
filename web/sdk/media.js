// media.js: one RTCPeerConnection for one channel stay, and its
// negotiation with the server (the client is the polite peer).

/** How long a negotiation step waits for ICE gathering, in ms. */
export const GATHER_TIMEOUT = 3000;

/** The longest wait before offering again after a refused offer, in ms. */
export const RETRY_MAX = 10000;

/** The wait before offering again after a repeated Glare: doubling from GLARE_FIRST to GLARE_MAX, in ms. */
export const GLARE_FIRST = 100;
export const GLARE_MAX = 2000;

/** How long ICE may stay disconnected before an ICE restart, in ms. */
export const ICE_GRACE = 2000;

/**
 * parseMsids maps each m-section's mid to the forwarded track it carries,
 * read from `a=msid:<userId> <userId>/<trackName>` in the server's SDP.
 * @param {string} sdp
 * @returns {Map<string, {userId: string, trackName: string}>}
 */
export function parseMsids(sdp) {
  const out = new Map();
  const sections = String(sdp).split(/\r?\nm=/).slice(1);
  for (const section of sections) {
    let mid = null;
    let msid = null;
    for (const line of section.split(/\r?\n/)) {
      if (line.startsWith('a=mid:')) mid = line.slice(6).trim();
      else if (line.startsWith('a=msid:')) msid = line.slice(7).trim();
    }
    if (mid === null || msid === null) continue;
    const [stream, id] = msid.split(/\s+/);
    if (!stream || !id || !id.startsWith(stream + '/')) continue;
    out.set(mid, { userId: stream, trackName: id.slice(stream.length + 1) });
  }
  return out;
}

/**
 * harmonizeExtmap makes an offer's RTP header extension ids agree with the
 * ids the server's last description gave them. One BUNDLE group must map
 * each id to one extension, and Chrome, after rolling back an offer of its
 * own (Glare) and accepting the server's, numbers its next offer's new
 * sections with the rolled-back ids and then refuses that offer itself
 * (TestChromiumRenegotiation in transport/webrtc). The offer is returned
 * as is when nothing collides.
 * @param {string} offer @param {string} remote
 */
export function harmonizeExtmap(offer, remote) {
  const re = /^a=extmap:(\d+)((?:\/\w+)? )(\S+)/;
  const idOf = new Map(); // uri → id
  const uriOf = new Map(); // id → uri
  for (const line of String(remote).split(/\r?\n/)) {
    const m = re.exec(line);
    if (m && !idOf.has(m[3]) && !uriOf.has(+m[1])) {
      idOf.set(m[3], +m[1]);
      uriOf.set(+m[1], m[3]);
    }
  }
  let changed = false;
  const free = () => {
    for (let id = 1; id < 256; id++) if (id !== 15 && !uriOf.has(id)) return id;
    return 0;
  };
  const lines = offer.split('\r\n').map((line) => {
    const m = re.exec(line);
    if (!m) return line;
    const uri = m[3];
    let id = idOf.get(uri);
    if (id === undefined) {
      id = +m[1];
      if (uriOf.has(id) && uriOf.get(id) !== uri) id = free();
      idOf.set(uri, id);
      uriOf.set(id, uri);
    }
    if (id === +m[1]) return line;
    changed = true;
    return `a=extmap:${id}${m[2]}${line.slice(m[0].length - uri.length)}`;
  });
  return changed ? lines.join('\r\n') : offer;
}

/** statusOf derives the call API's connection status from a peer connection. */
export function statusOf(pc) {
  if (!pc) return 'disconnected';
  const conn = pc.connectionState;
  const ice = pc.iceConnectionState;
  if (conn === 'closed' || conn === 'failed' || ice === 'closed') return 'disconnected';
  if (conn === 'connected') return 'connected';
  if (ice === 'checking') return 'checking';
  if (ice === 'disconnected' || ice === 'failed') return 'disconnected';
  if (conn === undefined && (ice === 'connected' || ice === 'completed')) return 'connected';
  return 'connecting';
}

/**
 * Media owns one RTCPeerConnection. Every negotiation step runs on one
 * queue. hooks: request(type, data) → Promise, canSignal() → bool,
 * onTrack(info), onStatus(), log(...).
 */
export class Media {
  #hooks;
  #pc;
  #stream;
  #queue;
  #closed;
  #mids;
  #senders;
  #remote;
  #sdpSent;
  #iceTimer;
  #failures;
  #glares;
  #retryAt;
  #retryTimer;
  #offerQueued;
  #wanted;
  #layersWanted;

  constructor(iceServers, hooks, PC) {
    const RTCPC = PC || globalThis.RTCPeerConnection;
    this.#hooks = hooks;
    this.#pc = new RTCPC({ iceServers: iceServers || [], bundlePolicy: 'max-bundle' });
    this.#stream = typeof MediaStream === 'function' ? new MediaStream() : undefined;
    this.#queue = Promise.resolve();
    this.#closed = false;
    /** mid → {userId, trackName}, from the server's last offer. */
    this.#mids = new Map();
    /** local track name → RTCRtpTransceiver. */
    this.#senders = new Map();
    /** "userId/trackName" → {userId, trackName, track, mid}. */
    this.#remote = new Map();
    /** Whether the current local description went to the server (then new candidates are trickled). */
    this.#sdpSent = false;
    this.#iceTimer = null;
    this.#failures = 0;
    /** Glares in a row: the second and later ones back off. */
    this.#glares = 0;
    this.#retryAt = 0;
    this.#retryTimer = null;
    this.#offerQueued = false;
    /** Whether an offer was skipped or cut off while signalling was down: resumed() makes it. */
    this.#wanted = false;
    this.#wire();
  }

  /** wire installs the peer connection's handlers. */
  #wire() {
    const pc = this.#pc;
    pc.onnegotiationneeded = () => this.#needOffer();
    pc.ontrack = (ev) => this.#track(ev.transceiver, ev.track);
    pc.oniceconnectionstatechange = () => {
      this.#iceWatch();
      this.#hooks.onStatus();
    };
    pc.onconnectionstatechange = () => this.#hooks.onStatus();
    pc.onicecandidate = (ev) => {
      // Candidates found after the SDP went out are trickled.
      if (!ev.candidate || !ev.candidate.candidate || !this.#sdpSent || this.#closed) return;
      const c = ev.candidate;
      const data = { candidate: c.candidate };
      if (c.sdpMid != null) data.sdpMid = c.sdpMid;
      if (c.sdpMLineIndex != null) data.sdpMLineIndex = c.sdpMLineIndex;
      if (c.usernameFragment != null) data.usernameFragment = c.usernameFragment;
      if (this.#hooks.canSignal()) this.#hooks.request('candidate', data).catch(() => {});
    };
  }

  /** The peer connection. */
  get pc() {
    return this.#pc;
  }

  /**
   * received lists the forwarded tracks received and not forgotten:
   * [{userId, trackName, track, mid}].
   */
  received() {
    return [...this.#remote.values()];
  }

  /** status is the call API's connection status of this connection. */
  get status() {
    return this.#closed ? 'disconnected' : statusOf(this.#pc);
  }

  /** enqueue runs step after every step queued before it. */
  #enqueue(step) {
    const run = this.#queue.then(() => (this.#closed ? undefined : step()));
    this.#queue = run.catch((e) => this.#hooks.log('negotiation failed:', e));
    return run;
  }

  /**
   * addTrack sends a local track (already announced to the server); a
   * camera of 640x360 or more as three layers (layerEncodings).
   */
  addTrack(name, track) {
    const init = { direction: 'sendonly' };
    if (this.#stream) init.streams = [this.#stream];
    const layers = layerEncodings(name, track);
    if (layers) init.sendEncodings = layers;
    const tr = this.#pc.addTransceiver(track, init);
    this.#senders.set(name, tr);
    return tr;
  }

  /** removeTrack stops sending a local track; renegotiation follows. */
  removeTrack(name) {
    const tr = this.#senders.get(name);
    if (!tr) return;
    this.#senders.delete(name);
    if (this.#layersWanted) this.#layersWanted.delete(name);
    try {
      this.#pc.removeTrack(tr.sender);
      tr.direction = 'inactive';
    } catch (e) {
      this.#hooks.log('removeTrack:', e);
    }
  }

  /**
   * setActiveLayers encodes only the layers (rids) of a local track sent
   * as layers that the server says have receivers (the layers push): the
   * others' encodings are set inactive with setParameters, and active
   * again when wanted. Calls for one track are applied in order; the last
   * one wins.
   * @param {string} name @param {string[]} active
   */
  setActiveLayers(name, active) {
    if (!this.#layersWanted) {
      /** @type {Map<string, {active: Set<string>, queue: Promise<void>}>} */
      this.#layersWanted = new Map();
    }
    let entry = this.#layersWanted.get(name);
    if (!entry) {
      entry = { active: new Set(), queue: Promise.resolve() };
      this.#layersWanted.set(name, entry);
    }
    entry.active = new Set(active);
    const run = entry.queue.then(() => this.#applyLayers(name));
    entry.queue = run.catch((e) => this.#hooks.log('setting the layers sent:', e));
    return run;
  }

  /** applyLayers sets the encodings of a local track as setActiveLayers last said. */
  async #applyLayers(name) {
    const tr = this.#senders.get(name);
    const entry = this.#layersWanted && this.#layersWanted.get(name);
    if (this.#closed || !tr || !entry) return;
    const params = tr.sender.getParameters();
    let changed = false;
    for (const e of params.encodings || []) {
      if (!e.rid) continue;
      const on = entry.active.has(e.rid);
      if (e.active !== on) {
        e.active = on;
        changed = true;
      }
    }
    if (changed) await tr.sender.setParameters(params);
  }

  /** gathered resolves when ICE gathering completes, or after GATHER_TIMEOUT. */
  #gathered() {
    const pc = this.#pc;
    if (pc.iceGatheringState === 'complete') return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        pc.removeEventListener('icegatheringstatechange', check);
        resolve();
      };
      const check = () => {
        if (pc.iceGatheringState === 'complete') done();
      };
      const timer = setTimeout(done, GATHER_TIMEOUT);
      pc.addEventListener('icegatheringstatechange', check);
    });
  }

  /** offer is the client's negotiation step (negotiationneeded, ICE restart). */
  async #offer(iceRestart = false) {
    const pc = this.#pc;
    if (pc.signalingState !== 'stable') return;
    if (!this.#hooks.canSignal()) {
      this.#wanted = true; // offered once the connection is back (resumed)
      return;
    }
    const offer = await pc.createOffer(iceRestart ? { iceRestart: true } : undefined);
    if (this.#closed || pc.signalingState !== 'stable') return;
    const remote = pc.currentRemoteDescription;
    const sdp = remote ? harmonizeExtmap(offer.sdp, remote.sdp) : offer.sdp;
    this.#sdpSent = false;
    await pc.setLocalDescription({ type: 'offer', sdp });
    await this.#gathered();
    if (this.#closed) return;
    let answer;
    try {
      this.#sdpSent = true;
      answer = await this.#hooks.request('offer', { sdp: pc.localDescription.sdp });
    } catch (e) {
      this.#sdpSent = false;
      if (this.#closed) return;
      if (pc.signalingState === 'have-local-offer') {
        // Glare (the server's offer wins) or any failure: roll back; the
        // browser asks again if changes remain.
        await pc.setLocalDescription({ type: 'rollback' });
      }
      if (e && e.code === 'Glare') {
        this.#glared();
        return;
      }
      if (e && e.code === 'Closed' && !this.#hooks.canSignal()) {
        // The connection dropped with the offer in flight: offered again
        // once it is back (resumed), with no backoff.
        this.#wanted = true;
        return;
      }
      this.#failed();
      throw e;
    }
    this.#failures = 0;
    this.#glares = 0;
    if (this.#closed) return;
    await pc.setRemoteDescription({ type: 'answer', sdp: answer.sdp });
    this.#reconcile();
  }

  /**
   * needOffer queues the client's offer, or holds it back for a while after
   * a refused one, so that a refusal never turns into a loop of offers.
   */
  #needOffer() {
    const wait = this.#retryAt - Date.now();
    if (wait <= 0) {
      // One queued offer covers every change made before it starts.
      if (this.#offerQueued) return;
      this.#offerQueued = true;
      this.#enqueue(() => {
        this.#offerQueued = false;
        return this.#offer();
      });
      return;
    }
    if (!this.#retryTimer) {
      this.#retryTimer = setTimeout(() => {
        this.#retryTimer = null;
        if (!this.#closed) this.#needOffer();
      }, wait);
    }
  }

  /** failed backs off after a refused offer: 0.5 s doubling to 10 s, then asks again. */
  #failed() {
    this.#failures++;
    this.#retryAt = Date.now() + Math.min(250 * 2 ** this.#failures, RETRY_MAX);
    this.#needOffer();
  }

  /**
   * glared holds the next offer back after a Glare that repeats (0.1 s
   * doubling to 2 s); the first one is offered again at once. The browser
   * asks again after the rollback if changes remain.
   */
  #glared() {
    this.#glares++;
    if (this.#glares > 1) this.#retryAt = Date.now() + Math.min(GLARE_FIRST * 2 ** (this.#glares - 2), GLARE_MAX);
  }

  /**
   * answer handles the server's offer push. When no answer can be made or
   * sent, the server would wait for it for ever: the client offers instead,
   * after the backoff (the server answers it, or replies Glare and offers
   * again).
   */
  answer(sdp) {
    return this.#enqueue(async () => {
      const pc = this.#pc;
      try {
        this.#mids = parseMsids(sdp);
        this.#sdpSent = false;
        await pc.setRemoteDescription({ type: 'offer', sdp });
        await pc.setLocalDescription();
        this.#reconcile();
        await this.#gathered();
        if (this.#closed || !this.#hooks.canSignal()) return;
        this.#sdpSent = true;
        await this.#hooks.request('answer', { sdp: pc.localDescription.sdp });
      } catch (e) {
        if (this.#closed || !this.#hooks.canSignal()) return;
        this.#hooks.log('answering the server offer failed:', e);
        if (pc.signalingState === 'have-remote-offer') {
          try {
            await pc.setLocalDescription({ type: 'rollback' });
          } catch (err) {
            this.#hooks.log('rollback:', err);
          }
        }
        this.#failed();
      }
    });
  }

  /** reconcile looks for receivers whose forwarded track is not yet known. */
  #reconcile() {
    if (this.#closed) return;
    for (const tr of this.#pc.getTransceivers()) {
      const dir = tr.currentDirection;
      if (dir === 'recvonly' || dir === 'sendrecv') this.#track(tr, tr.receiver.track);
    }
  }

  /** track records a remote track by its transceiver's mid; new ones go to onTrack. */
  #track(transceiver, track) {
    if (this.#closed || !transceiver || !track) return;
    const info = this.#mids.get(transceiver.mid);
    if (!info) return;
    const key = `${info.userId}/${info.trackName}`;
    const known = this.#remote.get(key);
    if (known && known.track === track) return;
    const entry = { userId: info.userId, trackName: info.trackName, track, mid: transceiver.mid };
    this.#remote.set(key, entry);
    this.#hooks.onTrack(entry);
  }

  /** forget drops a remote track and returns its entry. */
  forget(userId, trackName) {
    const key = `${userId}/${trackName}`;
    const entry = this.#remote.get(key);
    this.#remote.delete(key);
    return entry || null;
  }

  /** iceWatch restarts ICE when it failed or stayed disconnected past ICE_GRACE. */
  #iceWatch() {
    const state = this.#pc.iceConnectionState;
    if (state !== 'disconnected') {
      clearTimeout(this.#iceTimer);
      this.#iceTimer = null;
    }
    if (state === 'failed') this.restartIce();
    else if (state === 'disconnected' && !this.#iceTimer) {
      this.#iceTimer = setTimeout(() => {
        this.#iceTimer = null;
        if (this.#pc.iceConnectionState === 'disconnected') this.restartIce();
      }, ICE_GRACE);
    }
  }

  /**
   * resumed goes on after the signalling connection came back with this
   * peer connection kept: the offer skipped or cut off meanwhile is made,
   * and ICE left down is restarted.
   */
  resumed() {
    if (this.#closed) return;
    if (this.#wanted) {
      this.#wanted = false;
      this.#retryAt = 0;
      this.#needOffer();
    }
    this.#iceWatch();
  }

  /** restartIce asks for an ICE restart; the queue sends the new offer. */
  restartIce() {
    if (this.#closed || !this.#hooks.canSignal()) return;
    this.#hooks.log('ICE restart');
    if (typeof this.#pc.restartIce === 'function') this.#pc.restartIce();
    else this.#enqueue(() => this.#offer(true));
  }

  /** close ends the peer connection; queued steps are dropped. */
  close() {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#iceTimer);
    clearTimeout(this.#retryTimer);
    const pc = this.#pc;
    pc.onnegotiationneeded = pc.ontrack = pc.onicecandidate = null;
    pc.oniceconnectionstatechange = pc.onconnectionstatechange = null;
    try {
      pc.close();
    } catch {
      // closed already
    }
  }
}

/** The smallest camera picture sent as layers. */
const LAYERS_MIN_WIDTH = 640;
const LAYERS_MIN_HEIGHT = 360;

/**
 * layerEncodings returns the send encodings of a video track sent as
 * layers: rids q, h and f at a quarter, half and full size, for a camera of
 * 640x360 or more (either way round); null for anything else (audio, a
 * smaller picture, a screen share: a track named screen or one whose
 * settings name a display surface).
 */
export function layerEncodings(name, track) {
  if (!track || track.kind !== 'video' || name === 'screen' || typeof track.getSettings !== 'function') return null;
  const { width = 0, height = 0, displaySurface } = track.getSettings() || {};
  if (displaySurface) return null;
  if (Math.max(width, height) < LAYERS_MIN_WIDTH || Math.min(width, height) < LAYERS_MIN_HEIGHT) return null;
  return [
    { rid: 'q', scaleResolutionDownBy: 4 },
    { rid: 'h', scaleResolutionDownBy: 2 },
    { rid: 'f', scaleResolutionDownBy: 1 },
  ];
}
