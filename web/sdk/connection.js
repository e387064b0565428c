// connection.js: the authenticated session with the call server — the
// WebSocket (signal.js) and its auth, the token renewed before it expires,
// and the reconnection with backoff when the socket drops.

import { CallError, Signal, REQUEST_TIMEOUT } from './signal.js';

/** Reconnection backoff of the WebSocket, in ms. */
export const BACKOFF_FIRST = 250;
export const BACKOFF_MAX = 5000;
export const RECONNECT_GIVE_UP = 30000;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * Connection is one session: a WebSocket authenticated with a token, and,
 * when it drops, the next ones. opts are Calls.connect's (reconnect,
 * reconnectGiveUp, getToken, WebSocket). hooks: onPush(type, data);
 * onAuth(res, renewal), each auth result (renewal: a token renewed on the
 * same socket); onReconnected(), once a dropped session is authenticated
 * again (awaited); onGone(reason), once the session is lost for good;
 * log(...).
 */
export class Connection {
  #url;
  #token;
  #opts;
  #hooks;
  #signal = null;
  #closed = false;
  #reconnecting = false;
  /** The timer that renews the token before it expires (#scheduleRenewal). */
  #renewTimer = null;
  /** The reason of the server's last bye push, until a reconnection. */
  #bye = null;

  constructor(url, token, opts, hooks) {
    this.#url = url;
    this.#token = token;
    this.#opts = opts;
    this.#hooks = hooks;
  }

  /** Whether close() was called or the session is lost for good. */
  get closed() {
    return this.#closed;
  }

  /** Whether a reconnection is under way. */
  get reconnecting() {
    return this.#reconnecting;
  }

  /** Whether the WebSocket is up. */
  get connected() {
    return !!this.#signal && this.#signal.isOpen;
  }

  /** bye notes the reason of the server's bye push (shutdown and drain are not reconnected). */
  bye(reason) {
    this.#bye = reason;
  }

  /** open connects and authenticates with token; it rejects with the server's code. */
  async open(token = this.#token) {
    const signal = new Signal(this.#url, {
      WebSocket: this.#opts.WebSocket,
      onPush: (type, data) => this.#hooks.onPush(type, data),
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
    this.#hooks.onAuth(res, false);
    this.#scheduleRenewal(res.expiresAt);
  }

  /** request sends one request on the current socket. */
  request(type, data, timeout = REQUEST_TIMEOUT) {
    if (this.#closed) return Promise.reject(new CallError('Closed', 'closed'));
    if (!this.#signal) return Promise.reject(new CallError('Closed', 'not connected'));
    return this.#signal.request(type, data, timeout);
  }

  /** close ends the session for good; onGone is not called. */
  close() {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#renewTimer);
    if (this.#signal) this.#signal.close();
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
      this.#hooks.onAuth(res, true);
      this.#scheduleRenewal(res.expiresAt);
    } catch (e) {
      this.#hooks.log('token renewal failed:', e.message);
      if (!this.#closed && signal === this.#signal) this.#renewTimer = setTimeout(() => this.#renew(), 5000);
    }
  }

  /** #freshToken is opts.getToken's token, or the last one that worked. */
  async #freshToken() {
    const get = this.#opts.getToken;
    if (!get) return this.#token;
    const token = await get();
    if (typeof token !== 'string' || token === '') throw new CallError('UnAuthorized', 'getToken gave no token');
    return token;
  }

  /** #dropped handles a WebSocket that closed without close(). */
  #dropped(signal, ev) {
    if (signal !== this.#signal || this.#closed) return;
    this.#hooks.log(`connection lost (${ev && ev.code})`);
    if (this.#bye === 'shutdown' || this.#bye === 'drain' || this.#opts.reconnect === false || (ev && ev.code === 4001)) {
      this.#gone();
      return;
    }
    this.#reconnect();
  }

  /** #gone ends the session after the connection is lost for good. */
  #gone() {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#renewTimer);
    this.#hooks.onGone(this.#bye || 'connection lost');
  }

  /**
   * #reconnect reconnects with backoff, re-authenticates (with a fresh
   * token from opts.getToken when given) and lets Calls resume its stay
   * (onReconnected).
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
        await this.open(await this.#freshToken());
        break;
      } catch (e) {
        this.#hooks.log('reconnect failed:', e.message);
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
    await this.#hooks.onReconnected();
  }
}
