// MySQL goes away and comes back while an admin works: every admin endpoint
// answers 503 (never 500, never a crash), and once MySQL is back the same
// session carries on; after a restart while idle the very first change goes
// through (a transaction is begun on a fresh connection, not the dead one).
// Stops the stack's MariaDB (deploy/stack stop-service mysql DIR).

import test, { before, after } from 'node:test';
import assert from 'node:assert/strict';
import { request, stack, waitFor, ipAllocator, randomName, assertEnvelope } from './lib.mjs';
import { call, post, ok, adminToken } from './admin.mjs';

const ip = ipAllocator(import.meta.url);
let admin;
let mysqlStopped = false;
const roles = [];

before(async () => {
  admin = await adminToken(ip());
});

after(async () => {
  if (mysqlStopped) await stack('start-service', 'mysql');
  for (const id of roles) await post(admin, '/admin/role/del', { id }, ip());
});

test('MySQL down -> 503 from admin endpoints; back -> the same session works', async (t) => {
  // warm every worker's connection and the grant cache
  for (let i = 0; i < 8; i++) assertEnvelope(await post(admin, '/admin/role', {}, ip()), 200);
  await stack('stop-service', 'mysql');
  mysqlStopped = true;

  await t.test('lists and changes -> 503', async () => {
    for (const [p, f] of [
      ['/admin/user', {}],
      ['/admin/role', {}],
      ['/admin/auth', {}],
      ['/admin/auth_map', { role: 1 }],
      ['/admin/role/add', { name: 'x' }],
      ['/admin/user/add', { username: randomName(), password: 'long-enough', name: 'n', role: 1 }],
      ['/admin/user/del', { id: 999999 }],
      ['/admin/auth_map/edit', { role: 1, auth: '1,2' }],
    ]) {
      const r = await post(admin, p, f, ip());
      assertEnvelope(r, 503);
    }
    const s = await call(admin, 'GET', '/admin/perf/stats', undefined, ip());
    assertEnvelope(s, 200);
    assert.equal(s.json.data.stores.mysql, 'down');
    assert.equal(s.json.data.stores.redis, 'ok');
  });

  await t.test('bad input is still 400, not 503', async () => {
    const r = await post(admin, '/admin/user/add', { username: 'x' }, ip());
    assertEnvelope(r, 400);
  });

  await stack('start-service', 'mysql');
  mysqlStopped = false;

  await t.test('back: the first change goes through, then everything', async () => {
    const name = randomName('back_');
    const r = await waitFor(async () => {
      const x = await post(admin, '/admin/role/add', { name }, ip());
      return x.status === 200 ? x : null;
    }, 15000, 250);
    roles.push(r.json.data.id);
    for (let i = 0; i < 8; i++) {
      const x = await post(admin, '/admin/role/add', { name: `${name}_${i}` }, ip());
      assertEnvelope(x, 200);
      roles.push(x.json.data.id);
    }
    const list = await ok(admin, '/admin/role', { pc: 100 }, ip());
    assert.ok(list.data.some((x) => x.name === name));
    assertEnvelope(await request('GET', '/healthz', { from: ip() }), 200);
  });

  await t.test('restarted while idle: the very first requests succeed', async () => {
    await stack('stop-service', 'mysql');
    mysqlStopped = true;
    await stack('start-service', 'mysql');
    mysqlStopped = false;
    // every worker still holds a connection to the old server
    for (let i = 0; i < 8; i++) {
      const x = await post(admin, '/admin/role/add', { name: randomName('idle_') }, ip());
      assertEnvelope(x, 200);
      roles.push(x.json.data.id);
      assertEnvelope(await post(admin, '/admin/user', {}, ip()), 200);
    }
  });
});
