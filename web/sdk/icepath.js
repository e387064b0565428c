// icepath.js: how the media connection reaches the server, and the
// fallback when it does not connect. A stay's peer connection starts
// 'direct' (the server's UDP and ICE-TCP candidates, no TURN server); if
// it is not connected within the fallback time, ICE restarts with the
// TURN servers the server handed out ('turn': every candidate, relayed
// ones included), and after as long again with relayed candidates only
// ('relay'). Once connected, the path is read from the selected candidate
// pair: 'udp', 'tcp' (ICE over TCP) or 'relay' (through TURN, with the
// protocol the browser reached it over).

/** How long each stage waits for a connection before the next, in ms. */
export const ICE_FALLBACK_MS = 4000;

/** The stages, in order. */
export const ICE_STAGES = ['direct', 'turn', 'relay'];

/** isTURN reports whether an ICE server entry is a TURN server. */
function isTURN(server) {
  return [server.urls].flat().some((u) => /^turns?:/.test(u || ''));
}

/** stageConfig is the peer connection configuration of a stage. */
export function stageConfig(stage, iceServers) {
  const all = iceServers || [];
  return {
    iceServers: stage === 'direct' ? all.filter((s) => !isTURN(s)) : all,
    iceTransportPolicy: stage === 'relay' ? 'relay' : 'all',
  };
}

/**
 * pathOf reads the selected candidate pair of pc: {path: 'udp' | 'tcp' |
 * 'relay', relayProtocol?: 'udp' | 'tcp' | 'tls'}, or null before there
 * is one.
 */
/** @returns {Promise<{path: 'udp' | 'tcp' | 'relay', relayProtocol?: 'udp' | 'tcp' | 'tls'} | null>} */
export async function pathOf(pc) {
  const stats = await pc.getStats();
  /** @type {any} */
  let pair = null;
  stats.forEach((s) => {
    if (s.type === 'transport' && s.selectedCandidatePairId) pair = stats.get(s.selectedCandidatePairId);
  });
  if (!pair) {
    stats.forEach((s) => {
      if (s.type === 'candidate-pair' && s.state === 'succeeded' && s.nominated && !pair) pair = s;
    });
  }
  const local = pair && stats.get(pair.localCandidateId);
  if (!local) return null;
  if (local.candidateType === 'relay') return { path: 'relay', relayProtocol: local.relayProtocol };
  return { path: local.protocol === 'tcp' ? 'tcp' : 'udp' };
}

/**
 * IcePath runs the fallback of one stay's media connection (a Media).
 * opts: {after: ms per stage (0: no fallback), start: the first stage,
 * onPath({path, relayProtocol?, stage, ms}), log}.
 */
export class IcePath {
  #media;
  #iceServers;
  #after;
  #onPath;
  #log;
  #stage;
  #started;
  #timer;
  #closed;
  #path;

  constructor(media, iceServers, opts) {
    this.#media = media;
    this.#iceServers = iceServers;
    this.#after = opts.after;
    this.#onPath = opts.onPath;
    this.#log = opts.log;
    this.#stage = ICE_STAGES.includes(opts.start) ? opts.start : 'direct';
    this.#started = Date.now();
    this.#timer = null;
    this.#closed = false;
    this.#path = null;
    this.#configure();
    this.#arm();
  }

  /** The path of the current connection, null while not connected. @returns {'udp' | 'tcp' | 'relay' | null} */
  get path() {
    return this.#path;
  }

  /** The current stage: 'direct', 'turn' or 'relay'. */
  get stage() {
    return this.#stage;
  }

  /** configure applies the current stage's configuration to the peer connection. */
  #configure() {
    const pc = this.#media.pc;
    if (typeof pc.setConfiguration !== 'function') return;
    const base = typeof pc.getConfiguration === 'function' ? pc.getConfiguration() : {};
    try {
      pc.setConfiguration({ ...base, ...stageConfig(this.#stage, this.#iceServers) });
    } catch (e) {
      this.#log('ICE configuration refused:', e.message);
    }
  }

  /** arm starts the wait for a connection at the current stage. */
  #arm() {
    clearTimeout(this.#timer);
    this.#timer = null;
    if (!this.#after || this.#stage === 'relay') return;
    this.#timer = setTimeout(() => this.#next(), this.#after);
  }

  /** next moves to the next stage and restarts ICE, when still not connected. */
  #next() {
    this.#timer = null;
    if (this.#closed || this.#media.status === 'connected') return;
    this.#stage = ICE_STAGES[ICE_STAGES.indexOf(this.#stage) + 1];
    this.#log(`ICE not connected after ${this.#after} ms: restarting with stage ${this.#stage}`);
    this.#configure();
    this.#media.restartIce();
    this.#arm();
  }

  /** status follows the connection status: connected reads the path. */
  status(s) {
    if (this.#closed) return;
    if (s !== 'connected') {
      this.#path = null;
      return;
    }
    clearTimeout(this.#timer);
    this.#timer = null;
    const ms = Date.now() - this.#started;
    pathOf(this.#media.pc).then(
      (p) => {
        if (!p || this.#closed || this.#media.status !== 'connected') return;
        this.#path = p.path;
        this.#onPath({ ...p, stage: this.#stage, ms });
      },
      () => {},
    );
  }

  /**
   * setServers takes renewed ICE servers (fresh TURN credentials). A
   * connection through TURN restarts ICE with them: its allocation keeps
   * the credentials it was made with, which expire with the old token.
   */
  setServers(iceServers) {
    this.#iceServers = iceServers;
    if (this.#stage === 'direct' || this.#closed) return;
    this.#configure();
    if (this.#path === 'relay') {
      this.#log('fresh TURN credentials: ICE restart');
      this.#media.restartIce();
    }
  }

  close() {
    this.#closed = true;
    clearTimeout(this.#timer);
  }
}
