// WebSocket helpers for the live-chat tests (issue 3), on top of lib.mjs.
//
// A Stack is one running kefu stack as a client sees it: its HTTP and
// WebSocket base URLs, the admin account, kefu.ini and the binaries. The
// default one comes from the environment run-integration.sh exports
// (KEFU_HTTP, KEFU_WS, KEFU_CONFIG, KEFU_BIN, ...); a test file that brings
// up its own stack builds one with Stack.fromDir(DIR) (DIR/stack.env).
//
//   const S = Stack.fromEnv();
//   const tok = await S.loginAdmin(from);
//   const reg = await S.registerAgent(tok, from);           // data of POST /admin/ws
//   const agent = await S.connect(reg.url);                 // a Client
//   const v = await S.visitor({ from });                    // {key, url, client}
//   const f = await agent.next('connect');                  // a frame
//   const r = await S.refused('/ws/api/link?ws_key=nope');  // {status, json, ...}
//
// Works on Node 18 and 20.

import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import { execFile } from 'node:child_process';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { env as libEnv, request as libRequest } from './lib.mjs';

export const TIME_RE = /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/;
export const KEY_RE = /^[A-Za-z0-9]{32}$/;

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/* Read DIR/stack.env (KEY='value' lines) into an object. */
export function readStackEnv(dir) {
  const out = {};
  const text = fs.readFileSync(path.join(dir, 'stack.env'), 'utf8');
  for (const line of text.split('\n')) {
    const m = /^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(line);
    if (!m) continue;
    let v = m[2].trim();
    if (v.length >= 2 && (v[0] === "'" || v[0] === '"') && v[v.length - 1] === v[0]) v = v.slice(1, -1);
    out[m[1]] = v;
  }
  return out;
}

/* A short description of a frame list, for assertion messages. */
function show(frames) {
  return JSON.stringify(frames).slice(0, 2000);
}

/*
 * Client: one WebSocket with every frame it received collected in order.
 *   frames        the frames not yet taken by next()/waitFor(), parsed JSON
 *                 (a frame that is not JSON is kept as {raw: text})
 *   all           every frame ever received
 *   closed        a promise of {code, reason} once the socket is closed
 *   next(type, ms)     take the first frame of that type (waits up to ms)
 *   waitFor(pred, ms)  take the first frame for which pred(frame) is true
 *   chat(content, ms)  take the chat frame with this content (replays skipped)
 *   none(pred, ms)     assert no such frame arrives within ms (takes none)
 *   send(obj)     JSON.stringify(obj) unless a string; sendRaw(data, opts)
 *   ping(ms)      send {"type":"ping"} and take a pong
 *   keepalive(ms) send a ping every ms until the socket closes (their
 *                 pongs are dropped, ping()'s are not); stopKeepalive()
 *   close(code)   close politely, resolve with {code, reason}
 *   terminate()   drop the TCP connection without a close frame
 */
export class Client {
  constructor(ws, label) {
    this.ws = ws;
    this.label = label;
    this.frames = [];
    this.all = [];
    this.waiters = [];
    this.errors = [];
    this.closeInfo = null;
    this.timer = null;
    this.dropPongs = false;
    this.wantPongs = 0;
    this.closed = new Promise((resolve) => {
      ws.on('close', (code, reason) => {
        this.closeInfo = { code, reason: reason ? reason.toString() : '' };
        this.stopKeepalive();
        resolve(this.closeInfo);
        for (const w of this.waiters.splice(0)) w.check();
      });
    });
    ws.on('error', (e) => this.errors.push(e));
    ws.on('message', (data, isBinary) => {
      const text = data.toString('utf8');
      let frame;
      try {
        frame = JSON.parse(text);
      } catch {
        frame = { raw: text };
      }
      if (isBinary) frame = { binary: true, raw: text };
      this.all.push(frame);
      if (frame.type === 'pong' && this.dropPongs) {
        if (this.wantPongs === 0) return; // a keepalive's
        this.wantPongs--;
      }
      this.frames.push(frame);
      for (const w of this.waiters.slice()) w.check();
    });
  }

  get isOpen() {
    return this.ws.readyState === WebSocket.OPEN;
  }

  send(obj) {
    this.ws.send(typeof obj === 'string' ? obj : JSON.stringify(obj));
  }

  sendRaw(data, opts = {}) {
    this.ws.send(data, opts);
  }

  /* Take the first collected frame matching pred, waiting up to ms. */
  waitFor(pred, ms = 5000, what = 'a matching frame') {
    return new Promise((resolve, reject) => {
      const w = {
        check: () => {
          const i = this.frames.findIndex((f) => {
            try {
              return pred(f);
            } catch {
              return false;
            }
          });
          if (i >= 0) {
            clearTimeout(w.t);
            this.waiters.splice(this.waiters.indexOf(w), 1);
            resolve(this.frames.splice(i, 1)[0]);
            return true;
          }
          if (this.closeInfo) {
            clearTimeout(w.t);
            this.waiters.splice(this.waiters.indexOf(w), 1);
            reject(
              new Error(
                `${this.label}: closed (${this.closeInfo.code} ${this.closeInfo.reason}) ` +
                  `while waiting for ${what}; frames: ${show(this.all)}`,
              ),
            );
            return true;
          }
          return false;
        },
      };
      this.waiters.push(w);
      w.t = setTimeout(() => {
        this.waiters.splice(this.waiters.indexOf(w), 1);
        reject(new Error(`${this.label}: no ${what} within ${ms} ms; frames received: ${show(this.all)}`));
      }, ms);
      w.check();
    });
  }

  /* The first frame of this type (and, optionally, this ws_key). */
  next(type, ms = 5000, key = undefined) {
    return this.waitFor(
      (f) => f.type === type && (key === undefined || f.ws_key === key),
      ms,
      `'${type}' frame${key ? ` for ${key}` : ''}`,
    );
  }

  /* Take the first collected frame matching pred now, or undefined. */
  take(pred) {
    const i = this.frames.findIndex(pred);
    return i >= 0 ? this.frames.splice(i, 1)[0] : undefined;
  }

  /*
   * The chat frame with this content (and ws_key, if given), skipping
   * others: a client that reconnects may first be sent earlier messages
   * again (history replay).
   */
  chat(content, ms = 5000, key = undefined) {
    return this.waitFor(
      (f) => f.type === 'chat' && f.content === content && (key === undefined || f.ws_key === key),
      ms,
      `chat ${JSON.stringify(content)}${key ? ` for ${key}` : ''}`,
    );
  }

  /* Assert that no frame matching pred arrives within ms. */
  async none(pred, ms = 1000, what = 'frame') {
    const seen = this.frames.find(pred);
    assert.equal(seen, undefined, `${this.label}: unexpected ${what}: ${JSON.stringify(seen)}`);
    await sleep(ms);
    const late = this.frames.find(pred);
    assert.equal(late, undefined, `${this.label}: unexpected ${what}: ${JSON.stringify(late)}`);
  }

  /* Send a ping, take its pong. */
  async ping(ms = 5000) {
    if (this.dropPongs) this.wantPongs++;
    this.send({ type: 'ping' });
    return this.next('pong', ms);
  }

  keepalive(ms = 1000) {
    this.stopKeepalive();
    this.dropPongs = true;
    this.timer = setInterval(() => {
      if (this.isOpen) this.send({ type: 'ping' });
    }, ms);
    this.timer.unref?.();
  }

  stopKeepalive() {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.dropPongs = false;
  }

  /* Wait for the socket to close (up to ms); {code, reason}. */
  async waitClosed(ms = 5000) {
    let t;
    const timeout = new Promise((_, reject) => {
      t = setTimeout(
        () => reject(new Error(`${this.label}: still open after ${ms} ms; frames: ${show(this.all)}`)),
        ms,
      );
    });
    try {
      return await Promise.race([this.closed, timeout]);
    } finally {
      clearTimeout(t);
    }
  }

  async close(code = 1000, reason = '') {
    this.stopKeepalive();
    if (this.ws.readyState === WebSocket.CONNECTING || this.ws.readyState === WebSocket.OPEN) {
      this.ws.close(code, reason);
    }
    try {
      return await this.waitClosed(5000);
    } catch {
      this.ws.terminate();
      return this.closed;
    }
  }

  terminate() {
    this.stopKeepalive();
    this.ws.terminate();
    return this.closed;
  }
}

/*
 * Stack: a running kefu stack as a client sees it.
 *   { http, ws, adminUser, adminPassword, config, bin, dir }
 */
export class Stack {
  constructor(e) {
    this.http = e.KEFU_HTTP;
    this.ws = e.KEFU_WS || e.KEFU_HTTP.replace(/^http/, 'ws');
    this.adminUser = e.KEFU_ADMIN_USER || 'admin';
    this.adminPassword = e.KEFU_ADMIN_PASSWORD || '';
    this.config = e.KEFU_CONFIG || '';
    this.bin = e.KEFU_BIN || '';
    this.dir = e.KEFU_DIR || e.KEFU_STACK_DIR || '';
    this.sockets = new Set();
    this.base = new URL(this.http);
  }

  /* The stack run-integration.sh started (lib.mjs also reads DIR/stack.env). */
  static fromEnv() {
    const e = { ...process.env };
    if (!e.KEFU_HTTP) e.KEFU_HTTP = libEnv.http;
    if (!e.KEFU_ADMIN_PASSWORD) e.KEFU_ADMIN_PASSWORD = libEnv.adminPassword;
    if (!e.KEFU_DIR) e.KEFU_DIR = libEnv.stackDir;
    if ((!e.KEFU_CONFIG || !e.KEFU_BIN) && e.KEFU_DIR) {
      try {
        const f = readStackEnv(e.KEFU_DIR);
        e.KEFU_CONFIG ||= f.KEFU_CONFIG;
        e.KEFU_BIN ||= f.KEFU_BIN;
        e.KEFU_WS ||= f.KEFU_WS;
      } catch {
        /* leave them empty */
      }
    }
    return new Stack(e);
  }

  static fromDir(dir) {
    return new Stack(readStackEnv(dir));
  }

  /* lib.mjs's request(), against this stack. */
  request(method, urlPath, opts = {}) {
    if (this.http === libEnv.http) return libRequest(method, urlPath, opts);
    return rawRequest(this.base, method, urlPath, opts);
  }

  async post(token, urlPath, from, form = {}) {
    return this.request('POST', urlPath, {
      headers: token ? { Authorization: `Bearer ${token}` } : {},
      form,
      from,
    });
  }

  /* POST with a session; asserts the 200 envelope and returns data. */
  async ok(token, urlPath, from, form = {}) {
    const r = await this.post(token, urlPath, from, form);
    assert.equal(r.status, 200, `POST ${urlPath}: ${r.status} ${r.text}`);
    assert.equal(r.json?.code, 200, `POST ${urlPath}: ${r.text}`);
    return r.json.data;
  }

  async login(user, password, from) {
    const r = await this.request('POST', '/admin/login', { form: { username: user, password }, from });
    assert.equal(r.status, 200, `login ${user}: ${r.status} ${r.text}`);
    return r.json.data.token;
  }

  loginAdmin(from) {
    return this.login(this.adminUser, this.adminPassword, from);
  }

  /* The admin id of a session (GET /admin/me). */
  async adminId(token, from) {
    const r = await this.request('GET', '/admin/me', { headers: { Authorization: `Bearer ${token}` }, from });
    assert.equal(r.status, 200, `/admin/me: ${r.status} ${r.text}`);
    return r.json.data.admin_id;
  }

  /* POST /admin/ws: data {ws_key, url, expires_in}. */
  registerAgent(token, from) {
    return this.ok(token, '/admin/ws', from);
  }

  /* POST /admin/ws/close; ignores errors (cleanup). */
  async closeAgent(token, from) {
    try {
      const r = await this.post(token, '/admin/ws/close', from);
      return r.json?.data;
    } catch {
      return null;
    }
  }

  info(token, from) {
    return this.ok(token, '/admin/ws/info', from);
  }

  linkUser(token, from) {
    return this.ok(token, '/admin/ws/link_user', from);
  }

  /* POST /api/link: data {ws_key, url, expires_in}. */
  async link(from) {
    const r = await this.request('POST', '/api/link', { from });
    assert.equal(r.status, 200, `POST /api/link: ${r.status} ${r.text}`);
    assert.match(r.json?.data?.ws_key ?? '', KEY_RE, r.text);
    return r.json.data;
  }

  /*
   * connect(pathOrUrl, {headers, from, label, keepalive}) -> Client, once
   * open. A refused upgrade rejects with an Error carrying .status and .body.
   */
  connect(target, opts = {}) {
    const url = /^wss?:/.test(target) ? target : this.ws + target;
    const label = opts.label || target.replace(/ws_key=([A-Za-z0-9]{6})[A-Za-z0-9]*/, 'ws_key=$1...');
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url, {
        headers: opts.headers || {},
        localAddress: opts.from,
        handshakeTimeout: opts.timeoutMs || 10000,
        perMessageDeflate: false,
      });
      const client = new Client(ws, label);
      client.kind = /\/admin\//.test(url) ? 'agent' : 'visitor';
      this.sockets.add(client);
      client.closed.then(() => this.sockets.delete(client));
      let settled = false;
      ws.on('unexpected-response', (req, res) => {
        const sock = res.socket || req.socket;
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d) => (body += d));
        res.on('end', () => {
          settled = true;
          const err = new Error(`${label}: upgrade refused with HTTP ${res.statusCode}: ${body}`);
          err.status = res.statusCode;
          err.body = body;
          err.headers = res.headers;
          // The web server may keep the connection for another request.
          sock?.destroy();
          req.destroy();
          this.sockets.delete(client);
          reject(err);
        });
      });
      ws.once('open', () => {
        settled = true;
        if (opts.keepalive) client.keepalive(opts.keepalive);
        resolve(client);
      });
      ws.once('error', (e) => {
        if (!settled) {
          settled = true;
          this.sockets.delete(client);
          reject(new Error(`${label}: ${e.message}`));
        }
      });
    });
  }

  /*
   * refused(pathOrUrl, {headers, from}) -> {status, headers, text, json}:
   * the upgrade must be refused with an HTTP reply (fails if it opens).
   */
  async refused(target, opts = {}) {
    let c;
    try {
      c = await this.connect(target, opts);
    } catch (e) {
      if (e.status === undefined) throw e;
      let json = null;
      try {
        json = JSON.parse(e.body);
      } catch {
        json = null;
      }
      return { status: e.status, headers: e.headers, text: e.body, json };
    }
    await c.terminate();
    assert.fail(`${target}: the upgrade was accepted, expected a refusal`);
  }

  /* A visitor: POST /api/link from `from`, then connect from the same address. */
  async visitor({ from, keepalive, label } = {}) {
    const data = await this.link(from);
    const client = await this.connect(data.url, { from, keepalive, label: label || `visitor ${data.ws_key.slice(0, 6)}` });
    return { key: data.ws_key, url: data.url, client };
  }

  /*
   * An agent: POST /admin/ws with token, connect to data.url.
   * {key, url, client}
   */
  async agent(token, { from, keepalive, label } = {}) {
    const data = await this.registerAgent(token, from);
    const client = await this.connect(data.url, { from, keepalive, label: label || 'agent' });
    return { key: data.ws_key, url: data.url, client };
  }

  /*
   * A new admin account made with kefuctl (role 1): {username, password}.
   */
  addAdmin(username, name = username) {
    assert.ok(this.bin && this.config, 'KEFU_BIN and KEFU_CONFIG must be set to add accounts');
    return new Promise((resolve, reject) => {
      execFile(
        path.join(this.bin, 'kefuctl'),
        ['--config', this.config, 'admin', 'add', '--username', username, '--name', name, '--role', '1'],
        { timeout: 60000 },
        (err, stdout, stderr) => {
          if (err) {
            err.message += `\n--- stdout\n${stdout}\n--- stderr\n${stderr}`;
            reject(err);
            return;
          }
          const lines = stdout.split('\n').map((s) => s.trim()).filter(Boolean);
          resolve({ username, password: lines[lines.length - 1] });
        },
      );
    });
  }

  /* Close every socket still open (cleanup). */
  async closeAll() {
    await Promise.all([...this.sockets].map((c) => c.close(1000).catch(() => {})));
  }
}

/* A plain HTTP request against another base URL, as lib.mjs's request(). */
function rawRequest(base, method, urlPath, opts = {}) {
  const headers = { ...(opts.headers || {}) };
  let body = null;
  if (opts.form !== undefined) {
    body = Buffer.from(typeof opts.form === 'string' ? opts.form : new URLSearchParams(opts.form).toString());
    headers['Content-Type'] = 'application/x-www-form-urlencoded';
  } else if (opts.json !== undefined) {
    body = Buffer.from(JSON.stringify(opts.json));
    headers['Content-Type'] = 'application/json';
  }
  if (body) headers['Content-Length'] = String(body.length);
  else if (!['GET', 'HEAD', 'OPTIONS', 'DELETE'].includes(method)) headers['Content-Length'] = '0';
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
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
          const text = Buffer.concat(chunks).toString('utf8');
          let json = null;
          try {
            json = JSON.parse(text);
          } catch {
            json = null;
          }
          resolve({ status: res.statusCode, headers: res.headers, text, json });
        });
      },
    );
    req.setTimeout(opts.timeoutMs || 20000, () => req.destroy(new Error(`${method} ${urlPath}: timeout`)));
    req.on('error', reject);
    if (body) req.write(body);
    req.end();
  });
}

/*
 * firstOf(clients, pred, ms) -> {client, frame}: the first of several
 * clients to receive a frame matching pred (taken from it).
 */
export async function firstOf(clients, pred, ms = 5000, what = 'a matching frame') {
  const deadline = Date.now() + ms;
  for (;;) {
    for (const client of clients) {
      const frame = client.take(pred);
      if (frame) return { client, frame };
    }
    if (Date.now() >= deadline) {
      throw new Error(`none of ${clients.map((c) => c.label).join(', ')} got ${what} within ${ms} ms`);
    }
    await sleep(20);
  }
}

/* The frame is a well-formed server frame of this type. */
export function assertFrame(f, type, fields = {}) {
  assert.equal(f.type, type, `frame type: ${JSON.stringify(f)}`);
  assert.match(String(f.send_time), TIME_RE, `send_time: ${JSON.stringify(f)}`);
  for (const [k, v] of Object.entries(fields)) {
    if (v instanceof RegExp) assert.match(String(f[k]), v, `${k}: ${JSON.stringify(f)}`);
    else assert.deepEqual(f[k], v, `${k}: ${JSON.stringify(f)}`);
  }
}

/* A refused upgrade: this status and the JSON envelope with the same code. */
export function assertRefusal(r, status) {
  const what = `${r.status} ${r.headers?.['content-type']} ${String(r.text).slice(0, 300)}`;
  assert.equal(r.status, status, `HTTP status: ${what}`);
  assert.ok(r.json && typeof r.json === 'object' && !Array.isArray(r.json), `not a JSON object: ${what}`);
  assert.equal(r.json.code, status, `envelope code: ${what}`);
  assert.equal(typeof r.json.message, 'string', `envelope message: ${what}`);
  assert.ok(r.json.message.length > 0, `empty message: ${what}`);
  assert.ok('data' in r.json, `envelope has no data: ${what}`);
  assert.match(String(r.headers?.['content-type'] || ''), /^application\/json/i, `Content-Type: ${what}`);
}

/*
 * scope(S): what one test opened, undone at its end:
 *   const s = scope(S); s.agent(token, from); ... finally { await s.done(); }
 * done() closes the visitors' sockets normally (1000: they leave at once),
 * takes each agent offline (POST /admin/ws/close, which makes the relay
 * close its socket, with no grace period), then closes whatever is left,
 * so the next test starts with no agent online and nobody waiting.
 */
export function scope(S) {
  const agents = [];
  return {
    agent(token, from) {
      agents.push({ token, from });
      return token;
    },
    async done() {
      const open = [...S.sockets];
      await Promise.all(open.filter((c) => c.kind === 'visitor').map((c) => c.close(1000).catch(() => {})));
      for (const a of agents) await S.closeAgent(a.token, a.from);
      await Promise.all(
        open.filter((c) => c.kind === 'agent').map((c) => c.waitClosed(3000).catch(() => {})),
      );
      await S.closeAll();
    },
  };
}

const DEFAULT_MESSAGES = {
  NoAgent: 'No agent is available yet, please wait.',
  NewVisitor: 'A new visitor has joined.',
  ChatEnded: 'The chat has ended.',
  AgentJoined: 'An agent has joined the chat.',
  AgentAway: "Your agent's connection dropped; please wait a moment.",
  AgentBack: 'Your agent is back.',
};

/* The [Messages] texts the stack uses: kefu.ini's, else the defaults. */
export function messages(configPath) {
  const out = { ...DEFAULT_MESSAGES };
  let text = '';
  try {
    text = fs.readFileSync(configPath, 'utf8');
  } catch {
    return out;
  }
  let section = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line[0] === ';' || line[0] === '#') continue;
    const sec = /^\[([^\]]+)\]/.exec(line);
    if (sec) {
      section = sec[1].trim().toLowerCase();
      continue;
    }
    const kv = /^([^=]+)=(.*)$/.exec(line);
    if (section !== 'messages' || !kv) continue;
    const name = Object.keys(out).find((k) => k.toLowerCase() === kv[1].trim().toLowerCase());
    if (name) out[name] = kv[2].trim();
  }
  return out;
}
