// Helpers for the integration tests: plain node:http against the private
// stack that tests/run-integration.sh starts (deploy/stack up DIR).
//
// Environment (exported by run-integration.sh from DIR/stack.env):
//   KEFU_HTTP              base URL of the web server, e.g. http://127.0.0.1:18010
//   KEFU_ADMIN_USER/_PASSWORD  the first admin
//   KEFU_STACK             path of deploy/stack
//   KEFU_STACK_DIR         the stack's directory
// When KEFU_HTTP is unset but KEFU_STACK_DIR is set, DIR/stack.env is read,
// so one file can be run by hand: KEFU_STACK_DIR=tests/var-lighttpd node --test FILE
//
// Works on Node 18 and 20 (no import.meta.dirname, no fetch).

import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import assert from 'node:assert/strict';

function loadStackEnv() {
  if (process.env.KEFU_HTTP || !process.env.KEFU_STACK_DIR) return;
  const file = path.join(process.env.KEFU_STACK_DIR, 'stack.env');
  let text;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    return;
  }
  for (const line of text.split('\n')) {
    const m = /^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(line);
    if (!m) continue;
    let v = m[2].trim();
    if (v.length >= 2 && (v[0] === '"' || v[0] === "'") && v[v.length - 1] === v[0]) {
      v = v.slice(1, -1);
      if (m[2].trim()[0] === '"') v = v.replace(/\\(["\\$`])/g, '$1');
    }
    if (process.env[m[1]] === undefined) process.env[m[1]] = v;
  }
  if (!process.env.KEFU_STACK) {
    const here = path.dirname(fileURLToPath(import.meta.url));
    process.env.KEFU_STACK = path.resolve(here, '../../deploy/stack');
  }
}
loadStackEnv();

export const env = {
  http: process.env.KEFU_HTTP || 'http://127.0.0.1:18010',
  adminUser: process.env.KEFU_ADMIN_USER || 'admin',
  adminPassword: process.env.KEFU_ADMIN_PASSWORD || '',
  stack: process.env.KEFU_STACK || '',
  stackDir: process.env.KEFU_STACK_DIR || '',
};

const base = new URL(env.http);

/*
 * request(method, path, opts) -> Promise<{status, headers, text, json, body}>
 *   opts.headers  extra request headers (object)
 *   opts.form     object or string: sent as application/x-www-form-urlencoded
 *   opts.json     any value: sent as application/json (JSON.stringify)
 *   opts.body     raw string or Buffer, sent as is (set Content-Type yourself)
 *   opts.from     local source address, e.g. '127.0.3.17' (the client IP the
 *                 app sees as REMOTE_ADDR)
 *   opts.timeoutMs  default 20000
 * json is the parsed reply body, or null when it is not JSON.
 */
export function request(method, urlPath, opts = {}) {
  const headers = {};
  for (const [k, v] of Object.entries(opts.headers || {})) headers[k] = v;
  const has = (name) => Object.keys(headers).some((k) => k.toLowerCase() === name);
  let body = null;
  if (opts.form !== undefined) {
    body = Buffer.from(
      typeof opts.form === 'string' ? opts.form : new URLSearchParams(opts.form).toString(),
    );
    if (!has('content-type')) headers['Content-Type'] = 'application/x-www-form-urlencoded';
  } else if (opts.json !== undefined) {
    body = Buffer.from(JSON.stringify(opts.json));
    if (!has('content-type')) headers['Content-Type'] = 'application/json';
  } else if (opts.body !== undefined && opts.body !== null) {
    body = Buffer.isBuffer(opts.body) ? opts.body : Buffer.from(String(opts.body));
  }
  // Always an explicit Content-Length: Node would otherwise send a POST
  // without a body chunked, which not every FastCGI gateway accepts.
  if (!has('content-length') && !has('transfer-encoding')) {
    if (body) headers['Content-Length'] = String(body.length);
    else if (!['GET', 'HEAD', 'OPTIONS', 'DELETE'].includes(method)) headers['Content-Length'] = '0';
  }
  const timeoutMs = opts.timeoutMs || 20000;

  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        protocol: base.protocol,
        hostname: base.hostname,
        port: base.port || 80,
        method,
        path: urlPath,
        headers,
        agent: false,
        localAddress: opts.from,
      },
      (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          const buf = Buffer.concat(chunks);
          const text = buf.toString('utf8');
          let json = null;
          try {
            json = JSON.parse(text);
          } catch {
            json = null;
          }
          resolve({ status: res.statusCode, headers: res.headers, text, json, body: buf });
        });
      },
    );
    req.setTimeout(timeoutMs, () => {
      req.destroy(new Error(`${method} ${urlPath}: no reply within ${timeoutMs} ms`));
    });
    req.on('error', reject);
    if (body) req.write(body);
    req.end();
  });
}

/* login(user, pass, from): POST /admin/login as a form. */
export function login(user, pass, from, extra = {}) {
  return request('POST', '/admin/login', {
    form: { username: user, password: pass },
    from,
    ...extra,
  });
}

/* loginOk(from): logs the admin in, asserts 200, returns the token. */
export async function loginOk(from) {
  const r = await login(env.adminUser, env.adminPassword, from);
  assert.equal(r.status, 200, `admin login failed: ${r.status} ${r.text}`);
  assert.equal(typeof r.json?.data?.token, 'string', `no data.token in ${r.text}`);
  return r.json.data.token;
}

/* stack(cmd, service): runs `$KEFU_STACK cmd service $KEFU_STACK_DIR`. */
export function stack(cmd, service) {
  if (!env.stack || !env.stackDir) {
    return Promise.reject(new Error('KEFU_STACK and KEFU_STACK_DIR must be set'));
  }
  return new Promise((resolve, reject) => {
    execFile(
      env.stack,
      [cmd, service, env.stackDir],
      { timeout: 60000, maxBuffer: 4 << 20 },
      (err, stdout, stderr) => {
        if (err) {
          err.message += `\n--- stdout\n${stdout}\n--- stderr\n${stderr}`;
          reject(err);
        } else {
          resolve({ stdout, stderr });
        }
      },
    );
  });
}

/*
 * waitFor(fn, timeoutMs, intervalMs): calls async fn until it returns a
 * truthy value (which is returned) or timeoutMs passes; a throw counts as
 * "not yet". On timeout, rejects with the last error or value seen.
 */
export async function waitFor(fn, timeoutMs = 10000, intervalMs = 200) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
      last = v;
    } catch (e) {
      last = e;
    }
    if (Date.now() >= deadline) {
      const what = last instanceof Error ? last.message : JSON.stringify(last);
      throw new Error(`waitFor: still not ready after ${timeoutMs} ms (last: ${what})`);
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/*
 * ipAllocator(import.meta.url) -> () => '127.0.X.Y'
 * Every call gives a loopback address not used before by this file: X is
 * the file's number prefix ("10-login.test.mjs" -> 10) or, without one, a
 * hash of its name in 100..254; Y counts from 10 to 250. So per-IP limits
 * hit by one test never reach another test or another file.
 */
export function ipAllocator(fileUrl) {
  const name = path.basename(fileUrl.startsWith('file:') ? fileURLToPath(fileUrl) : fileUrl);
  const m = /^(\d+)-/.exec(name);
  let third;
  if (m && Number(m[1]) >= 1 && Number(m[1]) <= 99) {
    third = Number(m[1]);
  } else {
    const h = crypto.createHash('sha256').update(name).digest();
    third = 100 + (h.readUInt16BE(0) % 155);
  }
  let next = 10;
  return () => {
    if (next > 250) throw new Error(`ipAllocator: ${name} used all of 127.0.${third}.10-250`);
    return `127.0.${third}.${next++}`;
  };
}

/* A random name no account has: 'zz_' + 12 hex digits. */
export function randomName(prefix = 'zz_') {
  return prefix + crypto.randomBytes(6).toString('hex');
}

/* The reply is the kefu JSON envelope with this code. */
export function assertEnvelope(r, code) {
  const what = `${r.status} ${r.headers['content-type']} ${r.text.slice(0, 300)}`;
  assert.equal(r.status, code, `HTTP status: ${what}`);
  assert.ok(r.json && typeof r.json === 'object' && !Array.isArray(r.json), `not a JSON object: ${what}`);
  assert.equal(r.json.code, code, `envelope code: ${what}`);
  assert.equal(typeof r.json.message, 'string', `envelope message: ${what}`);
  assert.ok('data' in r.json, `envelope has no data: ${what}`);
  assertJsonType(r);
}

/* Content-Type is application/json; charset=utf-8 (case and spaces aside). */
export function assertJsonType(r) {
  const ct = String(r.headers['content-type'] || '');
  assert.equal(
    ct.toLowerCase().replace(/\s+/g, ''),
    'application/json;charset=utf-8',
    `Content-Type was '${ct}'`,
  );
}

/* The gid cookie of a reply's Set-Cookie headers, or undefined. */
export function gidCookie(r) {
  const all = r.headers['set-cookie'] || [];
  return all.find((c) => /^\s*gid=/.test(c));
}
