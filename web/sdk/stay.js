// stay.js: the channel stay of a Calls — at most one at a time: its
// channel, the local tracks it sends, its peer connection (media.js) and
// ICE fallback (icepath.js), what is known of the channel (state.js), and
// what keeps it going: the create or join that starts it, its resumption
// after a reconnection, the rejoin of a stay the server ended.

import { CallError, REQUEST_TIMEOUT } from './signal.js';
import { Media } from './media.js';
import { IcePath, ICE_FALLBACK_MS, stageConfig } from './icepath.js';
import { ChannelState, copyUser } from './state.js';

/** names turns `name | names` into an array of names. */
export function names(x) {
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
 * Stay runs the channel stays of one Calls over its Connection. calls is
 * read for its public userId and iceServers; hooks: emit(event, payload),
 * the app's events, and log(...). Only Calls holds it (in a #private
 * field); its methods are what Calls's public API does to the stay.
 */
export class Stay {
  #calls;
  #conn;
  #opts;
  #hooks;
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

  constructor(calls, conn, opts, hooks) {
    this.#calls = calls;
    this.#conn = conn;
    this.#opts = opts;
    this.#hooks = hooks;
  }

  /** The current channel id, or null. */
  get channel() {
    return this.#channel;
  }

  /** The local tracks published (TracksByName), copied. */
  get tracks() {
    return { ...this.#tracks };
  }

  /** How the media connection reaches the server once connected, or null. */
  get path() {
    return this.#icePath ? this.#icePath.path : null;
  }

  /** The media connection's status. */
  get status() {
    return this.#media ? this.#media.status : 'disconnected';
  }

  /** The current RTCPeerConnection, or null. */
  get pc() {
    return this.#media ? this.#media.pc : null;
  }

  /** The channel's configuration as last known, copied, or null. */
  get config() {
    const c = this.#state.config;
    return c ? { ...c } : null;
  }

  /** The channel's active users as last known, copied. */
  get users() {
    return this.#state.users();
  }

  /** The channel's speakers as of the last cnl:speakers, copied. */
  get speakers() {
    return this.#state.speakers;
  }

  /** remoteTracks lists the forwarded tracks received: [{userId, trackName, track}]. */
  remoteTracks() {
    if (!this.#media) return [];
    return this.#media.received().map(({ userId, trackName, track }) => ({ userId, trackName, track }));
  }

  /** setIceServers hands renewed ICE servers to the ICE fallback. */
  setIceServers(iceServers) {
    if (this.#icePath) this.#icePath.setServers(iceServers);
  }

  /** #request sends one request on the connection. */
  #request(type, data, timeout = REQUEST_TIMEOUT) {
    return this.#conn.request(type, data, timeout);
  }

  /**
   * leave sends leave or delete and ends the stay; a leave cut off by the
   * connection's loss is not an error (the lost connection left already).
   * @returns {Promise<Status>}
   */
  async leave(type, data) {
    this.#leaving = true;
    try {
      await this.#request(type, data);
    } catch (e) {
      // A lost connection has left the channel already: do not rejoin it.
      if (!(type === 'leave' && this.#conn.reconnecting && e.code === 'Closed')) throw e;
    } finally {
      this.#leaving = false;
    }
    this.end();
    return { status: true };
  }

  /** getUsers asks for the active users; in the stay's channel, the answer is a snapshot of the state. */
  async getUsers() {
    const channel = this.#channel;
    const res = await this.#request('getUsers');
    if (!channel || this.#channel !== channel) return (res.users || []).map(copyUser);
    // A snapshot older than the events kept leaves the newer state as is.
    if (!this.#snapshot(res.seq, res.users)) this.#hooks.log(`getUsers: snapshot ${res.seq} is too old`);
    return this.users;
  }

  /** configure sends configure; the fields given are merged into the known configuration. @returns {Promise<Status>} */
  async configure(config) {
    const channel = this.#channel;
    await this.#request('configure', { config });
    if (channel && this.#channel === channel) this.#state.configure(config);
    return { status: true };
  }

  /** addTracks announces local tracks, then sends them. */
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

  /** removeTracks stops publishing tracks by name (the server first). */
  async removeTracks(name) {
    const list = names(name);
    await this.#request('removeTracks', { names: list });
    for (const n of list) {
      if (this.#media) this.#media.removeTrack(n);
      delete this.#tracks[n];
    }
  }

  /**
   * layer handles a layer push: emitted as track:layer; one that comes
   * before the create or join result set up the stay (the first, at
   * subscription start) is emitted after it.
   */
  layer(data) {
    if (data.channelId === this.#channel) this.#hooks.emit('track:layer', data);
    else if (this.#entering) this.#pendingLayers.push(data);
  }

  /** layers handles a layers push: which layers of a track sent have receivers; the others are not encoded. */
  layers(data) {
    if (data.channelId === this.#channel && this.#media) this.#media.setActiveLayers(data.trackName, data.active || []).catch(() => {});
  }

  /**
   * resume joins the stay's channel again after a reconnection, asking the
   * server to resume the stay the lost connection left (same tracks, same
   * peer connection: nobody sees a leave). Not resumed (it expired, the
   * server restarted…), the join is a fresh stay: the old peer connection
   * is replaced. It emits reconnected {resumed}.
   */
  async resume() {
    const channelId = this.#channel;
    const old = this.#media;
    if (!channelId) {
      this.#hooks.emit('reconnected', { userId: this.#calls.userId, resumed: false });
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
      this.#hooks.log(`resuming the stay in ${channelId} failed:`, e.message);
      // The connection dropped again: its reconnection resumes the stay.
      if (e.code === 'Closed' && this.#conn.reconnecting) return;
      for (const r of this.remoteTracks()) this.#hooks.emit('track:del', { event: 'track:del', channelId, ...r });
      this.end();
      this.#hooks.emit('reconnected', { userId: this.#calls.userId, resumed: false });
      this.#hooks.emit('user:left', { event: 'user:left', channelId, userId: this.#calls.userId, error: e.code });
      return;
    } finally {
      this.#entering--;
      this.#resuming = false;
    }
    // leave(), close() or the server ended the stay meanwhile.
    if (this.#conn.closed || this.#channel !== channelId || this.#media !== old) return;
    if (!res.resumed || !old) {
      for (const r of this.remoteTracks()) this.#hooks.emit('track:del', { event: 'track:del', channelId, ...r });
      this.#start(res, channelId, tracks, false);
      this.#hooks.emit('reconnected', { userId: this.#calls.userId, resumed: false });
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
      if (id !== this.#calls.userId && !this.#state.has(id)) this.#hooks.emit('user:left', { event: 'user:left', channelId, userId: id });
    }
    for (const id of this.#state.ids()) {
      if (id !== this.#calls.userId && !before.has(id)) this.#hooks.emit('user:join', { event: 'user:join', channelId, userId: id });
    }
    for (const r of remote) {
      if (this.#state.hasTrack(r.userId, r.trackName)) continue;
      old.forget(r.userId, r.trackName);
      this.#hooks.emit('track:del', { event: 'track:del', channelId, userId: r.userId, trackName: r.trackName, track: r.track });
    }
    const offer = this.#pendingOffer;
    this.#pendingOffer = null;
    if (offer) old.answer(offer).catch(() => {});
    old.resumed();
    this.#hooks.emit('reconnected', { userId: this.#calls.userId, resumed: true });
  }

  /**
   * #rejoin joins again, with the same tracks and a fresh PC, the channel of
   * a stay that the server ended (see #lostStay).
   */
  async #rejoin(lost = false) {
    const channelId = this.#channel;
    if (!channelId) return;
    const tracks = { ...this.#tracks };
    for (const r of this.remoteTracks()) this.#hooks.emit('track:del', { event: 'track:del', channelId, ...r });
    this.end();
    try {
      await this.enter('join', { channelId }, tracks, 0, lost);
    } catch (e) {
      this.#hooks.log(`rejoin of ${channelId} failed:`, e.message);
      if (e.code === 'Closed' && this.#conn.reconnecting && !this.#channel) {
        // The connection dropped meanwhile: its reconnection rejoins.
        this.#channel = channelId;
        this.#tracks = tracks;
        return;
      }
      this.#hooks.emit('user:left', { event: 'user:left', channelId, userId: this.#calls.userId, error: e.code });
    }
  }

  /**
   * #lostStay handles a stay the server ended without a leave() (the media
   * connection stayed down past its grace period, the client was too slow
   * for events, or a request got NotMember): it rejoins the channel once.
   */
  #lostStay(why) {
    if (this.#conn.closed || this.#conn.reconnecting || this.#leaving || !this.#channel) return;
    this.#hooks.log(`stay in ${this.#channel} lost (${why}): rejoining`);
    if (!this.#relost) {
      this.#rejoin(true);
      return;
    }
    const channelId = this.#channel;
    for (const r of this.remoteTracks()) this.#hooks.emit('track:del', { event: 'track:del', channelId, ...r });
    this.end();
    this.#hooks.emit('user:left', { event: 'user:left', channelId, userId: this.#calls.userId, error: why });
  }

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

  /** end ends the current channel stay: closes the PC and drops state (the recent events kept with keepRecent). */
  end(keepRecent = false) {
    const had = !!this.#media;
    if (this.#media) this.#media.close();
    this.#resetStay(keepRecent);
    if (had) this.#statusChanged();
  }

  /** #statusChanged emits status when the media connection's changed; connected ends a rejoin's relost mark. */
  #statusChanged() {
    const s = this.status;
    if (s === this.#status) return;
    this.#status = s;
    if (s === 'connected') this.#relost = false;
    if (this.#icePath) this.#icePath.status(s);
    this.#hooks.emit('status', s);
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
      else if (res.end) this.end();
    }
    return true;
  }

  /** #newMedia creates the stay's peer connection. */
  #newMedia() {
    const start = this.#opts.iceStart || 'direct';
    const media = new Media(
      stageConfig(start, this.#calls.iceServers).iceServers,
      {
        request: (type, data) =>
          this.#request(type, data).catch((e) => {
            // NotMember: the server ended the stay without telling us yet.
            if (e.code === 'NotMember' && this.#media === media) this.#lostStay(`${type}: NotMember`);
            throw e;
          }),
        // Not while the join resuming the stay is in flight: the server
        // may not know the stay is this connection's yet.
        canSignal: () => this.#conn.connected && this.#media === media && !this.#resuming,
        onTrack: (entry) => this.#remoteTrack(entry),
        onStatus: () => this.#statusChanged(),
        log: (...a) => this.#hooks.log(...a),
      },
      this.#opts.RTCPeerConnection,
    );
    this.#media = media;
    if (this.#icePath) this.#icePath.close();
    this.#icePath = new IcePath(media, this.#calls.iceServers, {
      after: this.#opts.iceFallbackMs ?? ICE_FALLBACK_MS,
      start,
      onPath: (p) => {
        if (this.#media === media) this.#hooks.emit('path', p);
      },
      log: (...a) => this.#hooks.log(...a),
    });
    this.#statusChanged();
    return media;
  }

  /**
   * enter runs create or join and sets up the stay's media; relost marks
   * the rejoin of a lost stay (not rejoined again until its media connects).
   * @returns {Promise<Status>}
   */
  async enter(type, data, tracks, timeout, relost = false) {
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
    if (this.#media) this.end(true);
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
    if (offer) this.offer(offer);
    this.#snapshot(res.seq, res.users, true);
    const layers = this.#pendingLayers;
    this.#pendingLayers = [];
    for (const l of layers) if (l.channelId === this.#channel) this.#hooks.emit('track:layer', l);
  }

  /**
   * offer answers the server's offer. One that comes before the create or
   * join result set up the stay waits for it (pushes are not ordered with
   * answers).
   */
  offer(sdp) {
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
    if (userId === this.#calls.userId) return;
    const tracks = this.#state.tracksOf(userId);
    if (!tracks.some((t) => t.name === trackName)) tracks.push({ name: trackName, kind: track.kind, muted: false });
    this.#hooks.emit('track:add', { channelId: this.#channel, userId, trackName, track, tracks });
  }

  /**
   * event handles one channel event: keeps it for snapshots to come,
   * applies it to the state unless the state already reflects it (seq),
   * and re-emits it.
   */
  event(ev) {
    this.#state.keep(ev);
    // While a stay is being resumed, its events wait for the join's
    // snapshot: the ones it does not reflect are applied then, and what
    // they changed is told with those of the gap (resume).
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
    if (res.end) this.end();
    if (ev.event === 'track:add') return; // the app hears track:add when the media arrives
    this.#hooks.emit(ev.event, ev.event === 'track:del' ? { ...ev, track: res.track } : ev);
  }

  /**
   * #applyEvent applies one event of the current stay to the state and
   * drops the media of what it removed. It returns {end: true} for an
   * event that ends the stay, {end: 'lost'} for the user's own user:left
   * it did not cause, and track:del's MediaStreamTrack.
   */
  #applyEvent(ev) {
    const res = this.#state.apply(ev, this.#calls.userId, this.#leaving);
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
