// calls.js: the browser SDK of callcore. An ES module with no dependencies:
//
//   import { Calls } from '/sdk/calls.js';
//   const calls = await Calls.connect('https://calls.example', token);
//   calls.on('track:add', ({ userId, trackName, track }) => { … });
//   await calls.join('standup', { cam: videoTrack, mic: audioTrack });
//
// It speaks docs/protocol.md to the call server: signalling over a
// WebSocket (signal.js), authenticated and reconnected by connection.js,
// and media over one RTCPeerConnection per channel stay (media.js, its ICE
// fallback icepath.js), run by stay.js: the create or join that starts a
// stay, its resumption after a reconnection, the rejoin of a lost one;
// state.js keeps what is known of the channel. Calls holds the public
// API, the app's events and the server's pushes.

import { CallError, wsURL, REQUEST_TIMEOUT } from './signal.js';
import { Connection } from './connection.js';
import { parseMsids, harmonizeExtmap, statusOf } from './media.js';
import { Stay, names } from './stay.js';
import { followElement } from './follow.js';

export { CallError, parseMsids, harmonizeExtmap, statusOf };

/** Permission mode bits of User.mode. */
export const Mode = Object.freeze({ Admin: 1, Send: 2, Recv: 4 });

/** @typedef {import('./calls.d.ts').Status} Status */

/**
 * Calls is one authenticated connection to a call server and, at most, one
 * channel stay. Create it with Calls.connect.
 */
export class Calls {
  /** The session: the WebSocket, its auth and reconnection. */
  #conn;
  #opts;
  /** event name → Set of handlers. */
  #handlers = new Map();
  /** The channel stay and what keeps it going. */
  #stay;

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
    await calls.#conn.open();
    return calls;
  }

  /** Use Calls.connect. */
  constructor(serverURL, token, opts = {}) {
    this.#opts = opts;
    this.#conn = new Connection(wsURL(serverURL), token, opts, {
      onPush: (type, data) => this.#push(type, data),
      onAuth: (res, renewal) => this.#authed(res, renewal),
      onReconnected: () => this.#stay.resume(),
      onGone: (reason) => this.#gone(reason),
      log: (...a) => this.#log(...a),
    });
    this.userId = null;
    this.canCreate = false;
    this.iceServers = [];
    /** The server's view of the media connection (its `status` pushes). @type {import('./calls.d.ts').ConnectionStatus} */
    this.serverStatus = 'disconnected';
    this.#stay = new Stay(this, this.#conn, opts, {
      emit: (event, payload) => this.#emit(event, payload),
      log: (...a) => this.#log(...a),
    });
  }

  // ---- properties ----

  /** The current channel id, or null. */
  get channel() {
    return this.#stay.channel;
  }

  /** The local tracks published in the current channel (TracksByName). */
  get tracks() {
    return this.#stay.tracks;
  }

  /**
   * How the media connection reaches the server once connected: 'udp',
   * 'tcp' (ICE over TCP) or 'relay' (through a TURN server); null
   * otherwise. The 'path' event tells each connection's.
   */
  get path() {
    return this.#stay.path;
  }

  /** The media connection's status. */
  get status() {
    return this.#stay.status;
  }

  /** The current RTCPeerConnection, or null (for tests and diagnostics). */
  get pc() {
    return this.#stay.pc;
  }

  /** The channel's configuration as last known, or null. */
  get config() {
    return this.#stay.config;
  }

  /** The channel's active users as last known (ActiveUser[]). */
  get users() {
    return this.#stay.users;
  }

  /** The channel's speakers, dominant first, as of the last cnl:speakers ({userId, level}[]). */
  get speakers() {
    return this.#stay.speakers;
  }

  /** Whether the WebSocket is up. */
  get connected() {
    return this.#conn.connected;
  }

  /** remoteTracks lists the forwarded tracks received: [{userId, trackName, track}]. */
  remoteTracks() {
    return this.#stay.remoteTracks();
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

  /** #authed takes an auth result: the first of a connection, or a renewal's. */
  #authed(res, renewal) {
    if (!renewal) {
      this.userId = res.userId;
      this.canCreate = !!res.canCreate;
      this.iceServers = res.iceServers || [];
    } else if (res.iceServers) {
      // Fresh TURN credentials come with the fresh token.
      this.iceServers = res.iceServers;
    } else {
      return;
    }
    this.#stay.setIceServers(this.iceServers);
  }

  /** #request sends one request on the current connection. */
  #request(type, data, timeout = REQUEST_TIMEOUT) {
    return this.#conn.request(type, data, timeout);
  }

  /** #gone ends everything after the connection is lost for good. */
  #gone(reason) {
    this.#stay.end();
    this.#emit('disconnected', { reason });
  }

  /** close closes the connection and the media connection for good. */
  close() {
    if (this.#conn.closed) return;
    this.#conn.close();
    this.#stay.end();
  }

  // ---- channel stay ----

  /** create creates channel channelId, joins it and publishes tracks. */
  create(channelId, tracks, config) {
    const data = { channelId };
    if (config) data.config = config;
    return this.#stay.enter('create', data, tracks, REQUEST_TIMEOUT);
  }

  /** join joins channel channelId (it may wait long for an admin's approval). */
  join(channelId, tracks) {
    return this.#stay.enter('join', { channelId }, tracks, 0);
  }

  /** leave leaves the current channel. @returns {Promise<Status>} */
  leave() {
    return this.#stay.leave('leave');
  }

  /** delete deletes the current channel (owner only). @returns {Promise<Status>} */
  delete(reason) {
    return this.#stay.leave('delete', reason ? { reason } : undefined);
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
  getUsers() {
    return this.#stay.getUsers();
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
  configure(config) {
    return this.#stay.configure(config);
  }

  /** addTracks publishes local tracks in the current channel. */
  addTracks(tracks) {
    return this.#stay.addTracks(tracks);
  }

  /** removeTracks stops publishing tracks by name. */
  removeTracks(name) {
    return this.#stay.removeTracks(name);
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
    return followElement(this, userId, trackName, element, (...a) => this.#log(...a));
  }

  // ---- pushes ----

  /** #push handles a server push: the stay's to the Stay, the others here. */
  #push(type, data) {
    switch (type) {
      case 'event':
        this.#stay.event(data);
        break;
      case 'offer':
        this.#stay.offer(data.sdp);
        break;
      case 'status':
        this.serverStatus = data.status;
        break;
      case 'newcall':
        this.#emit('newcall', data);
        break;
      case 'layer':
        this.#stay.layer(data);
        break;
      case 'layers':
        this.#stay.layers(data);
        break;
      case 'bye':
        this.#conn.bye(data.reason);
        if (data.reason === 'replaced') this.#stay.end();
        this.#emit('bye', data);
        break;
      default:
        this.#log('unknown push', type);
    }
  }
}

export default Calls;
