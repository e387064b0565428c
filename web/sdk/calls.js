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
    await calls._open();
    return calls;
  }

  /** Use Calls.connect. */
  constructor(serverURL, token, opts = {}) {
    this._url = wsURL(serverURL);
    this._token = token;
    this._opts = opts;
    this._handlers = new Map();
    this._signal = null;
    this._closed = false;
    this._reconnecting = false;
    /** Whether the join that resumes the stay after a reconnection is in flight. */
    this._resuming = false;
    /** Whether leave() or delete() is in progress (the stay's end is ours). */
    this._leaving = false;
    /** How many create/join requests are in flight. */
    this._entering = 0;
    /** A server offer that came before the create/join result set up the stay. */
    this._pendingOffer = null;
    /** The timer that renews the token before it expires (_scheduleRenewal). */
    this._renewTimer = null;
    this.userId = null;
    this.canCreate = false;
    this.iceServers = [];
    /** The server's view of the media connection (its `status` pushes). @type {import('./calls.d.ts').ConnectionStatus} */
    this.serverStatus = 'disconnected';
    this._resetStay();
    this._status = 'disconnected';
  }

  // ---- properties ----

  /** The current channel id, or null. */
  get channel() {
    return this._channel;
  }

  /** The local tracks published in the current channel (TracksByName). */
  get tracks() {
    return { ...this._tracks };
  }

  /**
   * How the media connection reaches the server once connected: 'udp',
   * 'tcp' (ICE over TCP) or 'relay' (through a TURN server); null
   * otherwise. The 'path' event tells each connection's.
   */
  get path() {
    return this._icePath ? this._icePath.path : null;
  }

  /** The media connection's status. */
  get status() {
    return this._media ? this._media.status : 'disconnected';
  }

  /** The current RTCPeerConnection, or null (for tests and diagnostics). */
  get pc() {
    return this._media ? this._media.pc : null;
  }

  /** The channel's configuration as last known, or null. */
  get config() {
    return this._config ? { ...this._config } : null;
  }

  /** The channel's active users as last known (ActiveUser[]). */
  get users() {
    return [...this._users.values()].map((u) => ({ ...u, tracks: u.tracks.map(copyState) }));
  }

  /** The channel's speakers, dominant first, as of the last cnl:speakers ({userId, level}[]). */
  get speakers() {
    return (this._speakers || []).map((s) => ({ ...s }));
  }

  /** Whether the WebSocket is up. */
  get connected() {
    return !!this._signal && this._signal.isOpen;
  }

  /** remoteTracks lists the forwarded tracks received: [{userId, trackName, track}]. */
  remoteTracks() {
    if (!this._media) return [];
    return [...this._media.remote.values()].map(({ userId, trackName, track }) => ({ userId, trackName, track }));
  }

  // ---- events ----

  /**
   * on calls handler(payload) for each event of that name, until the
   * function it returns is called (or off(event, handler)).
   * @returns {() => void} unsubscribe: removes this handler; calling it again does nothing.
   */
  on(event, handler) {
    if (!this._handlers.has(event)) this._handlers.set(event, new Set());
    this._handlers.get(event).add(handler);
    return () => this.off(event, handler);
  }

  /** off removes a handler given to on. */
  off(event, handler) {
    const set = this._handlers.get(event);
    if (set) set.delete(handler);
  }

  _emit(event, payload) {
    for (const h of [...(this._handlers.get(event) || [])]) {
      try {
        h(payload);
      } catch (e) {
        this._log(`${event} handler failed:`, e);
      }
    }
  }

  _log(...args) {
    if (this._opts.log) this._opts.log(...args);
    else if (typeof console !== 'undefined') console.warn('[calls]', ...args);
  }

  // ---- connection ----

  /** _open connects and authenticates with token; it rejects with the server's code. */
  async _open(token = this._token) {
    const signal = new Signal(this._url, {
      WebSocket: this._opts.WebSocket,
      onPush: (type, data) => this._push(type, data),
      onClose: (ev) => this._dropped(signal, ev),
    });
    await signal.open();
    let res;
    try {
      res = await signal.request('auth', { token });
    } catch (e) {
      signal.close();
      throw e;
    }
    if (this._closed) {
      signal.close();
      throw new CallError('Closed', 'closed');
    }
    this._signal = signal;
    this._token = token;
    this.userId = res.userId;
    this.canCreate = !!res.canCreate;
    this.iceServers = res.iceServers || [];
    if (this._icePath) this._icePath.setServers(this.iceServers);
    this._scheduleRenewal(res.expiresAt);
  }

  /**
   * _scheduleRenewal renews the session's token before it expires (the
   * server ends a session whose token expired): with opts.getToken, a
   * fresh token is sent in an auth on the same connection a minute before
   * expiresAt (Unix seconds), or at 80 % of the time left when that is
   * shorter. Without getToken the session ends at expiry.
   */
  _scheduleRenewal(expiresAt) {
    clearTimeout(this._renewTimer);
    if (!this._opts.getToken || !expiresAt) return;
    const left = expiresAt * 1000 - Date.now();
    const at = Math.max(Math.min(left - 60000, left * 0.8), 0);
    this._renewTimer = setTimeout(() => this._renew(), at);
  }

  /** _renew sends a fresh token on the current connection. */
  async _renew() {
    if (this._closed || !this._signal) return;
    const signal = this._signal;
    try {
      const token = await this._freshToken();
      const res = await signal.request('auth', { token });
      if (signal !== this._signal) return;
      this._token = token;
      // Fresh TURN credentials come with the fresh token.
      if (res.iceServers) {
        this.iceServers = res.iceServers;
        if (this._icePath) this._icePath.setServers(this.iceServers);
      }
      this._scheduleRenewal(res.expiresAt);
    } catch (e) {
      this._log('token renewal failed:', e.message);
      if (!this._closed && signal === this._signal) this._renewTimer = setTimeout(() => this._renew(), 5000);
    }
  }

  /** _request sends one request on the current connection. */
  _request(type, data, timeout = REQUEST_TIMEOUT) {
    if (this._closed) return Promise.reject(new CallError('Closed', 'closed'));
    if (!this._signal) return Promise.reject(new CallError('Closed', 'not connected'));
    return this._signal.request(type, data, timeout);
  }

  /** _dropped handles a WebSocket that closed without close(). */
  _dropped(signal, ev) {
    if (signal !== this._signal || this._closed) return;
    this._log(`connection lost (${ev && ev.code})`);
    if (this._bye === 'shutdown' || this._bye === 'drain' || this._opts.reconnect === false || (ev && ev.code === 4001)) {
      this._gone();
      return;
    }
    this._reconnect();
  }

  /** _gone ends everything after the connection is lost for good. */
  _gone() {
    if (this._closed) return;
    this._closed = true;
    clearTimeout(this._renewTimer);
    this._endStay();
    this._emit('disconnected', { reason: this._bye || 'connection lost' });
  }

  /** _freshToken is opts.getToken's token, or the last one that worked. */
  async _freshToken() {
    const get = this._opts.getToken;
    if (!get) return this._token;
    const token = await get();
    if (typeof token !== 'string' || token === '') throw new CallError('UnAuthorized', 'getToken gave no token');
    return token;
  }

  /**
   * _reconnect reconnects with backoff, re-authenticates (with a fresh
   * token from opts.getToken when given) and resumes the stay (_resume).
   * The stay and its peer connection are kept meanwhile: media goes on.
   */
  async _reconnect() {
    if (this._reconnecting) return;
    this._reconnecting = true;
    const start = Date.now();
    let delay = BACKOFF_FIRST;
    let refused = false; // an UnAuthorized already retried with a fresh token
    for (;;) {
      await sleep(delay);
      delay = Math.min(delay * 2, BACKOFF_MAX);
      if (this._closed) return;
      try {
        await this._open(await this._freshToken());
        break;
      } catch (e) {
        this._log('reconnect failed:', e.message);
        if (this._closed) return;
        // With getToken, an UnAuthorized gets one more try with a fresh token.
        const unauthorized = e.code === 'UnAuthorized' && (refused || !this._opts.getToken);
        if (e.code === 'UnAuthorized') refused = true;
        if (unauthorized || Date.now() - start > (this._opts.reconnectGiveUp ?? RECONNECT_GIVE_UP)) {
          this._reconnecting = false;
          this._gone();
          return;
        }
      }
    }
    this._reconnecting = false;
    this._bye = null;
    await this._resume();
  }

  /**
   * _resume joins the stay's channel again after a reconnection, asking the
   * server to resume the stay the lost connection left (same tracks, same
   * peer connection: nobody sees a leave). Not resumed (it expired, the
   * server restarted…), the join is a fresh stay: the old peer connection
   * is replaced. It emits reconnected {resumed}.
   */
  async _resume() {
    const channelId = this._channel;
    const old = this._media;
    if (!channelId) {
      this._emit('reconnected', { userId: this.userId, resumed: false });
      return;
    }
    const tracks = { ...this._tracks };
    // Without a peer connection to go on with (a rejoin cut off), the stay
    // cannot be resumed: the join takes over the one the server kept.
    const data = old ? { channelId, resume: true } : { channelId };
    const infos = announce(tracks);
    if (infos.length) data.tracks = infos;
    // Events and offers from now on belong to the stay this join resumes
    // (or starts); those of the gap are not replayed.
    this._recent = [];
    this._trimmed = 0;
    this._pendingOffer = null;
    this._resuming = true;
    let res;
    this._entering++;
    try {
      res = await this._request('join', data, 0);
    } catch (e) {
      if (this._closed || this._channel !== channelId || this._media !== old) return;
      this._log(`resuming the stay in ${channelId} failed:`, e.message);
      // The connection dropped again: its reconnection resumes the stay.
      if (e.code === 'Closed' && this._reconnecting) return;
      for (const r of this.remoteTracks()) this._emit('track:del', { event: 'track:del', channelId, ...r });
      this._endStay();
      this._emit('reconnected', { userId: this.userId, resumed: false });
      this._emit('user:left', { event: 'user:left', channelId, userId: this.userId, error: e.code });
      return;
    } finally {
      this._entering--;
      this._resuming = false;
    }
    // leave(), close() or the server ended the stay meanwhile.
    if (this._closed || this._channel !== channelId || this._media !== old) return;
    if (!res.resumed || !old) {
      for (const r of this.remoteTracks()) this._emit('track:del', { event: 'track:del', channelId, ...r });
      this._start(res, channelId, tracks, false);
      this._emit('reconnected', { userId: this.userId, resumed: false });
      return;
    }
    if (res.config) this._config = res.config;
    const before = new Set(this._users.keys());
    const remote = [...old.remote.values()];
    this._snapshot(res.seq, res.users, true);
    if (this._media !== old) return; // a replayed event ended the stay
    // The events of the gap are not replayed: what it changed is told as
    // users who joined or left, and forwarded tracks gone.
    for (const id of before) {
      if (id !== this.userId && !this._users.has(id)) this._emit('user:left', { event: 'user:left', channelId, userId: id });
    }
    for (const id of this._users.keys()) {
      if (id !== this.userId && !before.has(id)) this._emit('user:join', { event: 'user:join', channelId, userId: id });
    }
    for (const r of remote) {
      const u = this._users.get(r.userId);
      if (u && u.tracks.some((t) => t.name === r.trackName)) continue;
      old.forget(r.userId, r.trackName);
      this._emit('track:del', { event: 'track:del', channelId, userId: r.userId, trackName: r.trackName, track: r.track });
    }
    const offer = this._pendingOffer;
    this._pendingOffer = null;
    if (offer) old.answer(offer).catch(() => {});
    old.resumed();
    this._emit('reconnected', { userId: this.userId, resumed: true });
  }

  /**
   * _rejoin joins again, with the same tracks and a fresh PC, the channel of
   * a stay that the server ended (see _lostStay).
   */
  async _rejoin(lost = false) {
    const channelId = this._channel;
    if (!channelId) return;
    const tracks = { ...this._tracks };
    for (const r of this.remoteTracks()) this._emit('track:del', { event: 'track:del', channelId, ...r });
    this._endStay();
    try {
      await this._enter('join', { channelId }, tracks, 0, lost);
    } catch (e) {
      this._log(`rejoin of ${channelId} failed:`, e.message);
      if (e.code === 'Closed' && this._reconnecting && !this._channel) {
        // The connection dropped meanwhile: its reconnection rejoins.
        this._channel = channelId;
        this._tracks = tracks;
        return;
      }
      this._emit('user:left', { event: 'user:left', channelId, userId: this.userId, error: e.code });
    }
  }

  /**
   * _lostStay handles a stay the server ended without a leave() (the media
   * connection stayed down past its grace period, the client was too slow
   * for events, or a request got NotMember): it rejoins the channel once.
   */
  _lostStay(why) {
    if (this._closed || this._reconnecting || this._leaving || !this._channel) return;
    this._log(`stay in ${this._channel} lost (${why}): rejoining`);
    if (!this._relost) {
      this._rejoin(true);
      return;
    }
    const channelId = this._channel;
    for (const r of this.remoteTracks()) this._emit('track:del', { event: 'track:del', channelId, ...r });
    this._endStay();
    this._emit('user:left', { event: 'user:left', channelId, userId: this.userId, error: why });
  }

  /** close closes the connection and the media connection for good. */
  close() {
    if (this._closed) return;
    this._closed = true;
    clearTimeout(this._renewTimer);
    this._endStay();
    if (this._signal) this._signal.close();
  }

  // ---- channel stay ----

  _resetStay() {
    this._channel = null;
    /** The seq of the last event (or snapshot) the state reflects. */
    this._lastSeq = 0;
    /** Whether this stay is a rejoin after a lost stay whose media has not connected yet. */
    this._relost = false;
    /** Recent channel events (by seq), re-applied after a snapshot. */
    this._recent = [];
    /** The highest seq dropped from _recent: an older snapshot cannot be replayed. */
    this._trimmed = 0;
    this._tracks = {};
    this._users = new Map();
    this._config = null;
    this._speakers = [];
    this._media = null;
    if (this._icePath) this._icePath.close();
    this._icePath = null;
  }

  /** _endStay ends the current channel stay: closes the PC and drops state. */
  _endStay() {
    const had = !!this._media;
    if (this._media) this._media.close();
    this._resetStay();
    if (had) this._statusChanged();
  }

  _statusChanged() {
    const s = this.status;
    if (s === this._status) return;
    this._status = s;
    if (s === 'connected') this._relost = false;
    if (this._icePath) this._icePath.status(s);
    this._emit('status', s);
  }

  /**
   * _snapshot replaces the known active users with a snapshot that reflects
   * the events up to seq, then re-applies the newer events received. A
   * snapshot older than the events kept is ignored unless forced; it tells
   * whether it was applied.
   */
  _snapshot(seq, users, force = false) {
    seq = seq || 0;
    if (seq < this._trimmed && !force) return false;
    this._users = new Map();
    for (const u of users || []) this._users.set(u.id, { id: u.id, mode: u.mode, tracks: (u.tracks || []).map(copyState) });
    this._lastSeq = seq;
    for (const ev of this._recent.filter((e) => e.channelId === this._channel && e.seq > seq)) {
      if (!this._channel) break;
      this._lastSeq = ev.seq;
      const res = this._apply(ev);
      if (res.end === 'lost') this._lostStay(ev.event);
      else if (res.end) this._endStay();
    }
    return true;
  }

  /** _newMedia creates the stay's peer connection. */
  _newMedia() {
    const start = this._opts.iceStart || 'direct';
    const media = new Media(
      stageConfig(start, this.iceServers).iceServers,
      {
        request: (type, data) =>
          this._request(type, data).catch((e) => {
            // NotMember: the server ended the stay without telling us yet.
            if (e.code === 'NotMember' && this._media === media) this._lostStay(`${type}: NotMember`);
            throw e;
          }),
        // Not while the join resuming the stay is in flight: the server
        // may not know the stay is this connection's yet.
        canSignal: () => this.connected && this._media === media && !this._resuming,
        onTrack: (entry) => this._remoteTrack(entry),
        onStatus: () => this._statusChanged(),
        log: (...a) => this._log(...a),
      },
      this._opts.RTCPeerConnection,
    );
    this._media = media;
    if (this._icePath) this._icePath.close();
    this._icePath = new IcePath(media, this.iceServers, {
      after: this._opts.iceFallbackMs ?? ICE_FALLBACK_MS,
      start,
      onPath: (p) => {
        if (this._media === media) this._emit('path', p);
      },
      log: (...a) => this._log(...a),
    });
    this._statusChanged();
    return media;
  }

  /**
   * _enter runs create or join and sets up the stay's media; relost marks
   * the rejoin of a lost stay (not rejoined again until its media connects).
   * @returns {Promise<Status>}
   */
  async _enter(type, data, tracks, timeout, relost = false) {
    if (typeof data.channelId !== 'string' || data.channelId === '') {
      throw new CallError('Invalid', 'channelId must be a non-empty string');
    }
    const infos = announce(tracks);
    if (infos.length) data.tracks = infos;
    if (!this._channel) {
      // Events and offers from now on belong to the stay this request starts.
      this._recent = [];
      this._trimmed = 0;
      this._pendingOffer = null;
      this._pendingLayers = [];
    }
    let res;
    this._entering++;
    try {
      res = await this._request(type, data, timeout);
    } finally {
      this._entering--;
    }
    this._start(res, data.channelId, tracks, relost);
    return { status: true };
  }

  /**
   * _start sets up the stay a create or join result started: a fresh peer
   * connection sending tracks (an older stay's is closed), the offer that
   * came first answered, and the result's snapshot.
   */
  _start(res, channelId, tracks, relost) {
    const recent = this._recent;
    if (this._media) this._endStay();
    this._recent = recent;
    this._channel = res.channelId || channelId;
    this._config = res.config || null;
    this._relost = relost;
    const media = this._newMedia();
    for (const [name, track] of Object.entries(tracks || {})) {
      media.addTrack(name, track);
      this._tracks[name] = track;
    }
    const offer = this._pendingOffer;
    this._pendingOffer = null;
    if (offer) this._offer(offer);
    this._snapshot(res.seq, res.users, true);
    const layers = this._pendingLayers || [];
    this._pendingLayers = [];
    for (const l of layers) if (l.channelId === this._channel) this._emit('track:layer', l);
  }

  /** create creates channel channelId, joins it and publishes tracks. */
  create(channelId, tracks, config) {
    const data = { channelId };
    if (config) data.config = config;
    return this._enter('create', data, tracks, REQUEST_TIMEOUT);
  }

  /** join joins channel channelId (it may wait long for an admin's approval). */
  join(channelId, tracks) {
    return this._enter('join', { channelId }, tracks, 0);
  }

  /** leave leaves the current channel. @returns {Promise<Status>} */
  async leave() {
    this._leaving = true;
    try {
      await this._request('leave');
    } catch (e) {
      // A lost connection has left the channel already: do not rejoin it.
      if (!(this._reconnecting && e.code === 'Closed')) throw e;
    } finally {
      this._leaving = false;
    }
    this._endStay();
    return { status: true };
  }

  /** delete deletes the current channel (owner only). @returns {Promise<Status>} */
  async delete(reason) {
    this._leaving = true;
    try {
      await this._request('delete', reason ? { reason } : undefined);
    } finally {
      this._leaving = false;
    }
    this._endStay();
    return { status: true };
  }

  /** addUsers makes users members; online ones get a newcall. @returns {Promise<Status>} */
  async addUsers(users) {
    await this._request('addUsers', { users: [...users] });
    return { status: true };
  }

  /** delUsers removes users from the channel. @returns {Promise<Status>} */
  async delUsers(users) {
    await this._request('delUsers', { users: [...users] });
    return { status: true };
  }

  /** modUsers sets users' permission modes: [{id, mode}]. @returns {Promise<Status>} */
  async modUsers(users) {
    await this._request('modUsers', { users: users.map((u) => ({ id: u.id, mode: u.mode })) });
    return { status: true };
  }

  /** getUsers returns the channel's active users with their tracks. */
  async getUsers() {
    const channel = this._channel;
    const res = await this._request('getUsers');
    if (!channel || this._channel !== channel) return (res.users || []).map((u) => ({ ...u, tracks: (u.tracks || []).map(copyState) }));
    // A snapshot older than the events kept leaves the newer state as is.
    if (!this._snapshot(res.seq, res.users)) this._log(`getUsers: snapshot ${res.seq} is too old`);
    return this.users;
  }

  /**
   * getStats returns the server's view of the caller's media connection:
   * {status, sent: [TrackStats], received: [TrackStats], downlink} (see
   * docs/protocol.md). Bitrates are over the time since the previous call.
   */
  async getStats() {
    return this._request('getStats');
  }

  /** configure changes the fields of the channel's configuration given; the others keep their values. @returns {Promise<Status>} */
  async configure(config) {
    const channel = this._channel;
    await this._request('configure', { config });
    if (channel && this._channel === channel) {
      const given = Object.fromEntries(Object.entries(config || {}).filter(([, v]) => v !== undefined));
      this._config = { ...CONFIG_DEFAULTS, ...this._config, ...given };
    }
    return { status: true };
  }

  /** addTracks publishes local tracks in the current channel. */
  async addTracks(tracks) {
    const infos = announce(tracks);
    if (!infos.length) throw new CallError('Invalid', 'no tracks');
    await this._request('addTracks', { tracks: infos });
    const media = this._media || this._newMedia();
    for (const [name, track] of Object.entries(tracks)) {
      media.addTrack(name, track);
      this._tracks[name] = track;
    }
  }

  /** removeTracks stops publishing tracks by name. */
  async removeTracks(name) {
    const list = names(name);
    await this._request('removeTracks', { names: list });
    for (const n of list) {
      if (this._media) this._media.removeTrack(n);
      delete this._tracks[n];
    }
  }

  /** muteTracks self-mutes (true) or unmutes (false) tracks by name. */
  async muteTracks(name, state) {
    await this._request('muteTracks', { names: names(name), state: !!state });
  }

  /** muteUser mutes (true) or unmutes every track of one kind of another user (admins). */
  async muteUser(userId, kind, state, reason) {
    const data = { userId, kind, state: !!state };
    if (reason) data.reason = reason;
    await this._request('muteUser', data);
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
    return this._request('setPreference', data);
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
        if (e.code !== 'NotFound') this._log('followElement: setPreference', e);
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

  _push(type, data) {
    switch (type) {
      case 'event':
        this._event(data);
        break;
      case 'offer':
        this._offer(data.sdp);
        break;
      case 'status':
        this.serverStatus = data.status;
        break;
      case 'newcall':
        this._emit('newcall', data);
        break;
      case 'layer':
        if (data.channelId === this._channel) this._emit('track:layer', data);
        // One that comes before the create or join result set up the
        // stay (the first, at subscription start) is emitted after it.
        else if (this._entering) (this._pendingLayers ||= []).push(data);
        break;
      case 'layers':
        // Which layers of a track this user sends have receivers: the
        // others are not encoded.
        if (data.channelId === this._channel && this._media) this._media.setActiveLayers(data.trackName, data.active || []).catch(() => {});
        break;
      case 'bye':
        this._bye = data.reason;
        if (data.reason === 'replaced') this._endStay();
        this._emit('bye', data);
        break;
      default:
        this._log('unknown push', type);
    }
  }

  /**
   * _offer answers the server's offer. One that comes before the create or
   * join result set up the stay waits for it (pushes are not ordered with
   * answers).
   */
  _offer(sdp) {
    if (this._resuming) {
      // Answered once the join result tells whether the stay is resumed.
      this._pendingOffer = sdp;
      return;
    }
    if (!this._channel) {
      if (this._entering) this._pendingOffer = sdp;
      return;
    }
    const media = this._media || this._newMedia();
    media.answer(sdp).catch(() => {});
  }

  /** _remoteTrack emits track:add when a forwarded track's media arrives. */
  _remoteTrack({ userId, trackName, track }) {
    if (userId === this.userId) return;
    const user = this._users.get(userId);
    const tracks = user ? user.tracks.map(copyState) : [];
    if (!tracks.some((t) => t.name === trackName)) tracks.push({ name: trackName, kind: track.kind, muted: false });
    this._emit('track:add', { channelId: this._channel, userId, trackName, track, tracks });
  }

  /**
   * _user returns the known active user id, adding it if needed; a user
   * first known from an event gets the channel's default permission as its
   * mode until a user:mod or a snapshot tells.
   */
  _user(id) {
    let u = this._users.get(id);
    if (!u) {
      const cfg = this._config || CONFIG_DEFAULTS;
      u = { id, mode: cfg.defaultPermission ?? CONFIG_DEFAULTS.defaultPermission, tracks: [] };
      this._users.set(id, u);
    }
    return u;
  }

  /**
   * _event handles one channel event: keeps it for snapshots to come,
   * applies it to the state unless the state already reflects it (seq),
   * and re-emits it.
   */
  _event(ev) {
    const seq = typeof ev.seq === 'number' ? ev.seq : null;
    if (seq !== null) {
      this._recent.push(ev);
      if (this._recent.length > RECENT_EVENTS) this._trimmed = Math.max(this._trimmed, this._recent.shift().seq);
    }
    // While a stay is being resumed, its events wait for the join's
    // snapshot: the ones it does not reflect are applied then, and what
    // they changed is told with those of the gap (_resume).
    if (this._resuming && seq !== null) return;
    let res = {};
    if (this._channel !== null && !this._resuming && ev.channelId === this._channel && (seq === null || seq > this._lastSeq)) {
      if (seq !== null) this._lastSeq = seq;
      res = this._apply(ev);
    }
    if (res.end === 'lost') {
      // Not re-emitted: the rejoin emits what a reconnection's does.
      this._lostStay(ev.event);
      return;
    }
    if (res.end) this._endStay();
    if (ev.event === 'track:add') return; // the app hears track:add when the media arrives
    this._emit(ev.event, ev.event === 'track:del' ? { ...ev, track: res.track } : ev);
  }

  /**
   * _apply applies one event of the current stay to the state. It returns
   * {end: true} for an event that ends the stay, {end: 'lost'} for the
   * user's own user:left it did not cause, and track:del's MediaStreamTrack.
   */
  _apply(ev) {
    const me = this.userId;
    switch (ev.event) {
      case 'track:add': {
        const u = this._user(ev.userId);
        if (Array.isArray(ev.tracks)) u.tracks = ev.tracks.map(copyState);
        else if (ev.track) u.tracks = u.tracks.filter((t) => t.name !== ev.trackName).concat(copyState(ev.track));
        break;
      }
      case 'track:mute': {
        const t = this._user(ev.userId).tracks.find((x) => x.name === ev.trackName);
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
        const u = this._users.get(ev.userId);
        if (u) u.tracks = u.tracks.filter((t) => t.name !== ev.trackName);
        const entry = this._media ? this._media.forget(ev.userId, ev.trackName) : null;
        return { track: entry ? entry.track : undefined };
      }
      case 'cnl:config':
        // It carries the whole configuration.
        this._config = { ...CONFIG_DEFAULTS, ...(ev.config || {}) };
        break;
      case 'cnl:speakers':
        this._speakers = Array.isArray(ev.speakers) ? ev.speakers.map((x) => ({ userId: x.userId, level: x.level })) : [];
        break;
      case 'cnl:delete':
        return { end: true };
      case 'user:join':
        this._user(ev.userId);
        break;
      case 'user:left':
        if (ev.userId === me) return { end: this._leaving ? true : 'lost' };
        this._users.delete(ev.userId);
        this._forgetUser(ev.userId);
        break;
      case 'user:add':
      case 'user:mod':
        for (const x of ev.users || []) {
          const u = this._users.get(x.id);
          if (u) u.mode = x.mode;
        }
        break;
      case 'user:del':
        for (const id of ev.users || []) {
          if (id === me) return { end: true };
          this._users.delete(id);
          this._forgetUser(id);
        }
        break;
      default:
        break;
    }
    return {};
  }

  /** _forgetUser drops the remote tracks of a user who left. */
  _forgetUser(userId) {
    if (!this._media) return;
    for (const r of [...this._media.remote.values()]) {
      if (r.userId === userId) this._media.forget(userId, r.trackName);
    }
  }
}

export default Calls;
