// Accounts through the web server and MySQL: POST /admin/user (paged list),
// /admin/user/add, /admin/user/edit, /admin/user/del, with every failure
// the issue names; text kept exactly as given; a deleted or demoted account
// loses its rights on its next request. (The last account able to reach
// /admin/** is tested in 85-seed-migrate, on a database where the admin is
// alone: here other test files may have made accounts in role 1.)

import test, { before, after } from 'node:test';
import assert from 'node:assert/strict';
import { env, request, login, ipAllocator, randomName, assertEnvelope } from './lib.mjs';
import { call, post, ok, adminToken, loginAs, makeRole, makeUser, cleanup, listAll } from './admin.mjs';

const ip = ipAllocator(import.meta.url);
let admin;
let role; // a role without grants
let superRole; // a role holding permission 1 (* /admin/**)
const made = { users: [], roles: [], auths: [] };

before(async () => {
  admin = await adminToken(ip());
  role = await makeRole(admin, ip(), randomName('role_'));
  superRole = await makeRole(admin, ip(), randomName('super_'));
  made.roles.push(role.id, superRole.id);
  await ok(admin, '/admin/auth_map/add', { role: superRole.id, auth: 1 }, ip());
});

after(async () => {
  if (admin) await cleanup(admin, ip(), made);
});

async function newUser(r = role.id, password) {
  const u = await makeUser(admin, ip(), r, randomName('u_'), password);
  made.users.push(u.id);
  return u;
}

function expect400(res, field) {
  assertEnvelope(res, 400);
  assert.match(res.json.message, new RegExp(`'${field}'`), res.text);
}

test('list: the seed shape, the admin in it', async () => {
  const r = await post(admin, '/admin/user', { pn: 1, pc: 100 }, ip());
  assertEnvelope(r, 200);
  const d = r.json.data;
  assert.ok(Array.isArray(d.data));
  assert.equal(d.pn, 1);
  assert.equal(d.pc, 100);
  assert.equal(typeof d.count, 'number');
  assert.ok(d.count >= d.data.length);
  const a = d.data.find((u) => u.user_name === env.adminUser);
  assert.ok(a, r.text);
  for (const k of ['id', 'name', 'user_name', 'role', 'role_name', 'describe', 'create_time']) {
    assert.ok(k in a, `row lacks ${k}: ${JSON.stringify(a)}`);
  }
  assert.equal(a.role, 1);
  assert.match(a.create_time, /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/);
  assert.ok(!('password' in a), 'no password in the list');
  assert.ok(!r.text.includes('$argon2'), 'no hash anywhere');
});

test('list: defaults, paging and bad page fields', async () => {
  await newUser();
  await newUser();
  const d = await ok(admin, '/admin/user', {}, ip());
  assert.equal(d.pn, 1);
  assert.ok(d.pc >= 1 && d.pc <= 100);
  const one = await ok(admin, '/admin/user', { pn: 1, pc: 1 }, ip());
  assert.equal(one.data.length, 1);
  assert.ok(one.count >= 3);
  const two = await ok(admin, '/admin/user', { pn: 2, pc: 1 }, ip());
  assert.equal(two.data.length, 1);
  assert.notEqual(two.data[0].id, one.data[0].id);
  const past = await ok(admin, '/admin/user', { pn: 100000, pc: 100 }, ip());
  assert.deepEqual(past.data, []);
  assert.equal(past.count, one.count);
  const get = await call(admin, 'GET', '/admin/user?pn=1&pc=2', undefined, ip());
  assertEnvelope(get, 200);
  assert.ok(get.json.data.data.length <= 2);
  for (const [f, v] of [['pc', 0], ['pc', 101], ['pc', -1], ['pc', 'x'], ['pn', 0], ['pn', 'abc'], ['pn', '1.5']]) {
    expect400(await post(admin, '/admin/user', { [f]: v }, ip()), f);
  }
});

test('add: round trip, text exactly as given, the account logs in', async () => {
  const username = `${randomName('ü_')}<b>&"'`;
  const name = '名字 <script>alert("x")</script> & 😀 \\ "q"';
  const password = 'pässwörd-ÿ-123';
  const data = await ok(admin, '/admin/user/add', { username, password, name, role: role.id }, ip());
  made.users.push(data.id);
  assert.equal(data.user_name, username);
  assert.equal(data.name, name);
  const rows = await listAll(admin, '/admin/user', {}, ip());
  const row = rows.find((u) => u.id === data.id);
  assert.ok(row);
  assert.equal(row.user_name, username);
  assert.equal(row.name, name);
  assert.equal(row.role, role.id);
  assert.equal(row.role_name, role.name);
  assert.equal(row.describe, 'made by a test');
  const raw = await post(admin, '/admin/user', { pn: 1, pc: 100 }, ip());
  assert.ok(raw.text.includes('<script>alert(\\"x\\")</script>'), 'JSON-escaped, not HTML-escaped');
  assert.ok(!raw.text.includes('&lt;'), 'never HTML-escaped');
  const t = await loginAs(username, password, ip());
  assert.match(t, /^[A-Za-z0-9]{32}$/);
});

test('add: JSON body with numbers and strings', async () => {
  const username = randomName('j_');
  const r = await request('POST', '/admin/user/add', {
    headers: { Authorization: `Bearer ${admin}` },
    json: { username, password: 'json-password', name: 'J', role: String(role.id) },
    from: ip(),
  });
  assertEnvelope(r, 200);
  made.users.push(r.json.data.id);
  const bad = await request('POST', '/admin/user/add', {
    headers: { Authorization: `Bearer ${admin}` },
    json: { username: randomName(), password: 'json-password', name: 'J', role: true },
    from: ip(),
  });
  expect400(bad, 'role');
  const bad2 = await request('POST', '/admin/user/add', {
    headers: { Authorization: `Bearer ${admin}` },
    json: { username: 123, password: 'json-password', name: 'J', role: role.id },
    from: ip(),
  });
  expect400(bad2, 'username');
});

test('add: every missing or malformed field is a 400 naming it', async () => {
  const good = { username: randomName(), password: 'long-enough', name: 'N', role: role.id };
  for (const f of ['username', 'password', 'name', 'role']) {
    const fields = { ...good };
    delete fields[f];
    expect400(await post(admin, '/admin/user/add', fields, ip()), f);
    expect400(await post(admin, '/admin/user/add', { ...good, [f]: '' }, ip()), f);
  }
  expect400(await post(admin, '/admin/user/add', { ...good, username: 'a' }, ip()), 'username');
  expect400(await post(admin, '/admin/user/add', { ...good, username: 'u'.repeat(61) }, ip()), 'username');
  expect400(await post(admin, '/admin/user/add', { ...good, name: 'n'.repeat(61) }, ip()), 'name');
  expect400(await post(admin, '/admin/user/add', { ...good, name: '😀'.repeat(61) }, ip()), 'name');
  expect400(await post(admin, '/admin/user/add', { ...good, password: 'short' }, ip()), 'password');
  expect400(await post(admin, '/admin/user/add', { ...good, password: 'p'.repeat(1025) }, ip()), 'password');
  for (const v of ['x', '0', '-1', '1.5', '4294967296']) {
    expect400(await post(admin, '/admin/user/add', { ...good, role: v }, ip()), 'role');
  }
  const utf = await request('POST', '/admin/user/add', {
    headers: { Authorization: `Bearer ${admin}` },
    form: `username=ab%FF%FE&password=long-enough&name=N&role=${role.id}`,
    from: ip(),
  });
  expect400(utf, 'username');
  const nul = await request('POST', '/admin/user/add', {
    headers: { Authorization: `Bearer ${admin}` },
    form: `username=abc&password=long-enough&name=N%00x&role=${role.id}`,
    from: ip(),
  });
  expect400(nul, 'name');
});

test('add: 60 characters of any width fit', async () => {
  const username = '用'.repeat(50) + randomName('').slice(0, 10);
  const name = '😀'.repeat(60);
  const data = await ok(admin, '/admin/user/add', { username, password: 'long-enough', name, role: role.id }, ip());
  made.users.push(data.id);
  const row = (await listAll(admin, '/admin/user', {}, ip())).find((u) => u.id === data.id);
  assert.equal(row.user_name, username);
  assert.equal(row.name, name);
});

test('add: unknown role -> 404, duplicate username -> 409', async () => {
  const r = await post(admin, '/admin/user/add', { username: randomName(), password: 'long-enough', name: 'N', role: 999999 }, ip());
  assertEnvelope(r, 404);
  assert.match(r.json.message, /'role'/);
  const u = await newUser();
  const dup = await post(admin, '/admin/user/add', { username: u.username, password: 'long-enough', name: 'N', role: role.id }, ip());
  assertEnvelope(dup, 409);
  assert.match(dup.json.message, /username/);
  const upper = await post(admin, '/admin/user/add', { username: env.adminUser.toUpperCase(), password: 'long-enough', name: 'N', role: role.id }, ip());
  assertEnvelope(upper, 409);
});

test('edit: fields change, an absent or empty password keeps the old one', async () => {
  const u = await newUser();
  const username = randomName('ed_');
  const d = await ok(admin, '/admin/user/edit', { id: u.id, username, name: 'Renamed ✓', role: superRole.id }, ip());
  assert.equal(d.user_name, username);
  let row = (await listAll(admin, '/admin/user', {}, ip())).find((x) => x.id === u.id);
  assert.equal(row.user_name, username);
  assert.equal(row.name, 'Renamed ✓');
  assert.equal(row.role, superRole.id);
  await loginAs(username, u.password, ip());
  await ok(admin, '/admin/user/edit', { id: u.id, username, name: 'N2', role: role.id, password: '' }, ip());
  await loginAs(username, u.password, ip());
  await ok(admin, '/admin/user/edit', { id: u.id, username, name: 'N3', role: role.id, password: 'a-new-password' }, ip());
  await loginAs(username, 'a-new-password', ip());
  const old = await login(username, u.password, ip());
  assertEnvelope(old, 401);
  row = (await listAll(admin, '/admin/user', {}, ip())).find((x) => x.id === u.id);
  assert.equal(row.name, 'N3');
});

test('edit: failures', async () => {
  const u = await newUser();
  const other = await newUser();
  const good = { id: u.id, username: u.username, name: 'N', role: role.id };
  for (const f of ['id', 'username', 'name', 'role']) {
    const fields = { ...good };
    delete fields[f];
    expect400(await post(admin, '/admin/user/edit', fields, ip()), f);
  }
  expect400(await post(admin, '/admin/user/edit', { ...good, id: 'x' }, ip()), 'id');
  expect400(await post(admin, '/admin/user/edit', { ...good, password: 'short' }, ip()), 'password');
  const gone = await post(admin, '/admin/user/edit', { ...good, id: 999999 }, ip());
  assertEnvelope(gone, 404);
  assert.match(gone.json.message, /'id'/);
  const badRole = await post(admin, '/admin/user/edit', { ...good, role: 999999 }, ip());
  assertEnvelope(badRole, 404);
  assert.match(badRole.json.message, /'role'/);
  const dup = await post(admin, '/admin/user/edit', { ...good, username: other.username }, ip());
  assertEnvelope(dup, 409);
  const row = (await listAll(admin, '/admin/user', {}, ip())).find((x) => x.id === u.id);
  assert.equal(row.user_name, u.username, 'a refused edit changes nothing');
});

test('del: removes; unknown -> 404; malformed -> 400', async () => {
  const u = await newUser();
  const d = await ok(admin, '/admin/user/del', { id: u.id }, ip());
  assert.equal(d.id, u.id);
  assert.ok(!(await listAll(admin, '/admin/user', {}, ip())).some((x) => x.id === u.id));
  assertEnvelope(await post(admin, '/admin/user/del', { id: u.id }, ip()), 404);
  assertEnvelope(await post(admin, '/admin/user/del', { id: 999999 }, ip()), 404);
  expect400(await post(admin, '/admin/user/del', {}, ip()), 'id');
  expect400(await post(admin, '/admin/user/del', { id: 'one' }, ip()), 'id');
  const fail = await login(u.username, u.password, ip());
  assertEnvelope(fail, 401);
});

test('a deleted account loses its rights on its next request', async () => {
  const u = await newUser(superRole.id);
  const t = await loginAs(u.username, u.password, ip());
  assertEnvelope(await call(t, 'GET', '/admin/me', undefined, ip()), 200);
  assertEnvelope(await post(t, '/admin/user', {}, ip()), 200);
  await ok(admin, '/admin/user/del', { id: u.id }, ip());
  const after1 = await post(t, '/admin/user', {}, ip());
  assertEnvelope(after1, 401);
  assert.match(after1.json.message, /no longer exists/);
  assertEnvelope(await call(t, 'GET', '/admin/me', undefined, ip()), 401);
});

test('a demoted account loses its rights on its next request', async () => {
  const u = await newUser(superRole.id);
  const t = await loginAs(u.username, u.password, ip());
  assertEnvelope(await post(t, '/admin/role', {}, ip()), 200);
  await ok(admin, '/admin/user/edit', { id: u.id, username: u.username, name: 'demoted', role: role.id }, ip());
  assertEnvelope(await post(t, '/admin/role', {}, ip()), 403);
  assertEnvelope(await call(t, 'GET', '/admin/me', undefined, ip()), 403);
  await ok(admin, '/admin/user/edit', { id: u.id, username: u.username, name: 'promoted', role: superRole.id }, ip());
  assertEnvelope(await post(t, '/admin/role', {}, ip()), 200);
});
