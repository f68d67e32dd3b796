// Redis goes away and comes back: the app answers 503 (never crashes, never
// 500) while it is down and recovers by itself once it is back.
// Runs last: it stops the stack's Redis (deploy/stack stop-service redis DIR).

import test, { after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { env, request, login, stack, waitFor, ipAllocator, assertEnvelope } from './lib.mjs';

const ip = ipAllocator(import.meta.url);
let redisStopped = false;

after(async () => {
  // Whatever failed, leave the stack with Redis running.
  if (redisStopped) await stack('start-service', 'redis');
});

test('Redis down -> 503; back -> recovers within 10 s', async (t) => {
  let token = '';
  // Sanity first: everything is up.
  const before = await request('GET', '/healthz', { from: ip() });
  assertEnvelope(before, 200);

  await stack('stop-service', 'redis');
  redisStopped = true;

  await t.test('/healthz -> 503 naming redis', async () => {
    const r = await request('GET', '/healthz', { from: ip() });
    assertEnvelope(r, 503);
    assert.notEqual(r.json.data?.redis, 'ok', r.text);
  });

  await t.test('login -> 503 JSON', async () => {
    const r = await login(env.adminUser, env.adminPassword, ip());
    assertEnvelope(r, 503);
  });

  await t.test('login again, still 503 (the app is still alive)', async () => {
    const r = await login(env.adminUser, env.adminPassword, ip());
    assertEnvelope(r, 503);
  });

  await stack('start-service', 'redis');
  redisStopped = false;

  await t.test('/healthz -> 200 within 10 s', async () => {
    const r = await waitFor(async () => {
      const h = await request('GET', '/healthz', { from: ip(), timeoutMs: 5000 });
      return h.status === 200 ? h : null;
    }, 10000, 250);
    assertEnvelope(r, 200);
    assert.equal(r.json.data?.redis, 'ok');
    assert.equal(r.json.data?.mysql, 'ok');
  });

  await t.test('login works again', async () => {
    const r = await waitFor(async () => {
      const l = await login(env.adminUser, env.adminPassword, ip(), { timeoutMs: 5000 });
      return l.status === 200 ? l : null;
    }, 10000, 250);
    assertEnvelope(r, 200);
    token = r.json.data.token;
    const me = await request('GET', '/admin/me', {
      headers: { Authorization: `Bearer ${token}` },
      from: ip(),
    });
    assertEnvelope(me, 200);
    assert.equal(me.json.data?.username, env.adminUser);
  });

  // info reads its view in the session's round trip by the script's SHA-1
  // (EVALSHA): a Redis without the script must still get an answer.
  await t.test('POST /admin/ws/info answers when Redis has lost its scripts', async () => {
    assert.ok(token, 'logged in above');
    const reg = await request('POST', '/admin/ws', { headers: { Authorization: `Bearer ${token}` }, from: ip() });
    assertEnvelope(reg, 200); // registered as an agent: info must list it
    execFileSync('redis-cli', ['--no-auth-warning', '-p', String(process.env.KEFU_REDIS_PORT),
      '-a', process.env.KEFU_REDIS_PASSWORD, 'SCRIPT', 'FLUSH'], { timeout: 15000 });
    for (let i = 0; i < 2; i++) { // without the script, then with it loaded again
      const r = await request('POST', '/admin/ws/info', {
        headers: { Authorization: `Bearer ${token}` },
        from: ip(),
      });
      assertEnvelope(r, 200);
      assert.ok(Array.isArray(r.json.data?.user_clients), r.text);
      assert.ok(Array.isArray(r.json.data?.service_clients), r.text);
      assert.equal(r.json.data.user_count, r.json.data.user_clients.length, r.text);
      assert.ok(r.json.data.service_clients.some((a) => a.ws_key === reg.json.data.ws_key), r.text);
    }
  });
});
