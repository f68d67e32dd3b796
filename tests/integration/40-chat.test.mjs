// Live chat end to end (issue 3), through the web server to kefu-relay,
// with a real WebSocket client: the seed's flow, visitor IPs, the queue,
// assignment over several agents, addressing with `to`, refused upgrades,
// bad input, ping/pong, leaving, replaced connections and the seed's paths.
//
// test.ini sets [Relay] MaxVisitorsPerAgent = 2; every other setting is the
// default (MaxMessageBytes 4096, MaxFrameBytes 65536, MaxMessagesPerSec 20,
// MaxBadFrames 10, grace periods 60/30 s). Timeouts, grace periods and key
// expiry run in 41-chat-timing.test.mjs on a stack with short settings.
//
// Each test starts with no agent online and nobody waiting, and leaves it
// so (scope(): visitors close normally, agents POST /admin/ws/close).

import test from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { ipAllocator, randomName, assertEnvelope } from './lib.mjs';
import {
  Stack,
  scope,
  messages,
  assertFrame,
  assertRefusal,
  firstOf,
  sleep,
  KEY_RE,
} from './wslib.mjs';

const S = Stack.fromEnv();
const MSG = messages(S.config);
const ip = ipAllocator(import.meta.url);
const CAP = 2; // test.ini

/* A key of the right shape that nobody was given. */
const madeUpKey = () => {
  const abc = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
  return Array.from(crypto.randomBytes(32), (b) => abc[b % abc.length]).join('');
};

const chat = (content, to) => (to === undefined ? { type: 'chat', content } : { type: 'chat', content, to });

/* The admin's session, registered as a fresh agent and connected. */
async function adminAgent(s, from) {
  const token = s.agent(await S.loginAdmin(from), from);
  const a = await S.agent(token, { from });
  return { token, ...a };
}

test('the seed flow: register, link, connect, chat both ways, info, link_user, close', { timeout: 60000 }, async () => {
  const s = scope(S);
  const from = ip();
  try {
    const token = s.agent(await S.loginAdmin(from), from);
    const me = await S.adminId(token, from);
    const before = await S.info(token, from);

    const reg = await S.registerAgent(token, from);
    assert.match(reg.ws_key, KEY_RE);
    assert.equal(reg.url, `${S.ws}/ws/admin/link?ws_key=${reg.ws_key}`);
    const agent = await S.connect(reg.url, { label: 'agent' });

    const vfrom = ip();
    const link = await S.link(vfrom);
    assert.equal(link.url, `${S.ws}/ws/api/link?ws_key=${link.ws_key}`);
    const key = link.ws_key;
    const visitor = await S.connect(link.url, { from: vfrom, label: 'visitor' });

    assertFrame(await agent.next('connect'), 'connect', { ws_key: key, ip: vfrom, content: MSG.NewVisitor });
    assertFrame(await visitor.next('connect'), 'connect', { ws_key: key, content: MSG.AgentJoined });

    visitor.send(chat('hello from the visitor'));
    const m1 = await agent.next('chat');
    assertFrame(m1, 'chat', { content: 'hello from the visitor', from: key, ws_key: key });
    // send_time is the relay's local time, which is ours.
    const [d, tm] = m1.send_time.split(' ');
    const sent = new Date(`${d}T${tm}`).getTime();
    assert.ok(Math.abs(sent - Date.now()) < 60000, `send_time ${m1.send_time} is not now`);
    agent.send(chat('hello from the agent', key));
    assertFrame(await visitor.next('chat'), 'chat', { content: 'hello from the agent', from: 'agent', ws_key: key });
    // Not ASCII, with quotes and a newline: passed on byte for byte.
    const text = '你好 "kefu" 👋\nsecond line \\ end';
    visitor.send(chat(text));
    assertFrame(await agent.next('chat'), 'chat', { content: text, from: key, ws_key: key });
    agent.send(chat(text, key));
    assertFrame(await visitor.next('chat'), 'chat', { content: text, from: 'agent', ws_key: key });

    const info = await S.info(token, from);
    assert.equal(info.user_count, before.user_count + 1, JSON.stringify(info));
    assert.equal(info.service_count, before.service_count + 1, JSON.stringify(info));
    assert.equal(info.user_clients.length, info.user_count);
    assert.equal(info.service_clients.length, info.service_count);
    const u = info.user_clients.find((x) => x.ws_key === key);
    assert.ok(u, `visitor missing from user_clients: ${JSON.stringify(info)}`);
    assert.equal(u.bind_service, me);
    assert.equal(u.ip, vfrom);
    const sc = info.service_clients.find((x) => x.admin_id === me);
    assert.ok(sc, `agent missing from service_clients: ${JSON.stringify(info)}`);
    assert.deepEqual(sc.bind_user, [key]);
    assert.equal(typeof sc.admin_name, 'string');

    const lu = await S.linkUser(token, from);
    assert.equal(lu.user_count, 1, JSON.stringify(lu));
    assert.equal(lu.user.length, 1);
    assert.equal(lu.user[0].ws_key, key);
    assert.equal(lu.user[0].ip, vfrom);

    const closed = await S.ok(token, '/admin/ws/close', from);
    assert.deepEqual(closed.closed_users, [key]);
    assertFrame(await visitor.next('close'), 'close', { ws_key: key, content: MSG.ChatEnded });
    assert.equal((await visitor.waitClosed()).code, 1000);
    assertFrame(await agent.next('close'), 'close', { ws_key: key, content: MSG.ChatEnded });
    assert.equal((await agent.waitClosed()).code, 1000, 'the agent socket is closed (1000) too');

    const after = await S.info(token, from);
    assert.equal(after.user_clients.find((x) => x.ws_key === key), undefined, JSON.stringify(after));
    assert.equal(after.service_clients.find((x) => x.admin_id === me), undefined, JSON.stringify(after));
    assert.equal(after.user_count, before.user_count);
    assert.equal(after.service_count, before.service_count);
  } finally {
    await s.done();
  }
});

test('visitor IP: the relay believes the web server, so the visitor address shows, not 127.0.0.1', { timeout: 30000 }, async () => {
  const s = scope(S);
  const from = ip();
  try {
    const { token, client: agent } = await adminAgent(s, from);

    // The REST call and the WebSocket from the same distinct address.
    const vfrom = '127.0.0.77';
    const v = await S.visitor({ from: vfrom });
    const c1 = await agent.next('connect', 5000, v.key);
    assert.equal(c1.ip, vfrom);
    await v.client.next('connect');

    // The seed's path issues the key at the relay, from X-Forwarded-For
    // (a forged one from the client must not win).
    const sfrom = '127.0.0.78';
    const seed = await S.connect('/api/link', {
      from: sfrom,
      headers: { 'X-Forwarded-For': '10.9.9.9' },
      label: 'seed visitor',
    });
    const first = await seed.waitFor((f) => typeof f.ws_key === 'string', 5000, 'a frame with ws_key');
    const skey = first.ws_key;
    const c2 = await agent.next('connect', 5000, skey);
    assert.equal(c2.ip, sfrom, `connect frame: ${JSON.stringify(c2)}`);

    const info = await S.info(token, from);
    assert.equal(info.user_clients.find((x) => x.ws_key === v.key)?.ip, vfrom, JSON.stringify(info));
    assert.equal(info.user_clients.find((x) => x.ws_key === skey)?.ip, sfrom, JSON.stringify(info));
    const lu = await S.linkUser(token, from);
    assert.equal(lu.user.find((x) => x.ws_key === v.key)?.ip, vfrom, JSON.stringify(lu));
    assert.equal(lu.user.find((x) => x.ws_key === skey)?.ip, sfrom, JSON.stringify(lu));
    for (const x of lu.user) assert.notEqual(x.ip, '127.0.0.1');
  } finally {
    await s.done();
  }
});

test('no agent online: the visitor waits (system NoAgent), then an agent comes and takes it', { timeout: 30000 }, async () => {
  const s = scope(S);
  const from = ip();
  try {
    const token = s.agent(await S.loginAdmin(from), from);
    const vfrom = ip();
    const v = await S.visitor({ from: vfrom });
    assertFrame(await v.client.next('system'), 'system', { ws_key: v.key, content: MSG.NoAgent });

    // A chat while waiting gets the same answer, not an error.
    v.client.send(chat('anyone there?'));
    assertFrame(await v.client.next('system'), 'system', { ws_key: v.key, content: MSG.NoAgent });

    const info = await S.info(token, from);
    const u = info.user_clients.find((x) => x.ws_key === v.key);
    assert.ok(u, JSON.stringify(info));
    assert.equal(u.bind_service, null);

    // Another one waits, and leaves before any agent comes.
    const quitter = await S.visitor({ from: ip(), label: 'visitor who leaves' });
    await quitter.client.next('system');
    await quitter.client.close(1000);

    const agent = (await S.agent(token, { from })).client;
    assertFrame(await agent.next('connect'), 'connect', { ws_key: v.key, ip: vfrom, content: MSG.NewVisitor });
    assertFrame(await v.client.next('connect'), 'connect', { ws_key: v.key, content: MSG.AgentJoined });

    v.client.send(chat('now?'));
    assertFrame(await agent.next('chat'), 'chat', { content: 'now?', from: v.key, ws_key: v.key });
    await agent.none((f) => f.type === 'connect', 500, `connect for the visitor who left (${quitter.key})`);
  } finally {
    await s.done();
  }
});

test('the queue: waiting visitors are assigned in arrival order, and when capacity frees', { timeout: 30000 }, async () => {
  const s = scope(S);
  const from = ip();
  try {
    const token = s.agent(await S.loginAdmin(from), from);
    const vs = [];
    for (let i = 0; i < CAP + 1; i++) {
      const v = await S.visitor({ from: ip() });
      await v.client.next('system');
      vs.push(v);
    }
    const agent = (await S.agent(token, { from })).client;
    // The first CAP are taken, in order; the last keeps waiting.
    for (let i = 0; i < CAP; i++) {
      const c = await agent.next('connect');
      assert.equal(c.ws_key, vs[i].key, `connect #${i + 1} should be visitor #${i + 1}`);
      await vs[i].client.next('connect');
    }
    await vs[CAP].client.none((f) => f.type === 'connect', 500, "'connect' to the visitor over capacity");
    await agent.none((f) => f.type === 'connect', 0);

    // One leaves: its place goes to the one waiting.
    await vs[0].client.close(1000);
    assertFrame(await agent.next('close', 5000, vs[0].key), 'close', { ws_key: vs[0].key });
    assertFrame(await agent.next('connect', 5000, vs[CAP].key), 'connect', { ws_key: vs[CAP].key });
    assertFrame(await vs[CAP].client.next('connect'), 'connect', { ws_key: vs[CAP].key });
  } finally {
    await s.done();
  }
});

test('a waiting visitor whose connection drops is not assigned while away, and is when it returns', { timeout: 30000 }, async () => {
  const s = scope(S);
  const from = ip();
  try {
    const token = s.agent(await S.loginAdmin(from), from);
    const vfrom = ip();
    const v = await S.visitor({ from: vfrom });
    await v.client.next('system');
    await v.client.terminate(); // a drop: its grace period (60 s here) starts
    await sleep(300);

    const agent = (await S.agent(token, { from })).client;
    await agent.none((f) => f.type === 'connect', 700, 'connect for a visitor that is away');

    const back = await S.connect(v.url, { from: vfrom, label: 'visitor back' });
    assertFrame(await agent.next('connect', 5000, v.key), 'connect', { ws_key: v.key, ip: vfrom });
    assertFrame(await back.next('connect'), 'connect', { ws_key: v.key });
    back.send(chat('back again'));
    assertFrame(await agent.chat('back again', 5000, v.key), 'chat', { from: v.key });
  } finally {
    await s.done();
  }
});

test('3 agents of capacity 2 and 7 visitors: 2 each, evenly, and 1 waiting', { timeout: 60000 }, async () => {
  const s = scope(S);
  const from = ip();
  try {
    const admin = s.agent(await S.loginAdmin(from), from);
    const agents = [];
    for (let i = 0; i < 3; i++) {
      const acct = await S.addAdmin(randomName('ws_'), `Agent ${i + 1}`);
      const token = s.agent(await S.login(acct.username, acct.password, from), from);
      const id = await S.adminId(token, from);
      const { client } = await S.agent(token, { from, label: `agent ${i + 1}` });
      agents.push({ token, id, client, keys: [] });
    }

    const visitors = [];
    for (let i = 0; i < 7; i++) {
      const vfrom = ip();
      const v = await S.visitor({ from: vfrom, label: `visitor ${i + 1}` });
      const first = await v.client.waitFor((f) => f.type === 'connect' || f.type === 'system', 5000, 'connect or system');
      v.first = first;
      visitors.push(v);
      if (first.type === 'connect') {
        // Exactly one agent is told, with this visitor's key and address.
        const told = await firstOf(
          agents.map((a) => a.client),
          (f) => f.type === 'connect' && f.ws_key === v.key,
          5000,
          `'connect' for visitor ${i + 1}`,
        );
        assertFrame(told.frame, 'connect', { ws_key: v.key, ip: vfrom });
        agents.find((a) => a.client === told.client).keys.push(v.key);
      }
      if (i === 2) {
        // Least loaded first: after three, one each.
        assert.deepEqual(agents.map((a) => a.keys.length), [1, 1, 1]);
      }
    }
    assert.deepEqual(visitors.slice(0, 6).map((v) => v.first.type), Array(6).fill('connect'));
    assertFrame(visitors[6].first, 'system', { ws_key: visitors[6].key, content: MSG.NoAgent });
    assert.deepEqual(agents.map((a) => a.keys.length), [2, 2, 2]);
    for (const a of agents) await a.client.none((f) => f.type === 'connect', 0);

    const info = await S.info(admin, from);
    for (const a of agents) {
      const sc = info.service_clients.find((x) => x.admin_id === a.id);
      assert.ok(sc, `agent ${a.id} missing: ${JSON.stringify(info)}`);
      assert.deepEqual([...sc.bind_user].sort(), [...a.keys].sort());
    }
    for (const v of visitors.slice(0, 6)) {
      const owner = agents.find((a) => a.keys.includes(v.key));
      assert.equal(info.user_clients.find((x) => x.ws_key === v.key)?.bind_service, owner.id);
    }
    const waiting = info.user_clients.find((x) => x.ws_key === visitors[6].key);
    assert.ok(waiting, JSON.stringify(info));
    assert.equal(waiting.bind_service, null);
    assert.equal(info.user_clients.filter((x) => x.bind_service === null).length, 1, JSON.stringify(info));

    // Each agent's link_user lists its own two.
    for (const a of agents) {
      const lu = await S.linkUser(a.token, from);
      assert.deepEqual(lu.user.map((x) => x.ws_key).sort(), [...a.keys].sort());
    }

    // An agent going offline frees nobody else; its visitors are told.
    const gone = agents[0];
    await S.ok(gone.token, '/admin/ws/close', from);
    for (const key of gone.keys) {
      const v = visitors.find((x) => x.key === key);
      assertFrame(await v.client.next('close'), 'close', { ws_key: key });
      assert.equal((await v.client.waitClosed()).code, 1000);
    }
    // ...and it is not given the one waiting.
    await visitors[6].client.none((f) => f.type === 'connect', 500);
  } finally {
    await s.done();
  }
});

test('one agent, two visitors: `to` picks the visitor; a wrong or missing `to` is an error', { timeout: 30000 }, async () => {
  const s = scope(S);
  const from = ip();
  try {
    const { client: agent } = await adminAgent(s, from);
    const v1 = await S.visitor({ from: ip(), label: 'visitor 1' });
    const v2 = await S.visitor({ from: ip(), label: 'visitor 2' });
    await agent.next('connect', 5000, v1.key);
    await agent.next('connect', 5000, v2.key);
    await v1.client.next('connect');
    await v2.client.next('connect');
    const v3 = await S.visitor({ from: ip(), label: 'visitor 3 (waiting)' }); // over capacity
    await v3.client.next('system');

    agent.send(chat('for one', v1.key));
    agent.send(chat('for two', v2.key));
    assertFrame(await v1.client.next('chat'), 'chat', { content: 'for one', from: 'agent', ws_key: v1.key });
    assertFrame(await v2.client.next('chat'), 'chat', { content: 'for two', from: 'agent', ws_key: v2.key });

    v2.client.send(chat('two here'));
    v1.client.send(chat('one here'));
    assertFrame(await agent.next('chat', 5000, v2.key), 'chat', { content: 'two here', from: v2.key });
    assertFrame(await agent.next('chat', 5000, v1.key), 'chat', { content: 'one here', from: v1.key });

    // Someone else's visitor (v3 waits in the queue), a key nobody has, no
    // key at all, and no `to` on /ws/admin/link (there is no default).
    for (const [what, frame] of [
      ['a waiting visitor', chat('psst', v3.key)],
      ['an unknown key', chat('psst', madeUpKey())],
      ['not a key', chat('psst', 'nope')],
      ['a number', { type: 'chat', content: 'psst', to: 42 }],
      ['no to', chat('psst')],
    ]) {
      agent.send(frame);
      const e = await agent.next('error');
      assertFrame(e, 'error');
      assert.ok(typeof e.content === 'string' && e.content.length > 0, `${what}: ${JSON.stringify(e)}`);
    }
    await v3.client.none((f) => f.type === 'chat', 300, 'chat to the waiting visitor');
    await v1.client.none((f) => f.type === 'chat', 0);
    await v2.client.none((f) => f.type === 'chat', 0);

    // The agent's connection is still good.
    assertFrame(await agent.ping(), 'pong');
    agent.send(chat('still here', v1.key));
    assertFrame(await v1.client.next('chat'), 'chat', { content: 'still here' });

    // A visitor's `to` is ignored: its messages go to its own agent.
    v1.client.send(chat('to whom?', v2.key));
    assertFrame(await agent.next('chat', 5000, v1.key), 'chat', { content: 'to whom?', from: v1.key });
    await v2.client.none((f) => f.type === 'chat', 300);
  } finally {
    await s.done();
  }
});

test('refused at the upgrade, with an HTTP status and the JSON envelope', { timeout: 30000 }, async (t) => {
  const s = scope(S);
  const from = ip();
  try {
    const token = s.agent(await S.loginAdmin(from), from);

    await t.test('unknown key: 401 on both paths', async () => {
      assertRefusal(await S.refused(`/ws/api/link?ws_key=${madeUpKey()}`, { from }), 401);
      assertRefusal(await S.refused(`/ws/admin/link?ws_key=${madeUpKey()}`, { from }), 401);
      assertRefusal(await S.refused('/ws/api/link?ws_key=short', { from }), 401);
    });

    await t.test('missing key: 401 on both paths', async () => {
      assertRefusal(await S.refused('/ws/api/link', { from }), 401);
      assertRefusal(await S.refused('/ws/admin/link', { from }), 401);
      assertRefusal(await S.refused('/ws/api/link?ws_key=', { from }), 401);
    });

    await t.test('an agent key used twice: the second upgrade gets 401', async () => {
      const reg = await S.registerAgent(token, from);
      const first = await S.connect(reg.url, { label: 'agent' });
      assertFrame(await first.ping(), 'pong');
      assertRefusal(await S.refused(reg.url, { from }), 401);
      assert.ok(first.isOpen, 'the first connection is not affected');
      await S.closeAgent(token, from);
      await first.waitClosed();
    });

    await t.test('a visitor key on the agent path: 403, and the key still works as a visitor', async () => {
      const vfrom = ip();
      const link = await S.link(vfrom);
      assertRefusal(await S.refused(`/ws/admin/link?ws_key=${link.ws_key}`, { from: vfrom }), 403);
      const v = await S.connect(link.url, { from: vfrom });
      assertFrame(await v.next('system'), 'system', { ws_key: link.ws_key });
      await v.close();
    });

    await t.test('an agent key on the visitor path: 403, and the key still works as an agent', async () => {
      const reg = await S.registerAgent(token, from);
      assertRefusal(await S.refused(`/ws/api/link?ws_key=${reg.ws_key}`, { from }), 403);
      const a = await S.connect(reg.url, { label: 'agent' });
      assertFrame(await a.ping(), 'pong');
      await S.closeAgent(token, from);
      await a.waitClosed();
    });

    await t.test('a malformed last_seq: 400, and the key is not used up', async () => {
      const vfrom = ip();
      const link = await S.link(vfrom);
      for (const bad of ['abc', '-1', '', '1x']) {
        assertRefusal(await S.refused(`${link.url}&last_seq=${bad}`, { from: vfrom }), 400);
      }
      const v = await S.connect(`${link.url}&last_seq=0`, { from: vfrom });
      assertFrame(await v.next('system'), 'system', { ws_key: link.ws_key });
      await v.close();

      const reg = await S.registerAgent(token, from);
      for (const bad of ['abc', `${madeUpKey()}:x`, `${madeUpKey()}:1,`, 'short:1']) {
        assertRefusal(await S.refused(`${reg.url}&last_seq=${bad}`, { from }), 400);
      }
      const a = await S.connect(`${reg.url}&last_seq=${madeUpKey()}:3`, { label: 'agent' });
      assertFrame(await a.ping(), 'pong');
      await S.closeAgent(token, from);
      await a.waitClosed();
    });

    await t.test('a visitor key that has left: 401', async () => {
      const v = await S.visitor({ from: ip() });
      await v.client.next('system');
      await v.client.close(1000);
      await sleep(200);
      assertRefusal(await S.refused(v.url, { from }), 401);
    });

    await t.test('an agent that went offline: its unused key gives 403 or 401', async () => {
      const reg = await S.registerAgent(token, from);
      await S.closeAgent(token, from);
      const r = await S.refused(reg.url, { from });
      assert.ok([401, 403].includes(r.status), `status ${r.status}: ${r.text}`);
      assertRefusal(r, r.status);
    });
  } finally {
    await s.done();
  }
});

test('bad input: error frames that keep the connection, and closes with RFC 6455 codes', { timeout: 60000 }, async (t) => {
  const s = scope(S);
  const from = ip();
  const admin = s.agent(await S.loginAdmin(from), from);
  /* A waiting visitor (no agent online): its first frame is system. */
  const fresh = async (label) => {
    const v = await S.visitor({ from: ip(), label });
    await v.client.next('system');
    return v;
  };
  const expectError = async (c, send, what) => {
    c.send(send);
    const e = await c.next('error', 5000);
    assertFrame(e, 'error');
    assert.ok(typeof e.content === 'string' && e.content.length > 0, `${what}: ${JSON.stringify(e)}`);
    return e;
  };
  try {
    await t.test('invalid JSON: error, and the connection stays (ping still answered)', async () => {
      const v = await fresh('visitor (invalid JSON)');
      await expectError(v.client, '{"type":', 'invalid JSON');
      await expectError(v.client, 'not json at all', 'invalid JSON');
      assertFrame(await v.client.ping(), 'pong');
      assert.ok(v.client.isOpen);
      await v.client.close();
    });

    await t.test('not an object, no type, unknown type: error', async () => {
      const v = await fresh('visitor (bad frames)');
      await expectError(v.client, '[1,2,3]', 'an array');
      await expectError(v.client, '"chat"', 'a string');
      await expectError(v.client, { content: 'no type' }, 'no type');
      await expectError(v.client, { type: 'dance' }, 'unknown type');
      await expectError(v.client, { type: 42 }, 'type not a string');
      assertFrame(await v.client.ping(), 'pong');
      await v.client.close();
    });

    await t.test('chat without content, empty or not a string: error', async () => {
      const v = await fresh('visitor (no content)');
      await expectError(v.client, { type: 'chat' }, 'no content');
      await expectError(v.client, { type: 'chat', content: '' }, 'empty content');
      await expectError(v.client, { type: 'chat', content: 7 }, 'content a number');
      await expectError(v.client, { type: 'chat', content: null }, 'content null');
      assertFrame(await v.client.ping(), 'pong');
      await v.client.close();
    });

    await t.test('content over MaxMessageBytes (4096 bytes, not characters): error; 4096 is fine', async () => {
      const v = await fresh('visitor (long content)');
      await expectError(v.client, chat('x'.repeat(4097)), '4097 bytes');
      await expectError(v.client, chat('é'.repeat(2049)), '2049 two-byte characters');
      // Exactly 4096 bytes is accepted: the answer is the queue's, not an error.
      v.client.send(chat('é'.repeat(2048)));
      const f = await v.client.waitFor((x) => x.type === 'system' || x.type === 'error', 5000, 'system or error');
      assert.equal(f.type, 'system', `4096 bytes must be accepted: ${JSON.stringify(f)}`);
      assert.ok(v.client.isOpen);
      await v.client.close();
    });

    await t.test('a text frame that is not UTF-8: close 1007', async () => {
      const v = await fresh('visitor (bad UTF-8)');
      v.client.sendRaw(Buffer.from([0x22, 0xff, 0x22]), { binary: false });
      assert.equal((await v.client.waitClosed()).code, 1007);
    });

    await t.test('invalid UTF-8 inside a JSON string: close 1007', async () => {
      const v = await fresh('visitor (bad UTF-8 in content)');
      const bytes = Buffer.concat([
        Buffer.from('{"type":"chat","content":"a'),
        Buffer.from([0xc3, 0x28]),
        Buffer.from('"}'),
      ]);
      v.client.sendRaw(bytes, { binary: false });
      assert.equal((await v.client.waitClosed()).code, 1007);
    });

    await t.test('a message over MaxFrameBytes (65536): close 1009', async () => {
      const v = await fresh('visitor (huge)');
      v.client.send(chat('y'.repeat(70000)));
      assert.equal((await v.client.waitClosed()).code, 1009);
    });

    await t.test('a message of 60000 bytes (under MaxFrameBytes): error frame, no close', async () => {
      const v = await fresh('visitor (big)');
      await expectError(v.client, chat('z'.repeat(60000)), '60000 bytes of content');
      assertFrame(await v.client.ping(), 'pong');
      await v.client.close();
    });

    await t.test('more than MaxMessagesPerSec (20): close 1008, and the visitor has left', async () => {
      // Several times, through the web server and straight to the relay
      // (as behind a proxy that passes resets on): the client is still
      // sending when the relay closes, and a relay that dropped the socket
      // without waiting for the client's close made about half of the
      // direct ones see 1006 (a reset) instead.
      const relay = (process.env.KEFU_RELAY_URLS || '').split(/\s+/).filter(Boolean)[0];
      const keys = [];
      for (let n = 0; n < 12; n++) {
        const from = ip();
        const link = await S.link(from);
        const url = n % 2 && relay ? relay + new URL(link.url).pathname + new URL(link.url).search : link.url;
        const v = { key: link.ws_key, client: await S.connect(url, { from, label: `visitor (flood ${n})` }) };
        await v.client.next('system');
        for (let i = 0; i < 40; i++) v.client.send({ type: 'ping' });
        assert.equal((await v.client.waitClosed()).code, 1008, `flood ${n}`);
        keys.push(v.key);
      }
      await sleep(300);
      const info = await S.info(admin, from);
      for (const k of keys)
        assert.equal(info.user_clients.find((x) => x.ws_key === k), undefined, 'no grace period after a violation');
    });

    await t.test('up to MaxMessagesPerSec in a second is fine', async () => {
      const v = await fresh('visitor (busy)');
      for (let i = 0; i < 15; i++) v.client.send({ type: 'ping' });
      for (let i = 0; i < 15; i++) await v.client.next('pong');
      assert.ok(v.client.isOpen);
      await v.client.close();
    });

    await t.test('MaxBadFrames (10) bad frames in a row: close 1008', async () => {
      const v = await fresh('visitor (garbage)');
      for (let i = 0; i < 10; i++) v.client.send(`garbage ${i}`);
      assert.equal((await v.client.waitClosed()).code, 1008);
    });

    await t.test('bad frames with a good one between them: no close', async () => {
      const v = await fresh('visitor (some garbage)');
      for (let i = 0; i < 9; i++) v.client.send(`garbage ${i}`);
      for (let i = 0; i < 9; i++) await v.client.next('error');
      assertFrame(await v.client.ping(), 'pong');
      await sleep(1100); // let the rate limit refill
      for (let i = 0; i < 9; i++) v.client.send(`garbage ${i}`);
      for (let i = 0; i < 9; i++) await v.client.next('error');
      assertFrame(await v.client.ping(), 'pong');
      assert.ok(v.client.isOpen);
      await v.client.close();
    });

    await t.test('a binary frame: close 1003', async () => {
      const v = await fresh('visitor (binary)');
      v.client.sendRaw(Buffer.from(JSON.stringify({ type: 'ping' })), { binary: true });
      assert.equal((await v.client.waitClosed()).code, 1003);
    });

    await t.test('an agent gets the same treatment: error, then 1007', async () => {
      const a = (await S.agent(admin, { from })).client;
      await expectError(a, '{oops', 'invalid JSON');
      assertFrame(await a.ping(), 'pong');
      a.sendRaw(Buffer.from([0x7b, 0xfe, 0x7d]), { binary: false });
      assert.equal((await a.waitClosed()).code, 1007);
      await S.closeAgent(admin, from);
    });
  } finally {
    await s.done();
  }
});

test('ping -> pong, for a visitor and for an agent', { timeout: 30000 }, async () => {
  const s = scope(S);
  const from = ip();
  try {
    const v = await S.visitor({ from: ip() });
    const p = await v.client.ping();
    assertFrame(p, 'pong');
    assert.equal(p.content, undefined);
    const { client: agent } = await adminAgent(s, from);
    assertFrame(await agent.ping(), 'pong');
    // Pongs do not disturb the conversation.
    await agent.next('connect', 5000, v.key);
    v.client.send({ type: 'ping' });
    v.client.send(chat('after a ping'));
    assertFrame(await v.client.next('pong'), 'pong');
    assertFrame(await agent.next('chat'), 'chat', { content: 'after a ping', from: v.key });
    await agent.none((f) => f.type === 'pong', 300, 'pong for the visitor on the agent');

    // RFC 6455 ping control frames are answered with pong control frames.
    for (const c of [v.client, agent]) {
      let timer;
      const got = await new Promise((resolve) => {
        timer = setTimeout(() => resolve(null), 5000);
        c.ws.once('pong', (data) => resolve(data.toString()));
        c.ws.ping('are you there');
      });
      clearTimeout(timer);
      assert.equal(got, 'are you there', `${c.label}: no pong control frame`);
    }
  } finally {
    await s.done();
  }
});

test('a visitor closing normally (1000 or 1001) has left: its agent gets close at once', { timeout: 30000 }, async () => {
  const s = scope(S);
  const from = ip();
  try {
    const { token, client: agent } = await adminAgent(s, from);
    const v1 = await S.visitor({ from: ip(), label: 'visitor 1000' });
    const v2 = await S.visitor({ from: ip(), label: 'visitor 1001' });
    await agent.next('connect', 5000, v1.key);
    await agent.next('connect', 5000, v2.key);

    // The grace period for drops is 60 s here: `close` within 3 s means
    // the relay saw a departure, not a drop.
    await v1.client.close(1000);
    assertFrame(await agent.next('close', 3000, v1.key), 'close', { ws_key: v1.key, content: MSG.ChatEnded });
    await v2.client.close(1001);
    assertFrame(await agent.next('close', 3000, v2.key), 'close', { ws_key: v2.key });

    const info = await S.info(token, from);
    assert.equal(info.user_clients.find((x) => x.ws_key === v1.key || x.ws_key === v2.key), undefined, JSON.stringify(info));
    const lu = await S.linkUser(token, from);
    assert.equal(lu.user_count, 0, JSON.stringify(lu));

    // Its key is spent: reconnecting with it is refused.
    assertRefusal(await S.refused(v1.url, { from }), 401);
    // The agent serves the next visitor.
    const v3 = await S.visitor({ from: ip() });
    await agent.next('connect', 5000, v3.key);
  } finally {
    await s.done();
  }
});

test('the same key connected again: the newer connection wins, the older is closed with 4001', { timeout: 30000 }, async () => {
  const s = scope(S);
  const from = ip();
  try {
    const { token, client: agent } = await adminAgent(s, from);
    const vfrom = ip();
    const v = await S.visitor({ from: vfrom, label: 'visitor tab 1' });
    await agent.next('connect', 5000, v.key);
    await v.client.next('connect');

    const tab2 = await S.connect(v.url, { from: vfrom, label: 'visitor tab 2' });
    assert.equal((await v.client.waitClosed()).code, 4001);
    await agent.none((f) => f.type === 'close', 500, 'close to the agent for a replaced visitor');
    tab2.send(chat('from the new tab'));
    assertFrame(await agent.next('chat'), 'chat', { content: 'from the new tab', from: v.key });
    agent.send(chat('to the new tab', v.key));
    assertFrame(await tab2.chat('to the new tab'), 'chat', { from: 'agent', ws_key: v.key });

    // An agent that registers again while connected: the new socket takes
    // over its visitors (a connect for each), the old one gets 4001.
    const again = (await S.agent(token, { from, label: 'agent 2' })).client;
    assertFrame(await again.next('connect', 5000, v.key), 'connect', { ws_key: v.key, ip: vfrom });
    assert.equal((await agent.waitClosed()).code, 4001);
    // (It may first be sent the conversation so far again: history.)
    tab2.send(chat('hello again'));
    assertFrame(await again.chat('hello again'), 'chat', { content: 'hello again', from: v.key, ws_key: v.key });
    again.send(chat('welcome back', v.key));
    assertFrame(await tab2.chat('welcome back'), 'chat', { from: 'agent', ws_key: v.key });
  } finally {
    await s.done();
  }
});

test('an agent whose socket dropped, then goes offline (POST /admin/ws/close): its visitors get close', { timeout: 30000 }, async () => {
  const s = scope(S);
  const from = ip();
  try {
    const { token, client: agent } = await adminAgent(s, from);
    const v = await S.visitor({ from: ip() });
    await agent.next('connect', 5000, v.key);
    await v.client.next('connect');

    await agent.terminate(); // a drop: the grace period (30 s here) starts
    assertFrame(await v.client.next('system'), 'system', { ws_key: v.key, content: MSG.AgentAway });
    // A chat meanwhile is answered (kept for the agent: ack; or a notice),
    // not refused.
    v.client.send(chat('hello?'));
    const f = await v.client.waitFor((x) => ['ack', 'system', 'error'].includes(x.type), 5000, 'an answer');
    assert.notEqual(f.type, 'error', JSON.stringify(f));
    assert.equal(f.ws_key, v.key, JSON.stringify(f));

    const closed = await S.ok(token, '/admin/ws/close', from);
    assert.deepEqual(closed.closed_users, [v.key]);
    assertFrame(await v.client.next('close'), 'close', { ws_key: v.key, content: MSG.ChatEnded });
    assert.equal((await v.client.waitClosed()).code, 1000);
    const info = await S.info(token, from);
    assert.equal(info.user_clients.find((x) => x.ws_key === v.key), undefined, JSON.stringify(info));
  } finally {
    await s.done();
  }
});

test("the seed's paths: GET /api/link upgrade, /admin/ws/link with the session", { timeout: 60000 }, async (t) => {
  const s = scope(S);
  const from = ip();
  try {
    const token = s.agent(await S.loginAdmin(from), from);

    for (const [how, headers] of [
      ['cookie gid', (tok) => ({ Cookie: `gid=${tok}` })],
      ['Bearer token', (tok) => ({ Authorization: `Bearer ${tok}` })],
    ]) {
      await t.test(`visitor on /api/link, agent on /admin/ws/link by ${how}`, async () => {
        const vfrom = ip();
        const visitor = await S.connect('/api/link', { from: vfrom, label: 'seed visitor' });
        const first = await visitor.waitFor(() => true, 5000, 'a first frame');
        assert.match(String(first.ws_key), KEY_RE, `first frame: ${JSON.stringify(first)}`);
        assertFrame(first, 'system', { content: MSG.NoAgent });
        const key = first.ws_key;

        await S.registerAgent(token, from);
        const agent = await S.connect(`/admin/ws/link?ws_key=${key}`, { from, headers: headers(token), label: `seed agent (${how})` });
        assertFrame(await agent.next('connect', 5000, key), 'connect', { ws_key: key, ip: vfrom });
        assertFrame(await visitor.next('connect'), 'connect', { ws_key: key });

        agent.send(chat('no to needed'));
        assertFrame(await visitor.next('chat'), 'chat', { content: 'no to needed', from: 'agent', ws_key: key });
        visitor.send(chat('got it'));
        assertFrame(await agent.next('chat'), 'chat', { content: 'got it', from: key, ws_key: key });

        await S.ok(token, '/admin/ws/close', from);
        await visitor.next('close');
        assert.equal((await visitor.waitClosed()).code, 1000);
        await agent.waitClosed();
      });
    }

    await t.test('/admin/ws/link without a session: 401', async () => {
      const v = await S.link(ip());
      assertRefusal(await S.refused(`/admin/ws/link?ws_key=${v.ws_key}`, { from }), 401);
      assertRefusal(await S.refused(`/admin/ws/link?ws_key=${v.ws_key}`, { from, headers: { Cookie: `gid=${'A'.repeat(32)}` } }), 401);
      assertRefusal(
        await S.refused(`/admin/ws/link?ws_key=${v.ws_key}`, { from, headers: { Authorization: `Bearer ${'b'.repeat(32)}` } }),
        401,
      );
    });

    await t.test('/admin/ws/link logged in but not registered (after /admin/ws/close): 403', async () => {
      await S.registerAgent(token, from);
      await S.ok(token, '/admin/ws/close', from);
      const v = await S.link(ip());
      assertRefusal(await S.refused(`/admin/ws/link?ws_key=${v.ws_key}`, { from, headers: { Cookie: `gid=${token}` } }), 403);
      assertRefusal(await S.refused(`/admin/ws/link?ws_key=${v.ws_key}`, { from, headers: { Authorization: `Bearer ${token}` } }), 403);
    });

    await t.test('plain POST /api/link still reaches kefu-api; plain GET gets its 405', async () => {
      const r = await S.request('POST', '/api/link', { from: ip() });
      assertEnvelope(r, 200);
      assert.match(r.json.data.ws_key, KEY_RE);
      assert.equal(r.json.data.url, `${S.ws}/ws/api/link?ws_key=${r.json.data.ws_key}`);
      const g = await S.request('GET', '/api/link', { from: ip() });
      assertEnvelope(g, 405);
      const w = await S.request('GET', '/admin/ws/link', { from: ip(), headers: { Cookie: `gid=${token}` } });
      assert.equal(w.json?.code, w.status, `plain GET /admin/ws/link answered by kefu-api: ${w.status} ${w.text}`);
      assert.notEqual(w.status, 101);
    });
  } finally {
    await s.done();
  }
});
