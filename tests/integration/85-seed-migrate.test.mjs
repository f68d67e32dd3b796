// Migration from the seed (gin_websocket): a private stack of its own in
// tests/var-seed-$KEFU_WEB whose database starts as the seed left it
// (tests/fixtures/seed.sql: utf8 tables, nullable columns, the legacy SHA-1
// admin password), loaded by deploy/stack (KEFU_STACK_SEED_SQL) before
// `kefuctl migrate`. Then: the data is kept and converted, running migrate
// again changes nothing (schemas and row checksums), the seed README's admin
// password logs in through the web server and is re-hashed to Argon2id.
// Here the admin is the only account, so this file also checks that the last
// account able to reach /admin/** cannot be removed in any way (409), not
// even by two concurrent requests.

import test, { before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import path from 'node:path';
import fs from 'node:fs';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '../..');
const stackBin = process.env.KEFU_STACK || path.join(root, 'deploy/stack');
const web = process.env.KEFU_WEB || 'lighttpd';
const dir = process.env.KEFU_STACK_DIR
  ? `${path.resolve(process.env.KEFU_STACK_DIR)}-seed`
  : path.join(root, 'tests', `var-seed-${web}.${process.pid}`);
const SEED_PASSWORD = 'c3677a175c42af337e386a2ab992a312942fc6cc';
const LEGACY_HASH = '76e7cb24c890edb3cfc8b3f66282d8a94274ef83';
const TABLES = ['admin', 'admin_role', 'admin_auth', 'admin_auth_map', 'taskqueue'];

let S = {}; // the seed stack's stack.env
let up = false;
let nextIp = 10;
const ip = () => `127.0.85.${nextIp++}`;

function run(cmd, args, opts = {}) {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { timeout: 180000, maxBuffer: 16 << 20, ...opts }, (err, stdout, stderr) => {
      if (err) {
        err.message += `\n--- stdout\n${stdout}\n--- stderr\n${stderr}`;
        reject(err);
      } else {
        resolve(stdout);
      }
    });
  });
}

function stackEnv() {
  const env = { ...process.env };
  // a stack of its own: free ports, no test.ini, the seed's database
  for (const k of Object.keys(env)) if (k.startsWith('KEFU_') && k !== 'KEFU_BIN') delete env[k];
  env.KEFU_WEB = web;
  env.KEFU_STACK_SEED_SQL = path.join(root, 'tests/fixtures/seed.sql');
  return env;
}

function readEnv(file) {
  const out = {};
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    const m = /^([A-Z_][A-Z0-9_]*)='([^']*)'$/.exec(line);
    if (m) out[m[1]] = m[2];
  }
  return out;
}

function sql(query) {
  return run('mariadb', ['--no-defaults', '--default-character-set=utf8mb4', `--socket=${S.KEFU_MYSQL_ROOT_SOCKET}`, '-uroot', 'kefu', '-N', '-B', '-e', query]);
}

function kefuctl(...args) {
  return run(path.join(S.KEFU_BIN, 'kefuctl'), ['--config', S.KEFU_CONFIG, ...args]);
}

/* Every table's definition and a checksum of its rows. */
async function snapshot() {
  const parts = [];
  for (const t of [...TABLES, 'app_lock']) {
    parts.push(await sql(`SHOW CREATE TABLE \`${t}\``));
    parts.push(await sql(`CHECKSUM TABLE \`${t}\` EXTENDED`));
  }
  return parts.join('\n');
}

function req(method, urlPath, { form, token, from } = {}) {
  const base = new URL(S.KEFU_HTTP);
  const body = form ? Buffer.from(new URLSearchParams(form).toString()) : null;
  const headers = { 'Content-Length': String(body ? body.length : 0) };
  if (body) headers['Content-Type'] = 'application/x-www-form-urlencoded';
  if (token) headers.Authorization = `Bearer ${token}`;
  return new Promise((resolve, reject) => {
    const r = http.request(
      { hostname: base.hostname, port: base.port, method, path: urlPath, headers, agent: false, localAddress: from || ip() },
      (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let json = null;
          try {
            json = JSON.parse(text);
          } catch {
            json = null;
          }
          resolve({ status: res.statusCode, text, json });
        });
      },
    );
    r.setTimeout(20000, () => r.destroy(new Error(`${method} ${urlPath}: timeout`)));
    r.on('error', reject);
    if (body) r.write(body);
    r.end();
  });
}

async function loginToken(username, password) {
  const r = await req('POST', '/admin/login', { form: { username, password } });
  assert.equal(r.status, 200, `login ${username}: ${r.text}`);
  return r.json.data.token;
}

async function okPost(token, urlPath, form) {
  const r = await req('POST', urlPath, { token, form });
  assert.equal(r.status, 200, `${urlPath} ${JSON.stringify(form)}: ${r.text}`);
  return r.json.data;
}

before(async () => {
  if (fs.existsSync(dir)) {
    await run(stackBin, ['down', dir], { env: stackEnv() }).catch(() => {});
    fs.rmSync(dir, { recursive: true, force: true });
  }
  await run(stackBin, ['up', dir], { env: stackEnv() });
  up = true;
  S = readEnv(path.join(dir, 'stack.env'));
});

after(async () => {
  if (up) await run(stackBin, ['down', dir], { env: stackEnv() });
});

test('the stack came up on the seed database, without making an admin', () => {
  assert.equal(S.KEFU_ADMIN_PASSWORD, '', 'no admin password: the seed\'s accounts are used');
  assert.ok(S.KEFU_HTTP);
});

test('migrated in place: utf8mb4, unique usernames, the seed rows kept', async () => {
  const applied = (await sql('SELECT `version` FROM `schema_migrations` ORDER BY `version`')).trim().split('\n');
  assert.ok(applied.includes('1') && applied.includes('2') && applied.includes('3'), applied.join(','));
  for (const t of TABLES) {
    const create = await sql(`SHOW CREATE TABLE \`${t}\``);
    assert.match(create, /CHARSET=utf8mb4/, `${t}: ${create}`);
  }
  assert.match(await sql('SHOW CREATE TABLE `admin`'), /UNIQUE KEY `uniq_username`/);
  assert.equal((await sql('SELECT `id`, `username`, `password`, `name`, `role`, `create_time` FROM `admin`')).trim(),
    `1\tadmin\t${LEGACY_HASH}\tadmin\t1\t1649656761`);
  assert.equal((await sql('SELECT `id`, `name`, `describe`, `create_time` FROM `admin_role`')).trim(),
    '1\t管理员\t最高权限\t1649656761');
  assert.equal((await sql('SELECT `id`, `name`, `method`, `path`, `enable` FROM `admin_auth` ORDER BY `id`')).trim(),
    '1\t最高权限\t*\t/admin/**\t1\n2\tapi最高权限\t*\t/api/**\t1');
  assert.equal((await sql('SELECT `role`, `auth`, `create_time` FROM `admin_auth_map` ORDER BY `auth`')).trim(),
    '1\t1\t1649656761\n1\t2\t1650012144');
  // 4-byte UTF-8 now fits where the seed's utf8 could not hold it
  await sql("UPDATE `admin_role` SET `describe` = '最高权限 😀' WHERE `id` = 1");
  assert.equal((await sql('SELECT `describe` FROM `admin_role` WHERE `id` = 1')).trim(), '最高权限 😀');
  await sql("UPDATE `admin_role` SET `describe` = '最高权限' WHERE `id` = 1");
});

test('migrate again: changes nothing', async () => {
  const before1 = await snapshot();
  const out = await kefuctl('migrate');
  assert.match(out, /0 applied/);
  assert.equal(await snapshot(), before1);
});

test('every migration run a second time: changes nothing', async () => {
  const before1 = await snapshot();
  await sql('DELETE FROM `schema_migrations`');
  const out = await kefuctl('migrate');
  assert.match(out, /applied 001_/);
  assert.match(out, /applied 003_/);
  assert.equal(await snapshot(), before1);
});

test("the seed README's admin password logs in; the hash becomes Argon2id", async () => {
  const bad = await req('POST', '/admin/login', { form: { username: 'admin', password: 'not-it' } });
  assert.equal(bad.status, 401, bad.text);
  assert.equal((await sql('SELECT `password` FROM `admin` WHERE `id` = 1')).trim(), LEGACY_HASH, 'unchanged by a failure');
  const token = await loginToken('admin', SEED_PASSWORD);
  const stored = (await sql('SELECT `password` FROM `admin` WHERE `id` = 1')).trim();
  assert.match(stored, /^\$argon2id\$/, stored);
  await loginToken('admin', SEED_PASSWORD); // the new hash verifies
  assert.equal((await sql('SELECT `password` FROM `admin` WHERE `id` = 1')).trim(), stored, 're-hashed once');
  const users = await okPost(token, '/admin/user', {});
  assert.equal(users.count, 1);
  assert.equal(users.data[0].user_name, 'admin');
  assert.equal(users.data[0].role_name, '管理员');
  assert.equal(users.data[0].describe, '最高权限');
  const grants = await okPost(token, '/admin/auth_map', { role: 1 });
  assert.deepEqual(grants.data.map((g) => [g.auth, g.auth_name]), [[1, '最高权限'], [2, 'api最高权限']]);
});

test('the last account able to reach /admin/**: every way of removing it is 409', async () => {
  const admin = await loginToken('admin', SEED_PASSWORD);
  const empty = await okPost(admin, '/admin/role/add', { name: 'no grants' });
  const state = () => sql('SELECT m.`role`, m.`auth`, a.`method`, a.`path`, a.`enable` FROM `admin_auth_map` m'
    + ' JOIN `admin_auth` a ON a.`id` = m.`auth` ORDER BY m.`role`, m.`auth`');
  const users = () => sql('SELECT `id`, `role` FROM `admin` ORDER BY `id`');
  const before1 = [await state(), await users()];
  const refused = [
    ['/admin/user/del', { id: 1 }],
    ['/admin/user/edit', { id: 1, username: 'admin', name: 'admin', role: empty.id }],
    ['/admin/auth_map/del', { role: 1, auth: 1 }],
    ['/admin/auth_map/edit', { role: 1, auth: '2' }],
    ['/admin/auth_map/edit', { role: 1, auth: '' }],
    ['/admin/auth/edit', { id: 1, enable: 0 }],
    ['/admin/auth/edit', { id: 1, path: '/admin/*' }],
    ['/admin/auth/edit', { id: 1, method: 'GET' }],
    ['/admin/auth/del', { id: 1 }],
    ['/admin/role/del', { id: 1 }],
  ];
  for (const [p, form] of refused) {
    const r = await req('POST', p, { token: admin, form });
    assert.equal(r.status, 409, `${p} ${JSON.stringify(form)}: ${r.text}`);
    assert.equal(r.json?.code, 409);
  }
  assert.deepEqual([await state(), await users()], before1, 'nothing changed');
  // a change that keeps the admin able to reach every admin route is fine
  await okPost(admin, '/admin/user/edit', { id: 1, username: 'admin', name: 'Admin', role: 1 });
  const broad = await okPost(admin, '/admin/auth/add', { name: 'all', method: '*', path: '/**' });
  await okPost(admin, '/admin/auth_map/add', { role: 1, auth: broad.id });
  await okPost(admin, '/admin/auth_map/del', { role: 1, auth: 1 }); // /** still covers
  const again = await req('POST', '/admin/auth_map/del', { token: admin, form: { role: 1, auth: broad.id } });
  assert.equal(again.status, 409, again.text);
  const narrow = await req('POST', '/admin/auth/edit', { token: admin, form: { id: broad.id, path: '/api/**' } });
  assert.equal(narrow.status, 409, narrow.text);
  await okPost(admin, '/admin/auth_map/add', { role: 1, auth: 1 });
  await okPost(admin, '/admin/auth/del', { id: broad.id });
  await okPost(admin, '/admin/role/del', { id: empty.id });
  assert.deepEqual(await state(), before1[0], 'back to the seed grants');
  assert.equal((await req('GET', '/admin/perf/stats', { token: admin })).status, 200);
});

test('concurrent removals cannot take away the last accounts able to reach /admin/**', async () => {
  let admin = await loginToken('admin', SEED_PASSWORD);
  // a manager who may change accounts but cannot reach all of /admin/**
  const mrole = await okPost(admin, '/admin/role/add', { name: 'managers' });
  const perm = await okPost(admin, '/admin/auth/add', { name: 'accounts', method: 'POST', path: '/admin/user/*' });
  await okPost(admin, '/admin/auth_map/add', { role: mrole.id, auth: perm.id });
  const m = await okPost(admin, '/admin/user/add', { username: 'manager', password: 'manager-pass', name: 'M', role: mrole.id });
  const mt = await loginToken('manager', 'manager-pass');
  let current = [{ id: 1, username: 'admin', password: SEED_PASSWORD }];
  for (let round = 0; round < 6; round++) {
    // two accounts in role 1; both removed at once by the manager
    const name = `super${round}`;
    const s = await okPost(admin, '/admin/user/add', { username: name, password: 'super-pass', name, role: 1 });
    current.push({ id: s.id, username: name, password: 'super-pass' });
    const demote = round % 2 === 1;
    const results = await Promise.all(current.map((u) => req('POST', demote ? '/admin/user/edit' : '/admin/user/del', {
      token: mt,
      form: demote ? { id: u.id, username: u.username, name: 'demoted', role: mrole.id } : { id: u.id },
    })));
    const codes = results.map((r) => r.status).sort();
    assert.deepEqual(codes, [200, 409], `round ${round}: ${results.map((r) => r.text).join(' | ')}`);
    const survivor = current[results.findIndex((r) => r.status === 409)];
    const gone = current[results.findIndex((r) => r.status === 200)];
    const supers = (await sql('SELECT COUNT(*) FROM `admin` WHERE `role` = 1')).trim();
    assert.equal(supers, '1', `round ${round}: one account left in role 1`);
    if (demote) await sql(`DELETE FROM \`admin\` WHERE \`id\` = ${Number(gone.id)}`);
    current = [survivor];
    admin = await loginToken(survivor.username, survivor.password);
  }
  // alone, the survivor can be neither deleted nor demoted, even by itself
  const self = current[0];
  assert.equal((await req('POST', '/admin/user/del', { token: admin, form: { id: self.id } })).status, 409);
  assert.equal((await req('POST', '/admin/user/del', { token: mt, form: { id: self.id } })).status, 409);
  await okPost(admin, '/admin/user/del', { id: m.id });
});
