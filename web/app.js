// app.js: the callcore demo page. It drives the SDK (/sdk/calls.js) with a
// lobby, one tile per participant, moderation controls and an event log.
// For tests it exposes window.Calls, window.calls (the current connection)
// and window.app (this page's state and actions).

import { Calls, Mode } from '/sdk/calls.js';

const $ = (id) => document.getElementById(id);

/** The page's state. */
const app = {
  calls: null,
  name: '',
  local: null, // MediaStream of getUserMedia
  owner: false, // this user created the current call
  created: new Set(), // channels this page created (their owner may delete them)
  tiles: new Map(), // userId → tile
  join,
  create,
  leave,
};
window.Calls = Calls;
window.app = app;

// ---- event log ----

/** log adds one line to the event log; actions are [label, fn] buttons. */
function log(text, level = 'info', actions = []) {
  const li = document.createElement('li');
  li.className = level;
  const time = document.createElement('time');
  time.textContent = new Date().toLocaleTimeString();
  const span = document.createElement('span');
  span.textContent = text;
  li.append(time, span);
  const box = document.createElement('span');
  box.className = 'actions';
  for (const [label, fn] of actions) {
    const b = document.createElement('button');
    b.className = 'small secondary';
    b.textContent = label;
    b.onclick = () => {
      li.querySelectorAll('button').forEach((x) => (x.disabled = true));
      fn();
    };
    box.append(b);
  }
  if (actions.length) li.append(box);
  const list = $('log');
  list.append(li);
  list.scrollTop = list.scrollHeight;
}

/** attempt runs an SDK call and logs its failure readably. */
async function attempt(what, fn) {
  try {
    return await fn();
  } catch (e) {
    log(`${what} failed: ${e.code || 'Error'}: ${e.message}`, 'error');
    return undefined;
  }
}

const isMe = (id) => app.calls && id === app.calls.userId;
const who = (id) => (isMe(id) ? 'you' : id);
const whose = (id) => (isMe(id) ? 'your' : `${id}'s`);

// ---- connection ----

/** connect gets a dev token for name and connects (once per name). */
async function connect(name) {
  if (app.calls && app.calls.connected && app.name === name) return app.calls;
  if (app.calls) app.calls.close();
  const res = await fetch(`/dev/token?user=${encodeURIComponent(name)}&create=1`);
  if (!res.ok) throw Object.assign(new Error(`token: ${res.status} ${await res.text()}`), { code: 'UnAuthorized' });
  const { token } = await res.json();
  const calls = await Calls.connect(location.origin, token);
  app.calls = calls;
  app.name = name;
  window.calls = calls;
  wire(calls);
  $('who').hidden = false;
  $('who').textContent = `signed in as ${calls.userId}`;
  log(`connected as ${calls.userId}`);
  return calls;
}

/** media gets the camera and microphone, falling back to what is there. */
async function media() {
  if (app.local && app.local.getTracks().some((t) => t.readyState === 'live')) return app.local;
  const video = { width: { ideal: 640 }, height: { ideal: 360 } };
  for (const c of [{ video, audio: true }, { audio: true }, { video }]) {
    try {
      app.local = await navigator.mediaDevices.getUserMedia(c);
      return app.local;
    } catch (e) {
      log(`getUserMedia ${Object.keys(c).join('+')}: ${e.name}`, 'warn');
    }
  }
  app.local = new MediaStream();
  return app.local;
}

/** localTracks names the local tracks: cam and mic. */
function localTracks(stream) {
  const tracks = {};
  const v = stream.getVideoTracks()[0];
  const a = stream.getAudioTracks()[0];
  if (v) tracks.cam = v;
  if (a) tracks.mic = a;
  return tracks;
}

/** enter creates or joins a channel from the lobby's fields. */
async function enter(action) {
  const name = $('name').value.trim();
  const channel = $('channel').value.trim();
  const err = $('lobby-error');
  const note = $('lobby-note');
  err.hidden = true;
  if (!name || !channel) return;
  setBusy(true);
  try {
    const calls = await connect(name);
    const tracks = localTracks(await media());
    if (action === 'create') {
      const config = {
        kind: $('create-kind').value,
        joinRequest: $('create-joinrequest').checked,
      };
      const max = Number($('create-maxusers').value);
      if (max > 0) config.maxUsers = max;
      await calls.create(channel, tracks, config);
      app.created.add(channel);
    } else {
      note.textContent = `Joining ${channel}… (if the call takes join requests, an admin has to let you in)`;
      note.hidden = false;
      await calls.join(channel, tracks);
    }
    app.owner = app.created.has(channel);
    showCall();
  } catch (e) {
    const hint = {
      NotFound: 'No call with that name yet.',
      Exists: 'That call exists already: press Join.',
      NotMember: 'You are not a member of this call (or your request was refused).',
      Full: 'The call is full.',
      UnAuthorized: 'You are not allowed to do that.',
    }[e.code];
    err.textContent = `${e.code || 'Error'}: ${e.message}${hint ? ` — ${hint}` : ''}`;
    if (e.code === 'NotFound' && action === 'join') err.append(' ', button('Create it', () => enter('create')));
    err.hidden = false;
    log(`${action} ${channel} failed: ${e.code || ''} ${e.message}`, 'error');
  } finally {
    note.hidden = true;
    setBusy(false);
  }
}

function join(name, channel) {
  if (name) $('name').value = name;
  if (channel) $('channel').value = channel;
  return enter('join');
}

function create(name, channel) {
  if (name) $('name').value = name;
  if (channel) $('channel').value = channel;
  return enter('create');
}

async function leave() {
  await attempt('leave', () => app.calls.leave());
  checkStay();
}

function setBusy(busy) {
  $('join-btn').disabled = busy;
  $('create-btn').disabled = busy;
}

// ---- views ----

/** showCall switches to the call view and draws everyone known. */
function showCall() {
  const calls = app.calls;
  $('lobby').hidden = true;
  $('call').hidden = false;
  $('call-card').hidden = false;
  $('channel-name').hidden = false;
  $('channel-name').textContent = `channel ${calls.channel}`;
  $('delete-box').hidden = !app.owner;
  for (const u of calls.users) tile(u.id);
  tile(calls.userId);
  const me = app.tiles.get(calls.userId);
  me.video.srcObject = app.local;
  for (const r of calls.remoteTracks()) attach(r.userId, r.trackName, r.track);
  const cfg = calls.config;
  if (cfg) fillConfig(cfg);
  refresh();
}

/** showLobby returns to the lobby after a stay ended. */
function showLobby() {
  for (const t of app.tiles.values()) {
    if (t.follow) t.follow();
    t.el.remove();
  }
  app.tiles.clear();
  $('lobby').hidden = false;
  $('call').hidden = true;
  $('call-card').hidden = true;
  $('admin').hidden = true;
  $('channel-name').hidden = true;
  if (app.local) app.local.getTracks().forEach((t) => t.stop());
  app.local = null;
}

/** checkStay shows the lobby when the SDK says the stay is over. */
function checkStay() {
  if (app.calls && app.calls.channel === null && !$('call').hidden) showLobby();
}

/** isAdmin tells whether this user may moderate. */
function isAdmin() {
  const calls = app.calls;
  if (!calls || !calls.channel) return false;
  const me = calls.users.find((u) => u.id === calls.userId);
  return app.owner || !!(me && me.mode & Mode.Admin);
}

function fillConfig(cfg) {
  if (cfg.kind) $('cfg-kind').value = cfg.kind;
  $('cfg-joinrequest').checked = !!cfg.joinRequest;
  $('cfg-maxusers').value = cfg.maxUsers || 0;
  $('cfg-lastn').value = cfg.lastN || 0;
}

function el(tag, props = {}, ...children) {
  const e = Object.assign(document.createElement(tag), props);
  e.append(...children);
  return e;
}

/** tile returns userId's tile, creating it. */
function tile(userId) {
  let t = app.tiles.get(userId);
  if (t) return t;
  const me = isMe(userId);
  const video = el('video', { autoplay: true, playsInline: true, muted: true });
  const audio = el('audio', { autoplay: true });
  const name = el('span', { className: 'name', textContent: me ? `${userId} (you)` : userId });
  const badges = el('div', { className: 'badges' });
  const why = el('div', { className: 'why' });
  const controls = el('div', { className: 'controls' });
  // The layer of the user's video this page receives (track:layer).
  const layer = el('span', { className: 'badge layer', hidden: true, title: 'layer received' });
  const node = el('article', { className: me ? 'tile me' : 'tile' }, video, el('div', { className: 'meta' }, name, layer, badges), why, controls);
  node.dataset.user = userId;
  if (!me) {
    node.append(audio);
    // A click makes the tile large (its video then asks for a higher
    // layer: followElement) or small again.
    video.title = 'click to enlarge';
    video.addEventListener('click', () => node.classList.toggle('big'));
  }
  t = { el: node, video, audio, badges, why, controls, layer, follow: null, stream: new MediaStream(), sound: new MediaStream() };
  app.tiles.set(userId, t);
  if (me) $('tiles').prepend(node);
  else $('tiles').append(node);
  return t;
}

/**
 * attach plays a remote track in its user's tile. A video's receive
 * preference follows its element (followElement): a large tile gets the
 * full layer, small ones a lower one.
 */
function attach(userId, trackName, track) {
  const t = tile(userId);
  if (track.kind === 'video') {
    t.stream.getVideoTracks().forEach((x) => t.stream.removeTrack(x));
    t.stream.addTrack(track);
    t.video.srcObject = t.stream;
    t.video.play().catch(() => {});
    if (t.follow) t.follow();
    t.follow = app.calls.followElement(userId, trackName, t.video);
  } else {
    t.sound.addTrack(track);
    t.audio.srcObject = t.sound;
    t.audio.play().catch((e) => log(`audio of ${userId} does not play (${e.name}); click the page`, 'warn'));
  }
}

/** detach stops showing a remote track. */
function detach(userId, track) {
  const t = app.tiles.get(userId);
  if (!t || !track) return;
  t.stream.removeTrack(track);
  t.sound.removeTrack(track);
  if (track.kind === 'video' && t.follow) {
    t.follow();
    t.follow = null;
    t.layer.hidden = true;
  }
}

/** showLayer shows in a tile the layer its video is received at. */
function showLayer({ userId, layer, width, height, limitedBy }) {
  const t = tile(userId); // it may come before the track:add
  t.layer.hidden = false;
  const size = width && height ? ` ${width}×${height}` : '';
  t.layer.textContent = layer ? `${layer}${size}` : 'paused';
  if (limitedBy) t.layer.title = `layer received (limited by the ${limitedBy})`;
  else t.layer.title = layer ? 'layer received (the highest)' : 'not received';
}

/** refresh redraws every tile's badges and controls from the SDK's state. */
function refresh() {
  const calls = app.calls;
  if (!calls || !calls.channel) return;
  const admin = isAdmin();
  $('admin').hidden = !admin;
  const users = new Map(calls.users.map((u) => [u.id, u]));
  for (const [id, t] of app.tiles) drawTile(id, t, users.get(id), admin);
}

function drawTile(id, t, user, admin) {
  const tracks = user ? user.tracks : [];
  t.badges.replaceChildren();
  const reasons = [];
  for (const kind of ['audio', 'video']) {
    const list = tracks.filter((x) => x.kind === kind);
    const label = kind === 'audio' ? 'mic' : 'cam';
    if (!list.length) {
      t.badges.append(el('span', { className: 'badge', textContent: `no ${label}` }));
      continue;
    }
    const muted = list.every((x) => x.muted);
    t.badges.append(el('span', { className: `badge ${muted ? 'muted' : 'live'}`, textContent: `${label} ${muted ? 'muted' : 'on'}` }));
    for (const x of list) {
      if (x.muted && x.mutedBy) reasons.push(`${x.name} muted by ${who(x.mutedBy)}${x.muteReason ? `: “${x.muteReason}”` : ''}`);
    }
  }
  if (user && user.mode !== undefined) t.badges.append(el('span', { className: 'badge role', textContent: modeText(user.mode) }));
  t.why.textContent = reasons.join(' · ');
  t.why.hidden = reasons.length === 0;
  t.controls.replaceChildren(...(isMe(id) ? ownControls(tracks) : admin ? adminControls(id, user, tracks) : []));
  t.controls.hidden = t.controls.childElementCount === 0;
}

function modeText(mode) {
  const bits = [];
  if (mode & Mode.Admin) bits.push('admin');
  if (mode & Mode.Send) bits.push('send');
  if (mode & Mode.Recv) bits.push('recv');
  return bits.join('+') || 'no rights';
}

function button(text, onclick, cls = 'small secondary') {
  return el('button', { className: cls, textContent: text, onclick });
}

/** ownControls: mute or unmute the camera and the microphone. */
function ownControls(tracks) {
  const out = [];
  for (const name of Object.keys(app.calls.tracks)) {
    const st = tracks.find((x) => x.name === name);
    const muted = !!(st && st.muted);
    const b = button(`${muted ? 'Unmute' : 'Mute'} ${name}`, () => attempt(`mute ${name}`, () => app.calls.muteTracks(name, !muted)), muted ? 'small on' : 'small secondary');
    if (muted && st.mutedBy) {
      b.disabled = true;
      b.title = `muted by ${st.mutedBy}: only an admin can unmute it`;
    }
    out.push(b);
  }
  return out;
}

/** adminControls: mute another user's audio or video, remove it, set its mode. */
function adminControls(id, user, tracks) {
  const reason = el('input', { type: 'text', placeholder: 'reason (optional)' });
  const out = [];
  for (const kind of ['audio', 'video']) {
    const list = tracks.filter((x) => x.kind === kind);
    const muted = list.length > 0 && list.every((x) => x.muted && x.mutedBy);
    out.push(button(`${muted ? 'Unmute' : 'Mute'} ${kind}`, () => attempt(`mute ${id}'s ${kind}`, () => app.calls.muteUser(id, kind, !muted, reason.value.trim() || undefined)), muted ? 'small on' : 'small secondary'));
  }
  out.push(reason);
  out.push(button('Remove', () => attempt(`remove ${id}`, () => app.calls.delUsers([id])), 'small danger'));
  const mode = user && user.mode !== undefined ? user.mode : 6;
  const boxes = [];
  const modes = el('div', { className: 'modes' });
  for (const [label, bit] of [['admin', Mode.Admin], ['send', Mode.Send], ['recv', Mode.Recv]]) {
    const box = el('input', { type: 'checkbox', checked: !!(mode & bit) });
    box.dataset.bit = bit;
    boxes.push(box);
    modes.append(el('label', {}, box, label));
  }
  modes.append(button('Set mode', () => {
    const m = boxes.reduce((acc, b) => (b.checked ? acc | Number(b.dataset.bit) : acc), 0);
    attempt(`set ${whose(id)} mode`, () => app.calls.modUsers([{ id, mode: m }]));
  }));
  out.push(modes);
  return out;
}

// ---- SDK events ----

/** wire logs every event readably and keeps the tiles in step. */
function wire(calls) {
  calls.on('status', (s) => {
    const p = $('media-status');
    p.textContent = `media: ${s}`;
    p.className = `pill status-${s}`;
  });
  // How the media connection reached the server: UDP, ICE over TCP, or
  // through the TURN server (and over what).
  calls.on('path', ({ path, relayProtocol, ms }) => {
    const p = $('media-status');
    const how = path === 'relay' ? `relay (TURN over ${relayProtocol || '?'})` : path;
    p.textContent = `media: connected over ${how}`;
    p.title = `media connection: ${how}, connected in ${ms} ms`;
    log(`media connected over ${how} in ${ms} ms`);
  });
  calls.on('track:add', ({ userId, trackName, track }) => {
    log(`${who(userId)}: ${trackName} (${track.kind}) arrived`);
    attach(userId, trackName, track);
    refresh();
  });
  calls.on('track:layer', showLayer);
  calls.on('track:del', ({ userId, trackName, track }) => {
    log(`${who(userId)} stopped ${trackName}`);
    detach(userId, track);
    refresh();
  });
  calls.on('track:mute', ({ userId, trackName, value, mutedBy, muteReason }) => {
    const by = mutedBy ? ` by ${who(mutedBy)}` : '';
    const why = muteReason ? ` (“${muteReason}”)` : '';
    log(`${whose(userId)} ${trackName} ${value ? 'muted' : 'unmuted'}${by}${why}`);
    refresh();
  });
  calls.on('cnl:create', ({ senderId, channelId }) => log(`${who(senderId)} created ${channelId}`));
  calls.on('cnl:config', ({ senderId, config }) => {
    log(`${who(senderId)} configured the call: ${configText(config)}`);
    fillConfig(config || {});
  });
  calls.on('cnl:speakers', ({ speakers }) => {
    // Outline the dominant speaker's tile; the other speakers' more lightly.
    const order = (speakers || []).map((s) => s.userId);
    for (const [id, t] of app.tiles) {
      t.el.classList.toggle('speaking', order[0] === id);
      t.el.classList.toggle('speaker', order.indexOf(id) > 0);
    }
  });
  calls.on('cnl:delete', ({ senderId, reason }) => {
    log(`${who(senderId)} deleted the call${reason ? `: “${reason}”` : ''}`, 'warn');
    checkStay();
  });
  calls.on('cnl:req', ({ userId }) => {
    log(`${userId} asks to join`, 'warn', [
      ['Approve', () => attempt(`approve ${userId}`, () => calls.addUsers([userId]))],
      ['Refuse', () => attempt(`refuse ${userId}`, () => calls.delUsers([userId]))],
    ]);
  });
  calls.on('user:join', ({ userId }) => {
    log(`${who(userId)} joined`);
    tile(userId);
    refresh();
  });
  calls.on('user:left', ({ userId, error }) => {
    log(`${who(userId)} left${error ? ` (${error})` : ''}`);
    dropTile(userId);
    checkStay();
    refresh();
  });
  calls.on('user:add', ({ users, senderId }) => {
    log(`${who(senderId)} added ${users.map((u) => who(u.id)).join(', ')}`);
    refresh();
  });
  calls.on('user:del', ({ users, senderId }) => {
    log(`${who(senderId)} removed ${users.map(who).join(', ')}`, 'warn');
    users.forEach(dropTile);
    checkStay();
    refresh();
  });
  calls.on('user:mod', ({ users, senderId }) => {
    log(`${who(senderId)} set ${users.map((u) => `${whose(u.id)} mode to ${modeText(u.mode)}`).join(', ')}`);
    refresh();
  });
  calls.on('newcall', ({ channelId, senderId }) => {
    log(`${who(senderId)} invites you to ${channelId}`, 'warn', [['Join', () => join(undefined, channelId)]]);
  });
  calls.on('bye', ({ reason }) => {
    log(reason === 'replaced' ? 'your call continues on another tab or device' : `server: ${reason}`, 'warn');
    checkStay();
  });
  calls.on('disconnected', ({ reason }) => {
    log(`disconnected: ${reason}`, 'error');
    checkStay();
  });
  calls.on('reconnected', ({ resumed }) => log(resumed ? 'reconnected: the call went on' : 'reconnected', 'warn'));
}

function dropTile(userId) {
  if (isMe(userId)) return;
  const t = app.tiles.get(userId);
  if (!t) return;
  if (t.follow) t.follow();
  t.el.remove();
  app.tiles.delete(userId);
}

function configText(c = {}) {
  const parts = [];
  if (c.kind) parts.push(c.kind === 'audioVideo' ? 'audio and video' : `${c.kind} only`);
  parts.push(c.joinRequest ? 'join requests on' : 'join requests off');
  parts.push(c.maxUsers ? `at most ${c.maxUsers} users` : 'no user limit');
  if (c.lastN) parts.push(`video of the last ${c.lastN} speakers`);
  return parts.join(', ');
}

// ---- page controls ----

$('lobby-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  const action = ev.submitter && ev.submitter.dataset.action === 'create' ? 'create' : 'join';
  enter(action);
});
$('leave-btn').onclick = leave;
$('delete-btn').onclick = async () => {
  const reason = $('delete-reason').value.trim();
  await attempt('delete', () => app.calls.delete(reason || undefined));
  checkStay();
};
$('add-user-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const id = $('add-user').value.trim();
  if (!id) return;
  if (await attempt(`add ${id}`, () => app.calls.addUsers([id]))) $('add-user').value = '';
});
$('config-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  const config = {
    kind: $('cfg-kind').value,
    joinRequest: $('cfg-joinrequest').checked,
    maxUsers: Math.max(0, Number($('cfg-maxusers').value) || 0),
    lastN: Math.max(0, Number($('cfg-lastn').value) || 0),
  };
  attempt('configure', () => app.calls.configure(config));
});
// Autoplay policies may hold remote audio until the first click.
document.addEventListener('click', () => {
  for (const t of app.tiles.values()) if (t.audio.srcObject && t.audio.paused) t.audio.play().catch(() => {});
});

const params = new URLSearchParams(location.search);
if (params.get('name')) $('name').value = params.get('name');
if (params.get('channel')) $('channel').value = params.get('channel');
