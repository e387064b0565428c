// Unit tests of the ICE fallback (sdk/icepath.js), with a fake peer
// connection and node's mock timers.
import { test, mock } from 'node:test';
import assert from 'node:assert/strict';
import { IcePath, stageConfig, pathOf } from '../sdk/icepath.js';

const servers = [
  { urls: ['stun:stun.example.org'] },
  { urls: ['turn:127.0.0.1:3478?transport=udp', 'turns:turn.example.org:5349?transport=tcp'], username: '1:a', credential: 'p' },
];

test('stageConfig: direct leaves the TURN servers out, relay allows relayed candidates only', () => {
  assert.deepEqual(stageConfig('direct', servers), { iceServers: [servers[0]], iceTransportPolicy: 'all' });
  assert.deepEqual(stageConfig('turn', servers), { iceServers: servers, iceTransportPolicy: 'all' });
  assert.deepEqual(stageConfig('relay', servers), { iceServers: servers, iceTransportPolicy: 'relay' });
});

/** fakeMedia is a Media whose peer connection records its configurations and restarts. */
function fakeMedia(stats) {
  const media = {
    status: 'connecting',
    restarts: 0,
    restartIce() {
      this.restarts++;
    },
    pc: {
      configs: [],
      getConfiguration() {
        return { bundlePolicy: 'max-bundle', ...(this.configs.at(-1) || {}) };
      },
      setConfiguration(c) {
        this.configs.push(c);
      },
      getStats: async () => stats,
    },
  };
  return media;
}

test('IcePath: not connected, it restarts ICE with the TURN servers, then relay only, and stops there', () => {
  mock.timers.enable({ apis: ['setTimeout', 'Date'] });
  try {
    const media = fakeMedia(new Map());
    const p = new IcePath(media, servers, { after: 4000, start: 'direct', onPath() {}, log() {} });
    assert.equal(media.pc.configs.at(-1).iceTransportPolicy, 'all');
    assert.equal(media.pc.configs.at(-1).iceServers.length, 1);
    mock.timers.tick(3999);
    assert.equal(media.restarts, 0);
    mock.timers.tick(1);
    assert.equal(p.stage, 'turn');
    assert.equal(media.restarts, 1);
    assert.deepEqual(media.pc.configs.at(-1).iceServers, servers);
    assert.equal(media.pc.configs.at(-1).bundlePolicy, 'max-bundle');
    mock.timers.tick(4000);
    assert.equal(p.stage, 'relay');
    assert.equal(media.restarts, 2);
    assert.equal(media.pc.configs.at(-1).iceTransportPolicy, 'relay');
    mock.timers.tick(60000);
    assert.equal(media.restarts, 2);
    p.close();
  } finally {
    mock.timers.reset();
  }
});

test('IcePath: connected in time, no restart; the path is read from the selected pair', async () => {
  mock.timers.enable({ apis: ['setTimeout'] });
  try {
    const stats = new Map([
      ['T', { type: 'transport', selectedCandidatePairId: 'P' }],
      ['P', { type: 'candidate-pair', localCandidateId: 'L' }],
      ['L', { type: 'local-candidate', candidateType: 'relay', protocol: 'udp', relayProtocol: 'tls' }],
    ]);
    const media = fakeMedia(stats);
    const seen = [];
    const p = new IcePath(media, servers, { after: 4000, start: 'direct', onPath: (x) => seen.push(x), log() {} });
    mock.timers.tick(1000);
    media.status = 'connected';
    p.status('connected');
    mock.timers.tick(10000);
    assert.equal(media.restarts, 0);
    await new Promise((r) => setImmediate(r));
    assert.equal(seen.length, 1);
    assert.equal(seen[0].path, 'relay');
    assert.equal(seen[0].relayProtocol, 'tls');
    assert.equal(seen[0].stage, 'direct');
    assert.equal(p.path, 'relay');
    p.setServers(servers); // renewed credentials, at stage direct: nothing to redo
    assert.equal(media.restarts, 0);
    p.status('disconnected');
    assert.equal(p.path, null);
    p.close();
    // Relayed at stage turn: renewed credentials restart ICE for a new
    // allocation made with them.
    const relayed = fakeMedia(stats);
    const q = new IcePath(relayed, servers, { after: 4000, start: 'turn', onPath() {}, log() {} });
    relayed.status = 'connected';
    q.status('connected');
    await new Promise((r) => setImmediate(r));
    assert.equal(q.stage, 'turn');
    assert.equal(q.path, 'relay');
    q.setServers(servers);
    assert.equal(relayed.restarts, 1);
    q.close();
  } finally {
    mock.timers.reset();
  }
});

test('pathOf: a host TCP pair is tcp, a host UDP pair udp, no pair null', async () => {
  const pc = (cand) => ({
    getStats: async () =>
      new Map([
        ['T', { type: 'transport', selectedCandidatePairId: 'P' }],
        ['P', { type: 'candidate-pair', localCandidateId: 'L' }],
        ['L', { type: 'local-candidate', ...cand }],
      ]),
  });
  assert.deepEqual(await pathOf(pc({ candidateType: 'host', protocol: 'tcp' })), { path: 'tcp' });
  assert.deepEqual(await pathOf(pc({ candidateType: 'host', protocol: 'udp' })), { path: 'udp' });
  assert.equal(await pathOf({ getStats: async () => new Map() }), null);
});
