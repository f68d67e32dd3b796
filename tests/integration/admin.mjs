// Helpers for the administration tests (accounts, roles, permissions,
// grants): calls with a session, and throwaway roles and accounts that a
// test creates and removes again.

import assert from 'node:assert/strict';
import { env, request, login } from './lib.mjs';

/* call(token, method, path, fields, from): the fields as a form. */
export function call(token, method, urlPath, fields, from, extra = {}) {
  const opts = { headers: { Authorization: `Bearer ${token}` }, from, ...extra };
  if (fields !== undefined) opts.form = fields;
  return request(method, urlPath, opts);
}

/* post(token, path, fields, from) -> reply; asserts nothing. */
export function post(token, urlPath, fields, from) {
  return call(token, 'POST', urlPath, fields === undefined ? {} : fields, from);
}

/* ok(token, path, fields, from) -> data; asserts 200. */
export async function ok(token, urlPath, fields, from) {
  const r = await post(token, urlPath, fields, from);
  assert.equal(r.status, 200, `POST ${urlPath} ${JSON.stringify(fields)}: ${r.status} ${r.text}`);
  assert.equal(r.json?.code, 200, r.text);
  return r.json.data;
}

/* loginAs(user, pass, from) -> token; asserts 200. */
export async function loginAs(user, pass, from) {
  const r = await login(user, pass, from);
  assert.equal(r.status, 200, `login ${user}: ${r.status} ${r.text}`);
  return r.json.data.token;
}

/* adminToken(from): a fresh session of the stack's admin. */
export function adminToken(from) {
  return loginAs(env.adminUser, env.adminPassword, from);
}

/* A role with no grants: {id, name}. */
export async function makeRole(token, from, name) {
  const data = await ok(token, '/admin/role/add', { name, describe: 'made by a test' }, from);
  return { id: data.id, name };
}

/* An account in role: {id, username, password}. */
export async function makeUser(token, from, role, username, password = 'test-password-1') {
  const data = await ok(token, '/admin/user/add', { username, password, name: username, role }, from);
  return { id: data.id, username, password };
}

/* A permission: its id. */
export async function makeAuth(token, from, name, method, path, enable = 1) {
  const data = await ok(token, '/admin/auth/add', { name, method, path, enable }, from);
  return data.id;
}

/* Remove what a test made; ignores what is already gone. */
export async function cleanup(token, from, { users = [], roles = [], auths = [] }) {
  for (const id of users) await post(token, '/admin/user/del', { id }, from);
  for (const id of roles) await post(token, '/admin/role/del', { id }, from);
  for (const id of auths) await post(token, '/admin/auth/del', { id }, from);
}

/* All rows of a paged list (following pn). */
export async function listAll(token, urlPath, fields, from) {
  const rows = [];
  for (let pn = 1; ; pn++) {
    const data = await ok(token, urlPath, { ...fields, pn, pc: 100 }, from);
    rows.push(...data.data);
    if (rows.length >= data.count || data.data.length === 0) return rows;
  }
}
