// Unit tests of the SDK's event subscriptions (Calls.on / off), run with
// `node --test web/test/` (web's Go test runs them when node is installed).
// The server is a scripted WebSocket that authenticates and then pushes
// newcall messages, the SDK's real message path from socket to handler.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Calls } from '../sdk/calls.js';

/** connected returns a Calls on a scripted server, and a push(type, data) to it. */
async function connected() {
  let socket = null;
  class FakeWS {
    constructor(url) {
      this.url = url;
      this.readyState = 0;
      socket = this;
      setTimeout(() => {
        this.readyState = 1;
        this.onopen();
      });
    }
    send(text) {
      const msg = JSON.parse(text);
      if (msg.type !== 'auth') return;
      setTimeout(() => this.onmessage({ data: JSON.stringify({ id: msg.id, type: 'result', data: { userId: 'me' } }) }));
    }
    close(code = 1000) {
      this.readyState = 3;
      setTimeout(() => this.onclose({ code }));
    }
  }
  const calls = await Calls.connect('http://h', 'tok', { WebSocket: FakeWS, reconnect: false, log: () => {} });
  const push = (type, data) => socket.onmessage({ data: JSON.stringify({ type, data }) });
  return { calls, push };
}

test('on returns an unsubscribe function that removes only its own handler', async () => {
  const { calls, push } = await connected();
  const a = [];
  const b = [];
  const offA = calls.on('newcall', (ev) => a.push(ev.channelId));
  calls.on('newcall', (ev) => b.push(ev.channelId));
  assert.equal(typeof offA, 'function');

  push('newcall', { channelId: 'one' });
  offA();
  push('newcall', { channelId: 'two' });
  offA(); // a second call does nothing
  push('newcall', { channelId: 'three' });

  assert.deepEqual(a, ['one']);
  assert.deepEqual(b, ['one', 'two', 'three']);
  calls.close();
});

test('the same handler given to on twice is called once, and one unsubscribe removes it', async () => {
  const { calls, push } = await connected();
  const seen = [];
  const h = (ev) => seen.push(ev.channelId);
  const off1 = calls.on('newcall', h);
  calls.on('newcall', h);
  push('newcall', { channelId: 'one' });
  off1();
  push('newcall', { channelId: 'two' });
  assert.deepEqual(seen, ['one']);
  calls.close();
});

test('a handler that unsubscribes itself while called does not stop the others', async () => {
  const { calls, push } = await connected();
  const seen = [];
  const off = calls.on('newcall', () => {
    seen.push('once');
    off();
  });
  calls.on('newcall', (ev) => seen.push(ev.channelId));
  push('newcall', { channelId: 'one' });
  push('newcall', { channelId: 'two' });
  assert.deepEqual(seen, ['once', 'one', 'two']);
  calls.close();
});
