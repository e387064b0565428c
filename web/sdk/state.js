// state.js: what the SDK knows of the channel of a stay — its active users
// and their tracks, its configuration and speakers — kept from snapshots
// (the create/join result, getUsers) and the channel events after them.

/** A CallConfig's defaults, as the server fills them in (maxUsers 0: no limit). */
export const CONFIG_DEFAULTS = Object.freeze({ kind: 'audioVideo', joinRequest: false, maxUsers: 0, defaultPermission: 6, lastN: 0 });

/** How many recent channel events are kept to re-apply after a snapshot. */
export const RECENT_EVENTS = 256;

/** copyState copies a TrackState (the app may keep it). */
export const copyState = (t) => ({ ...t });

/** copyUser copies an ActiveUser with its tracks. */
export const copyUser = (u) => ({ ...u, tracks: (u.tracks || []).map(copyState) });

/**
 * ChannelState is the state of one channel stay. Events carry a seq: the
 * state knows the seq it reflects (lastSeq), keeps the last RECENT_EVENTS
 * events, and re-applies those newer than a snapshot on top of it. It
 * knows nothing of media: apply tells what an event removed, and its
 * caller drops the media of it.
 */
export class ChannelState {
  /** id → ActiveUser {id, mode, tracks: TrackState[]}. */
  #users = new Map();
  #config = null;
  #speakers = [];
  /** The seq of the last event (or snapshot) the state reflects. */
  #lastSeq = 0;
  /** Recent channel events (by seq), re-applied after a snapshot. */
  #recent = [];
  /** The highest seq dropped from #recent: an older snapshot cannot be replayed. */
  #trimmed = 0;

  /**
   * reset forgets the users, configuration and speakers; the recent
   * events too unless keepRecent (they may belong to the stay starting).
   */
  reset(keepRecent = false) {
    this.#users = new Map();
    this.#config = null;
    this.#speakers = [];
    this.#lastSeq = 0;
    if (!keepRecent) this.forgetRecent();
  }

  /** forgetRecent drops the recent events: those from now on belong to a new stay. */
  forgetRecent() {
    this.#recent = [];
    this.#trimmed = 0;
  }

  /** The channel's configuration as last known, or null (not a copy). */
  get config() {
    return this.#config;
  }

  set config(c) {
    this.#config = c || null;
  }

  /** configure merges the fields given (undefined ones left out) into the configuration. */
  configure(given) {
    const set = Object.fromEntries(Object.entries(given || {}).filter(([, v]) => v !== undefined));
    this.#config = { ...CONFIG_DEFAULTS, ...this.#config, ...set };
  }

  /** The speakers as of the last cnl:speakers, copied. */
  get speakers() {
    return this.#speakers.map((s) => ({ ...s }));
  }

  /** users lists the active users, copied. */
  users() {
    return [...this.#users.values()].map(copyUser);
  }

  /** ids lists the active users' ids. */
  ids() {
    return new Set(this.#users.keys());
  }

  /** has tells whether userId is an active user. */
  has(userId) {
    return this.#users.has(userId);
  }

  /** hasTrack tells whether the active user userId publishes trackName. */
  hasTrack(userId, trackName) {
    const u = this.#users.get(userId);
    return !!u && u.tracks.some((t) => t.name === trackName);
  }

  /** tracksOf lists the tracks of userId, copied ([] for an unknown user). */
  tracksOf(userId) {
    const u = this.#users.get(userId);
    return u ? u.tracks.map(copyState) : [];
  }

  /** keep records an event with a seq for the snapshots to come. */
  keep(ev) {
    if (typeof ev.seq !== 'number') return;
    this.#recent.push(ev);
    if (this.#recent.length > RECENT_EVENTS) this.#trimmed = Math.max(this.#trimmed, this.#recent.shift().seq);
  }

  /** fresh tells whether an event is newer than the state (no seq: always), and marks it applied. */
  fresh(ev) {
    const seq = typeof ev.seq === 'number' ? ev.seq : null;
    if (seq !== null && seq <= this.#lastSeq) return false;
    if (seq !== null) this.#lastSeq = seq;
    return true;
  }

  /**
   * load replaces the active users with a snapshot that reflects the
   * events of channelId up to seq, and returns the newer events kept, for
   * the caller to apply (each with replayed). A snapshot older than the
   * events kept is ignored unless forced: it returns null.
   */
  load(seq, users, channelId, force = false) {
    seq = seq || 0;
    if (seq < this.#trimmed && !force) return null;
    this.#users = new Map();
    for (const u of users || []) this.#users.set(u.id, { id: u.id, mode: u.mode, tracks: (u.tracks || []).map(copyState) });
    this.#lastSeq = seq;
    return this.#recent.filter((e) => e.channelId === channelId && e.seq > seq);
  }

  /** replayed marks an event given by load as applied. */
  replayed(ev) {
    this.#lastSeq = ev.seq;
  }

  /**
   * apply applies one event of the stay. me is the user's id; leaving
   * whether a leave() or delete() is in progress. It returns {end: true}
   * for an event that ends the stay, {end: 'lost'} for the user's own
   * user:left it did not cause, {dropTrack: {userId, trackName}} for a
   * track:del and {dropUsers: [id]} for users gone.
   */
  apply(ev, me, leaving) {
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
        return { dropTrack: { userId: ev.userId, trackName: ev.trackName } };
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
        if (ev.userId === me) return { end: leaving ? true : 'lost' };
        this.#users.delete(ev.userId);
        return { dropUsers: [ev.userId] };
      case 'user:add':
      case 'user:mod':
        for (const x of ev.users || []) {
          const u = this.#users.get(x.id);
          if (u) u.mode = x.mode;
        }
        break;
      case 'user:del': {
        const gone = [];
        for (const id of ev.users || []) {
          if (id === me) return { end: true, dropUsers: gone };
          this.#users.delete(id);
          gone.push(id);
        }
        return { dropUsers: gone };
      }
      default:
        break;
    }
    return {};
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
}
