// Roles, permissions and grants through the web server and MySQL:
// /admin/role[/add|/edit|/del], /admin/auth[/add|/edit|/del],
// /admin/auth_map[/add|/edit|/del], with every failure: 400 naming the
// field, 404 unknown ids, 409 duplicates and a role in use. (The last
// account able to reach /admin/** is tested in 85-seed-migrate, where the
// admin is alone.)

import test, { before, after } from 'node:test';
import assert from 'node:assert/strict';
import { ipAllocator, randomName, assertEnvelope } from './lib.mjs';
import { call, post, ok, adminToken, loginAs, makeRole, makeUser, makeAuth, cleanup, listAll } from './admin.mjs';

const ip = ipAllocator(import.meta.url);
let admin;
const made = { users: [], roles: [], auths: [] };

before(async () => {
  admin = await adminToken(ip());
});

after(async () => {
  if (admin) await cleanup(admin, ip(), made);
});

async function newRole(name = randomName('r_')) {
  const r = await makeRole(admin, ip(), name);
  made.roles.push(r.id);
  return r;
}

async function newAuth(method = 'GET', path = '/admin/me', enable = 1) {
  const id = await makeAuth(admin, ip(), randomName('p_'), method, path, enable);
  made.auths.push(id);
  return id;
}

function expect400(res, field) {
  assertEnvelope(res, 400);
  assert.match(res.json.message, new RegExp(`'${field}'`), res.text);
}

// ---------------------------------------------------------------- roles

test('role list: seed shape, role 1 from the seed rows, pn/pc', async () => {
  const d = await ok(admin, '/admin/role', {}, ip());
  assert.ok(Array.isArray(d.data));
  for (const k of ['count', 'pn', 'pc']) assert.equal(typeof d[k], 'number');
  const one = d.data.find((r) => r.id === 1);
  assert.ok(one, JSON.stringify(d));
  assert.equal(one.name, '管理员');
  assert.equal(one.describe, '最高权限');
  assert.match(one.create_time, /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/);
  await newRole();
  await newRole();
  const page = await ok(admin, '/admin/role', { pn: 2, pc: 1 }, ip());
  assert.equal(page.data.length, 1);
  assert.equal(page.pn, 2);
  assert.equal(page.pc, 1);
  expect400(await post(admin, '/admin/role', { pc: 101 }, ip()), 'pc');
  expect400(await post(admin, '/admin/role', { pn: -3 }, ip()), 'pn');
  assertEnvelope(await call(admin, 'GET', '/admin/role?pc=5', undefined, ip()), 200);
});

test('role add/edit: round trip, text exactly as given', async () => {
  const name = `客服 <i>"组"</i> & 😀`;
  const d = await ok(admin, '/admin/role/add', { name, describe: "it's <b>bold</b>" }, ip());
  made.roles.push(d.id);
  assert.equal(d.name, name);
  let row = (await listAll(admin, '/admin/role', {}, ip())).find((r) => r.id === d.id);
  assert.equal(row.name, name);
  assert.equal(row.describe, "it's <b>bold</b>");
  const noDesc = await ok(admin, '/admin/role/add', { name: 'no describe' }, ip());
  made.roles.push(noDesc.id);
  row = (await listAll(admin, '/admin/role', {}, ip())).find((r) => r.id === noDesc.id);
  assert.equal(row.describe, '');
  await ok(admin, '/admin/role/edit', { id: d.id, name: 'renamed' }, ip());
  row = (await listAll(admin, '/admin/role', {}, ip())).find((r) => r.id === d.id);
  assert.equal(row.name, 'renamed');
  assert.equal(row.describe, "it's <b>bold</b>", 'absent describe keeps it');
  await ok(admin, '/admin/role/edit', { id: d.id, name: 'renamed', describe: '' }, ip());
  row = (await listAll(admin, '/admin/role', {}, ip())).find((r) => r.id === d.id);
  assert.equal(row.describe, '');
});

test('role add/edit: failures', async () => {
  expect400(await post(admin, '/admin/role/add', {}, ip()), 'name');
  expect400(await post(admin, '/admin/role/add', { name: '' }, ip()), 'name');
  expect400(await post(admin, '/admin/role/add', { name: 'x'.repeat(61) }, ip()), 'name');
  expect400(await post(admin, '/admin/role/add', { name: 'ok', describe: 'd'.repeat(101) }, ip()), 'describe');
  const r = await newRole();
  expect400(await post(admin, '/admin/role/edit', { name: 'x' }, ip()), 'id');
  expect400(await post(admin, '/admin/role/edit', { id: r.id }, ip()), 'name');
  expect400(await post(admin, '/admin/role/edit', { id: 'r', name: 'x' }, ip()), 'id');
  const gone = await post(admin, '/admin/role/edit', { id: 999999, name: 'x' }, ip());
  assertEnvelope(gone, 404);
  assert.match(gone.json.message, /'id'/);
});

test('role del: in use -> 409; free -> gone with its grants; unknown -> 404', async () => {
  const r = await newRole();
  const pid = await newAuth();
  await ok(admin, '/admin/auth_map/add', { role: r.id, auth: pid }, ip());
  const u = await makeUser(admin, ip(), r.id, randomName('u_'));
  made.users.push(u.id);
  const inUse = await post(admin, '/admin/role/del', { id: r.id }, ip());
  assertEnvelope(inUse, 409);
  assert.match(inUse.json.message, /in use/);
  assertEnvelope(await post(admin, '/admin/role/del', { id: 1 }, ip()), 409);
  await ok(admin, '/admin/user/del', { id: u.id }, ip());
  await ok(admin, '/admin/role/del', { id: r.id }, ip());
  assert.ok(!(await listAll(admin, '/admin/role', {}, ip())).some((x) => x.id === r.id));
  assertEnvelope(await post(admin, '/admin/auth_map', { role: r.id }, ip()), 404);
  assertEnvelope(await post(admin, '/admin/role/del', { id: r.id }, ip()), 404);
  expect400(await post(admin, '/admin/role/del', {}, ip()), 'id');
  // its grants went with it: a new role with a new id starts empty
  const again = await newRole();
  const d = await ok(admin, '/admin/auth_map', { role: again.id }, ip());
  assert.equal(d.count, 0);
});

// ---------------------------------------------------------------- permissions

test('auth list: the enabled permissions; all=1 adds the disabled ones', async () => {
  const d = await ok(admin, '/admin/auth', {}, ip());
  const one = d.data.find((a) => a.id === 1);
  assert.ok(one);
  assert.equal(one.method, '*');
  assert.equal(one.path, '/admin/**');
  assert.equal(one.enable, 1);
  for (const k of ['id', 'name', 'method', 'path', 'enable', 'parent_id', 'create_time']) assert.ok(k in one, k);
  const off = await newAuth('GET', '/admin/x', 0);
  assert.ok(!(await listAll(admin, '/admin/auth', {}, ip())).some((a) => a.id === off), 'disabled: not listed');
  const all = await listAll(admin, '/admin/auth', { all: 1 }, ip());
  const row = all.find((a) => a.id === off);
  assert.ok(row, 'listed with all=1');
  assert.equal(row.enable, 0);
  expect400(await post(admin, '/admin/auth', { all: 2 }, ip()), 'all');
  expect400(await post(admin, '/admin/auth', { pc: 0 }, ip()), 'pc');
});

test('auth add/edit/del: round trip and validation', async () => {
  const id = await newAuth('GET,POST', '/admin/**/add');
  let row = (await listAll(admin, '/admin/auth', {}, ip())).find((a) => a.id === id);
  assert.equal(row.method, 'GET,POST');
  assert.equal(row.path, '/admin/**/add');
  await ok(admin, '/admin/auth/edit', { id, path: '/admin/*', name: '改名' }, ip());
  row = (await listAll(admin, '/admin/auth', {}, ip())).find((a) => a.id === id);
  assert.equal(row.path, '/admin/*');
  assert.equal(row.method, 'GET,POST', 'absent: kept');
  assert.equal(row.name, '改名');
  const good = { name: 'n', method: 'GET', path: '/admin/x' };
  for (const f of ['name', 'method', 'path']) {
    const fields = { ...good };
    delete fields[f];
    expect400(await post(admin, '/admin/auth/add', fields, ip()), f);
  }
  for (const m of ['GT', 'GET POST', 'GET,', '', 'x'.repeat(21)]) {
    expect400(await post(admin, '/admin/auth/add', { ...good, method: m }, ip()), 'method');
  }
  for (const p of ['admin/x', '/admin//x', '/admin x', '/a?b', '/' + 'p'.repeat(200)]) {
    expect400(await post(admin, '/admin/auth/add', { ...good, path: p }, ip()), 'path');
  }
  expect400(await post(admin, '/admin/auth/add', { ...good, enable: 5 }, ip()), 'enable');
  expect400(await post(admin, '/admin/auth/edit', { id }, ip()), 'name');
  expect400(await post(admin, '/admin/auth/edit', { path: '/x' }, ip()), 'id');
  expect400(await post(admin, '/admin/auth/edit', { id, method: 'FETCH' }, ip()), 'method');
  assertEnvelope(await post(admin, '/admin/auth/edit', { id: 999999, enable: 1 }, ip()), 404);
  // del takes its grants along
  const r = await newRole();
  await ok(admin, '/admin/auth_map/add', { role: r.id, auth: id }, ip());
  await ok(admin, '/admin/auth/del', { id }, ip());
  assert.equal((await ok(admin, '/admin/auth_map', { role: r.id }, ip())).count, 0);
  assertEnvelope(await post(admin, '/admin/auth/del', { id }, ip()), 404);
  expect400(await post(admin, '/admin/auth/del', { id: 'x' }, ip()), 'id');
});

// ---------------------------------------------------------------- grants

test('auth_map: add, list, edit to an exact set, del', async () => {
  const r = await newRole();
  const a = await newAuth('GET', '/admin/me');
  const b = await newAuth('POST', '/admin/user');
  const c = await newAuth('*', '/admin/role');
  const d1 = await ok(admin, '/admin/auth_map/add', { role: r.id, auth: a }, ip());
  assert.deepEqual(d1, { role: r.id, auth: a });
  let list = await ok(admin, '/admin/auth_map', { role: r.id }, ip());
  assert.equal(list.count, 1);
  const row = list.data[0];
  assert.equal(row.role, r.id);
  assert.equal(row.auth, a);
  assert.equal(row.role_name, r.name);
  assert.equal(row.method, 'GET');
  assert.equal(row.path, '/admin/me');
  for (const k of ['role_describe', 'auth_name', 'enable', 'create_time']) assert.ok(k in row, k);
  const dup = await post(admin, '/admin/auth_map/add', { role: r.id, auth: a }, ip());
  assertEnvelope(dup, 409);
  const e = await ok(admin, '/admin/auth_map/edit', { role: r.id, auth: `${b}, ${c}` }, ip());
  assert.deepEqual(e.auth, [b, c].sort((x, y) => x - y));
  list = await ok(admin, '/admin/auth_map', { role: r.id }, ip());
  assert.deepEqual(list.data.map((x) => x.auth).sort((x, y) => x - y), [b, c].sort((x, y) => x - y));
  const j = await call(admin, 'POST', '/admin/auth_map/edit', undefined, ip(), { json: { role: r.id, auth: [a, String(c)] } });
  assertEnvelope(j, 200);
  list = await ok(admin, '/admin/auth_map', { role: r.id, pc: 1 }, ip());
  assert.equal(list.count, 2);
  assert.equal(list.data.length, 1);
  await ok(admin, '/admin/auth_map/del', { role: r.id, auth: a }, ip());
  assertEnvelope(await post(admin, '/admin/auth_map/del', { role: r.id, auth: a }, ip()), 404);
  await ok(admin, '/admin/auth_map/edit', { role: r.id, auth: '' }, ip());
  assert.equal((await ok(admin, '/admin/auth_map', { role: r.id }, ip())).count, 0);
});

test('auth_map: failures', async () => {
  const r = await newRole();
  const a = await newAuth();
  expect400(await post(admin, '/admin/auth_map', {}, ip()), 'role');
  expect400(await post(admin, '/admin/auth_map', { role: 'x' }, ip()), 'role');
  assertEnvelope(await post(admin, '/admin/auth_map', { role: 999999 }, ip()), 404);
  expect400(await post(admin, '/admin/auth_map/add', { auth: a }, ip()), 'role');
  expect400(await post(admin, '/admin/auth_map/add', { role: r.id }, ip()), 'auth');
  const noRole = await post(admin, '/admin/auth_map/add', { role: 999999, auth: a }, ip());
  assertEnvelope(noRole, 404);
  assert.match(noRole.json.message, /'role'/);
  const noAuth = await post(admin, '/admin/auth_map/add', { role: r.id, auth: 999999 }, ip());
  assertEnvelope(noAuth, 404);
  assert.match(noAuth.json.message, /'auth'/);
  expect400(await post(admin, '/admin/auth_map/del', { role: r.id }, ip()), 'auth');
  expect400(await post(admin, '/admin/auth_map/edit', { role: r.id }, ip()), 'auth');
  for (const bad of ['a,b', '1,', ',1', '1;2', '-1', '0', '99999999999']) {
    expect400(await post(admin, '/admin/auth_map/edit', { role: r.id, auth: bad }, ip()), 'auth');
  }
  const many = Array.from({ length: 201 }, (_, i) => i + 1).join(',');
  expect400(await post(admin, '/admin/auth_map/edit', { role: r.id, auth: many }, ip()), 'auth');
  const unknown = await post(admin, '/admin/auth_map/edit', { role: r.id, auth: `${a},999999` }, ip());
  assertEnvelope(unknown, 404);
  assert.equal((await ok(admin, '/admin/auth_map', { role: r.id }, ip())).count, 0, 'a refused edit changes nothing');
  assertEnvelope(await post(admin, '/admin/auth_map/edit', { role: 999999, auth: `${a}` }, ip()), 404);
});

test('grant changes are in force on the next request', async () => {
  const r = await newRole();
  const u = await makeUser(admin, ip(), r.id, randomName('u_'));
  made.users.push(u.id);
  const t = await loginAs(u.username, u.password, ip());
  const a = await newAuth('POST', '/admin/role');
  assertEnvelope(await post(t, '/admin/role', {}, ip()), 403);
  await ok(admin, '/admin/auth_map/add', { role: r.id, auth: a }, ip());
  // many requests, so every worker of the process is asked
  for (let i = 0; i < 12; i++) assertEnvelope(await post(t, '/admin/role', {}, ip()), 200);
  await ok(admin, '/admin/auth_map/del', { role: r.id, auth: a }, ip());
  for (let i = 0; i < 12; i++) assertEnvelope(await post(t, '/admin/role', {}, ip()), 403);
  await ok(admin, '/admin/auth_map/add', { role: r.id, auth: a }, ip());
  await ok(admin, '/admin/auth/edit', { id: a, enable: 0 }, ip());
  for (let i = 0; i < 12; i++) assertEnvelope(await post(t, '/admin/role', {}, ip()), 403);
});
