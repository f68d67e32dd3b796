// Live chat with the clock running (issue 3): ping and chat timeouts,
// agent and visitor reconnect grace periods, key expiry. These need short
// settings, so this file brings up a private stack of its own (same web
// server as the suite, KEFU_WEB) in $KEFU_STACK_DIR-chat-timing (removed
// afterwards unless KEFU_TEST_VAR is set) with
// KEFU_EXTRA_INI=40-chat-timing.ini:
//   PingLastTimeSec 3, ChatLastTimeSec 7, AgentReconnectGraceSec 3,
//   VisitorReconnectGraceSec 3, AgentKeyTtlSec 5, VisitorKeyTtlSec 5,
//   MaxConnection 8, a small send queue with big fast messages (for the
//   slow reader), and [Messages] texts of its own.
// The relay checks its clocks once a second in whole seconds, so "after N s"
// means anywhere from N-1 to N+2 s; the waits allow a few seconds more.
// Every client here pings every second (keepalive) unless a test wants it
// silent, so the 3 s ping timeout fires only where it is meant to.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { ipAllocator, randomName, assertEnvelope } from './lib.mjs';
import { Stack, scope, messages, assertFrame, assertRefusal, sleep } from './wslib.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '../..');
const STACK = process.env.KEFU_STACK || path.join(ROOT, 'deploy/stack');
const WEB = process.env.KEFU_WEB || 'lighttpd';
// Next to the suite's stack (run-integration.sh makes one per run), so two
// runs at once never share this one either.
const DIR = process.env.KEFU_STACK_DIR
  ? `${path.resolve(process.env.KEFU_STACK_DIR)}-chat-timing`
  : path.join(ROOT, 'tests', `var-chat-timing-${WEB}.${process.pid}`);
const INI = path.join(HERE, '40-chat-timing.ini');

const PING_SEC = 3;
const CHAT_SEC = 7;
const GRACE_SEC = 3;
const KEY_TTL_SEC = 5;
const KA = 1000; // keepalive ping interval, ms

const ip = ipAllocator(import.meta.url);
const chat = (content, to) => (to === undefined ? { type: 'chat', content } : { type: 'chat', content, to });

let S; // the private stack
let MSG; // its [Messages]
let agentB; // a second agent account {username, password}
let early; // keys issued at the start, checked once expired

function stackCmd(args, env) {
  return new Promise((resolve, reject) => {
    execFile(STACK, args, { env, timeout: 240000, maxBuffer: 8 << 20 }, (err, stdout, stderr) => {
      if (err) {
        err.message += `\n--- stdout\n${stdout}\n--- stderr\n${stderr}${logTails()}`;
        reject(err);
      } else {
        resolve({ stdout, stderr });
      }
    });
  });
}

function logTails() {
  let out = '';
  try {
    for (const f of fs.readdirSync(path.join(DIR, 'log'))) {
      if (!f.endsWith('.log')) continue;
      const text = fs.readFileSync(path.join(DIR, 'log', f), 'utf8').split('\n').slice(-20).join('\n');
      out += `\n--- tail of ${f}\n${text}`;
    }
  } catch {
    /* no logs */
  }
  return out;
}

/* The environment for deploy/stack: the suite's stack settings left out. */
function stackEnv() {
  const env = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (k.startsWith('KEFU_') && k !== 'KEFU_WEB' && k !== 'KEFU_BIN') continue;
    env[k] = v;
  }
  env.KEFU_WEB = WEB;
  env.KEFU_EXTRA_INI = INI;
  return env;
}

before(
  async () => {
    await stackCmd(['down', DIR], stackEnv()).catch(() => {});
    fs.rmSync(DIR, { recursive: true, force: true });
    await stackCmd(['up', DIR], stackEnv());
    S = Stack.fromDir(DIR);
    MSG = messages(S.config);
    agentB = await S.addAdmin(randomName('ws_'), 'Agent B');

    // Keys that must be dead by the last test: an agent key (its account
    // stays registered) and a visitor key, neither ever used.
    const from = ip();
    const c = await S.addAdmin(randomName('ws_'), 'Agent C');
    const cToken = await S.login(c.username, c.password, from);
    early = {
      at: Date.now(),
      agentToken: cToken,
      agentKey: (await S.registerAgent(cToken, from)).ws_key,
      visitorUrl: (await S.link(from)).url,
      from,
    };
  },
  { timeout: 300000 },
);

after(
  async () => {
    if (S) await S.closeAll();
    await stackCmd(['down', DIR], stackEnv());
    if (!process.env.KEFU_TEST_VAR) fs.rmSync(DIR, { recursive: true, force: true });
  },
  { timeout: 120000 },
);

/* The admin's session, registered and connected with keepalive. */
async function adminAgent(s, from, opts = {}) {
  const token = s.agent(await S.loginAdmin(from), from);
  const a = await S.agent(token, { from, keepalive: KA, ...opts });
  return { token, ...a };
}

/* A visitor with keepalive, bound to `agent` (both `connect`s checked). */
async function boundVisitor(agent, label) {
  const from = ip();
  const v = await S.visitor({ from, keepalive: KA, label });
  assertFrame(await agent.next('connect', 5000, v.key), 'connect', { ws_key: v.key, ip: from });
  assertFrame(await v.client.next('connect'), 'connect', { ws_key: v.key });
  v.from = from;
  return v;
}

/* A message each way (matched by content: a reconnected client may first be sent earlier ones again). */
async function chatBothWays(agent, v, tag) {
  v.client.send(chat(`visitor ${tag}`));
  assertFrame(await agent.chat(`visitor ${tag}`, 5000, v.key), 'chat', { from: v.key, ws_key: v.key });
  agent.send(chat(`agent ${tag}`, v.key));
  assertFrame(await v.client.chat(`agent ${tag}`), 'chat', { from: 'agent', ws_key: v.key });
}

test('the stack uses the [Messages] texts of its configuration', () => {
  assert.equal(MSG.NoAgent, 'test-NoAgent: please hold on');
  assert.equal(MSG.AgentAway, 'test-AgentAway: your agent is away');
});

test('a client that never pings is closed with 4000; one that pings stays', { timeout: 30000 }, async () => {
  const s = scope(S);
  const from = ip();
  try {
    const token = s.agent(await S.loginAdmin(from), from);
    const silentAgent = (await S.agent(token, { from, label: 'silent agent' })).client;
    const t0 = Date.now();
    const silent = await S.visitor({ from: ip(), label: 'silent visitor' });
    const talker = await S.visitor({ from: ip(), keepalive: KA, label: 'pinging visitor' });
    await silent.client.next('connect');
    assertFrame(await talker.client.next('connect'), 'connect', { content: MSG.AgentJoined });

    const v = await silent.client.waitClosed((PING_SEC + 5) * 1000);
    assert.equal(v.code, 4000, `silent visitor: ${JSON.stringify(v)}`);
    const a = await silentAgent.waitClosed(5000);
    assert.equal(a.code, 4000, `silent agent: ${JSON.stringify(a)}`);
    const elapsed = Date.now() - t0;
    assert.ok(elapsed >= (PING_SEC - 1) * 1000, `closed after ${elapsed} ms, before PingLastTimeSec`);

    // The agent's ping timeout is a drop: its other visitor is told.
    assertFrame(await talker.client.next('system', 5000), 'system', { content: MSG.AgentAway, ws_key: talker.key });
    assert.ok(talker.client.isOpen, 'the pinging visitor is still connected');
    talker.client.stopKeepalive();
    assertFrame(await talker.client.ping(), 'pong');
  } finally {
    await s.done();
  }
});

test('no chat for ChatLastTimeSec ends the conversation; a chat restarts the clock', { timeout: 40000 }, async () => {
  const s = scope(S);
  const from = ip();
  try {
    const { token, client: agent } = await adminAgent(s, from);
    const quiet = await boundVisitor(agent, 'quiet visitor');
    const t0 = Date.now();
    const busy = await boundVisitor(agent, 'busy visitor');

    // Half way, the busy pair talks: its clock starts again.
    await sleep(3500);
    agent.send(chat('still there?', busy.key));
    assertFrame(await busy.client.chat('still there?'), 'chat', { from: 'agent' });

    assertFrame(await quiet.client.next('close', (CHAT_SEC + 5) * 1000), 'close', {
      ws_key: quiet.key,
      content: MSG.ChatEnded,
    });
    const elapsed = Date.now() - t0;
    assert.ok(elapsed >= (CHAT_SEC - 1) * 1000, `ended after ${elapsed} ms, before ChatLastTimeSec`);
    assertFrame(await agent.next('close', 3000, quiet.key), 'close', { ws_key: quiet.key, content: MSG.ChatEnded });
    assert.equal((await quiet.client.waitClosed()).code, 1000);

    // The busy pair and the agent's connection go on.
    await busy.client.none((f) => f.type === 'close', 1000);
    assert.ok(busy.client.isOpen && agent.isOpen);
    await chatBothWays(agent, busy, 'after the timeout');
    const info = await S.info(token, from);
    assert.equal(info.user_clients.find((x) => x.ws_key === quiet.key), undefined, JSON.stringify(info));
    assert.ok(info.user_clients.find((x) => x.ws_key === busy.key), JSON.stringify(info));
  } finally {
    await s.done();
  }
});

test('agent drop within the grace period: AgentAway, then it comes back with its visitor', { timeout: 30000 }, async () => {
  const s = scope(S);
  const from = ip();
  try {
    const { token, client: agent } = await adminAgent(s, from);
    const v = await boundVisitor(agent, 'visitor');
    await chatBothWays(agent, v, 'before');

    await agent.terminate();
    assertFrame(await v.client.next('system', (GRACE_SEC + 2) * 1000), 'system', {
      ws_key: v.key,
      content: MSG.AgentAway,
    });

    // An agent away takes no new visitor: one arriving now waits.
    const wfrom = ip();
    const w = await S.visitor({ from: wfrom, keepalive: KA, label: 'new visitor' });
    assertFrame(await w.client.next('system'), 'system', { ws_key: w.key, content: MSG.NoAgent });

    const back = (await S.agent(token, { from, keepalive: KA, label: 'agent again' })).client;
    assertFrame(await back.next('connect', 5000, v.key), 'connect', { ws_key: v.key, ip: v.from });
    assertFrame(await v.client.next('system', 5000), 'system', { ws_key: v.key, content: MSG.AgentBack });
    await chatBothWays(back, v, 'after');
    // ...and the one waiting is assigned to it now.
    assertFrame(await back.next('connect', 5000, w.key), 'connect', { ws_key: w.key, ip: wfrom });
    assertFrame(await w.client.next('connect'), 'connect', { ws_key: w.key, content: MSG.AgentJoined });
    await chatBothWays(back, w, 'new one');

    // The first connection's grace period runs out meanwhile: it changes
    // nothing for the connection that came back.
    await v.client.none(
      (f) => f.type === 'close' || f.type === 'connect' || (f.type === 'system' && f.content === MSG.NoAgent),
      (GRACE_SEC + 1.5) * 1000,
      'close, connect or NoAgent after the agent came back',
    );
    await chatBothWays(back, v, 'later');
  } finally {
    await s.done();
  }
});

test('agent drop past the grace period: the visitor is queued again (NoAgent) and another agent gets it', { timeout: 30000 }, async () => {
  const s = scope(S);
  const from = ip();
  try {
    const { token, client: agent } = await adminAgent(s, from);
    const meA = await S.adminId(token, from);
    const v = await boundVisitor(agent, 'visitor');
    await chatBothWays(agent, v, 'with A');

    await agent.terminate();
    assertFrame(await v.client.next('system', 5000), 'system', { content: MSG.AgentAway });
    const t0 = Date.now();
    assertFrame(await v.client.next('system', (GRACE_SEC + 5) * 1000), 'system', {
      ws_key: v.key,
      content: MSG.NoAgent,
    });
    assert.ok(Date.now() - t0 >= (GRACE_SEC - 1) * 1000 - 500, 'requeued before the grace period ran out');

    const tokenB = s.agent(await S.login(agentB.username, agentB.password, from), from);
    const meB = await S.adminId(tokenB, from);
    const b = (await S.agent(tokenB, { from, keepalive: KA, label: 'agent B' })).client;
    assertFrame(await b.next('connect', 5000, v.key), 'connect', { ws_key: v.key, ip: v.from });
    assertFrame(await v.client.next('connect', 5000), 'connect', { ws_key: v.key });
    await chatBothWays(b, v, 'with B');

    const info = await S.info(tokenB, from);
    assert.equal(info.user_clients.find((x) => x.ws_key === v.key)?.bind_service, meB, JSON.stringify(info));
    assert.equal(info.service_clients.find((x) => x.admin_id === meA), undefined, `A is gone: ${JSON.stringify(info)}`);
  } finally {
    await s.done();
  }
});

test('visitor drop (no close frame) and back with the same key within the grace: same agent', { timeout: 30000 }, async () => {
  const s = scope(S);
  const from = ip();
  try {
    const { token, client: agent } = await adminAgent(s, from);
    const me = await S.adminId(token, from);
    const v = await boundVisitor(agent, 'visitor');
    await chatBothWays(agent, v, 'before');

    await v.client.terminate();
    await sleep(500);
    const again = await S.connect(v.url, { from: v.from, keepalive: KA, label: 'visitor again' });
    const w = { key: v.key, client: again };
    await chatBothWays(agent, w, 'after');
    assert.equal((await S.info(token, from)).user_clients.find((x) => x.ws_key === v.key)?.bind_service, me);

    // Past the first connection's grace deadline: still together.
    await agent.none((f) => f.type === 'close', (GRACE_SEC + 1.5) * 1000, `close for ${v.key}`);
    await again.none((f) => f.type === 'close' || f.type === 'system', 0);
    await chatBothWays(agent, w, 'later');
  } finally {
    await s.done();
  }
});

test('visitor drop without coming back: its agent gets close once the grace period is over', { timeout: 30000 }, async () => {
  const s = scope(S);
  const from = ip();
  try {
    const { token, client: agent } = await adminAgent(s, from);
    const v = await boundVisitor(agent, 'visitor');
    const t0 = Date.now();
    await v.client.terminate();
    assertFrame(await agent.next('close', (GRACE_SEC + 5) * 1000, v.key), 'close', {
      ws_key: v.key,
      content: MSG.ChatEnded,
    });
    const elapsed = Date.now() - t0;
    assert.ok(elapsed >= (GRACE_SEC - 1) * 1000, `close after ${elapsed} ms: no grace period`);
    const info = await S.info(token, from);
    assert.equal(info.user_clients.find((x) => x.ws_key === v.key), undefined, JSON.stringify(info));
    assertRefusal(await S.refused(v.url, { from: v.from }), 401);
  } finally {
    await s.done();
  }
});

test('keys expire: an unused agent key after AgentKeyTtlSec, an unused visitor key after VisitorKeyTtlSec', { timeout: 30000 }, async () => {
  const wait = early.at + (KEY_TTL_SEC + 1.5) * 1000 - Date.now();
  if (wait > 0) await sleep(wait);
  assertRefusal(await S.refused(`/ws/admin/link?ws_key=${early.agentKey}`, { from: early.from }), 401);
  assertRefusal(await S.refused(early.visitorUrl, { from: early.from }), 401);

  // The account is still registered: a fresh key works.
  const s = scope(S);
  try {
    s.agent(early.agentToken, early.from);
    const a = (await S.agent(early.agentToken, { from: early.from, keepalive: KA })).client;
    assertFrame(await a.ping(), 'pong');
  } finally {
    await s.done();
  }
});

test(
  'an agent that drops, goes offline and online again, then drops again keeps its whole grace period',
  // The first socket's grace period must not end the second one's: after
  // POST /admin/ws/close the agent's connection count starts again, so
  // both drops can carry the same generation number.
  { timeout: 30000 },
  async () => {
    const s = scope(S);
    const from = ip();
    try {
      const token = s.agent(await S.loginAdmin(from), from);
      await S.closeAgent(token, from); // no agent record left from earlier tests
      const first = (await S.agent(token, { from, keepalive: KA, label: 'agent, first socket' })).client;
      const t0 = Date.now();
      await first.terminate(); // drop 1: a grace period starts
      await sleep(300);
      await S.ok(token, '/admin/ws/close', from); // offline...
      const second = (await S.agent(token, { from, keepalive: KA, label: 'agent, second socket' })).client; // ...and online
      const v = await boundVisitor(second, 'visitor');
      await chatBothWays(second, v, 'hello');

      await sleep(Math.max(0, 2000 - (Date.now() - t0)));
      const t1 = Date.now();
      await second.terminate(); // drop 2: a new grace period of GRACE_SEC
      assertFrame(await v.client.next('system', 5000), 'system', { content: MSG.AgentAway });
      await v.client.waitFor(
        (f) => f.type === 'system' && f.content === MSG.NoAgent,
        (GRACE_SEC + 5) * 1000,
        'NoAgent once the grace period is over',
      );
      const waited = Date.now() - t1;
      // The relay's clock has whole seconds: a grace of N s lasts at least N-1 s.
      assert.ok(
        waited >= (GRACE_SEC - 1) * 1000 - 100,
        `requeued ${waited} ms after the second drop, with AgentReconnectGraceSec = ${GRACE_SEC}`,
      );
    } finally {
      await s.done();
    }
  },
);

test(
  'a reader that stops reading is closed once SendQueueMax frames wait for it (its agent is told)',
  { timeout: 40000 },
  async () => {
    const s = scope(S);
    const from = ip();
    let v;
    try {
      const { client: agent } = await adminAgent(s, from);
      v = await boundVisitor(agent, 'slow visitor');
      // The visitor stops reading: TCP buffers fill, then the relay's queue.
      v.client.stopKeepalive();
      v.client.ws._socket.pause();
      const big = 'x'.repeat(59000);
      for (let i = 0; i < 400; i++) {
        agent.send(chat(`${i} ${big}`, v.key));
        if (i % 50 === 49) await sleep(60);
      }
      // While the visitor still reads nothing, the relay drops it.
      assertFrame(await agent.next('close', 6000, v.key), 'close', { ws_key: v.key });
      v.client.ws._socket.resume();
      const closed = await v.client.waitClosed(15000);
      assert.ok([1008, 1006].includes(closed.code), `slow reader closed with ${JSON.stringify(closed)}`);
    } finally {
      if (v && !v.client.closeInfo) await v.client.terminate();
      await s.done();
    }
  },
);

test('limits: MaxConnection visitors (503; seed upgrade 429) and 30 links a minute per address (429)', { timeout: 60000 }, async () => {
  const MAX = 8; // [Websocket] MaxConnection in 40-chat-timing.ini
  // The per-address limit counts per calendar minute: start well inside one.
  const into = Date.now() % 60000;
  if (into > 56000) await sleep(60000 - into + 200);

  // Nobody is connected now and the early keys have expired.
  const from = ip();
  const t0 = Date.now();
  const replies = [];
  for (let i = 0; i < 40; i++) {
    const r = await S.request('POST', '/api/link', { from });
    replies.push(r);
    if (r.status !== 200 && r.status !== 503) break;
  }
  const statuses = replies.map((r) => r.status);
  const ok = statuses.filter((c) => c === 200).length;
  assert.ok(ok >= MAX - 2 && ok <= MAX, `${ok} keys issued with MaxConnection = ${MAX}: ${statuses}`);
  assert.deepEqual(statuses, [...Array(ok).fill(200), ...Array(30 - ok).fill(503), 429], `statuses: ${statuses}`);
  const full = replies[ok];
  assertEnvelope(full, 503);
  assert.ok(full.headers['retry-after'], 'Retry-After on the 503');
  const limited = replies[30];
  assertEnvelope(limited, 429);
  assert.ok(limited.headers['retry-after'], 'Retry-After on the 429');

  // The seed's upgrade: this address is over its limit; another one finds
  // the relay full. Both 429, before any WebSocket.
  assertRefusal(await S.refused('/api/link', { from }), 429);
  assertRefusal(await S.refused('/api/link', { from: ip() }), 429);

  // A key already issued still connects (its place is kept for it).
  const c = await S.connect(replies[0].json.data.url, { from, keepalive: KA, label: 'visitor with an issued key' });
  assertFrame(await c.next('system'), 'system', { content: MSG.NoAgent });
  await c.close(1000);

  // Unused keys expire (VisitorKeyTtlSec) and free their places.
  const wait = t0 + (KEY_TTL_SEC + 2) * 1000 - Date.now();
  if (wait > 0) await sleep(wait);
  const again = await S.request('POST', '/api/link', { from: ip() });
  assertEnvelope(again, 200);
});
