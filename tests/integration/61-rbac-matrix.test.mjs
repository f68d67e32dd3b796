// RBAC over the route table itself (kefu-api --routes), so that a new route
// is covered without a new test: for every route that needs a session, no
// session -> 401; for every KF_AUTH_RBAC route, a role without the grant ->
// 403 and the admin (role 1, holding * /admin/** from the seed rows) ->
// neither 401 nor 403. Then permissions with *, ** and method lists.

import test, { before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { env, request, ipAllocator, randomName, assertEnvelope } from './lib.mjs';
import { call, ok, adminToken, loginAs, makeRole, makeUser, makeAuth, cleanup } from './admin.mjs';

const ip = ipAllocator(import.meta.url);
const bin = process.env.KEFU_BIN || path.resolve('build/bin');
const routes = JSON.parse(execFileSync(path.join(bin, 'kefu-api'), ['--routes'], { encoding: 'utf8' }));
const guarded = routes.filter((r) => r.auth !== 'none');
const rbac = routes.filter((r) => r.auth === 'rbac');

let admin;
let role;
let user;
let userToken;
const made = { users: [], roles: [], auths: [] };

before(async () => {
  admin = await adminToken(ip());
  role = await makeRole(admin, ip(), randomName('role_'));
  made.roles.push(role.id);
  user = await makeUser(admin, ip(), role.id, randomName('user_'));
  made.users.push(user.id);
  userToken = await loginAs(user.username, user.password, ip());
});

after(async () => {
  if (admin) await cleanup(admin, ip(), made);
});

test('the route table is served and sane', () => {
  assert.ok(routes.length > 5, JSON.stringify(routes));
  for (const r of routes) {
    assert.match(r.path, /^\//);
    assert.ok(Array.isArray(r.methods) && r.methods.length > 0, JSON.stringify(r));
    assert.ok(['none', 'session', 'rbac'].includes(r.auth), JSON.stringify(r));
  }
  for (const r of routes.filter((x) => x.path.startsWith('/admin/') && x.path !== '/admin/login')) {
    assert.equal(r.auth, 'rbac', `${r.path} must take the grant check`);
  }
  for (const p of ['/admin/user', '/admin/role', '/admin/auth', '/admin/auth_map', '/admin/perf/stats']) {
    assert.ok(rbac.some((r) => r.path === p), `${p} is routed`);
  }
});

test('every guarded route: no session -> 401', async (t) => {
  for (const r of guarded) {
    for (const m of r.methods) {
      await t.test(`${m} ${r.path}`, async () => {
        const res = await request(m, r.path, { from: ip(), ...(m === 'POST' ? { form: {} } : {}) });
        assertEnvelope(res, 401);
      });
    }
  }
});

test('every guarded route: a made-up session -> 401', async (t) => {
  const fake = 'Q'.repeat(32);
  for (const r of guarded) {
    const m = r.methods[0];
    await t.test(`${m} ${r.path}`, async () => {
      const res = await call(fake, m, r.path, m === 'POST' ? {} : undefined, ip());
      assertEnvelope(res, 401);
    });
  }
});

test('every RBAC route: a role without the grant -> 403', async (t) => {
  for (const r of rbac) {
    for (const m of r.methods) {
      await t.test(`${m} ${r.path}`, async () => {
        const res = await call(userToken, m, r.path, m === 'POST' ? {} : undefined, ip());
        assertEnvelope(res, 403);
        assert.match(res.json.message, /not granted|forbidden/i);
      });
    }
  }
});

test('every RBAC route: the admin -> neither 401 nor 403', async (t) => {
  for (const r of rbac) {
    for (const m of r.methods) {
      await t.test(`${m} ${r.path}`, async () => {
        // a fresh session each time: /admin/logout ends the one it is given
        const token = await adminToken(ip());
        const res = await call(token, m, r.path, m === 'POST' ? {} : undefined, ip());
        assert.ok(res.json && typeof res.json.code === 'number', `${res.status} ${res.text}`);
        assert.ok(res.status !== 401 && res.status !== 403, `${m} ${r.path}: ${res.status} ${res.text}`);
        assert.ok(res.status < 500, `${m} ${r.path}: ${res.status} ${res.text}`);
      });
    }
  }
});

/* Give the test role exactly this one permission. */
async function grantOnly(pattern) {
  const id = await makeAuth(admin, ip(), randomName('perm_'), pattern.method, pattern.path, pattern.enable ?? 1);
  made.auths.push(id);
  await ok(admin, '/admin/auth_map/edit', { role: role.id, auth: String(id) }, ip());
  return id;
}

/* The status the test user gets for method path (an empty form on POST). */
async function statusOf(method, urlPath) {
  const res = await call(userToken, method, urlPath, method === 'POST' ? {} : undefined, ip());
  assert.ok(res.json, res.text);
  return res.status;
}

function allowed(status) {
  return status !== 401 && status !== 403;
}

test('pattern: one method, exact path', async () => {
  await grantOnly({ method: 'POST', path: '/admin/user' });
  assert.equal(await statusOf('POST', '/admin/user'), 200);
  assert.equal(await statusOf('GET', '/admin/user'), 403, 'GET is not granted');
  assert.equal(await statusOf('POST', '/admin/user/add'), 403, 'a path below is not granted');
  assert.equal(await statusOf('POST', '/admin/role'), 403);
});

test('pattern: a method list', async () => {
  await grantOnly({ method: 'GET,POST', path: '/admin/role' });
  assert.equal(await statusOf('GET', '/admin/role'), 200);
  assert.equal(await statusOf('POST', '/admin/role'), 200);
  assert.equal(await statusOf('POST', '/admin/user'), 403, 'the previous grant was replaced');
});

test('pattern: a method list with spaces and lowercase', async () => {
  await grantOnly({ method: 'get, post', path: '/admin/me' });
  assert.equal(await statusOf('GET', '/admin/me'), 200);
  assert.equal(await statusOf('POST', '/admin/me'), 200);
});

test('pattern: * is one segment', async () => {
  await grantOnly({ method: '*', path: '/admin/*' });
  for (const p of ['/admin/me', '/admin/user', '/admin/role', '/admin/auth', '/admin/auth_map']) {
    assert.ok(allowed(await statusOf('POST', p)), `${p} is one segment below /admin`);
  }
  assert.equal(await statusOf('GET', '/admin/me'), 200, '* takes every method');
  assert.equal(await statusOf('POST', '/admin/user/add'), 403, 'two segments below');
  assert.equal(await statusOf('GET', '/admin/perf/stats'), 403, 'two segments below');
});

test('pattern: * inside a segment', async () => {
  await grantOnly({ method: 'POST', path: '/admin/*/add' });
  assert.equal(await statusOf('POST', '/admin/user/add'), 400, 'granted; the empty form is refused');
  assert.equal(await statusOf('POST', '/admin/role/add'), 400);
  assert.equal(await statusOf('POST', '/admin/user/del'), 403);
  assert.equal(await statusOf('POST', '/admin/user'), 403);
});

test('pattern: ** is any depth', async () => {
  await grantOnly({ method: 'GET', path: '/admin/**' });
  assert.equal(await statusOf('GET', '/admin/perf/stats'), 200);
  assert.equal(await statusOf('GET', '/admin/me'), 200);
  assert.equal(await statusOf('GET', '/admin/user'), 200);
  assert.equal(await statusOf('POST', '/admin/me'), 403, 'only GET');
  assert.equal(await statusOf('POST', '/admin/user/add'), 403);
});

test('pattern: ** in the middle', async () => {
  await grantOnly({ method: '*', path: '/admin/**/del' });
  assert.equal(await statusOf('POST', '/admin/user/del'), 400, 'granted; no id');
  assert.equal(await statusOf('POST', '/admin/auth_map/del'), 400);
  assert.equal(await statusOf('POST', '/admin/user/add'), 403);
  assert.equal(await statusOf('POST', '/admin/user'), 403);
});

test('pattern: /api/** grants nothing under /admin', async () => {
  await grantOnly({ method: '*', path: '/api/**' });
  assert.equal(await statusOf('POST', '/admin/user'), 403);
  assert.equal(await statusOf('GET', '/admin/me'), 403);
});

test('a disabled permission grants nothing; enabling it grants at once', async () => {
  const id = await grantOnly({ method: '*', path: '/admin/**', enable: 0 });
  assert.equal(await statusOf('GET', '/admin/me'), 403);
  await ok(admin, '/admin/auth/edit', { id, enable: 1 }, ip());
  assert.equal(await statusOf('GET', '/admin/me'), 200);
  await ok(admin, '/admin/auth/edit', { id, enable: 0 }, ip());
  assert.equal(await statusOf('GET', '/admin/me'), 403);
});

test('no grant at all: deny by default', async () => {
  await ok(admin, '/admin/auth_map/edit', { role: role.id, auth: '' }, ip());
  for (const r of rbac) assert.equal(await statusOf(r.methods[0], r.path), 403, r.path);
});
