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
// fallback icepath.js); state.js keeps what is known of the channel.
// Calls holds the public API and runs the stay: create and join, the
// resumption after a reconnection, the rejoin of a lost stay.

import { CallError, wsURL, REQUEST_TIMEOUT } from './signal.js';
import { Connection } from './connection.js';
import { Media, parseMsids, harmonizeExtmap, statusOf } from './media.js';
import { IcePath, ICE_FALLBACK_MS, stageConfig } from './icepath.js';
import { ChannelState, copyUser } from './state.js';
import { followElement } from './follow.js';

export { CallError, parseMsids, harmonizeExtmap, statusOf };

/** Permission mode bits of User.mode. */
export const Mode = Object.freeze({ Admin: 1, Send: 2, Recv: 4 });

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
  /** Whether the join that resumes the stay after a reconnection is in flight. */
  #resuming = false;
  /** Whether leave() or delete() is in progress (the stay's end is ours). */
  #leaving = false;
  /** How many create/join requests are in flight. */
  #entering = 0;
  /** A server offer that came before the create/join result set up the stay. */
  #pendingOffer = null;
  /** Layer pushes that came before the create/join result set up the stay. */
  #pendingLayers = [];
  /** The media connection status last emitted. */
  #status = 'disconnected';
  /** What is known of the channel of the stay. */
  #state = new ChannelState();
  // The stay (#resetStay): its channel, local tracks, peer connection and
  // ICE fallback.
  #channel = null;
  #tracks = {};
  #media = null;
  #icePath = null;
  /** Whether this stay is a rejoin after a lost stay whose media has not connected yet. */
  #relost = false;

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
      onReconnected: () => this.#resume(),
      onGone: (reason) => this.#gone(reason),
      log: (...a) => this.#log(...a),
    });
    this.userId = null;
    this.canCreate = false;
    this.iceServers = [];
    /** The server's view of the media connection (its `status` pushes). @type {import('./calls.d.ts').ConnectionStatus} */
    this.serverStatus = 'disconnected';
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
    const c = this.#state.config;
    return c ? { ...c } : null;
  }

  /** The channel's active users as last known (ActiveUser[]). */
  get users() {
    return this.#state.users();
  }

  /** The channel's speakers, dominant first, as of the last cnl:speakers ({userId, level}[]). */
  get speakers() {
    return this.#state.speakers;
  }

  /** Whether the WebSocket is up. */
  get connected() {
    return this.#conn.connected;
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
    if (this.#icePath) this.#icePath.setServers(this.iceServers);
  }

  /** #request sends one request on the current connection. */
  #request(type, data, timeout = REQUEST_TIMEOUT) {
    return this.#conn.request(type, data, timeout);
  }

  /** #gone ends everything after the connection is lost for good. */
  #gone(reason) {
    this.#endStay();
    this.#emit('disconnected', { reason });
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
    this.#state.forgetRecent();
    this.#pendingOffer = null;
    this.#resuming = true;
    let res;
    this.#entering++;
    try {
      res = await this.#request('join', data, 0);
    } catch (e) {
      if (this.#conn.closed || this.#channel !== channelId || this.#media !== old) return;
      this.#log(`resuming the stay in ${channelId} failed:`, e.message);
      // The connection dropped again: its reconnection resumes the stay.
      if (e.code === 'Closed' && this.#conn.reconnecting) return;
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
    if (this.#conn.closed || this.#channel !== channelId || this.#media !== old) return;
    if (!res.resumed || !old) {
      for (const r of this.remoteTracks()) this.#emit('track:del', { event: 'track:del', channelId, ...r });
      this.#start(res, channelId, tracks, false);
      this.#emit('reconnected', { userId: this.userId, resumed: false });
      return;
    }
    if (res.config) this.#state.config = res.config;
    const before = this.#state.ids();
    const remote = old.received();
    this.#snapshot(res.seq, res.users, true);
    if (this.#media !== old) return; // a replayed event ended the stay
    // The events of the gap are not replayed: what it changed is told as
    // users who joined or left, and forwarded tracks gone.
    for (const id of before) {
      if (id !== this.userId && !this.#state.has(id)) this.#emit('user:left', { event: 'user:left', channelId, userId: id });
    }
    for (const id of this.#state.ids()) {
      if (id !== this.userId && !before.has(id)) this.#emit('user:join', { event: 'user:join', channelId, userId: id });
    }
    for (const r of remote) {
      if (this.#state.hasTrack(r.userId, r.trackName)) continue;
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
      if (e.code === 'Closed' && this.#conn.reconnecting && !this.#channel) {
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
    if (this.#conn.closed || this.#conn.reconnecting || this.#leaving || !this.#channel) return;
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
    if (this.#conn.closed) return;
    this.#conn.close();
    this.#endStay();
  }

  // ---- channel stay ----

  /**
   * #resetStay forgets the stay: its channel, tracks, peer connection and
   * state (the recent events too, unless keepRecent).
   */
  #resetStay(keepRecent = false) {
    this.#channel = null;
    this.#relost = false;
    this.#tracks = {};
    this.#state.reset(keepRecent);
    this.#media = null;
    if (this.#icePath) this.#icePath.close();
    this.#icePath = null;
  }

  /** #endStay ends the current channel stay: closes the PC and drops state. */
  #endStay(keepRecent = false) {
    const had = !!this.#media;
    if (this.#media) this.#media.close();
    this.#resetStay(keepRecent);
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
    const newer = this.#state.load(seq, users, this.#channel, force);
    if (!newer) return false;
    for (const ev of newer) {
      if (!this.#channel) break;
      this.#state.replayed(ev);
      const res = this.#applyEvent(ev);
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
      this.#state.forgetRecent();
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
    if (this.#media) this.#endStay(true);
    this.#channel = res.channelId || channelId;
    this.#state.config = res.config;
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
    const layers = this.#pendingLayers;
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
      if (!(this.#conn.reconnecting && e.code === 'Closed')) throw e;
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
    if (!channel || this.#channel !== channel) return (res.users || []).map(copyUser);
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
      this.#state.configure(config);
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
    return followElement(this, userId, trackName, element, (...a) => this.#log(...a));
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
        else if (this.#entering) this.#pendingLayers.push(data);
        break;
      case 'layers':
        // Which layers of a track this user sends have receivers: the
        // others are not encoded.
        if (data.channelId === this.#channel && this.#media) this.#media.setActiveLayers(data.trackName, data.active || []).catch(() => {});
        break;
      case 'bye':
        this.#conn.bye(data.reason);
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
    const tracks = this.#state.tracksOf(userId);
    if (!tracks.some((t) => t.name === trackName)) tracks.push({ name: trackName, kind: track.kind, muted: false });
    this.#emit('track:add', { channelId: this.#channel, userId, trackName, track, tracks });
  }

  /**
   * #event handles one channel event: keeps it for snapshots to come,
   * applies it to the state unless the state already reflects it (seq),
   * and re-emits it.
   */
  #event(ev) {
    this.#state.keep(ev);
    // While a stay is being resumed, its events wait for the join's
    // snapshot: the ones it does not reflect are applied then, and what
    // they changed is told with those of the gap (#resume).
    if (this.#resuming && typeof ev.seq === 'number') return;
    let res = {};
    if (this.#channel !== null && !this.#resuming && ev.channelId === this.#channel && this.#state.fresh(ev)) {
      res = this.#applyEvent(ev);
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
   * #applyEvent applies one event of the current stay to the state and
   * drops the media of what it removed. It returns {end: true} for an
   * event that ends the stay, {end: 'lost'} for the user's own user:left
   * it did not cause, and track:del's MediaStreamTrack.
   */
  #applyEvent(ev) {
    const res = this.#state.apply(ev, this.userId, this.#leaving);
    const media = this.#media;
    if (res.dropTrack) {
      const entry = media ? media.forget(res.dropTrack.userId, res.dropTrack.trackName) : null;
      return { track: entry ? entry.track : undefined };
    }
    for (const id of res.dropUsers || []) {
      // The remote tracks of a user who left.
      if (media) for (const r of media.received()) if (r.userId === id) media.forget(id, r.trackName);
    }
    return { end: res.end };
  }
}

export default Calls;
