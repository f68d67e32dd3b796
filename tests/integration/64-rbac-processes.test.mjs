// Grant changes take effect at once across kefu-api processes: besides the
// one behind the web server (A), this test runs a second kefu-api (B) on
// its own FastCGI socket with the stack's config, and talks to it with a
// small FastCGI client. A change made through one process is in force on
// the very next request to the other (the RBAC version in Redis), in every
// worker, not after [Api] RbacReloadSec.

import test, { before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import fs from 'node:fs';
import os from 'node:os';
import { spawn } from 'node:child_process';
import { ipAllocator, randomName, assertEnvelope, waitFor } from './lib.mjs';
import { post, ok, adminToken, loginAs, makeRole, makeUser, makeAuth, cleanup } from './admin.mjs';
import { fcgiRequest } from './fcgi-client.mjs';

const ip = ipAllocator(import.meta.url);
const bin = process.env.KEFU_BIN || path.resolve('build/bin');
const config = process.env.KEFU_CONFIG;
const WORKERS = 3;
let dir;
let sock;
let child;
let childExit;
let admin;
const made = { users: [], roles: [], auths: [] };

/* A request to process B. */
function viaB(token, urlPath, form = {}) {
  return fcgiRequest(sock, 'POST', urlPath, {
    headers: { Authorization: `Bearer ${token}` },
    form,
    remoteAddr: ip(),
  });
}

before(async () => {
  assert.ok(config, 'KEFU_CONFIG must name the stack config');
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kefu-b-'));
  sock = path.join(dir, 'api.sock');
  child = spawn(path.join(bin, 'kefu-api'), ['--config', config, '--listen', sock, '--workers', String(WORKERS)], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (c) => {
    stderr += c;
  });
  childExit = new Promise((resolve) => child.on('exit', resolve));
  await waitFor(() => {
    if (child.exitCode !== null) throw new Error(`kefu-api B exited: ${stderr}`);
    return fs.existsSync(sock);
  }, 10000, 50);
  admin = await adminToken(ip());
});

after(async () => {
  if (admin) await cleanup(admin, ip(), made);
  if (child && child.exitCode === null) {
    child.kill('SIGTERM');
    await Promise.race([childExit, new Promise((r) => setTimeout(r, 5000))]);
    if (child.exitCode === null) child.kill('SIGKILL');
  }
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

/* A fresh account in a fresh role holding one permission: POST /admin/role. */
async function grantedAccount() {
  const role = await makeRole(admin, ip(), randomName('r_'));
  made.roles.push(role.id);
  const auth = await makeAuth(admin, ip(), randomName('p_'), 'POST', '/admin/role');
  made.auths.push(auth);
  await ok(admin, '/admin/auth_map/add', { role: role.id, auth }, ip());
  const user = await makeUser(admin, ip(), role.id, randomName('u_'));
  made.users.push(user.id);
  const token = await loginAs(user.username, user.password, ip());
  return { role, auth, user, token };
}

/* Ask B enough times that each of its workers answers at least once. */
async function allOfB(token, urlPath) {
  const statuses = [];
  for (let i = 0; i < WORKERS * 4; i++) statuses.push((await viaB(token, urlPath)).status);
  return [...new Set(statuses)];
}

test('process B serves the same API', async () => {
  const r = await fcgiRequest(sock, 'GET', '/healthz', { remoteAddr: ip() });
  assertEnvelope(r, 200);
  const me = await viaB(admin, '/admin/me');
  assertEnvelope(me, 200);
});

test('revoked through A: the next request to B is 403; granted again: 200', async () => {
  const a = await grantedAccount();
  assert.deepEqual(await allOfB(a.token, '/admin/role'), [200], 'granted: every worker of B says so');
  await ok(admin, '/admin/auth_map/del', { role: a.role.id, auth: a.auth }, ip());
  assert.deepEqual(await allOfB(a.token, '/admin/role'), [403], 'revoked through A: B refuses at once');
  await ok(admin, '/admin/auth_map/add', { role: a.role.id, auth: a.auth }, ip());
  assert.deepEqual(await allOfB(a.token, '/admin/role'), [200], 'granted again');
  await ok(admin, '/admin/auth/edit', { id: a.auth, enable: 0 }, ip());
  assert.deepEqual(await allOfB(a.token, '/admin/role'), [403], 'permission disabled');
});

test('revoked through B: the next request through the web server (A) is 403', async () => {
  const a = await grantedAccount();
  for (let i = 0; i < 8; i++) assertEnvelope(await post(a.token, '/admin/role', {}, ip()), 200);
  const r = await viaB(admin, '/admin/auth_map/edit', { role: a.role.id, auth: '' });
  assertEnvelope(r, 200);
  for (let i = 0; i < 8; i++) assertEnvelope(await post(a.token, '/admin/role', {}, ip()), 403);
});

test('an account deleted through A is logged out on its next request to B', async () => {
  const a = await grantedAccount();
  assert.deepEqual(await allOfB(a.token, '/admin/role'), [200]);
  await ok(admin, '/admin/user/del', { id: a.user.id }, ip());
  const r = await viaB(a.token, '/admin/role');
  assertEnvelope(r, 401);
});

test('an account demoted through A has its new role\'s rights on its next request to B', async () => {
  const a = await grantedAccount();
  const empty = await makeRole(admin, ip(), randomName('r_'));
  made.roles.push(empty.id);
  assert.deepEqual(await allOfB(a.token, '/admin/role'), [200]);
  await ok(admin, '/admin/user/edit', { id: a.user.id, username: a.user.username, name: 'x', role: empty.id }, ip());
  assert.deepEqual(await allOfB(a.token, '/admin/role'), [403]);
});
