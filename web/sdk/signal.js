// signal.js: the signalling connection of docs/protocol.md — one WebSocket,
// JSON requests with ids, their answers, and the server's pushes.

/** CallError is every failure of the SDK: `code` is the error's name
 * (the call API's, the protocol's, or the SDK's own `Timeout`). */
export class CallError extends Error {
  /** @type {'CallError'} */
  name = 'CallError';

  /** @param {string} code @param {string} [message] */
  constructor(code, message) {
    super(message || code);
    this.code = code;
  }
}

/** wsURL turns a server URL (http, https, ws or wss) into the URL of its /ws endpoint. */
export function wsURL(serverURL) {
  const u = new URL(serverURL);
  if (u.protocol === 'http:') u.protocol = 'ws:';
  else if (u.protocol === 'https:') u.protocol = 'wss:';
  u.pathname = u.pathname.replace(/\/+$/, '') + '/ws';
  u.search = '';
  u.hash = '';
  return u.toString();
}

/** How long opening the WebSocket may take, in ms. */
export const OPEN_TIMEOUT = 10000;

/** The default time a request may wait for its answer, in ms. */
export const REQUEST_TIMEOUT = 15000;

/**
 * Signal is one WebSocket to the server. Pushes go to onPush(type, data);
 * onClose(ev) is called once when the socket closes (for any reason).
 */
export class Signal {
  #url;
  #hooks;
  #nextId;
  #pending;
  #ws;
  #closed;

  /**
   * @param {string} url the ws:// or wss:// URL
   * @param {{onPush: Function, onClose: Function, WebSocket?: any}} hooks
   */
  constructor(url, hooks) {
    this.#url = url;
    this.#hooks = hooks;
    this.#nextId = 1;
    /** @type {Map<number, {resolve: Function, reject: Function, timer: any}>} */
    this.#pending = new Map();
    this.#ws = null;
    this.#closed = false;
  }

  /** open connects; it resolves once the socket is open. */
  open() {
    const WS = this.#hooks.WebSocket || globalThis.WebSocket;
    return new Promise((resolve, reject) => {
      let opened = false;
      const ws = new WS(this.#url);
      this.#ws = ws;
      const timer = setTimeout(() => {
        if (!opened) ws.close();
      }, OPEN_TIMEOUT);
      ws.onopen = () => {
        clearTimeout(timer);
        opened = true;
        resolve();
      };
      ws.onmessage = (ev) => this.#receive(ev.data);
      ws.onerror = () => {};
      ws.onclose = (ev) => {
        clearTimeout(timer);
        this.#closed = true;
        this.#failAll('Closed', 'connection closed');
        if (!opened) {
          reject(new CallError('Closed', `cannot connect to ${this.#url} (${ev.code})`));
          return;
        }
        this.#hooks.onClose(ev);
      };
    });
  }

  /** isOpen tells whether requests can be sent. */
  get isOpen() {
    return !!this.#ws && !this.#closed && this.#ws.readyState === 1;
  }

  /**
   * request sends one request and resolves with its result's data, or
   * rejects with a CallError. timeout 0 waits for ever.
   */
  request(type, data, timeout = REQUEST_TIMEOUT) {
    if (!this.isOpen) return Promise.reject(new CallError('Closed', 'not connected'));
    const id = this.#nextId++;
    const msg = { id, type };
    if (data !== undefined) msg.data = data;
    return new Promise((resolve, reject) => {
      const entry = { resolve, reject, timer: null };
      if (timeout > 0) {
        entry.timer = setTimeout(() => {
          this.#pending.delete(id);
          reject(new CallError('Timeout', `${type}: no answer within ${timeout} ms`));
        }, timeout);
      }
      this.#pending.set(id, entry);
      try {
        this.#ws.send(JSON.stringify(msg));
      } catch (e) {
        this.#settle(id);
        reject(new CallError('Closed', String(e && e.message || e)));
      }
    });
  }

  /** settle forgets request id and returns its entry. */
  #settle(id) {
    const entry = this.#pending.get(id);
    if (!entry) return null;
    this.#pending.delete(id);
    if (entry.timer) clearTimeout(entry.timer);
    return entry;
  }

  /** receive handles one message from the server. */
  #receive(text) {
    let msg;
    try {
      msg = JSON.parse(text);
    } catch {
      return;
    }
    if (!msg || typeof msg !== 'object') return;
    if (msg.id) {
      const entry = this.#settle(msg.id);
      if (!entry) return;
      if (msg.type === 'error') {
        const e = msg.error || {};
        entry.reject(new CallError(e.code || 'Internal', e.message));
      } else {
        entry.resolve(msg.data || {});
      }
      return;
    }
    this.#hooks.onPush(msg.type, msg.data || {});
  }

  /** failAll rejects every request in flight. */
  #failAll(code, message) {
    for (const id of [...this.#pending.keys()]) {
      this.#settle(id).reject(new CallError(code, message));
    }
  }

  /** close closes the socket on purpose; onClose is not called. */
  close(code = 1000, reason = 'bye') {
    this.#hooks.onClose = () => {};
    this.#failAll('Closed', 'connection closed');
    if (this.#ws && !this.#closed) {
      try {
        this.#ws.close(code, reason);
      } catch {
        // already closing
      }
    }
    this.#closed = true;
  }
}
