// Unit tests of the channel state (sdk/state.js) on its own: snapshots,
// events by seq, and what an event tells its caller to drop. Run with
// `node --test web/test/`.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ChannelState, CONFIG_DEFAULTS, RECENT_EVENTS } from '../sdk/state.js';

const snap = [
  { id: 'me', mode: 7, tracks: [] },
  { id: 'bob', mode: 6, tracks: [{ name: 'cam', kind: 'video', muted: false }] },
];

/** feed keeps ev and applies it when it is newer than the state, as Calls does. */
function feed(st, ev, me = 'me', leaving = false) {
  st.keep(ev);
  return st.fresh(ev) ? st.apply(ev, me, leaving) : null;
}

test('ChannelState: a snapshot, then events newer than it; an event already reflected is not applied again', () => {
  const st = new ChannelState();
  assert.deepEqual(st.load(3, snap, 'room'), []);
  assert.deepEqual(feed(st, { event: 'track:mute', seq: 4, channelId: 'room', userId: 'bob', trackName: 'cam', value: true, mutedBy: 'me' }), {});
  assert.deepEqual(st.tracksOf('bob'), [{ name: 'cam', kind: 'video', muted: true, mutedBy: 'me' }]);
  assert.equal(feed(st, { event: 'track:mute', seq: 4, channelId: 'room', userId: 'bob', trackName: 'cam', value: false }), null, 'seq 4 again');
  assert.equal(st.tracksOf('bob')[0].muted, true);
  // A user first seen in an event gets the channel's default permission.
  st.config = { ...CONFIG_DEFAULTS, defaultPermission: 4 };
  feed(st, { event: 'user:join', seq: 5, channelId: 'room', userId: 'carol' });
  assert.equal(st.users().find((u) => u.id === 'carol').mode, 4);
  // The copies handed out are the caller's.
  st.users()[0].tracks.push({ name: 'x' });
  st.tracksOf('bob')[0].muted = false;
  assert.equal(st.tracksOf('bob')[0].muted, true);
  assert.deepEqual(st.tracksOf('me'), []);
});

test('ChannelState: a snapshot older than the events kept returns the newer ones to re-apply', () => {
  const st = new ChannelState();
  st.load(1, snap, 'room');
  feed(st, { event: 'user:left', seq: 2, channelId: 'room', userId: 'bob' });
  feed(st, { event: 'user:join', seq: 3, channelId: 'room', userId: 'dan' });
  feed(st, { event: 'user:join', seq: 9, channelId: 'other', userId: 'eve' });
  // getUsers answered with the state of seq 2: only seq 3 of this channel is newer.
  const newer = st.load(2, [{ id: 'me', mode: 7, tracks: [] }], 'room');
  assert.deepEqual(newer.map((e) => e.seq), [3]);
  for (const ev of newer) {
    st.replayed(ev);
    st.apply(ev, 'me', false);
  }
  assert.deepEqual([...st.ids()].sort(), ['dan', 'me']);
  assert.equal(st.fresh({ seq: 3 }), false);
  assert.equal(st.fresh({ seq: 4 }), true);
});

test('ChannelState: past the events kept, an older snapshot is refused unless forced', () => {
  const st = new ChannelState();
  st.load(0, snap, 'room');
  for (let seq = 1; seq <= RECENT_EVENTS + 5; seq++) feed(st, { event: 'user:join', seq, channelId: 'room', userId: `u${seq}` });
  const before = st.ids().size;
  assert.equal(st.load(3, snap, 'room'), null, 'seq 3: the events after it are no longer all kept');
  assert.equal(st.ids().size, before, 'state unchanged');
  assert.equal(st.load(3, snap, 'room', true).length, RECENT_EVENTS, 'forced: the events kept are re-applied');
  st.forgetRecent();
  assert.deepEqual(st.load(3, snap, 'room'), []);
});

test('ChannelState: what events tell the caller to drop or end', () => {
  const st = new ChannelState();
  st.load(1, snap, 'room');
  assert.deepEqual(st.apply({ event: 'track:del', userId: 'bob', trackName: 'cam' }, 'me', false), { dropTrack: { userId: 'bob', trackName: 'cam' } });
  assert.equal(st.hasTrack('bob', 'cam'), false);
  assert.deepEqual(st.apply({ event: 'user:del', users: ['bob'] }, 'me', false), { dropUsers: ['bob'] });
  assert.equal(st.has('bob'), false);
  assert.deepEqual(st.apply({ event: 'user:left', userId: 'me' }, 'me', false), { end: 'lost' }, 'not left by us');
  assert.deepEqual(st.apply({ event: 'user:left', userId: 'me' }, 'me', true), { end: true }, 'our leave()');
  assert.equal(st.apply({ event: 'user:del', users: ['me'] }, 'me', false).end, true);
  assert.deepEqual(st.apply({ event: 'cnl:delete' }, 'me', false), { end: true });
  st.apply({ event: 'cnl:config', config: { maxUsers: 5 } }, 'me', false);
  assert.deepEqual(st.config, { ...CONFIG_DEFAULTS, maxUsers: 5 });
  st.configure({ lastN: 2, maxUsers: undefined });
  assert.deepEqual(st.config, { ...CONFIG_DEFAULTS, maxUsers: 5, lastN: 2 });
  st.apply({ event: 'cnl:speakers', speakers: [{ userId: 'me', level: 30, extra: 1 }] }, 'me', false);
  assert.deepEqual(st.speakers, [{ userId: 'me', level: 30 }]);
  st.reset();
  assert.equal(st.config, null);
  assert.deepEqual(st.speakers, []);
  assert.equal(st.ids().size, 0);
});
