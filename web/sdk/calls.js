// calls.js: the browser SDK of callcore. An ES module with no dependencies:
//
//   import { Calls } from '/sdk/calls.js';
//   const calls = await Calls.connect('https://calls.example', token);
//   calls.on('track:add', ({ userId, trackName, track }) => { … });
//   await calls.join('standup', { cam: videoTrack, mic: audioTrack });
//
// It speaks docs/protocol.md to the call server: signalling over a
// WebSocket (signal.js) and media over one RTCPeerConnection per channel
// stay (media.js).

import { CallError, Signal, wsURL, REQUEST_TIMEOUT } from './signal.js';
import { Media, parseMsids, harmonizeExtmap, statusOf } from './media.js';
import { IcePath, ICE_FALLBACK_MS, stageConfig } from './icepath.js';

export { CallError, parseMsids, harmonizeExtmap, statusOf };

/** Permission mode bits of User.mode. */
export const Mode = Object.freeze({ Admin: 1, Send: 2, Recv: 4 });

/** A CallConfig's defaults, as the server fills them in (maxUsers 0: no limit). */
const CONFIG_DEFAULTS = Object.freeze({ kind: 'audioVideo', joinRequest: false, maxUsers: 0, defaultPermission: 6, lastN: 0 });

/** Reconnection backoff of the WebSocket, in ms. */
const BACKOFF_FIRST = 250;
const BACKOFF_MAX = 5000;
const RECONNECT_GIVE_UP = 30000;

/** How many recent channel events are kept to re-apply after a snapshot. */
const RECENT_EVENTS = 256;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** names turns `name | names` into an array of names. */
function names(x) {
  const list = Array.isArray(x) ? x : [x];
  if (list.length === 0 || list.some((n) => typeof n !== 'string' || n === '')) {
    throw new CallError('Invalid', 'track names must be non-empty strings');
  }
  return list;
}

/** announce turns TracksByName into the protocol's TrackInfo list. */
function announce(tracks) {
  return Object.entries(tracks || {}).map(([name, track]) => {
    if (!track || (track.kind !== 'audio' && track.kind !== 'video')) {
      throw new CallError('Invalid', `track ${name}: not a MediaStreamTrack`);
    }
    return { name, kind: track.kind, trackId: track.id };
  });
}

/** copyState copies a TrackState (the app may keep it). */
const copyState = (t) => ({ ...t });

/** @typedef {import('./calls.d.ts').Status} Status */

/**
 * Calls is one authenticated connection to a call server and, at most, one
 * channel stay. Create it with Calls.connect.
 */
export class Calls {
  #bye;
  #channel;
  #closed;
  #config;
  #entering;
  #handlers;
  #icePath;
  #lastSeq;
  #leaving;
  #media;
  #opts;
  #pendingLayers;
  #pendingOffer;
  #recent;
  #reconnecting;
  #relost;
  #renewTimer;
  #resuming;
  #signal;
  #speakers;
  #status;
  #token;
  #tracks;
  #trimmed;
  #url;
  #users;

  /**
   * connect opens a connection to serverURL and authenticates with token.
   * opts: {reconnect?: boolean (default true), reconnectGiveUp?: ms (default
   * 30000), getToken?: () => Promise<string> (a fresh token for each
   * reconnection), WebSocket?, RTCPeerConnection?, log?: (…args) => void,
   * iceFallbackMs?: how long each ICE stage waits for a connection before
   * the next (default ICE_FALLBACK_MS; 0: no fallback), iceStart?: the
   * first stage, 'direct' (default), 'turn' or 'relay' (icepath.js)}.
   * @returns {Promise<Calls>}
   */
  static async connect(serverURL, token, opts = {}) {
    const calls = new Calls(serverURL, token, opts);
    await calls.#open();
    return calls;
  }

  /** Use Calls.connect. */
  constructor(serverURL, token, opts = {}) {
    this.#url = wsURL(serverURL);
    this.#token = token;
    this.#opts = opts;
    this.#handlers = new Map();
    this.#signal = null;
    this.#closed = false;
    this.#reconnecting = false;
    /** Whether the join that resumes the stay after a reconnection is in flight. */
    this.#resuming = false;
    /** Whether leave() or delete() is in progress (the stay's end is ours). */
    this.#leaving = false;
    /** How many create/join requests are in flight. */
    this.#entering = 0;
    /** A server offer that came before the create/join result set up the stay. */
    this.#pendingOffer = null;
    /** The timer that renews the token before it expires (#scheduleRenewal). */
    this.#renewTimer = null;
    this.userId = null;
    this.canCreate = false;
    this.iceServers = [];
    /** The server's view of the media connection (its `status` pushes). @type {import('./calls.d.ts').ConnectionStatus} */
    this.serverStatus = 'disconnected';
    this.#resetStay();
    this.#status = 'disconnected';
  }

  // ---- properties ----

  /** The current channel id, or null. */
  get channel() {
    return this.#channel;
  }

  /** The local tracks published in the current channel (TracksByName). */
  get tracks() {
    return { ...this.#tracks };
  }

  /**
   * How the media connection reaches the server once connected: 'udp',
   * 'tcp' (ICE over TCP) or 'relay' (through a TURN server); null
   * otherwise. The 'path' event tells each connection's.
   */
  get path() {
    return this.#icePath ? this.#icePath.path : null;
  }

  /** The media connection's status. */
  get status() {
    return this.#media ? this.#media.status : 'disconnected';
  }

  /** The current RTCPeerConnection, or null (for tests and diagnostics). */
  get pc() {
    return this.#media ? this.#media.pc : null;
  }

  /** The channel's configuration as last known, or null. */
  get config() {
    return this.#config ? { ...this.#config } : null;
  }

  /** The channel's active users as last known (ActiveUser[]). */
  get users() {
    return [...this.#users.values()].map((u) => ({ ...u, tracks: u.tracks.map(copyState) }));
  }

  /** The channel's speakers, dominant first, as of the last cnl:speakers ({userId, level}[]). */
  get speakers() {
    return (this.#speakers || []).map((s) => ({ ...s }));
  }

  /** Whether the WebSocket is up. */
  get connected() {
    return !!this.#signal && this.#signal.isOpen;
  }

  /** remoteTracks lists the forwarded tracks received: [{userId, trackName, track}]. */
  remoteTracks() {
    if (!this.#media) return [];
    return [...this.#media.received()].map(({ userId, trackName, track }) => ({ userId, trackName, track }));
  }

  // ---- events ----

  /**
   * on calls handler(payload) for each event of that name, until the
   * function it returns is called (or off(event, handler)).
   * @returns {() => void} unsubscribe: removes this handler; calling it again does nothing.
   */
  on(event, handler) {
    if (!this.#handlers.has(event)) this.#handlers.set(event, new Set());
    this.#handlers.get(event).add(handler);
    return () => this.off(event, handler);
  }

  /** off removes a handler given to on. */
  off(event, handler) {
    const set = this.#handlers.get(event);
    if (set) set.delete(handler);
  }

  #emit(event, payload) {
    for (const h of [...(this.#handlers.get(event) || [])]) {
      try {
        h(payload);
      } catch (e) {
        this.#log(`${event} handler failed:`, e);
      }
    }
  }

  #log(...args) {
    if (this.#opts.log) this.#opts.log(...args);
    else if (typeof console !== 'undefined') console.warn('[calls]', ...args);
  }

  // ---- connection ----

  /** #open connects and authenticates with token; it rejects with the server's code. */
  async #open(token = this.#token) {
    const signal = new Signal(this.#url, {
      WebSocket: this.#opts.WebSocket,
      onPush: (type, data) => this.#push(type, data),
      onClose: (ev) => this.#dropped(signal, ev),
    });
    await signal.open();
    let res;
    try {
      res = await signal.request('auth', { token });
    } catch (e) {
      signal.close();
      throw e;
    }
    if (this.#closed) {
      signal.close();
      throw new CallError('Closed', 'closed');
    }
    this.#signal = signal;
    this.#token = token;
    this.userId = res.userId;
    this.canCreate = !!res.canCreate;
    this.iceServers = res.iceServers || [];
    if (this.#icePath) this.#icePath.setServers(this.iceServers);
    this.#scheduleRenewal(res.expiresAt);
  }

  /**
   * #scheduleRenewal renews the session's token before it expires (the
   * server ends a session whose token expired): with opts.getToken, a
   * fresh token is sent in an auth on the same connection a minute before
   * expiresAt (Unix seconds), or at 80 % of the time left when that is
   * shorter. Without getToken the session ends at expiry.
   */
  #scheduleRenewal(expiresAt) {
    clearTimeout(this.#renewTimer);
    if (!this.#opts.getToken || !expiresAt) return;
    const left = expiresAt * 1000 - Date.now();
    const at = Math.max(Math.min(left - 60000, left * 0.8), 0);
    this.#renewTimer = setTimeout(() => this.#renew(), at);
  }

  /** #renew sends a fresh token on the current connection. */
  async #renew() {
    if (this.#closed || !this.#signal) return;
    const signal = this.#signal;
    try {
      const token = await this.#freshToken();
      const res = await signal.request('auth', { token });
      if (signal !== this.#signal) return;
      this.#token = token;
      // Fresh TURN credentials come with the fresh token.
      if (res.iceServers) {
        this.iceServers = res.iceServers;
        if (this.#icePath) this.#icePath.setServers(this.iceServers);
      }
      this.#scheduleRenewal(res.expiresAt);
    } catch (e) {
      this.#log('token renewal failed:', e.message);
      if (!this.#closed && signal === this.#signal) this.#renewTimer = setTimeout(() => this.#renew(), 5000);
    }
  }

  /** #request sends one request on the current connection. */
  #request(type, data, timeout = REQUEST_TIMEOUT) {
    if (this.#closed) return Promise.reject(new CallError('Closed', 'closed'));
    if (!this.#signal) return Promise.reject(new CallError('Closed', 'not connected'));
    return this.#signal.request(type, data, timeout);
  }

  /** #dropped handles a WebSocket that closed without close(). */
  #dropped(signal, ev) {
    if (signal !== this.#signal || this.#closed) return;
    this.#log(`connection lost (${ev && ev.code})`);
    if (this.#bye === 'shutdown' || this.#bye === 'drain' || this.#opts.reconnect === false || (ev && ev.code === 4001)) {
      this.#gone();
      return;
    }
    this.#reconnect();
  }

  /** #gone ends everything after the connection is lost for good. */
  #gone() {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#renewTimer);
    this.#endStay();
    this.#emit('disconnected', { reason: this.#bye || 'connection lost' });
  }

  /** #freshToken is opts.getToken's token, or the last one that worked. */
  async #freshToken() {
    const get = this.#opts.getToken;
    if (!get) return this.#token;
    const token = await get();
    if (typeof token !== 'string' || token === '') throw new CallError('UnAuthorized', 'getToken gave no token');
    return token;
  }

  /**
   * #reconnect reconnects with backoff, re-authenticates (with a fresh
   * token from opts.getToken when given) and resumes the stay (#resume).
   * The stay and its peer connection are kept meanwhile: media goes on.
   */
  async #reconnect() {
    if (this.#reconnecting) return;
    this.#reconnecting = true;
    const start = Date.now();
    let delay = BACKOFF_FIRST;
    let refused = false; // an UnAuthorized already retried with a fresh token
    for (;;) {
      await sleep(delay);
      delay = Math.min(delay * 2, BACKOFF_MAX);
      if (this.#closed) return;
      try {
        await this.#open(await this.#freshToken());
        break;
      } catch (e) {
        this.#log('reconnect failed:', e.message);
        if (this.#closed) return;
        // With getToken, an UnAuthorized gets one more try with a fresh token.
        const unauthorized = e.code === 'UnAuthorized' && (refused || !this.#opts.getToken);
        if (e.code === 'UnAuthorized') refused = true;
        if (unauthorized || Date.now() - start > (this.#opts.reconnectGiveUp ?? RECONNECT_GIVE_UP)) {
          this.#reconnecting = false;
          this.#gone();
          return;
        }
      }
    }
    this.#reconnecting = false;
    this.#bye = null;
    await this.#resume();
  }

  /**
   * #resume joins the stay's channel again after a reconnection, asking the
   * server to resume the stay the lost connection left (same tracks, same
   * peer connection: nobody sees a leave). Not resumed (it expired, the
   * server restarted…), the join is a fresh stay: the old peer connection
   * is replaced. It emits reconnected {resumed}.
   */
  async #resume() {
    const channelId = this.#channel;
    const old = this.#media;
    if (!channelId) {
      this.#emit('reconnected', { userId: this.userId, resumed: false });
      return;
    }
    const tracks = { ...this.#tracks };
    // Without a peer connection to go on with (a rejoin cut off), the stay
    // cannot be resumed: the join takes over the one the server kept.
    const data = old ? { channelId, resume: true } : { channelId };
    const infos = announce(tracks);
    if (infos.length) data.tracks = infos;
    // Events and offers from now on belong to the stay this join resumes
    // (or starts); those of the gap are not replayed.
    this.#recent = [];
    this.#trimmed = 0;
    this.#pendingOffer = null;
    this.#resuming = true;
    let res;
    this.#entering++;
    try {
      res = await this.#request('join', data, 0);
    } catch (e) {
      if (this.#closed || this.#channel !== channelId || this.#media !== old) return;
      this.#log(`resuming the stay in ${channelId} failed:`, e.message);
      // The connection dropped again: its reconnection resumes the stay.
      if (e.code === 'Closed' && this.#reconnecting) return;
      for (const r of this.remoteTracks()) this.#emit('track:del', { event: 'track:del', channelId, ...r });
      this.#endStay();
      this.#emit('reconnected', { userId: this.userId, resumed: false });
      this.#emit('user:left', { event: 'user:left', channelId, userId: this.userId, error: e.code });
      return;
    } finally {
      this.#entering--;
      this.#resuming = false;
    }
    // leave(), close() or the server ended the stay meanwhile.
    if (this.#closed || this.#channel !== channelId || this.#media !== old) return;
    if (!res.resumed || !old) {
      for (const r of this.remoteTracks()) this.#emit('track:del', { event: 'track:del', channelId, ...r });
      this.#start(res, channelId, tracks, false);
      this.#emit('reconnected', { userId: this.userId, resumed: false });
      return;
    }
    if (res.config) this.#config = res.config;
    const before = new Set(this.#users.keys());
    const remote = old.received();
    this.#snapshot(res.seq, res.users, true);
    if (this.#media !== old) return; // a replayed event ended the stay
    // The events of the gap are not replayed: what it changed is told as
    // users who joined or left, and forwarded tracks gone.
    for (const id of before) {
      if (id !== this.userId && !this.#users.has(id)) this.#emit('user:left', { event: 'user:left', channelId, userId: id });
    }
    for (const id of this.#users.keys()) {
      if (id !== this.userId && !before.has(id)) this.#emit('user:join', { event: 'user:join', channelId, userId: id });
    }
    for (const r of remote) {
      const u = this.#users.get(r.userId);
      if (u && u.tracks.some((t) => t.name === r.trackName)) continue;
      old.forget(r.userId, r.trackName);
      this.#emit('track:del', { event: 'track:del', channelId, userId: r.userId, trackName: r.trackName, track: r.track });
    }
    const offer = this.#pendingOffer;
    this.#pendingOffer = null;
    if (offer) old.answer(offer).catch(() => {});
    old.resumed();
    this.#emit('reconnected', { userId: this.userId, resumed: true });
  }

  /**
   * #rejoin joins again, with the same tracks and a fresh PC, the channel of
   * a stay that the server ended (see #lostStay).
   */
  async #rejoin(lost = false) {
    const channelId = this.#channel;
    if (!channelId) return;
    const tracks = { ...this.#tracks };
    for (const r of this.remoteTracks()) this.#emit('track:del', { event: 'track:del', channelId, ...r });
    this.#endStay();
    try {
      await this.#enter('join', { channelId }, tracks, 0, lost);
    } catch (e) {
      this.#log(`rejoin of ${channelId} failed:`, e.message);
      if (e.code === 'Closed' && this.#reconnecting && !this.#channel) {
        // The connection dropped meanwhile: its reconnection rejoins.
        this.#channel = channelId;
        this.#tracks = tracks;
        return;
      }
      this.#emit('user:left', { event: 'user:left', channelId, userId: this.userId, error: e.code });
    }
  }

  /**
   * #lostStay handles a stay the server ended without a leave() (the media
   * connection stayed down past its grace period, the client was too slow
   * for events, or a request got NotMember): it rejoins the channel once.
   */
  #lostStay(why) {
    if (this.#closed || this.#reconnecting || this.#leaving || !this.#channel) return;
    this.#log(`stay in ${this.#channel} lost (${why}): rejoining`);
    if (!this.#relost) {
      this.#rejoin(true);
      return;
    }
    const channelId = this.#channel;
    for (const r of this.remoteTracks()) this.#emit('track:del', { event: 'track:del', channelId, ...r });
    this.#endStay();
    this.#emit('user:left', { event: 'user:left', channelId, userId: this.userId, error: why });
  }

  /** close closes the connection and the media connection for good. */
  close() {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#renewTimer);
    this.#endStay();
    if (this.#signal) this.#signal.close();
  }

  // ---- channel stay ----

  #resetStay() {
    this.#channel = null;
    /** The seq of the last event (or snapshot) the state reflects. */
    this.#lastSeq = 0;
    /** Whether this stay is a rejoin after a lost stay whose media has not connected yet. */
    this.#relost = false;
    /** Recent channel events (by seq), re-applied after a snapshot. */
    this.#recent = [];
    /** The highest seq dropped from #recent: an older snapshot cannot be replayed. */
    this.#trimmed = 0;
    this.#tracks = {};
    this.#users = new Map();
    this.#config = null;
    this.#speakers = [];
    this.#media = null;
    if (this.#icePath) this.#icePath.close();
    this.#icePath = null;
  }

  /** #endStay ends the current channel stay: closes the PC and drops state. */
  #endStay() {
    const had = !!this.#media;
    if (this.#media) this.#media.close();
    this.#resetStay();
    if (had) this.#statusChanged();
  }

  #statusChanged() {
    const s = this.status;
    if (s === this.#status) return;
    this.#status = s;
    if (s === 'connected') this.#relost = false;
    if (this.#icePath) this.#icePath.status(s);
    this.#emit('status', s);
  }

  /**
   * #snapshot replaces the known active users with a snapshot that reflects
   * the events up to seq, then re-applies the newer events received. A
   * snapshot older than the events kept is ignored unless forced; it tells
   * whether it was applied.
   */
  #snapshot(seq, users, force = false) {
    seq = seq || 0;
    if (seq < this.#trimmed && !force) return false;
    this.#users = new Map();
    for (const u of users || []) this.#users.set(u.id, { id: u.id, mode: u.mode, tracks: (u.tracks || []).map(copyState) });
    this.#lastSeq = seq;
    for (const ev of this.#recent.filter((e) => e.channelId === this.#channel && e.seq > seq)) {
      if (!this.#channel) break;
      this.#lastSeq = ev.seq;
      const res = this.#apply(ev);
      if (res.end === 'lost') this.#lostStay(ev.event);
      else if (res.end) this.#endStay();
    }
    return true;
  }

  /** #newMedia creates the stay's peer connection. */
  #newMedia() {
    const start = this.#opts.iceStart || 'direct';
    const media = new Media(
      stageConfig(start, this.iceServers).iceServers,
      {
        request: (type, data) =>
          this.#request(type, data).catch((e) => {
            // NotMember: the server ended the stay without telling us yet.
            if (e.code === 'NotMember' && this.#media === media) this.#lostStay(`${type}: NotMember`);
            throw e;
          }),
        // Not while the join resuming the stay is in flight: the server
        // may not know the stay is this connection's yet.
        canSignal: () => this.connected && this.#media === media && !this.#resuming,
        onTrack: (entry) => this.#remoteTrack(entry),
        onStatus: () => this.#statusChanged(),
        log: (...a) => this.#log(...a),
      },
      this.#opts.RTCPeerConnection,
    );
    this.#media = media;
    if (this.#icePath) this.#icePath.close();
    this.#icePath = new IcePath(media, this.iceServers, {
      after: this.#opts.iceFallbackMs ?? ICE_FALLBACK_MS,
      start,
      onPath: (p) => {
        if (this.#media === media) this.#emit('path', p);
      },
      log: (...a) => this.#log(...a),
    });
    this.#statusChanged();
    return media;
  }

  /**
   * #enter runs create or join and sets up the stay's media; relost marks
   * the rejoin of a lost stay (not rejoined again until its media connects).
   * @returns {Promise<Status>}
   */
  async #enter(type, data, tracks, timeout, relost = false) {
    if (typeof data.channelId !== 'string' || data.channelId === '') {
      throw new CallError('Invalid', 'channelId must be a non-empty string');
    }
    const infos = announce(tracks);
    if (infos.length) data.tracks = infos;
    if (!this.#channel) {
      // Events and offers from now on belong to the stay this request starts.
      this.#recent = [];
      this.#trimmed = 0;
      this.#pendingOffer = null;
      this.#pendingLayers = [];
    }
    let res;
    this.#entering++;
    try {
      res = await this.#request(type, data, timeout);
    } finally {
      this.#entering--;
    }
    this.#start(res, data.channelId, tracks, relost);
    return { status: true };
  }

  /**
   * #start sets up the stay a create or join result started: a fresh peer
   * connection sending tracks (an older stay's is closed), the offer that
   * came first answered, and the result's snapshot.
   */
  #start(res, channelId, tracks, relost) {
    const recent = this.#recent;
    if (this.#media) this.#endStay();
    this.#recent = recent;
    this.#channel = res.channelId || channelId;
    this.#config = res.config || null;
    this.#relost = relost;
    const media = this.#newMedia();
    for (const [name, track] of Object.entries(tracks || {})) {
      media.addTrack(name, track);
      this.#tracks[name] = track;
    }
    const offer = this.#pendingOffer;
    this.#pendingOffer = null;
    if (offer) this.#offer(offer);
    this.#snapshot(res.seq, res.users, true);
    const layers = this.#pendingLayers || [];
    this.#pendingLayers = [];
    for (const l of layers) if (l.channelId === this.#channel) this.#emit('track:layer', l);
  }

  /** create creates channel channelId, joins it and publishes tracks. */
  create(channelId, tracks, config) {
    const data = { channelId };
    if (config) data.config = config;
    return this.#enter('create', data, tracks, REQUEST_TIMEOUT);
  }

  /** join joins channel channelId (it may wait long for an admin's approval). */
  join(channelId, tracks) {
    return this.#enter('join', { channelId }, tracks, 0);
  }

  /** leave leaves the current channel. @returns {Promise<Status>} */
  async leave() {
    this.#leaving = true;
    try {
      await this.#request('leave');
    } catch (e) {
      // A lost connection has left the channel already: do not rejoin it.
      if (!(this.#reconnecting && e.code === 'Closed')) throw e;
    } finally {
      this.#leaving = false;
    }
    this.#endStay();
    return { status: true };
  }

  /** delete deletes the current channel (owner only). @returns {Promise<Status>} */
  async delete(reason) {
    this.#leaving = true;
    try {
      await this.#request('delete', reason ? { reason } : undefined);
    } finally {
      this.#leaving = false;
    }
    this.#endStay();
    return { status: true };
  }

  /** addUsers makes users members; online ones get a newcall. @returns {Promise<Status>} */
  async addUsers(users) {
    await this.#request('addUsers', { users: [...users] });
    return { status: true };
  }

  /** delUsers removes users from the channel. @returns {Promise<Status>} */
  async delUsers(users) {
    await this.#request('delUsers', { users: [...users] });
    return { status: true };
  }

  /** modUsers sets users' permission modes: [{id, mode}]. @returns {Promise<Status>} */
  async modUsers(users) {
    await this.#request('modUsers', { users: users.map((u) => ({ id: u.id, mode: u.mode })) });
    return { status: true };
  }

  /** getUsers returns the channel's active users with their tracks. */
  async getUsers() {
    const channel = this.#channel;
    const res = await this.#request('getUsers');
    if (!channel || this.#channel !== channel) return (res.users || []).map((u) => ({ ...u, tracks: (u.tracks || []).map(copyState) }));
    // A snapshot older than the events kept leaves the newer state as is.
    if (!this.#snapshot(res.seq, res.users)) this.#log(`getUsers: snapshot ${res.seq} is too old`);
    return this.users;
  }

  /**
   * getStats returns the server's view of the caller's media connection:
   * {status, sent: [TrackStats], received: [TrackStats], downlink} (see
   * docs/protocol.md). Bitrates are over the time since the previous call.
   */
  async getStats() {
    return this.#request('getStats');
  }

  /** configure changes the fields of the channel's configuration given; the others keep their values. @returns {Promise<Status>} */
  async configure(config) {
    const channel = this.#channel;
    await this.#request('configure', { config });
    if (channel && this.#channel === channel) {
      const given = Object.fromEntries(Object.entries(config || {}).filter(([, v]) => v !== undefined));
      this.#config = { ...CONFIG_DEFAULTS, ...this.#config, ...given };
    }
    return { status: true };
  }

  /** addTracks publishes local tracks in the current channel. */
  async addTracks(tracks) {
    const infos = announce(tracks);
    if (!infos.length) throw new CallError('Invalid', 'no tracks');
    await this.#request('addTracks', { tracks: infos });
    const media = this.#media || this.#newMedia();
    for (const [name, track] of Object.entries(tracks)) {
      media.addTrack(name, track);
      this.#tracks[name] = track;
    }
  }

  /** removeTracks stops publishing tracks by name. */
  async removeTracks(name) {
    const list = names(name);
    await this.#request('removeTracks', { names: list });
    for (const n of list) {
      if (this.#media) this.#media.removeTrack(n);
      delete this.#tracks[n];
    }
  }

  /** muteTracks self-mutes (true) or unmutes (false) tracks by name. */
  async muteTracks(name, state) {
    await this.#request('muteTracks', { names: names(name), state: !!state });
  }

  /** muteUser mutes (true) or unmutes every track of one kind of another user (admins). */
  async muteUser(userId, kind, state, reason) {
    const data = { userId, kind, state: !!state };
    if (reason) data.reason = reason;
    await this.#request('muteUser', data);
  }

  /**
   * setPreference sets what this user wants of another user's video track
   * it receives: maxHeight, the tallest picture in pixels (0 or absent: no
   * limit), and paused. Each call replaces the whole preference. Fails
   * with NotFound when the track is not received (yet).
   */
  async setPreference(userId, trackName, pref = {}) {
    const data = { userId, trackName };
    const h = Math.round(Number(pref.maxHeight) || 0);
    if (h > 0) data.maxHeight = Math.min(h, 65535);
    if (pref.paused) data.paused = true;
    return this.#request('setPreference', data);
  }

  /**
   * followElement keeps the preference of a remote video track in line
   * with the element showing it: maxHeight its rendered height in device
   * pixels (ResizeObserver, times devicePixelRatio), paused while it is not
   * visible (IntersectionObserver) or has no height. A change is sent once
   * the one before was answered; the preference is sent again when the
   * track arrives (a new stay). Returns a function that stops following
   * (the last preference stays).
   */
  followElement(userId, trackName, element) {
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
        await this.setPreference(userId, trackName, pref);
        sent = key;
      } catch (e) {
        // NotFound: not received yet; its track:add sends it again.
        if (e.code !== 'NotFound') this.#log('followElement: setPreference', e);
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
    const off = this.on('track:add', (ev) => {
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

  // ---- pushes ----

  #push(type, data) {
    switch (type) {
      case 'event':
        this.#event(data);
        break;
      case 'offer':
        this.#offer(data.sdp);
        break;
      case 'status':
        this.serverStatus = data.status;
        break;
      case 'newcall':
        this.#emit('newcall', data);
        break;
      case 'layer':
        if (data.channelId === this.#channel) this.#emit('track:layer', data);
        // One that comes before the create or join result set up the
        // stay (the first, at subscription start) is emitted after it.
        else if (this.#entering) (this.#pendingLayers ||= []).push(data);
        break;
      case 'layers':
        // Which layers of a track this user sends have receivers: the
        // others are not encoded.
        if (data.channelId === this.#channel && this.#media) this.#media.setActiveLayers(data.trackName, data.active || []).catch(() => {});
        break;
      case 'bye':
        this.#bye = data.reason;
        if (data.reason === 'replaced') this.#endStay();
        this.#emit('bye', data);
        break;
      default:
        this.#log('unknown push', type);
    }
  }

  /**
   * #offer answers the server's offer. One that comes before the create or
   * join result set up the stay waits for it (pushes are not ordered with
   * answers).
   */
  #offer(sdp) {
    if (this.#resuming) {
      // Answered once the join result tells whether the stay is resumed.
      this.#pendingOffer = sdp;
      return;
    }
    if (!this.#channel) {
      if (this.#entering) this.#pendingOffer = sdp;
      return;
    }
    const media = this.#media || this.#newMedia();
    media.answer(sdp).catch(() => {});
  }

  /** #remoteTrack emits track:add when a forwarded track's media arrives. */
  #remoteTrack({ userId, trackName, track }) {
    if (userId === this.userId) return;
    const user = this.#users.get(userId);
    const tracks = user ? user.tracks.map(copyState) : [];
    if (!tracks.some((t) => t.name === trackName)) tracks.push({ name: trackName, kind: track.kind, muted: false });
    this.#emit('track:add', { channelId: this.#channel, userId, trackName, track, tracks });
  }

  /**
   * #user returns the known active user id, adding it if needed; a user
   * first known from an event gets the channel's default permission as its
   * mode until a user:mod or a snapshot tells.
   */
  #user(id) {
    let u = this.#users.get(id);
    if (!u) {
      const cfg = this.#config || CONFIG_DEFAULTS;
      u = { id, mode: cfg.defaultPermission ?? CONFIG_DEFAULTS.defaultPermission, tracks: [] };
      this.#users.set(id, u);
    }
    return u;
  }

  /**
   * #event handles one channel event: keeps it for snapshots to come,
   * applies it to the state unless the state already reflects it (seq),
   * and re-emits it.
   */
  #event(ev) {
    const seq = typeof ev.seq === 'number' ? ev.seq : null;
    if (seq !== null) {
      this.#recent.push(ev);
      if (this.#recent.length > RECENT_EVENTS) this.#trimmed = Math.max(this.#trimmed, this.#recent.shift().seq);
    }
    // While a stay is being resumed, its events wait for the join's
    // snapshot: the ones it does not reflect are applied then, and what
    // they changed is told with those of the gap (#resume).
    if (this.#resuming && seq !== null) return;
    let res = {};
    if (this.#channel !== null && !this.#resuming && ev.channelId === this.#channel && (seq === null || seq > this.#lastSeq)) {
      if (seq !== null) this.#lastSeq = seq;
      res = this.#apply(ev);
    }
    if (res.end === 'lost') {
      // Not re-emitted: the rejoin emits what a reconnection's does.
      this.#lostStay(ev.event);
      return;
    }
    if (res.end) this.#endStay();
    if (ev.event === 'track:add') return; // the app hears track:add when the media arrives
    this.#emit(ev.event, ev.event === 'track:del' ? { ...ev, track: res.track } : ev);
  }

  /**
   * #apply applies one event of the current stay to the state. It returns
   * {end: true} for an event that ends the stay, {end: 'lost'} for the
   * user's own user:left it did not cause, and track:del's MediaStreamTrack.
   */
  #apply(ev) {
    const me = this.userId;
    switch (ev.event) {
      case 'track:add': {
        const u = this.#user(ev.userId);
        if (Array.isArray(ev.tracks)) u.tracks = ev.tracks.map(copyState);
        else if (ev.track) u.tracks = u.tracks.filter((t) => t.name !== ev.trackName).concat(copyState(ev.track));
        break;
      }
      case 'track:mute': {
        const t = this.#user(ev.userId).tracks.find((x) => x.name === ev.trackName);
        if (t) {
          t.muted = !!ev.value;
          if (ev.value && ev.mutedBy) t.mutedBy = ev.mutedBy;
          else delete t.mutedBy;
          if (ev.value && ev.muteReason) t.muteReason = ev.muteReason;
          else delete t.muteReason;
        }
        break;
      }
      case 'track:del': {
        const u = this.#users.get(ev.userId);
        if (u) u.tracks = u.tracks.filter((t) => t.name !== ev.trackName);
        const entry = this.#media ? this.#media.forget(ev.userId, ev.trackName) : null;
        return { track: entry ? entry.track : undefined };
      }
      case 'cnl:config':
        // It carries the whole configuration.
        this.#config = { ...CONFIG_DEFAULTS, ...(ev.config || {}) };
        break;
      case 'cnl:speakers':
        this.#speakers = Array.isArray(ev.speakers) ? ev.speakers.map((x) => ({ userId: x.userId, level: x.level })) : [];
        break;
      case 'cnl:delete':
        return { end: true };
      case 'user:join':
        this.#user(ev.userId);
        break;
      case 'user:left':
        if (ev.userId === me) return { end: this.#leaving ? true : 'lost' };
        this.#users.delete(ev.userId);
        this.#forgetUser(ev.userId);
        break;
      case 'user:add':
      case 'user:mod':
        for (const x of ev.users || []) {
          const u = this.#users.get(x.id);
          if (u) u.mode = x.mode;
        }
        break;
      case 'user:del':
        for (const id of ev.users || []) {
          if (id === me) return { end: true };
          this.#users.delete(id);
          this.#forgetUser(id);
        }
        break;
      default:
        break;
    }
    return {};
  }

  /** #forgetUser drops the remote tracks of a user who left. */
  #forgetUser(userId) {
    if (!this.#media) return;
    for (const r of this.#media.received()) {
      if (r.userId === userId) this.#media.forget(userId, r.trackName);
    }
  }
}

export default Calls;
