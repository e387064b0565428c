// Unit tests of the SDK's layer handling against fake WebRTC, run with
// `node --test web/test/`. The real browser tests are in server/ (headless
// Chromium).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Media } from '../sdk/media.js';

/** A fake RTCRtpSender with three layers, recording setParameters. */
function fakeSender() {
  const s = {
    encodings: ['q', 'h', 'f'].map((rid) => ({ rid, active: true, maxBitrate: 1000 })),
    sets: [],
    getParameters() {
      return { transactionId: String(s.sets.length), encodings: s.encodings.map((e) => ({ ...e })) };
    },
    async setParameters(p) {
      await new Promise((r) => setTimeout(r, 5));
      s.sets.push(p.encodings.filter((e) => e.active).map((e) => e.rid).join(''));
      s.encodings = p.encodings;
    },
  };
  return s;
}

class FakePC {
  constructor() {
    this.transceivers = [];
  }
  addEventListener() {}
  removeEventListener() {}
  addTransceiver(track, init) {
    const tr = { sender: fakeSender(), direction: init.direction };
    this.transceivers.push(tr);
    return tr;
  }
  close() {}
}

const hooks = { request: async () => ({}), canSignal: () => true, onTrack() {}, onStatus() {}, log() {} };
const cam = { kind: 'video', id: 'c1', getSettings: () => ({ width: 1280, height: 720 }) };

test('setActiveLayers sets only the encodings it names active, the last call winning, keeping the other parameters', async () => {
  const m = new Media([], hooks, FakePC);
  const tr = m.addTrack('cam', cam);
  const sender = tr.sender;
  await m.setActiveLayers('cam', ['q']);
  assert.deepEqual(sender.sets, ['q']);
  assert.deepEqual(sender.encodings.map((e) => e.maxBitrate), [1000, 1000, 1000]);
  await m.setActiveLayers('cam', ['q']); // nothing to change: no call
  assert.deepEqual(sender.sets, ['q']);
  // Two pushes in a row: the last one wins, the one it replaced before
  // it was applied is never set.
  const a = m.setActiveLayers('cam', ['q', 'f']);
  const b = m.setActiveLayers('cam', []);
  await Promise.all([a, b]);
  assert.deepEqual(sender.sets, ['q', '']);
  await m.setActiveLayers('cam', ['q', 'h', 'f']);
  assert.equal(sender.sets[sender.sets.length - 1], 'qhf');
  // A track this connection does not send, or one removed: nothing.
  await m.setActiveLayers('mic', ['q']);
  m.close();
  const n = sender.sets.length;
  await m.setActiveLayers('cam', ['q']);
  assert.equal(sender.sets.length, n, 'closed');
});
