// Typings of the callcore browser SDK (calls.js). See docs/protocol.md and
// the call API (docs/api.md).

/** A media kind. */
export type Kind = 'audio' | 'video';

/** The media connection's status. */
export type ConnectionStatus = 'connecting' | 'checking' | 'connected' | 'disconnected';

/** Local tracks by the name they are published under. */
export type TracksByName = { [name: string]: MediaStreamTrack };

/** The answer of an operation that succeeded. */
export interface Status {
  'status': true;
}

/** Error names: the call API's, the protocol's, and the SDK's own Timeout. */
export type ErrorCode =
  | 'UnAuthorized'
  | 'Exists'
  | 'NotFound'
  | 'NotMember'
  | 'Full'
  | 'KindNotAllowed'
  | 'Invalid'
  | 'Closed'
  | 'RateLimited'
  | 'Draining'
  | 'Internal'
  | 'Glare'
  | 'Timeout';

/** One track in getStats: what the server counted of it. */
export interface TrackStats {
  /** The sender: this user for a track it sends. */
  userId: string;
  track: string;
  kind: 'audio' | 'video';
  packets: number;
  bytes: number;
  /** Bits a second since the previous getStats; null on the first. */
  bitrate: number | null;
  /** Not measured by the server today: null. */
  loss: number | null;
  /** Not measured by the server today: null. */
  jitter: number | null;
  /** Round-trip time in seconds; not measured by the server today: null. */
  rtt: number | null;
  /** Received layered tracks: the layer received now (0 q, 1 h, 2 f); null for any other track. */
  layer: number | null;
  /** Received tracks: sequence numbers this user NACKed. */
  nacks: number;
  /** Received tracks: packets sent again for those NACKs. */
  retransmits: number;
  /** Sent tracks: key frames sent; received tracks: key frames asked for. */
  keyFrames: number;
}

/** getStats' answer. */
export interface Stats {
  status: 'connecting' | 'checking' | 'connected' | 'disconnected';
  /** The tracks this user sends. */
  sent: TrackStats[];
  /** The tracks this user receives. */
  received: TrackStats[];
  /** The server's estimate of this user's downlink, bits a second; null before its congestion feedback. */
  downlink: number | null;
}

/** Every failure of the SDK. */
export declare class CallError extends Error {
  constructor(code: ErrorCode | string, message?: string);
  readonly name: 'CallError';
  /** The error's name, e.g. "NotMember". */
  readonly code: ErrorCode | string;
}

/** A channel's configuration; every field is optional. */
export interface CallConfig {
  /** Media kinds allowed (default audioVideo). */
  kind?: 'audio' | 'video' | 'audioVideo';
  /** Non-members must ask to join (default false). */
  joinRequest?: boolean;
  /** Most active users at once (default: no limit). */
  maxUsers?: number;
  /** Mode of users who join without one (default 6). */
  defaultPermission?: number;
  /**
   * Video is received only from this many of the most recent speakers
   * (screen shares always); the others are paused (default 0: no limit).
   */
  lastN?: number;
}

/** One entry of cnl:speakers. */
export interface Speaker {
  userId: string;
  /** The loudest audio level of the last 100 ms in -dBov: 0 the loudest, 127 silence. */
  level: number;
}

/** Permission mode bits of User.mode. */
export declare const Mode: { readonly Admin: 1; readonly Send: 2; readonly Recv: 4 };

/** A user and its permission mode (admin 1, send 2, recv 4). */
export interface User {
  id: string;
  mode: number;
}

/** One published track and its effective mute state. */
export interface TrackState {
  name: string;
  kind: Kind;
  muted: boolean;
  /** The admin who muted it, when an admin source mutes it. */
  mutedBy?: string;
  muteReason?: string;
}

/** A user in the call now, with its tracks. */
export interface ActiveUser {
  id: string;
  /**
   * Known from a snapshot (join, getUsers) or user:mod; a user first seen
   * in a user:join gets the channel's defaultPermission until then.
   */
  mode: number;
  tracks: TrackState[];
}

/** A forwarded track received from another user. */
export interface RemoteTrack {
  userId: string;
  trackName: string;
  track: MediaStreamTrack;
}

/** A receive preference for another user's video track. */
export interface Preference {
  /** The tallest picture wanted, in pixels; 0 or absent: no limit. */
  maxHeight?: number;
  /** Stops the track for this user (it resumes on a key frame). */
  paused?: boolean;
}

/** The track:layer event: the layer of a remote track this user receives. */
export interface TrackLayer {
  channelId: string;
  userId: string;
  trackName: string;
  /** q, h or f (quarter, half, full size); null when paused. */
  layer: 'q' | 'h' | 'f' | null;
  /** The layer's picture size; 0 until the server saw a key frame of it. */
  width: number;
  height: number;
  /** Why not a higher layer: the preference, the publisher (sends none higher), or null. */
  limitedBy: 'preference' | 'bandwidth' | 'publisher' | null;
}

/** Fields every channel event carries. */
export interface ChannelEvent {
  event: string;
  /**
   * The channel's sequence number of this event; absent on the events the
   * SDK makes itself (track:del, user:join and user:left around a
   * reconnection).
   */
  seq?: number;
  channelId: string;
}

/** Payloads of the events of Calls.on. */
export interface CallEventMap {
  /** A remote track's media arrived. */
  'track:add': {
    channelId: string;
    userId: string;
    trackName: string;
    track: MediaStreamTrack;
    /** All of that user's tracks with their mute state, as last known. */
    tracks: TrackState[];
  };
  'track:mute': ChannelEvent & {
    userId: string;
    trackName: string;
    value: boolean;
    mutedBy?: string;
    muteReason?: string;
  };
  /** track is the MediaStreamTrack when it was received. */
  'track:del': ChannelEvent & { userId: string; trackName: string; track?: MediaStreamTrack };
  'cnl:create': ChannelEvent & { senderId: string; config: CallConfig };
  'cnl:config': ChannelEvent & { senderId: string; config: CallConfig };
  'cnl:delete': ChannelEvent & { senderId: string; reason: string };
  /** The order of speakers changed: the dominant speaker first (empty: nobody speaks). */
  'cnl:speakers': ChannelEvent & { speakers: Speaker[] };
  /** A join request, for admins. */
  'cnl:req': ChannelEvent & { userId: string };
  'user:join': ChannelEvent & { userId: string };
  /**
   * error is set when the SDK failed to rejoin after a reconnection or a
   * stay the server ended on its own (the SDK's own user:left, not the server's).
   */
  'user:left': ChannelEvent & { userId: string; error?: ErrorCode | string };
  'user:add': ChannelEvent & { users: User[]; senderId: string };
  'user:del': ChannelEvent & { users: string[]; senderId: string };
  'user:mod': ChannelEvent & { users: User[]; senderId: string };
  /**
   * What this user receives of another user's layered video track changed
   * (to this user only; no seq).
   */
  'track:layer': TrackLayer;
  /** The media connection's status changed. */
  'status': ConnectionStatus;
  /** The media connection connected, over this path (see Calls.path). */
  'path': MediaPath;
  /** The user was added to a call it is not in. */
  'newcall': { channelId: string; senderId: string };
  /** The server is closing the connection or took the call over from it. */
  'bye': { reason: 'shutdown' | 'drain' | 'replaced' | string };
  /** The connection is gone for good (no more reconnection attempts). */
  'disconnected': { reason: string };
  /**
   * The connection came back after a drop and the channel, if any, was
   * joined again. resumed: the server resumed the stay (same peer
   * connection and remote tracks; nobody saw the user leave); false: a
   * fresh stay (new peer connection, the old remote tracks got track:del),
   * a failed join (the SDK's user:left with error follows) or no channel.
   */
  'reconnected': { userId: string; resumed: boolean };
}

/** How the media connection reaches the server. */
export interface MediaPath {
  /** 'udp', 'tcp' (ICE over TCP) or 'relay' (through a TURN server). */
  path: 'udp' | 'tcp' | 'relay';
  /** For 'relay': how the browser reaches the TURN server. */
  relayProtocol?: 'udp' | 'tcp' | 'tls';
  /** The ICE stage that connected (ConnectOptions.iceStart). */
  stage: IceStage;
  /** Time from the stay's peer connection to connected, in ms. */
  ms: number;
}

/**
 * The ICE fallback's stages: 'direct' (no TURN server), 'turn' (the TURN
 * servers too) and 'relay' (relayed candidates only).
 */
export type IceStage = 'direct' | 'turn' | 'relay';

/** Options of Calls.connect. */
export interface ConnectOptions {
  /** Reconnect after a drop (default true); never after a bye for shutdown or drain. */
  reconnect?: boolean;
  /** How long to try reconnecting before giving up, in ms (default 30000). */
  reconnectGiveUp?: number;
  /**
   * A fresh token for each reconnection (default: the token given to
   * connect), and to renew the session's token on the same connection a
   * minute before it expires (the server ends a session whose token
   * expired). After an UnAuthorized, it is asked once more before giving up.
   */
  getToken?: () => Promise<string>;
  /** A WebSocket constructor (default globalThis.WebSocket). */
  WebSocket?: typeof WebSocket;
  /** An RTCPeerConnection constructor (default globalThis.RTCPeerConnection). */
  RTCPeerConnection?: typeof RTCPeerConnection;
  /** Where diagnostics go (default console.warn). */
  log?: (...args: unknown[]) => void;
  /**
   * How long each ICE stage waits for a connection before ICE restarts
   * with the next, in ms (default 4000; 0: no fallback).
   */
  iceFallbackMs?: number;
  /** The first ICE stage (default 'direct'). */
  iceStart?: IceStage;
}

/** One authenticated connection to a call server and at most one channel stay. */
export declare class Calls {
  /** Connects to serverURL (http(s) or ws(s)) at /ws and authenticates. */
  static connect(serverURL: string, token: string, opts?: ConnectOptions): Promise<Calls>;

  /** The authenticated user's id. */
  readonly userId: string;
  /** Whether the user may create calls. */
  readonly canCreate: boolean;
  /** ICE servers given by the server. */
  readonly iceServers: RTCIceServer[];
  /** The current channel id, or null. */
  readonly channel: string | null;
  /** The local tracks published in the current channel. */
  readonly tracks: TracksByName;
  /** The media connection's status. */
  readonly status: ConnectionStatus;
  /** How the connected media connection reaches the server; null when not connected. */
  readonly path: 'udp' | 'tcp' | 'relay' | null;
  /** The server's view of the media connection (its status pushes). */
  readonly serverStatus: ConnectionStatus;
  /** The current RTCPeerConnection, or null. */
  readonly pc: RTCPeerConnection | null;
  /** The channel's configuration as last known, or null. */
  readonly config: CallConfig | null;
  /** The channel's active users as last known. */
  readonly users: ActiveUser[];
  /** The speakers as of the last cnl:speakers, dominant first. */
  readonly speakers: Speaker[];
  /** Whether the WebSocket is up. */
  readonly connected: boolean;

  /** The forwarded tracks received in the current stay. */
  remoteTracks(): RemoteTrack[];

  /** Calls handler for each event of that name; returns a function that removes it. */
  on<K extends keyof CallEventMap>(event: K, handler: (ev: CallEventMap[K]) => any): () => void;
  off<K extends keyof CallEventMap>(event: K, handler: (ev: CallEventMap[K]) => any): void;

  /** Creates a call channel and joins it; fails with Exists or UnAuthorized. */
  create(channelId: string, tracks?: TracksByName, config?: CallConfig): Promise<Status>;
  /** Joins an existing call; may wait long for an admin's approval. */
  join(channelId: string, tracks?: TracksByName): Promise<Status>;
  /** Leaves the current call. */
  leave(): Promise<Status>;
  /** Deletes the call (owner only). */
  delete(reason?: string): Promise<Status>;
  /** Adds users to the call (admins). */
  addUsers(users: string[]): Promise<Status>;
  /** Removes users from the call (admins). */
  delUsers(users: string[]): Promise<Status>;
  /** Sets users' permission modes (admins). */
  modUsers(users: User[]): Promise<Status>;
  /** The active users with their tracks and modes. */
  getUsers(): Promise<ActiveUser[]>;
  /** The server's view of this user's media connection and tracks. */
  getStats(): Promise<Stats>;
  /** Changes the fields of the channel's configuration given; the others keep their values (admins). */
  configure(config: CallConfig): Promise<Status>;
  /** Publishes local tracks. */
  addTracks(tracks: TracksByName): Promise<void>;
  /** Stops publishing tracks. */
  removeTracks(name: string | string[]): Promise<void>;
  /** Self-mutes (true) or unmutes (false) tracks: subscribers get empty frames. */
  muteTracks(trackName: string | string[], newState: boolean): Promise<void>;
  /** Mutes (true) or unmutes every track of one kind of another user (admins). */
  muteUser(userId: string, kind: Kind, newState: boolean, reason?: string): Promise<void>;
  /** Sets what this user wants of another user's video track (replaces the whole preference); NotFound when not received. */
  setPreference(userId: string, trackName: string, pref?: Preference): Promise<Status>;
  /**
   * Derives the preference of a remote video track from the element showing
   * it (rendered height times devicePixelRatio; paused while not visible)
   * and keeps it in line; returns a function that stops following.
   */
  followElement(userId: string, trackName: string, element: Element): () => void;
  /** Closes the connection and the media connection for good. */
  close(): void;
}

/** Maps each m-section's mid to the forwarded track it carries. */
export declare function parseMsids(sdp: string): Map<string, { userId: string; trackName: string }>;
/**
 * Renumbers the header extensions of a local offer's new m-sections that
 * collide with the ids the remote description already uses; the offer as
 * is when nothing collides.
 */
export declare function harmonizeExtmap(offer: string, remote: string): string;
/** The connection status of a peer connection (disconnected for null). */
export declare function statusOf(pc: RTCPeerConnection | null): ConnectionStatus;

export default Calls;
