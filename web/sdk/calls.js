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

export { CallError, parseMsids, harmonizeExtmap, statusOf };

/** Permission mode bits of User.mode. */
export const Mode = Object.freeze({ Admin: 1, Send: 2, Recv: 4 });

/** A CallConfig's defaults, as the server fills them in (maxUsers 0: no limit). */
const CONFIG_DEFAULTS = Object.freeze({ kind: 'audioVideo', joinRequest: false, maxUsers: 0, defaultPermission: 6 });

/** Reconnection backoff of the WebSocket, in ms. */
const BACKOFF_FIRST = 250;
const BACKOFF_MAX = 5000;
const RECONNECT_GIVE_UP = 30000;

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

/**
 * Calls is one authenticated connection to a call server and, at most, one
 * channel stay. Create it with Calls.connect.
 */
export class Calls {
  /**
   * connect opens a connection to serverURL and authenticates with token.
   * opts: {reconnect?: boolean (default true), reconnectGiveUp?: ms (default
   * 30000), WebSocket?, RTCPeerConnection?, log?: (…args) => void}.
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
    this.userId = null;
    this.canCreate = false;
    this.iceServers = [];
    /** The server's view of the media connection (its `status` pushes). */
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

  /** on calls handler(payload) for each event of that name. */
  on(event, handler) {
    if (!this._handlers.has(event)) this._handlers.set(event, new Set());
    this._handlers.get(event).add(handler);
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

  /** _open connects and authenticates; it rejects with the server's code. */
  async _open() {
    const signal = new Signal(this._url, {
      WebSocket: this._opts.WebSocket,
      onPush: (type, data) => this._push(type, data),
      onClose: (ev) => this._dropped(signal, ev),
    });
    await signal.open();
    let res;
    try {
      res = await signal.request('auth', { token: this._token });
    } catch (e) {
      signal.close();
      throw e;
    }
    if (this._closed) {
      signal.close();
      throw new CallError('Closed', 'closed');
    }
    this._signal = signal;
    this.userId = res.userId;
    this.canCreate = !!res.canCreate;
    this.iceServers = res.iceServers || [];
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
    if (this._bye === 'shutdown' || this._opts.reconnect === false || (ev && ev.code === 4001)) {
      this._gone();
      return;
    }
    this._reconnect();
  }

  /** _gone ends everything after the connection is lost for good. */
  _gone() {
    if (this._closed) return;
    this._closed = true;
    this._endStay();
    this._emit('disconnected', { reason: this._bye || 'connection lost' });
  }

  /** _reconnect reconnects with backoff, re-authenticates and rejoins the channel. */
  async _reconnect() {
    if (this._reconnecting) return;
    this._reconnecting = true;
    const start = Date.now();
    let delay = BACKOFF_FIRST;
    for (;;) {
      await sleep(delay);
      delay = Math.min(delay * 2, BACKOFF_MAX);
      if (this._closed) return;
      try {
        await this._open();
        break;
      } catch (e) {
        this._log('reconnect failed:', e.message);
        if (this._closed) return;
        if (e.code === 'UnAuthorized' || Date.now() - start > (this._opts.reconnectGiveUp ?? RECONNECT_GIVE_UP)) {
          this._reconnecting = false;
          this._gone();
          return;
        }
      }
    }
    this._reconnecting = false;
    this._bye = null;
    this._emit('reconnected', { userId: this.userId });
    await this._rejoin();
  }

  /** _rejoin joins again the channel a lost connection left, with a fresh PC. */
  async _rejoin() {
    const channelId = this._channel;
    if (!channelId) return;
    const tracks = { ...this._tracks };
    for (const r of this.remoteTracks()) this._emit('track:del', { event: 'track:del', channelId, ...r });
    this._endStay();
    try {
      await this._enter('join', { channelId }, tracks, 0);
    } catch (e) {
      this._log(`rejoin of ${channelId} failed:`, e.message);
      this._emit('user:left', { event: 'user:left', channelId, userId: this.userId, error: e.code });
    }
  }

  /** close closes the connection and the media connection for good. */
  close() {
    if (this._closed) return;
    this._closed = true;
    this._endStay();
    if (this._signal) this._signal.close();
  }

  // ---- channel stay ----

  _resetStay() {
    this._channel = null;
    this._staySeq = 0;
    this._tracks = {};
    this._users = new Map();
    this._config = null;
    this._media = null;
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
    this._emit('status', s);
  }

  /** _setUsers replaces the known active users. */
  _setUsers(users) {
    this._users = new Map();
    for (const u of users || []) this._users.set(u.id, { id: u.id, mode: u.mode, tracks: (u.tracks || []).map(copyState) });
  }

  /** _newMedia creates the stay's peer connection. */
  _newMedia() {
    const media = new Media(
      this.iceServers,
      {
        request: (type, data) => this._request(type, data),
        canSignal: () => this.connected && this._media === media,
        onTrack: (entry) => this._remoteTrack(entry),
        onStatus: () => this._statusChanged(),
        log: (...a) => this._log(...a),
      },
      this._opts.RTCPeerConnection,
    );
    this._media = media;
    this._statusChanged();
    return media;
  }

  /** _enter runs create or join and sets up the stay's media. */
  async _enter(type, data, tracks, timeout) {
    if (typeof data.channelId !== 'string' || data.channelId === '') {
      throw new CallError('Invalid', 'channelId must be a non-empty string');
    }
    const infos = announce(tracks);
    if (infos.length) data.tracks = infos;
    const res = await this._request(type, data, timeout);
    if (this._media) this._endStay();
    this._channel = res.channelId || data.channelId;
    this._staySeq = res.seq || 0;
    this._config = res.config || null;
    this._setUsers(res.users);
    const media = this._newMedia();
    for (const [name, track] of Object.entries(tracks || {})) {
      media.addTrack(name, track);
      this._tracks[name] = track;
    }
    return { status: true };
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

  /** leave leaves the current channel. */
  async leave() {
    try {
      await this._request('leave');
    } catch (e) {
      // A lost connection has left the channel already: do not rejoin it.
      if (!(this._reconnecting && e.code === 'Closed')) throw e;
    }
    this._endStay();
    return { status: true };
  }

  /** delete deletes the current channel (owner only). */
  async delete(reason) {
    await this._request('delete', reason ? { reason } : undefined);
    this._endStay();
    return { status: true };
  }

  /** addUsers makes users members; online ones get a newcall. */
  async addUsers(users) {
    await this._request('addUsers', { users: [...users] });
    return { status: true };
  }

  /** delUsers removes users from the channel. */
  async delUsers(users) {
    await this._request('delUsers', { users: [...users] });
    return { status: true };
  }

  /** modUsers sets users' permission modes: [{id, mode}]. */
  async modUsers(users) {
    await this._request('modUsers', { users: users.map((u) => ({ id: u.id, mode: u.mode })) });
    return { status: true };
  }

  /** getUsers returns the channel's active users with their tracks. */
  async getUsers() {
    const res = await this._request('getUsers');
    this._setUsers(res.users);
    this.lastUsersSeq = res.seq;
    return this.users;
  }

  /** configure updates the channel's configuration. */
  async configure(config) {
    const channel = this._channel;
    await this._request('configure', { config });
    // Missing fields take their defaults (docs/protocol.md, CallConfig).
    if (this._channel === channel) this._config = { ...CONFIG_DEFAULTS, ...config };
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
      case 'bye':
        this._bye = data.reason;
        if (data.reason === 'replaced') this._endStay();
        this._emit('bye', data);
        break;
      default:
        this._log('unknown push', type);
    }
  }

  /** _offer answers the server's offer, creating the PC if there is none yet. */
  _offer(sdp) {
    if (!this._channel) return;
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

  /** _user returns the known active user id, adding it if needed. */
  _user(id) {
    let u = this._users.get(id);
    if (!u) {
      u = { id, mode: undefined, tracks: [] };
      this._users.set(id, u);
    }
    return u;
  }

  /** _ownEnd tells whether a stay-ending event belongs to the current stay. */
  _ownEnd(ev) {
    return this._channel !== null && ev.channelId === this._channel && !(ev.seq <= this._staySeq);
  }

  /** _event applies one channel event to the state and re-emits it. */
  _event(ev) {
    const name = ev.event;
    const me = this.userId;
    switch (name) {
      case 'track:add': {
        const u = this._user(ev.userId);
        if (Array.isArray(ev.tracks)) u.tracks = ev.tracks.map(copyState);
        else if (ev.track) u.tracks = u.tracks.filter((t) => t.name !== ev.trackName).concat(copyState(ev.track));
        return; // the app hears track:add when the media arrives
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
        this._emit(name, { ...ev, track: entry ? entry.track : undefined });
        return;
      }
      case 'cnl:config':
        this._config = { ...CONFIG_DEFAULTS, ...(ev.config || {}) };
        break;
      case 'cnl:delete':
        if (this._ownEnd(ev)) this._endStay();
        break;
      case 'user:join':
        this._user(ev.userId);
        if (ev.userId !== me) this._refreshUsers();
        break;
      case 'user:left':
        if (ev.userId === me) {
          if (this._ownEnd(ev)) this._endStay();
        } else {
          this._users.delete(ev.userId);
          this._forgetUser(ev.userId);
        }
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
          if (id === me) {
            if (this._ownEnd(ev)) this._endStay();
          } else {
            this._users.delete(id);
            this._forgetUser(id);
          }
        }
        break;
      default:
        break;
    }
    this._emit(name, ev);
  }

  /** _refreshUsers asks for the active users soon (a user:join carries no mode). */
  _refreshUsers() {
    if (this._refreshing) return;
    this._refreshing = setTimeout(() => {
      this._refreshing = null;
      if (this._channel) this.getUsers().catch(() => {});
    }, 50);
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
