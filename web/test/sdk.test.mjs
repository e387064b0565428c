// Unit tests of the SDK against a scripted server and fake WebRTC, run with
// `node --test web/test/` (web's Go test runs them when node is installed).
// The real browser tests are the end-to-end ones in headless Chromium.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Calls, parseMsids, harmonizeExtmap, statusOf } from '../sdk/calls.js';

const tick = (ms = 0) => new Promise((r) => setTimeout(r, ms));

/** until polls cond for up to a second. */
async function until(cond, what) {
  for (let i = 0; i < 100; i++) {
    if (cond()) return;
    await tick(10);
  }
  assert.fail(`timed out waiting for ${what}`);
}

/** A scripted server: answer(msg) returns {data} or {error} or null (no answer). */
function fakeServer(answer) {
  const sockets = [];
  const trace = [];
  class FakeWS {
    constructor(url) {
      this.url = url;
      this.readyState = 0;
      this.sent = [];
      sockets.push(this);
      setTimeout(() => {
        if (server.refuse) {
          this.readyState = 3;
          this.onclose({ code: 1006 });
          return;
        }
        this.readyState = 1;
        this.onopen();
      });
    }
    send(text) {
      const msg = JSON.parse(text);
      this.sent.push(msg);
      trace.push(`send ${msg.type}`);
      const a = answer(msg, this);
      if (!a) return;
      setTimeout(() => {
        if (a.error) this.push({ id: msg.id, type: 'error', error: a.error });
        else this.push({ id: msg.id, type: 'result', data: a.data || {} });
      });
    }
    push(msg) {
      if (this.readyState === 1) this.onmessage({ data: JSON.stringify(msg) });
    }
    close(code = 1000) {
      if (this.readyState === 3) return;
      this.readyState = 3;
      setTimeout(() => this.onclose({ code }));
    }
    drop() {
      this.readyState = 3;
      this.onclose({ code: 1006 });
    }
  }
  const server = { sockets, trace, WebSocket: FakeWS, refuse: false };
  return server;
}

let nextId = 1;
/** A fake MediaStreamTrack. */
const track = (kind) => ({ kind, id: `t${nextId++}` });

/** A fake RTCPeerConnection: enough state for the SDK's negotiation. */
function fakePC(trace) {
  const pcs = [];
  class FakePC {
    constructor(cfg) {
      this.cfg = cfg;
      this.signalingState = 'stable';
      this.iceConnectionState = 'new';
      this.connectionState = 'new';
      this.iceGatheringState = 'complete';
      this.transceivers = [];
      this.localDescription = null;
      this.remoteDescription = null;
      this.currentRemoteDescription = null;
      this.rollbacks = 0;
      this.closed = false;
      pcs.push(this);
    }
    addEventListener() {}
    removeEventListener() {}
    addTransceiver(t, init) {
      trace.push(`addTransceiver ${t.id}`);
      const tr = { mid: null, direction: init.direction, currentDirection: null, sender: { track: t }, receiver: { track: null } };
      this.transceivers.push(tr);
      setTimeout(() => this.onnegotiationneeded && this.onnegotiationneeded());
      return tr;
    }
    getTransceivers() {
      return this.transceivers;
    }
    removeTrack(sender) {
      trace.push(`removeTrack ${sender.track.id}`);
      sender.track = null;
    }
    async createOffer() {
      return { type: 'offer', sdp: `offer ${this.transceivers.length}` };
    }
    async setLocalDescription(desc) {
      if (desc && desc.type === 'rollback') {
        this.rollbacks++;
        this.signalingState = 'stable';
        // A browser asks again after a rollback when changes remain.
        if (this.negotiateAfterRollback) setTimeout(() => this.onnegotiationneeded && this.onnegotiationneeded());
        return;
      }
      if (this.signalingState === 'have-remote-offer') {
        this.localDescription = { type: 'answer', sdp: 'client answer' };
        this.signalingState = 'stable';
        for (const tr of this.transceivers) if (tr.receiver.track) tr.currentDirection = 'recvonly';
      } else {
        this.localDescription = desc || { type: 'offer', sdp: 'offer' };
        this.signalingState = 'have-local-offer';
      }
    }
    async setRemoteDescription(desc) {
      this.remoteDescription = desc;
      this.currentRemoteDescription = desc;
      if (desc.type === 'answer') {
        this.signalingState = 'stable';
        return;
      }
      this.signalingState = 'have-remote-offer';
      for (const mid of parseMsids(desc.sdp).keys()) {
        if (this.transceivers.some((t) => t.mid === mid)) continue;
        const tr = { mid, direction: 'recvonly', currentDirection: null, sender: { track: null }, receiver: { track: track('video') } };
        this.transceivers.push(tr);
        this.ontrack({ transceiver: tr, track: tr.receiver.track });
      }
    }
    restartIce() {}
    close() {
      this.closed = true;
    }
  }
  return { pcs, RTCPeerConnection: FakePC };
}

/** offerSDP is a server offer forwarding tracks: [[mid, userId, name]]. */
const offerSDP = (tracks) =>
  'v=0\r\n' + tracks.map(([mid, u, n]) => `m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:${mid}\r\na=msid:${u} ${u}/${n}\r\n`).join('');

/** A server for the usual flow; overrides per request type. */
function setup(over = {}) {
  const srv = fakeServer((msg) => {
    if (over[msg.type]) return over[msg.type](msg);
    switch (msg.type) {
      case 'auth':
        return msg.data.token.startsWith('good') ? { data: { userId: 'me', canCreate: true, iceServers: [{ urls: ['stun:x'] }] } } : { error: { code: 'UnAuthorized', message: 'bad token' } };
      case 'create':
      case 'join':
        return { data: { status: true, channelId: msg.data.channelId, seq: 3, users: [{ id: 'me', mode: 7, tracks: [] }, { id: 'bob', mode: 6, tracks: [{ name: 'cam', kind: 'video', muted: false }] }], config: { kind: 'audioVideo' } } };
      case 'offer':
        return { data: { sdp: 'server answer' } };
      default:
        return { data: { status: true } };
    }
  });
  const rtc = fakePC(srv.trace);
  const opts = { WebSocket: srv.WebSocket, RTCPeerConnection: rtc.RTCPeerConnection, log: () => {} };
  return { srv, rtc, opts };
}

test('pure helpers', () => {
  const m = parseMsids(offerSDP([['0', 'bob', 'cam'], ['1', 'a/b', 'x/y']]) + 'm=audio 9 X 0\r\na=mid:2\r\n');
  assert.deepEqual([...m.entries()], [['0', { userId: 'bob', trackName: 'cam' }], ['1', { userId: 'a/b', trackName: 'x/y' }]]);
  const remote = 'm=audio\r\na=extmap:1 level\r\na=extmap:2 tcc\r\n';
  const offer = 'm=audio\r\na=extmap:1 level\r\na=extmap:2 tcc\r\nm=video\r\na=extmap:2 abs\r\na=extmap:3 tcc\r\n';
  assert.equal(harmonizeExtmap(offer, remote), 'm=audio\r\na=extmap:1 level\r\na=extmap:2 tcc\r\nm=video\r\na=extmap:3 abs\r\na=extmap:2 tcc\r\n');
  assert.equal(harmonizeExtmap(remote, remote), remote);
  assert.equal(statusOf(null), 'disconnected');
  assert.equal(statusOf({ connectionState: 'connected', iceConnectionState: 'connected' }), 'connected');
  assert.equal(statusOf({ connectionState: 'connecting', iceConnectionState: 'checking' }), 'checking');
});

test('connect authenticates, and a bad token rejects with its code', async () => {
  const { srv, opts } = setup();
  const calls = await Calls.connect('https://calls.example:8443/base/', 'good', opts);
  assert.equal(srv.sockets[0].url, 'wss://calls.example:8443/base/ws');
  assert.deepEqual(srv.sockets[0].sent[0], { id: 1, type: 'auth', data: { token: 'good' } });
  assert.equal(calls.userId, 'me');
  assert.equal(calls.status, 'disconnected');
  assert.equal(calls.channel, null);
  await assert.rejects(Calls.connect('http://h', 'bad', opts), (e) => e.code === 'UnAuthorized' && e.message === 'bad token');
  calls.close();
});

test('the state of Calls is private: its own properties are the documented ones', async () => {
  const { opts } = setup();
  const calls = await Calls.connect('http://h', 'good', opts);
  await calls.join('room', { cam: track('video') });
  // Everything else lives in #private fields, out of an app's reach.
  assert.deepEqual(Object.keys(calls).sort(), ['canCreate', 'iceServers', 'serverStatus', 'userId']);
  assert.ok(!Object.getOwnPropertyNames(Calls.prototype).some((n) => n.startsWith('_')), 'no underscore methods');
  calls.close();
});

test('with getToken, the token is renewed on the same connection before it expires', async () => {
  let n = 0;
  const { srv, opts } = setup({
    // Each token expires 60.15 s after it is given: renewal is due after 150 ms.
    auth: (msg) => (msg.data.token.startsWith('good') ? { data: { userId: 'me', expiresAt: Date.now() / 1000 + 60.15 } } : { error: { code: 'UnAuthorized', message: 'bad' } }),
  });
  const calls = await Calls.connect('http://h', 'good0', { ...opts, getToken: async () => `good${++n}` });
  await until(() => srv.sockets[0].sent.filter((m) => m.type === 'auth').length >= 3, 'two renewals');
  const auths = srv.sockets[0].sent.filter((m) => m.type === 'auth').map((m) => m.data.token);
  assert.deepEqual(auths.slice(0, 3), ['good0', 'good1', 'good2']);
  assert.equal(srv.sockets.length, 1, 'renewed without reconnecting');
  calls.close();
  const sent = srv.sockets[0].sent.length;
  await tick(300);
  assert.equal(srv.sockets[0].sent.length, sent, 'no renewal after close');
});

test('create announces tracks before sending them, then offers; Glare rolls back', async () => {
  let glare = true;
  const { srv, rtc, opts } = setup({
    offer: () => (glare ? { error: { code: 'Glare', message: 'crossed' } } : { data: { sdp: 'server answer' } }),
  });
  const calls = await Calls.connect('http://h', 'good', opts);
  const cam = track('video');
  assert.deepEqual(await calls.create('room', { cam }, { maxUsers: 2 }), { status: true });
  const create = srv.sockets[0].sent[1];
  assert.deepEqual(create.data, { channelId: 'room', config: { maxUsers: 2 }, tracks: [{ name: 'cam', kind: 'video', trackId: cam.id }] });
  assert.ok(srv.trace.indexOf('send create') < srv.trace.indexOf(`addTransceiver ${cam.id}`));
  assert.equal(calls.channel, 'room');
  assert.deepEqual(Object.keys(calls.tracks), ['cam']);
  const pc = calls.pc;
  assert.deepEqual(pc.cfg.iceServers, [{ urls: ['stun:x'] }]);
  await until(() => pc.rollbacks === 1, 'the rollback after Glare');
  glare = false;
  pc.onnegotiationneeded();
  await until(() => pc.remoteDescription && pc.remoteDescription.sdp === 'server answer', 'the answer');
  assert.equal(pc.signalingState, 'stable');
  calls.close();
  assert.ok(pc.closed);
});

test('a server offer maps mids to users and tracks; events update and re-emit', async () => {
  const { srv, opts } = setup();
  const calls = await Calls.connect('http://h', 'good', opts);
  const got = [];
  for (const ev of ['track:add', 'track:mute', 'track:del', 'user:left', 'status']) calls.on(ev, (p) => got.push([ev, p]));
  await calls.join('room');
  const ws = srv.sockets[0];
  ws.push({ type: 'event', data: { event: 'track:add', seq: 4, channelId: 'room', userId: 'me', trackName: 'x', track: { name: 'x', kind: 'video', muted: false } } });
  ws.push({ type: 'offer', data: { sdp: offerSDP([['0', 'bob', 'cam']]) } });
  await until(() => ws.sent.some((m) => m.type === 'answer'), 'the answer');
  assert.deepEqual(ws.sent.find((m) => m.type === 'answer').data, { sdp: 'client answer' });
  const add = got.filter(([e]) => e === 'track:add');
  assert.equal(add.length, 1, 'only the media emits track:add');
  assert.equal(add[0][1].userId, 'bob');
  assert.equal(add[0][1].trackName, 'cam');
  assert.deepEqual(add[0][1].tracks, [{ name: 'cam', kind: 'video', muted: false }]);
  const media = add[0][1].track;
  assert.deepEqual(calls.remoteTracks(), [{ userId: 'bob', trackName: 'cam', track: media }]);

  ws.push({ type: 'event', data: { event: 'track:mute', seq: 5, channelId: 'room', userId: 'bob', trackName: 'cam', value: true, mutedBy: 'me', muteReason: 'r' } });
  ws.push({ type: 'event', data: { event: 'track:del', seq: 6, channelId: 'room', userId: 'bob', trackName: 'cam' } });
  await until(() => got.some(([e]) => e === 'track:del'), 'track:del');
  assert.equal(got.find(([e]) => e === 'track:mute')[1].mutedBy, 'me');
  assert.equal(got.find(([e]) => e === 'track:del')[1].track, media);
  assert.deepEqual(calls.remoteTracks(), []);

  const pc = calls.pc;
  ws.push({ type: 'event', data: { event: 'user:left', seq: 7, channelId: 'room', userId: 'bob' } });
  ws.push({ type: 'event', data: { event: 'user:del', seq: 8, channelId: 'room', users: ['me'], senderId: 'bob' } });
  await until(() => calls.channel === null, 'the end of the stay');
  assert.ok(pc.closed);
  assert.equal(calls.pc, null);
  assert.deepEqual(got.slice(-2).map(([e]) => e), ['user:left', 'status']);
  await tick(20);
  assert.equal(ws.sent.filter((m) => m.type === 'join').length, 1, 'no rejoin after user:del');
  calls.close();
});

test('failures reject with the server code; removeTracks asks first', async () => {
  const { srv, opts } = setup({ muteUser: () => ({ error: { code: 'UnAuthorized', message: 'not an admin' } }) });
  const calls = await Calls.connect('http://h', 'good', opts);
  await assert.rejects(calls.muteUser('bob', 'audio', true), (e) => e.code === 'UnAuthorized' && e.message === 'not an admin');
  const mic = track('audio');
  await calls.join('room', { mic });
  await calls.removeTracks('mic');
  assert.ok(srv.trace.indexOf('send removeTracks') < srv.trace.indexOf(`removeTrack ${mic.id}`));
  assert.deepEqual(calls.tracks, {});
  await assert.rejects(calls.muteTracks([], true), (e) => e.code === 'Invalid');
  calls.close();
  await assert.rejects(calls.getUsers(), (e) => e.code === 'Closed');
});

test('a dropped connection fails requests in flight, reconnects; a stay not resumed is replaced', async () => {
  const { srv, rtc, opts } = setup({ getUsers: () => null });
  const calls = await Calls.connect('http://h', 'good', opts);
  const cam = track('video');
  await calls.join('room', { cam });
  srv.sockets[0].push({ type: 'offer', data: { sdp: offerSDP([['0', 'bob', 'cam']]) } });
  await until(() => calls.remoteTracks().length === 1, 'the remote track');
  const first = calls.pc;
  const events = [];
  for (const ev of ['reconnected', 'track:del', 'track:add']) calls.on(ev, (p) => events.push([ev, p]));
  const pending = calls.getUsers();
  srv.sockets[0].drop();
  await assert.rejects(pending, (e) => e.code === 'Closed');
  assert.equal(calls.pc, first, 'the stay is kept while reconnecting');
  assert.equal(first.closed, false);
  await until(() => events.some(([e]) => e === 'reconnected'), 'the reconnection');
  const join = srv.sockets[1].sent.find((m) => m.type === 'join');
  assert.deepEqual(join.data, { channelId: 'room', resume: true, tracks: [{ name: 'cam', kind: 'video', trackId: cam.id }] });
  // The server did not resume the stay: a fresh one.
  assert.deepEqual(events.map(([e, p]) => [e, p.userId, p.resumed]), [['track:del', 'bob', undefined], ['reconnected', 'me', false]]);
  assert.ok(first.closed);
  assert.notEqual(calls.pc, first);
  assert.equal(calls.channel, 'room');
  assert.deepEqual(Object.keys(calls.tracks), ['cam']);
  assert.equal(rtc.pcs.length, 2);
  assert.deepEqual(calls.remoteTracks(), []);
  calls.close();
});

/** resumeSetup is setup whose join resumes the stay when asked to (result users: me and bob with cam). */
function resumeSetup(over = {}) {
  return setup({
    join: (msg) => ({
      data: {
        status: true, channelId: msg.data.channelId, seq: msg.data.resume ? 9 : 3, resumed: msg.data.resume ? true : undefined,
        users: [{ id: 'me', mode: 7, tracks: [] }, { id: 'bob', mode: 6, tracks: [{ name: 'cam', kind: 'video', muted: false }] }],
        config: { kind: 'audioVideo' },
      },
    }),
    ...over,
  });
}

test('a dropped connection resumed by the server keeps the peer connection and the remote tracks', async () => {
  const { srv, rtc, opts } = resumeSetup();
  const calls = await Calls.connect('http://h', 'good', opts);
  const cam = track('video');
  await calls.join('room', { cam });
  const ws = srv.sockets[0];
  ws.push({ type: 'offer', data: { sdp: offerSDP([['0', 'bob', 'cam']]) } });
  await until(() => calls.remoteTracks().length === 1 && count(ws, 'answer') === 1, 'the remote track');
  const first = calls.pc;
  const media = calls.remoteTracks()[0].track;
  const events = [];
  for (const ev of ['reconnected', 'track:del', 'track:add', 'user:left', 'user:join', 'status']) calls.on(ev, (p) => events.push([ev, p]));
  ws.drop();
  await until(() => events.some(([e]) => e === 'reconnected'), 'the reconnection');
  const join = srv.sockets[1].sent.find((m) => m.type === 'join');
  assert.deepEqual(join.data, { channelId: 'room', resume: true, tracks: [{ name: 'cam', kind: 'video', trackId: cam.id }] });
  assert.deepEqual(events, [['reconnected', { userId: 'me', resumed: true }]], 'no churn');
  assert.equal(calls.pc, first);
  assert.equal(first.closed, false);
  assert.equal(rtc.pcs.length, 1);
  assert.deepEqual(calls.remoteTracks(), [{ userId: 'bob', trackName: 'cam', track: media }]);
  assert.deepEqual(calls.users.map((u) => u.id).sort(), ['bob', 'me']);

  // Negotiation goes on on the new connection: a server offer is answered.
  const ws2 = srv.sockets[1];
  ws2.push({ type: 'offer', data: { sdp: offerSDP([['0', 'bob', 'cam'], ['1', 'carol', 'mic']]) } });
  await until(() => count(ws2, 'answer') === 1, 'the answer on the new connection');
  // Events go on from the snapshot's seq: an older one is ignored.
  ws2.push({ type: 'event', data: { event: 'user:left', seq: 8, channelId: 'room', userId: 'bob' } });
  ws2.push({ type: 'event', data: { event: 'track:mute', seq: 10, channelId: 'room', userId: 'bob', trackName: 'cam', value: true } });
  await until(() => calls.users.find((u) => u.id === 'bob')?.tracks[0].muted, 'the mute');
  assert.equal(events.filter(([e]) => e === 'track:del').length, 0);
  calls.close();
  assert.ok(first.closed);
});

test('an offer in flight when the connection drops is made again after the resume; the server offer re-sent is answered', async () => {
  let srvRef;
  let hold = true;
  const { srv, rtc, opts } = resumeSetup({
    offer: () => (hold ? null : { data: { sdp: 'server answer' } }),
    join: (msg) => {
      const ws = srvRef.sockets.at(-1);
      const data = {
        status: true, channelId: msg.data.channelId, seq: msg.data.resume ? 9 : 3, resumed: msg.data.resume ? true : undefined,
        users: [{ id: 'me', mode: 7, tracks: [] }, { id: 'bob', mode: 6, tracks: [{ name: 'cam', kind: 'video', muted: false }] }],
        config: {},
      };
      setTimeout(() => {
        // The server sends its unanswered offer again before the result.
        if (msg.data.resume) ws.push({ type: 'offer', data: { sdp: offerSDP([['0', 'bob', 'cam']]) } });
        ws.push({ id: msg.id, type: 'result', data });
      });
      return null;
    },
  });
  srvRef = srv;
  const calls = await Calls.connect('http://h', 'good', opts);
  await calls.join('room', { cam: track('video') });
  const ws = srv.sockets[0];
  await until(() => count(ws, 'offer') === 1, 'the offer');
  const pc = calls.pc;
  assert.equal(pc.signalingState, 'have-local-offer');
  const resumed = new Promise((r) => calls.on('reconnected', r));
  ws.drop();
  await until(() => pc.rollbacks === 1, 'the rollback of the offer cut off');
  hold = false;
  assert.deepEqual(await resumed, { userId: 'me', resumed: true });
  const ws2 = srv.sockets[1];
  await until(() => count(ws2, 'answer') === 1, 'the answer to the offer re-sent');
  await until(() => count(ws2, 'offer') === 1, 'the offer made again');
  await until(() => pc.remoteDescription.sdp === 'server answer' && pc.signalingState === 'stable', "the server's answer");
  assert.equal(calls.pc, pc);
  assert.equal(rtc.pcs.length, 1);
  assert.ok(ws2.sent.findIndex((m) => m.type === 'join') < ws2.sent.findIndex((m) => m.type === 'offer'), 'no offer before the stay is resumed');
  assert.equal(calls.remoteTracks().length, 1);
  calls.close();
});

test('a failed resume ends the stay with user:left; leave during the gap does not resume', async () => {
  let fail = true;
  const { srv, opts } = resumeSetup();
  const calls = await Calls.connect('http://h', 'good', {
    ...opts,
    WebSocket: class extends srv.WebSocket {
      send(text) {
        const msg = JSON.parse(text);
        if (msg.type === 'join' && msg.data.resume && fail) {
          this.sent.push(msg);
          setTimeout(() => this.push({ id: msg.id, type: 'error', error: { code: 'NotFound', message: 'gone' } }));
          return;
        }
        super.send(text);
      }
    },
  });
  const got = [];
  for (const ev of ['reconnected', 'user:left']) calls.on(ev, (p) => got.push([ev, p]));
  await calls.join('room', { cam: track('video') });
  const first = calls.pc;
  srv.sockets[0].drop();
  await until(() => got.length === 2, 'the events');
  assert.deepEqual(got, [['reconnected', { userId: 'me', resumed: false }], ['user:left', { event: 'user:left', channelId: 'room', userId: 'me', error: 'NotFound' }]]);
  assert.ok(first.closed);
  assert.equal(calls.channel, null);

  fail = false;
  await calls.join('room', { cam: track('video') });
  srv.sockets[1].drop();
  await calls.leave();
  assert.equal(calls.channel, null);
  await until(() => got.length === 3, 'the reconnection');
  assert.deepEqual(got[2], ['reconnected', { userId: 'me', resumed: false }]);
  assert.equal(count(srv.sockets[2], 'join'), 0);
  calls.close();
});

test('gives up after reconnectGiveUp and emits disconnected', async () => {
  const { srv, opts } = setup();
  const calls = await Calls.connect('http://h', 'good', { ...opts, reconnectGiveUp: 300 });
  const gone = new Promise((r) => calls.on('disconnected', r));
  srv.refuse = true;
  srv.sockets[0].drop();
  await gone;
  assert.equal(calls.connected, false);
});

test('a refused offer is retried with backoff, not in a loop', async () => {
  const { srv, rtc, opts } = setup({ offer: () => ({ error: { code: 'Invalid', message: 'bad sdp' } }) });
  const calls = await Calls.connect('http://h', 'good', opts);
  await calls.join('room', { cam: track('video') });
  const offers = () => srv.sockets[0].sent.filter((m) => m.type === 'offer').length;
  await tick(300);
  assert.equal(offers(), 1);
  assert.equal(rtc.pcs[0].rollbacks, 1);
  await until(() => offers() === 2, 'the retry');
  calls.close();
});

/** count counts the requests of one type sent on socket ws. */
const count = (ws, type) => ws.sent.filter((m) => m.type === type).length;

test('an own user:left the SDK did not cause ends the stay and rejoins; leave, user:del and cnl:delete do not', async () => {
  const { srv, rtc, opts } = setup();
  const calls = await Calls.connect('http://h', 'good', opts);
  const got = [];
  for (const ev of ['track:del', 'user:left']) calls.on(ev, (p) => got.push([ev, p]));
  const cam = track('video');
  await calls.join('room', { cam });
  const ws = srv.sockets[0];
  ws.push({ type: 'offer', data: { sdp: offerSDP([['0', 'bob', 'cam']]) } });
  await until(() => calls.remoteTracks().length === 1, 'the remote track');
  const first = calls.pc;
  ws.push({ type: 'event', data: { event: 'user:left', seq: 4, channelId: 'room', userId: 'me' } });
  await until(() => count(ws, 'join') === 2 && calls.channel === 'room' && calls.pc !== first, 'the rejoin');
  assert.ok(first.closed);
  assert.deepEqual(ws.sent.filter((m) => m.type === 'join')[1].data, { channelId: 'room', tracks: [{ name: 'cam', kind: 'video', trackId: cam.id }] });
  assert.deepEqual(got.map(([e, p]) => [e, p.userId]), [['track:del', 'bob']], 'the events of a rejoin, not the user:left');
  assert.equal(rtc.pcs.length, 2);

  // Our own leave: no rejoin, whenever its user:left comes.
  ws.push({ type: 'event', data: { event: 'user:left', seq: 2, channelId: 'room', userId: 'me' } }); // older than the stay
  const leaving = calls.leave();
  ws.push({ type: 'event', data: { event: 'user:left', seq: 5, channelId: 'room', userId: 'me' } });
  await leaving;
  await calls.join('room');
  ws.push({ type: 'event', data: { event: 'cnl:delete', seq: 6, channelId: 'room', senderId: 'bob', reason: 'x' } });
  await until(() => calls.channel === null, 'the end after cnl:delete');
  await tick(20);
  assert.equal(count(ws, 'join'), 3);
  calls.close();
});

test('NotMember on offer rejoins once; a rejoined stay lost again ends with user:left', async () => {
  const { srv, opts } = setup({ offer: () => ({ error: { code: 'NotMember', message: 'not in a channel' } }) });
  const calls = await Calls.connect('http://h', 'good', opts);
  const left = [];
  calls.on('user:left', (p) => left.push(p));
  await calls.join('room', { cam: track('video') });
  const ws = srv.sockets[0];
  await until(() => left.length === 1, 'the user:left');
  assert.equal(count(ws, 'join'), 2, 'one rejoin');
  assert.deepEqual(left[0], { event: 'user:left', channelId: 'room', userId: 'me', error: 'offer: NotMember' });
  assert.equal(calls.channel, null);
  assert.equal(calls.pc, null);
  await tick(50);
  assert.equal(count(ws, 'join'), 2, 'no loop');
  calls.close();
});

test('a failed rejoin after a lost stay emits user:left with the error', async () => {
  let joins = 0;
  const { srv, opts } = setup({ join: (msg) => (++joins === 1 ? null : { error: { code: 'NotFound', message: 'gone' } }) });
  // The first join is answered by hand below.
  const calls = await Calls.connect('http://h', 'good', opts);
  const left = [];
  calls.on('user:left', (p) => left.push(p));
  const ws = srv.sockets[0];
  const joined = calls.join('room');
  await until(() => count(ws, 'join') === 1, 'the join');
  ws.push({ id: ws.sent.at(-1).id, type: 'result', data: { status: true, channelId: 'room', seq: 1, users: [], config: {} } });
  await joined;
  ws.push({ type: 'event', data: { event: 'user:left', seq: 2, channelId: 'room', userId: 'me' } });
  await until(() => left.length === 1, 'the user:left');
  assert.equal(left[0].error, 'NotFound');
  assert.equal(calls.channel, null);
  calls.close();
});

test('a server offer before the join result is answered once the stay exists', async () => {
  let srvRef;
  const { srv, opts } = setup({
    join: (msg) => {
      const ws = srvRef.sockets[0];
      setTimeout(() => {
        ws.push({ type: 'offer', data: { sdp: offerSDP([['0', 'bob', 'cam']]) } });
        ws.push({ id: msg.id, type: 'result', data: { status: true, channelId: 'room', seq: 3, users: [{ id: 'bob', mode: 6, tracks: [] }], config: {} } });
      });
      return null;
    },
  });
  srvRef = srv;
  const calls = await Calls.connect('http://h', 'good', opts);
  const added = [];
  calls.on('track:add', (p) => added.push(p));
  await calls.join('room');
  const ws = srv.sockets[0];
  await until(() => count(ws, 'answer') === 1, 'the answer');
  assert.equal(added.length, 1);
  assert.equal(added[0].userId, 'bob');
  calls.close();
});

test('a repeated Glare backs off', async () => {
  const { srv, rtc, opts } = setup({ offer: () => ({ error: { code: 'Glare', message: 'crossed' } }) });
  const calls = await Calls.connect('http://h', 'good', opts);
  await calls.join('room', { cam: track('video') });
  calls.pc.negotiateAfterRollback = true;
  await tick(700);
  // Without a backoff, hundreds; with it: at 0, 0, 100, 300, 700 ms.
  const n = count(srv.sockets[0], 'offer');
  assert.ok(n >= 3 && n <= 6, `${n} offers`);
  assert.equal(rtc.pcs[0].rollbacks, n);
  calls.close();
});

test('a server offer that cannot be answered is followed by a client offer', async () => {
  const { srv, opts } = setup({ answer: () => ({ error: { code: 'Internal', message: 'boom' } }) });
  const calls = await Calls.connect('http://h', 'good', opts);
  await calls.join('room');
  const ws = srv.sockets[0];
  ws.push({ type: 'offer', data: { sdp: offerSDP([['0', 'bob', 'cam']]) } });
  await until(() => count(ws, 'answer') === 1, 'the answer');
  assert.equal(count(ws, 'offer'), 0);
  await until(() => count(ws, 'offer') === 1, 'a fresh client offer');
  await until(() => calls.pc.remoteDescription.type === 'answer', "the server's answer");
  calls.close();
});

test('configure changes only the fields given; cnl:config replaces the config', async () => {
  const full = { kind: 'audio', joinRequest: true, maxUsers: 5, defaultPermission: 4, lastN: 2 };
  const { srv, opts } = setup({ create: (msg) => ({ data: { status: true, channelId: msg.data.channelId, seq: 1, users: [], config: full } }) });
  const calls = await Calls.connect('http://h', 'good', opts);
  await calls.create('room');
  await calls.configure({ maxUsers: 3 });
  assert.deepEqual(srv.sockets[0].sent.at(-1).data, { config: { maxUsers: 3 } });
  assert.deepEqual(calls.config, { ...full, maxUsers: 3 });
  srv.sockets[0].push({ type: 'event', data: { event: 'cnl:config', seq: 2, channelId: 'room', senderId: 'bob', config: { kind: 'video', maxUsers: 2 } } });
  await until(() => calls.config.kind === 'video', 'cnl:config');
  assert.deepEqual(calls.config, { kind: 'video', joinRequest: false, maxUsers: 2, defaultPermission: 6, lastN: 0 });
  calls.close();
});

test('cnl:speakers is re-emitted and kept as speakers, dominant first', async () => {
  const { srv, opts } = setup({ create: (msg) => ({ data: { status: true, channelId: msg.data.channelId, seq: 1, users: [], config: {} } }) });
  const calls = await Calls.connect('http://h', 'good', opts);
  await calls.create('room');
  assert.deepEqual(calls.speakers, []);
  const seen = [];
  calls.on('cnl:speakers', (e) => seen.push(e.speakers.map((s) => s.userId)));
  const speakers = [{ userId: 'bob', level: 30 }, { userId: 'carol', level: 45 }];
  srv.sockets[0].push({ type: 'event', data: { event: 'cnl:speakers', seq: 2, channelId: 'room', speakers } });
  await until(() => seen.length === 1, 'cnl:speakers');
  assert.deepEqual(seen, [['bob', 'carol']]);
  assert.deepEqual(calls.speakers, speakers);
  srv.sockets[0].push({ type: 'event', data: { event: 'cnl:speakers', seq: 3, channelId: 'room', speakers: [] } });
  await until(() => seen.length === 2, 'the empty cnl:speakers');
  assert.deepEqual(calls.speakers, []);
  calls.close();
});

test('snapshots and events agree by seq; no getUsers after user:join', async () => {
  let srvRef;
  let usersAnswer = null;
  const { srv, opts } = setup({
    join: (msg) => {
      const ws = srvRef.sockets[0];
      setTimeout(() => {
        // Pushed before the result: newer than the snapshot (4), and older (3).
        ws.push({ type: 'event', data: { event: 'user:left', seq: 3, channelId: 'room', userId: 'bob' } });
        ws.push({ type: 'event', data: { event: 'user:join', seq: 4, channelId: 'room', userId: 'carol' } });
        ws.push({ id: msg.id, type: 'result', data: { status: true, channelId: 'room', seq: 3, users: [{ id: 'me', mode: 7, tracks: [] }], config: { defaultPermission: 2 } } });
        // Pushed after the result, but older than the snapshot.
        ws.push({ type: 'event', data: { event: 'user:join', seq: 2, channelId: 'room', userId: 'bob' } });
      });
      return null;
    },
    getUsers: (msg) => {
      usersAnswer = msg.id;
      return null;
    },
  });
  srvRef = srv;
  const calls = await Calls.connect('http://h', 'good', opts);
  await calls.join('room');
  const ws = srv.sockets[0];
  await tick(10);
  const ids = () => calls.users.map((u) => u.id).sort();
  assert.deepEqual(ids(), ['carol', 'me']);
  assert.equal(calls.users.find((u) => u.id === 'carol').mode, 2, "the config's default permission");
  ws.push({ type: 'event', data: { event: 'user:join', seq: 5, channelId: 'room', userId: 'dave' } });
  await tick(80);
  assert.equal(count(ws, 'getUsers'), 0, 'no getUsers after user:join');

  // A getUsers answer older than events already applied: they are re-applied on it.
  const pending = calls.getUsers();
  await until(() => usersAnswer !== null, 'getUsers');
  ws.push({ type: 'event', data: { event: 'user:mod', seq: 6, channelId: 'room', users: [{ id: 'carol', mode: 7 }], senderId: 'me' } });
  ws.push({ id: usersAnswer, type: 'result', data: { seq: 4, users: [{ id: 'me', mode: 7, tracks: [] }, { id: 'carol', mode: 6, tracks: [] }] } });
  const users = await pending;
  assert.deepEqual(users.map((u) => [u.id, u.mode]).sort(), [['carol', 7], ['dave', 2], ['me', 7]]);
  calls.close();
});

test('reconnection takes a fresh token from getToken, and retries once after UnAuthorized', async () => {
  const { srv, opts } = setup();
  const tokens = ['bad1', 'good2'];
  const calls = await Calls.connect('http://h', 'good', { ...opts, getToken: async () => tokens.shift() });
  const events = [];
  calls.on('reconnected', () => events.push('reconnected'));
  srv.sockets[0].drop();
  await until(() => events.length === 1, 'the reconnection');
  assert.deepEqual(srv.sockets.slice(1).map((ws) => ws.sent[0].data.token), ['bad1', 'good2']);

  // Two refusals in a row: give up.
  tokens.push('bad3', 'bad4', 'good5');
  const gone = new Promise((r) => calls.on('disconnected', r));
  srv.sockets.at(-1).drop();
  await gone;
  assert.deepEqual(srv.sockets.slice(3).map((ws) => ws.sent[0].data.token), ['bad3', 'bad4']);
});

test('without getToken, reconnection uses the original token', async () => {
  const { srv, opts } = setup();
  const calls = await Calls.connect('http://h', 'good', opts);
  const back = new Promise((r) => calls.on('reconnected', r));
  srv.sockets[0].drop();
  await back;
  assert.equal(srv.sockets[1].sent[0].data.token, 'good');
  calls.close();
});

test('setPreference sends the preference; layer pushes of the stay are emitted as track:layer', async () => {
  const { srv, opts } = setup();
  const calls = await Calls.connect('http://h', 'good', opts);
  await calls.create('room');
  const ws = srv.sockets[0];
  await calls.setPreference('bob', 'cam', { maxHeight: 179.6 });
  await calls.setPreference('bob', 'cam', { paused: true });
  await calls.setPreference('bob', 'cam');
  const sent = ws.sent.filter((m) => m.type === 'setPreference').map((m) => m.data);
  assert.deepEqual(sent, [
    { userId: 'bob', trackName: 'cam', maxHeight: 180 },
    { userId: 'bob', trackName: 'cam', paused: true },
    { userId: 'bob', trackName: 'cam' },
  ]);
  const seen = [];
  calls.on('track:layer', (e) => seen.push(e));
  const layer = { channelId: 'room', userId: 'bob', trackName: 'cam', layer: 'q', width: 320, height: 180, limitedBy: 'preference' };
  ws.push({ type: 'layer', data: { ...layer, channelId: 'other' } }); // not this stay's
  ws.push({ type: 'layer', data: layer });
  await until(() => seen.length === 1, 'track:layer');
  assert.deepEqual(seen, [layer]);
  calls.close();
});

test('followElement derives the preference from the element: height times devicePixelRatio, paused when hidden', async () => {
  const observers = [];
  class FakeObserver {
    constructor(cb) {
      this.cb = cb;
      this.observed = [];
      observers.push(this);
    }
    observe(el) {
      this.observed.push(el);
    }
    disconnect() {
      this.observed = [];
    }
  }
  const saved = [globalThis.ResizeObserver, globalThis.IntersectionObserver, globalThis.devicePixelRatio];
  globalThis.ResizeObserver = class extends FakeObserver {};
  globalThis.IntersectionObserver = class extends FakeObserver {};
  globalThis.devicePixelRatio = 2;
  try {
    let received = false;
    const { srv, opts } = setup({
      setPreference: () => (received ? { data: { status: true } } : { error: { code: 'NotFound', message: 'not received' } }),
    });
    const calls = await Calls.connect('http://h', 'good', opts);
    await calls.create('room');
    const ws = srv.sockets[0];
    const prefs = () => ws.sent.filter((m) => m.type === 'setPreference').map((m) => m.data);
    const el = { clientHeight: 90 };
    const unfollow = calls.followElement('bob', 'cam', el);
    const [ro, io] = observers;
    assert.ok(ro instanceof globalThis.ResizeObserver && ro.observed[0] === el && io.observed[0] === el);
    await until(() => prefs().length === 1, 'the first preference');
    assert.deepEqual(prefs()[0], { userId: 'bob', trackName: 'cam', maxHeight: 180 });
    // Refused (not received yet): sent again when the track arrives.
    received = true;
    ws.push({ type: 'offer', data: { sdp: offerSDP([['0', 'bob', 'cam']]) } });
    await until(() => prefs().length === 2, 'the preference again at track:add');
    assert.deepEqual(prefs()[1], { userId: 'bob', trackName: 'cam', maxHeight: 180 });
    ro.cb([{ contentRect: { height: 360 } }]);
    await until(() => prefs().length === 3, 'the new height');
    assert.deepEqual(prefs()[2], { userId: 'bob', trackName: 'cam', maxHeight: 720 });
    ro.cb([{ contentRect: { height: 360 } }]); // unchanged: nothing sent
    io.cb([{ isIntersecting: false }]);
    await until(() => prefs().length === 4, 'paused');
    assert.deepEqual(prefs()[3], { userId: 'bob', trackName: 'cam', maxHeight: 720, paused: true });
    unfollow();
    assert.equal(ro.observed.length + io.observed.length, 0);
    io.cb([{ isIntersecting: true }]);
    await tick(20);
    assert.equal(prefs().length, 4, 'nothing sent after unfollow');
    calls.close();
  } finally {
    [globalThis.ResizeObserver, globalThis.IntersectionObserver, globalThis.devicePixelRatio] = saved;
  }
});

test('a camera of 640x360 or more is sent as layers q, h, f; a smaller one, a screen share or audio as one', async () => {
  const { layerEncodings } = await import('../sdk/media.js');
  const cam = (width, height, more = {}) => ({ kind: 'video', id: 'c', getSettings: () => ({ width, height, ...more }) });
  const three = [
    { rid: 'q', scaleResolutionDownBy: 4 },
    { rid: 'h', scaleResolutionDownBy: 2 },
    { rid: 'f', scaleResolutionDownBy: 1 },
  ];
  assert.deepEqual(layerEncodings('cam', cam(1280, 720)), three);
  assert.deepEqual(layerEncodings('cam', cam(640, 360)), three);
  assert.deepEqual(layerEncodings('cam', cam(360, 640)), three, 'portrait');
  assert.equal(layerEncodings('cam', cam(320, 240)), null);
  assert.equal(layerEncodings('cam', cam(640, 300)), null);
  assert.equal(layerEncodings('screen', cam(1920, 1080)), null);
  assert.equal(layerEncodings('share', cam(1920, 1080, { displaySurface: 'monitor' })), null);
  assert.equal(layerEncodings('mic', { kind: 'audio', getSettings: () => ({}) }), null);
  assert.equal(layerEncodings('cam', { kind: 'video' }), null, 'no settings');
});
