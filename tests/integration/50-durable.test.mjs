// Durable chat across two relay nodes (issue 5): seq on every chat frame,
// acks, the MySQL writer, reconnect recovery with last_seq after a node dies
// (kill -9) or drains (SIGTERM), and MySQL and Redis outages during chat.
//
// This file brings up a private stack of its own (same web server as the
// suite, KEFU_WEB) in tests/var-durable-$KEFU_WEB with KEFU_RELAYS=2 and
// KEFU_EXTRA_INI=50-durable.ini (HeartbeatSec 1, NodeTtlSec 3,
// VisitorReconnectGraceSec 30, MaxMessagesPerSec 2000, no ping or chat
// timeouts), and connects every WebSocket straight to a chosen node
// (KEFU_RELAY_URLS: node A is relay1, node B is relay2; path and query from
// the REST reply's data.url), so each test decides who is held where. The
// REST calls go through the web server.
//
// Messages go out in chunks of CHUNK, each chunk waiting for its acks (or
// error frames), as a real client with a send window would; the receivers
// ack what they got after every chunk.
//
// The tests, in order (each pairs the admin as the agent on node A with a
// new visitor on node B, and ends the conversation afterwards):
//   1,000 messages each way: seq, acks, /admin/ws/info, MySQL, the
//     conversations and history API
//   kill -9 of node B mid-burst (agent -> visitor), then (visitor -> agent);
//     node B is started again after each
//   a visitor away while 600 messages arrive (a replay longer than SendQueueMax)
//   MySQL stopped for ~5 s during chat
//   both nodes killed while MySQL is down and their writers hold the queue
//   SIGTERM drain of node B (started again after)
//   Redis restarted during chat , last,
//     since a relay that did not recover is only good for after()'s down

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import { ipAllocator } from './lib.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '../..');
const STACK = process.env.KEFU_STACK || path.join(ROOT, 'deploy/stack');
const WEB = process.env.KEFU_WEB || 'lighttpd';
const DIR = process.env.KEFU_STACK_DIR
  ? `${path.resolve(process.env.KEFU_STACK_DIR)}-durable`
  : path.join(ROOT, 'tests', `var-durable-${WEB}.${process.pid}`);
const INI = path.join(HERE, '50-durable.ini');

const CHUNK = 50;
const DRAIN_SEC = 10; // [Relay] DrainTimeoutSec in 50-durable.ini
const A = 0; // node A: relay1
const B = 1; // node B: relay2

const ip = ipAllocator(import.meta.url);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

let E; // DIR/stack.env
let RELAYS; // [ws://127.0.0.1:PORT of relay1, ... of relay2]
let BASE; // URL of the web server
let ADMIN_ID;

// ---------------------------------------------------------------- processes

function run(cmd, args, opts = {}) {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { timeout: 240000, maxBuffer: 16 << 20, ...opts }, (err, stdout, stderr) => {
      if (err) {
        err.message += `\n--- stdout\n${stdout}\n--- stderr\n${stderr}`;
        reject(err);
      } else {
        resolve({ stdout, stderr });
      }
    });
  });
}

/* The environment for deploy/stack: the suite's own stack settings left out. */
function stackEnv() {
  const env = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (k.startsWith('KEFU_') && k !== 'KEFU_WEB' && k !== 'KEFU_BIN') continue;
    env[k] = v;
  }
  env.KEFU_WEB = WEB;
  env.KEFU_RELAYS = '2';
  env.KEFU_EXTRA_INI = INI;
  return env;
}

function logTails(lines = 25) {
  let out = '';
  try {
    for (const f of fs.readdirSync(path.join(DIR, 'log')).sort()) {
      if (!f.endsWith('.log') || f.startsWith('web-access')) continue;
      const text = fs.readFileSync(path.join(DIR, 'log', f), 'utf8').split('\n').slice(-lines).join('\n');
      out += `\n--- tail of ${f}\n${text}`;
    }
  } catch {
    /* no logs yet */
  }
  return out;
}

async function stackCmd(...args) {
  try {
    return await run(STACK, [...args, DIR], { env: stackEnv() });
  } catch (e) {
    e.message += logTails();
    throw e;
  }
}

function readStackEnv(dir) {
  const out = {};
  for (const line of fs.readFileSync(path.join(dir, 'stack.env'), 'utf8').split('\n')) {
    const m = /^([A-Z][A-Z0-9_]*)='([^']*)'$/.exec(line.trim());
    if (m) out[m[1]] = m[2];
  }
  return out;
}

function relayPid(n) {
  return Number(fs.readFileSync(path.join(DIR, 'run', `relay${n}.pid`), 'utf8').trim());
}

/* The process exists and is not a zombie. */
function alive(pid) {
  let st;
  try {
    st = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return false;
  }
  const state = st.slice(st.lastIndexOf(')') + 2).split(' ')[0];
  return state !== 'Z' && state !== 'X';
}

/* What relay node n's log gained since size `from` (see logSize). */
function relayLog(n, from = 0) {
  try {
    return fs.readFileSync(path.join(DIR, 'log', `kefu-relay${n}.log`), 'utf8').slice(from);
  } catch {
    return '';
  }
}

function logSize(n) {
  return relayLog(n).length;
}

/* The lines of relay logs (since the sizes in `from`) that match re. */
function logLines(re, from = [0, 0]) {
  return [1, 2].flatMap((n) =>
    relayLog(n, from[n - 1])
      .split('\n')
      .filter((l) => re.test(l))
      .map((l) => `relay${n}: ${l}`),
  );
}

// ---------------------------------------------------------------- MySQL

async function sql(query) {
  const { stdout } = await run(
    'mariadb',
    ['--no-defaults', '-S', E.KEFU_MYSQL_SOCKET, '-u', 'root', '-N', '-B', 'kefu', '-e', query],
    { timeout: 15000 },
  );
  return stdout
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => l.split('\t'));
}

// A Redis command through redis-cli: its output, a line per reply element.
async function redisCli(...args) {
  const { stdout } = await run(
    'redis-cli',
    ['--no-auth-warning', '-p', String(E.KEFU_REDIS_PORT), '-a', E.KEFU_REDIS_PASSWORD, ...args],
    { timeout: 15000 },
  );
  return stdout.trim().split('\n');
}

// The length of the MySQL write queue in Redis (PREFIX wq; prefix kf:).
async function writeQueueLength() {
  return Number((await redisCli('XLEN', 'kf:wq'))[0]);
}

// Entries of the write queue no writer has read yet (the group's lag).
async function writeQueueUnread() {
  const lines = await redisCli('XINFO', 'GROUPS', 'kf:wq');
  return Number(lines[lines.indexOf('lag') + 1]);
}

async function msgStats(key) {
  const [row] = await sql(
    'SELECT COUNT(*), COUNT(DISTINCT m.seq), COALESCE(MIN(m.seq), 0), COALESCE(MAX(m.seq), 0)' +
      ' FROM message m JOIN conversation c ON c.id = m.conversation_id' +
      ` WHERE c.ws_key = '${key}'`,
  );
  const [count, distinct, min, max] = row.map(Number);
  return { count, distinct, min, max };
}

/*
 * Every message of `expected` (Map seq -> {content, kind}) is in MySQL
 * exactly once, and nothing else is: polls until the writer caught up.
 */
async function checkMysql(key, expected, ms = 15000) {
  let stats;
  const deadline = Date.now() + ms;
  for (;;) {
    try {
      stats = await msgStats(key);
      if (stats.count >= expected.size) break;
    } catch (e) {
      stats = { error: e.message.split('\n')[0] };
    }
    if (Date.now() >= deadline) break;
    await sleep(250);
  }
  const seqs = [...expected.keys()].sort((a, b) => a - b);
  assert.deepEqual(
    stats,
    { count: expected.size, distinct: expected.size, min: seqs[0], max: seqs[seqs.length - 1] },
    `MySQL rows of conversation ${key} (COUNT, COUNT DISTINCT seq, MIN, MAX) after ${ms} ms`,
  );
  const rows = await sql(
    'SELECT m.seq, m.sender_kind, m.content FROM message m JOIN conversation c' +
      ` ON c.id = m.conversation_id WHERE c.ws_key = '${key}' ORDER BY m.seq`,
  );
  for (const [seq, kind, content] of rows) {
    const want = expected.get(Number(seq));
    assert.ok(want, `MySQL has seq ${seq} (${content}), which no client saw acked`);
    assert.equal(content, want.content, `MySQL content of seq ${seq}`);
    assert.equal(kind, want.kind, `MySQL sender_kind of seq ${seq}`);
  }
}

// ---------------------------------------------------------------- HTTP

function api(method, urlPath, { form, token, from } = {}) {
  const headers = {};
  let body = null;
  if (form) {
    body = Buffer.from(new URLSearchParams(form).toString());
    headers['Content-Type'] = 'application/x-www-form-urlencoded';
  }
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body || method !== 'GET') headers['Content-Length'] = String(body ? body.length : 0);
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        hostname: BASE.hostname,
        port: BASE.port,
        method,
        path: urlPath,
        headers,
        agent: false,
        localAddress: from,
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
          resolve({ status: res.statusCode, text, json });
        });
      },
    );
    req.setTimeout(20000, () => req.destroy(new Error(`${method} ${urlPath}: no reply in 20 s`)));
    req.on('error', reject);
    if (body) req.write(body);
    req.end();
  });
}

/* POST that must answer 200 with the envelope; returns data. */
async function ok(urlPath, { form, token, from } = {}) {
  const r = await api('POST', urlPath, { form, token, from });
  assert.equal(r.status, 200, `POST ${urlPath}: ${r.status} ${r.text.slice(0, 500)}`);
  assert.equal(r.json?.code, 200, `POST ${urlPath}: ${r.text.slice(0, 500)}`);
  return r.json.data;
}

async function loginAdmin(from) {
  const data = await ok('/admin/login', {
    form: { username: E.KEFU_ADMIN_USER, password: E.KEFU_ADMIN_PASSWORD },
    from,
  });
  return data.token;
}

/* A URL straight to relay node `node`, with the path and query of url. */
function direct(node, url) {
  const u = new URL(url, 'ws://x');
  return `${RELAYS[node]}${u.pathname}${u.search}`;
}

// ---------------------------------------------------------------- clients

async function until(fn, ms, what) {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() >= deadline) {
      throw new Error(`no ${typeof what === 'function' ? what() : what} within ${ms} ms`);
    }
    await sleep(5);
  }
}

/* Show a client's frames for an assertion message. */
function brief(list, n = 12) {
  const s = list.map((f) => JSON.stringify(f));
  return s.length <= 2 * n ? s.join(' ') : `${s.slice(0, n).join(' ')} ... ${s.slice(-n).join(' ')}`;
}

/*
 * Peer: one chat party (agent or visitor) over one or more successive
 * connections; what it received is collected across them.
 *   chats    chat frames received, in order, each with .conn (1, 2, ...)
 *   replies  'ack' / 'error' answers to its own chat frames, in order
 *   acks     the ack frames; errors the error frames; other everything else
 *   closes   {conn, code, reason} per connection that closed
 */
class Peer {
  constructor(kind, label) {
    this.kind = kind;
    this.label = label;
    this.key = ''; // the visitor's key (the agent's visitor)
    this.ws = null;
    this.conns = 0;
    this.chats = [];
    this.replies = [];
    this.acks = [];
    this.errors = [];
    this.other = [];
    this.closes = [];
    this.sent = [];
    this.acked = 0; // highest seq this client acknowledged
  }

  get from() {
    return this.kind === 'agent' ? 'agent' : this.key;
  }

  get isOpen() {
    return this.ws !== null && this.ws.readyState === WebSocket.OPEN;
  }

  connect(url, from) {
    const conn = this.conns + 1;
    return new Promise((resolve, reject) => {
      let opened = false;
      const ws = new WebSocket(url, { localAddress: from, perMessageDeflate: false, handshakeTimeout: 5000 });
      ws.on('unexpected-response', (req, res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d) => (body += d));
        res.on('end', () => {
          req.destroy();
          const e = new Error(`${this.label}: upgrade refused with HTTP ${res.statusCode}: ${body}`);
          e.status = res.statusCode;
          reject(e);
        });
      });
      ws.on('error', (e) => {
        if (!opened) reject(new Error(`${this.label}: ${e.message}`));
      });
      ws.on('open', () => {
        opened = true;
        this.conns = conn;
        this.ws = ws;
        resolve(this);
      });
      ws.on('message', (data) => {
        let f;
        try {
          f = JSON.parse(data.toString('utf8'));
        } catch {
          f = { raw: data.toString('utf8') };
        }
        f.conn = conn;
        if (f.type === 'chat') this.chats.push(f);
        else if (f.type === 'ack') {
          this.acks.push(f);
          this.replies.push('ack');
        } else if (f.type === 'error') {
          this.errors.push(f);
          this.replies.push('error');
        } else this.other.push(f);
      });
      ws.on('close', (code, reason) => {
        if (opened) this.closes.push({ conn, code, reason: reason.toString(), at: Date.now() });
      });
    });
  }

  /* Connect, retrying refusals and errors for up to ms. */
  async connectRetry(url, from, ms) {
    const deadline = Date.now() + ms;
    for (let tries = 1; ; tries++) {
      try {
        await this.connect(url, from);
        return tries;
      } catch (e) {
        if (Date.now() >= deadline) throw e;
        await sleep(200);
      }
    }
  }

  send(obj) {
    this.ws.send(JSON.stringify(obj));
  }

  chat(content) {
    this.sent.push(content);
    this.send(this.kind === 'agent' ? { type: 'chat', content, to: this.key } : { type: 'chat', content });
  }

  /* The highest seq this client knows of: received, or acked to it. */
  knownSeq() {
    let m = this.maxSeq();
    for (const a of this.acks) if (a.seq > m) m = a.seq;
    return m;
  }

  /* Give up on answers still due (their connection died). */
  abandonPending() {
    while (this.replies.length < this.sent.length) this.replies.push('lost');
  }

  maxSeq(conn = undefined) {
    let m = 0;
    for (const c of this.chats) if ((conn === undefined || c.conn === conn) && c.seq > m) m = c.seq;
    return m;
  }

  /* Acknowledge the highest seq received, if it moved. */
  ackReceived() {
    const m = this.maxSeq();
    if (m > this.acked && this.isOpen) {
      this.acked = m;
      this.send(this.kind === 'agent' ? { type: 'ack', seq: m, ws_key: this.key } : { type: 'ack', seq: m });
    }
  }

  /* Wait until every chat sent so far has its ack or error frame. */
  settled(ms = 10000) {
    return until(
      () => this.replies.length >= this.sent.length,
      ms,
      () =>
        `${this.label}: answers to all ${this.sent.length} chats (have ${this.acks.length} acks, ` +
        `${this.errors.length} errors; last errors ${brief(this.errors.slice(-3))})`,
    );
  }

  /*
 * Send n chats "prefix-i" in chunks, each chunk waiting for its answers;
 * onSent(count) runs as soon as a chunk is written (its answers pending).
 */
  async burst(n, prefix, { chunk = CHUNK, between = 0, onSent = null } = {}) {
    for (let i = 0; i < n; ) {
      const end = Math.min(n, i + chunk);
      for (; i < end; i++) this.chat(`${prefix}-${i}`);
      if (onSent) onSent(i);
      await this.settled();
      this.ackReceived();
      if (between) await sleep(between);
    }
  }

  async close() {
    if (this.isOpen) {
      const ws = this.ws;
      const closed = new Promise((r) => ws.once('close', r));
      ws.close(1000);
      await Promise.race([closed, sleep(3000)]);
    }
    if (this.ws) this.ws.terminate();
  }
}

const peers = new Set();

/*
 * The admin as an agent on node `agentNode` and a new visitor on node
 * `visitorNode`, bound to each other (both got their connect frame).
 */
async function pair(agentNode, visitorNode, tag) {
  const from = ip();
  const token = await loginAdmin(from);
  const reg = await ok('/admin/ws', { token, from });
  const agent = new Peer('agent', `agent(${tag})`);
  peers.add(agent);
  await agent.connect(direct(agentNode, reg.url), from);

  const vfrom = ip();
  const link = await ok('/api/link', { from: vfrom });
  const visitor = new Peer('visitor', `visitor(${tag})`);
  peers.add(visitor);
  visitor.key = link.ws_key;
  agent.key = link.ws_key;
  await visitor.connect(direct(visitorNode, link.url), vfrom);
  await until(
    () => visitor.other.find((f) => f.type === 'connect'),
    5000,
    () => `${visitor.label}: its connect frame; got ${brief(visitor.other)}`,
  );
  await until(
    () => agent.other.find((f) => f.type === 'connect' && f.ws_key === link.ws_key),
    5000,
    () => `${agent.label}: a connect frame for its visitor; got ${brief(agent.other)}`,
  );
  return { token, from, vfrom, agent, visitor, key: link.ws_key, link };
}

/* The visitor leaves, the agent goes offline; sockets closed. */
async function unpair(p) {
  if (!p) return;
  await p.visitor.close().catch(() => {});
  await api('POST', '/admin/ws/close', { token: p.token, from: p.from }).catch(() => {});
  await p.agent.close().catch(() => {});
  peers.delete(p.visitor);
  peers.delete(p.agent);
}

/*
 * What receiver got from sender is exactly sender's acked chats: each
 * frame a chat with seq, content, from and ws_key; the seqs strictly
 * increasing and equal to the seqs of sender's acks, in order; contents in
 * the order sent (those refused with an error frame left out).  Returns
 * the Map seq -> {content, kind} of them.
 */
function checkDelivery(sender, receiver, { exact = true } = {}) {
  const what = `${receiver.label} from ${sender.label}`;
  const got = receiver.chats.filter((c) => c.from === sender.from);
  assert.equal(
    receiver.chats.length - got.length,
    receiver.chats.filter((c) => c.from === receiver.from).length,
    `${what}: chat frames from nobody known: ${brief(receiver.chats.filter((c) => c.from !== sender.from && c.from !== receiver.from))}`,
  );
  for (const c of got) {
    assert.ok(Number.isInteger(c.seq) && c.seq > 0, `${what}: a chat frame without a seq: ${JSON.stringify(c)}`);
    assert.equal(c.ws_key, sender.key || receiver.key, `${what}: ws_key of ${JSON.stringify(c)}`);
    assert.equal(typeof c.send_time, 'string', `${what}: send_time of ${JSON.stringify(c)}`);
  }
  const seqs = got.map((c) => c.seq);
  for (let i = 1; i < seqs.length; i++) {
    assert.ok(
      seqs[i] > seqs[i - 1],
      `${what}: seq ${seqs[i]} after ${seqs[i - 1]} (frame ${i}): ${brief(got.slice(Math.max(0, i - 3), i + 3))}`,
    );
  }
  const ackSeqs = sender.acks.map((a) => a.seq);
  for (let i = 1; i < ackSeqs.length; i++) {
    assert.ok(ackSeqs[i] > ackSeqs[i - 1], `${sender.label}: ack seq ${ackSeqs[i]} after ${ackSeqs[i - 1]}`);
  }
  for (const a of sender.acks) assert.equal(a.ws_key, sender.key || receiver.key, `ack ws_key: ${JSON.stringify(a)}`);
  const contents = got.map((c) => c.content);
  if (exact) {
    assert.equal(got.length, sender.acks.length, `${what}: received ${got.length}, sender had ${sender.acks.length} acks`);
    assert.deepEqual(seqs, ackSeqs, `${what}: received seqs vs the sender's acks`);
  }
  // the contents are the sender's, each once, in the order sent
  const order = new Map(sender.sent.map((c, i) => [c, i]));
  let prev = -1;
  for (const c of contents) {
    assert.ok(order.has(c), `${what}: content '${c}' was never sent`);
    assert.ok(order.get(c) > prev, `${what}: '${c}' out of order or twice`);
    prev = order.get(c);
  }
  const out = new Map();
  for (const c of got) out.set(c.seq, { content: c.content, kind: sender.kind });
  return out;
}

/* Wait until receiver has every chat sender got an ack for. */
function delivered(sender, receiver, ms = 10000) {
  return until(
    () => {
      const gone = receiver.closes.find((c) => c.conn === receiver.conns);
      if (gone) {
        throw new Error(
          `${receiver.label}: its connection closed (${gone.code} ${gone.reason}) with ` +
            `${receiver.chats.filter((c) => c.from === sender.from).length} of ${sender.acks.length} ` +
            `acked chats of ${sender.label} received (max seq ${receiver.maxSeq()})`,
        );
      }
      const last = sender.acks.length ? sender.acks[sender.acks.length - 1].seq : 0;
      return receiver.chats.filter((c) => c.from === sender.from).length >= sender.acks.length &&
        receiver.maxSeq() >= last;
    },
    ms,
    () =>
      `${receiver.label}: all ${sender.acks.length} acked chats of ${sender.label} ` +
      `(has ${receiver.chats.filter((c) => c.from === sender.from).length}, max seq ${receiver.maxSeq()}); ` +
      `closes ${JSON.stringify(receiver.closes)}`,
  );
}

/* The agent was never told that the conversation ended. */
function assertGoingOn(agent) {
  const closed = agent.other.filter((f) => f.type === 'close' && f.ws_key === agent.key);
  assert.deepEqual(closed, [], `${agent.label}: the conversation ended: ${brief(closed)}`);
}

function assertNoErrors(...list) {
  for (const p of list) assert.deepEqual(p.errors, [], `${p.label}: error frames: ${brief(p.errors)}`);
}

// ---------------------------------------------------------------- stack

before(
  async () => {
    await run(STACK, ['down', DIR], { env: stackEnv() }).catch(() => {});
    fs.rmSync(DIR, { recursive: true, force: true });
    await stackCmd('up');
    E = readStackEnv(DIR);
    RELAYS = E.KEFU_RELAY_URLS.split(/\s+/).filter(Boolean);
    assert.equal(RELAYS.length, 2, `KEFU_RELAY_URLS: '${E.KEFU_RELAY_URLS}'`);
    BASE = new URL(E.KEFU_HTTP);
    const from = ip();
    const token = await loginAdmin(from);
    const me = await api('GET', '/admin/me', { token, from });
    assert.equal(me.status, 200, me.text);
    ADMIN_ID = me.json.data.admin_id;
    assert.ok(Number.isInteger(ADMIN_ID), me.text);
  },
  { timeout: 240000 },
);

after(
  async () => {
    for (const p of peers) p.ws?.terminate();
    if (E) await stackCmd('down').catch(() => {});
  },
  { timeout: 120000 },
);

/* Make sure both relay nodes run (a test that stopped one failed midway). */
async function bothNodes() {
  for (const n of [1, 2]) {
    let pid = 0;
    try {
      pid = relayPid(n);
    } catch {
      pid = 0;
    }
    if (!pid || !alive(pid)) await stackCmd('start-service', `relay${n}`);
  }
  for (const url of RELAYS) {
    const port = Number(new URL(url).port);
    await waitHealthy(port);
  }
}

/* GET /healthz of a relay node until it answers 200 (its Redis is up). */
async function waitHealthy(port, ms = 15000) {
  const deadline = Date.now() + ms;
  let last = '';
  for (;;) {
    const status = await new Promise((resolve) => {
      const req = http.get({ hostname: '127.0.0.1', port, path: '/healthz', agent: false }, (res) => {
        let text = '';
        res.on('data', (d) => (text += d));
        res.on('end', () => {
          last = `${res.statusCode} ${text}`;
          resolve(res.statusCode);
        });
      });
      req.setTimeout(2000, () => req.destroy(new Error('timeout')));
      req.on('error', (e) => {
        last = e.message;
        resolve(0);
      });
    });
    if (status === 200) return;
    if (Date.now() >= deadline) throw new Error(`relay on port ${port} not healthy after ${ms} ms: ${last}`);
    await sleep(200);
  }
}

// ---------------------------------------------------------------- tests

test('two nodes: 1,000 messages each way with seq and acks, info right, all in MySQL, conversations and history', { timeout: 90000 }, async (t) => {
  await bothNodes();
  let p;
  try {
    p = await pair(A, B, '1');
    const { agent, visitor, key, token, from } = p;

    const info = await ok('/admin/ws/info', { token, from });
    const u = info.user_clients.find((x) => x.ws_key === key);
    assert.ok(u, `info: no user_clients entry for the visitor: ${JSON.stringify(info)}`);
    assert.equal(u.bind_service, ADMIN_ID, `info: the visitor's bind_service: ${JSON.stringify(u)}`);
    assert.equal(u.ip, p.vfrom, `info: the visitor's ip: ${JSON.stringify(u)}`);
    assert.equal(u.state, 'bound', `info: ${JSON.stringify(u)}`);
    const s = info.service_clients.find((x) => x.admin_id === ADMIN_ID);
    assert.ok(s, `info: no service_clients entry for the agent: ${JSON.stringify(info)}`);
    assert.deepEqual(s.bind_user, [key], `info: the agent's bind_user: ${JSON.stringify(s)}`);
    assert.equal(s.state, 'online', `info: ${JSON.stringify(s)}`);
    assert.equal(info.user_count, 1, JSON.stringify(info));
    assert.equal(info.service_count, 1, JSON.stringify(info));

    const t0 = Date.now();
    await Promise.all([agent.burst(1000, 'a1'), visitor.burst(1000, 'v1')]);
    await delivered(agent, visitor);
    await delivered(visitor, agent);
    await sleep(200); // anything stray (a duplicate) would show up now
    t.diagnostic(`2,000 messages through two nodes in ${Date.now() - t0} ms`);

    assertNoErrors(agent, visitor);
    assert.equal(agent.acks.length, 1000, 'the agent got an ack per message');
    assert.equal(visitor.acks.length, 1000, 'the visitor got an ack per message');
    const toVisitor = checkDelivery(agent, visitor);
    const toAgent = checkDelivery(visitor, agent);
    assert.equal(toVisitor.size, 1000);
    assert.equal(toAgent.size, 1000);
    assert.deepEqual(visitor.chats.map((c) => c.content), agent.sent, 'the visitor got the agent\'s 1,000 in order');
    assert.deepEqual(agent.chats.map((c) => c.content), visitor.sent, 'the agent got the visitor\'s 1,000 in order');
    // one sequence for both directions: 1..2000, each seq used once
    const all = [...toVisitor.keys(), ...toAgent.keys()].sort((x, y) => x - y);
    assert.deepEqual(all, Array.from({ length: 2000 }, (_, i) => i + 1), 'the seqs of both directions are 1..2000');

    const info2 = await ok('/admin/ws/info', { token, from });
    assert.equal(info2.user_clients.find((x) => x.ws_key === key)?.bind_service, ADMIN_ID, JSON.stringify(info2));
    assert.deepEqual(info2.service_clients.find((x) => x.admin_id === ADMIN_ID)?.bind_user, [key], JSON.stringify(info2));

    const expected = new Map([...toVisitor, ...toAgent]);
    await checkMysql(key, expected);

    // the stored conversation through the admin API
    let conv;
    for (let pn = 1; pn <= 5 && !conv; pn++) {
      const page = await ok('/admin/ws/conversations', { token, from, form: { pn: String(pn), pc: '20' } });
      conv = page.data.find((c) => c.ws_key === key);
      if (page.data.length < 20) break;
    }
    assert.ok(conv, `POST /admin/ws/conversations: no row for ${key}`);
    assert.equal(conv.admin_id, ADMIN_ID, JSON.stringify(conv));
    assert.equal(conv.visitor_ip, p.vfrom, JSON.stringify(conv));
    assert.match(String(conv.start), /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/, JSON.stringify(conv));
    assert.equal(conv.end, null, `the conversation is still going on: ${JSON.stringify(conv)}`);
    const history = [];
    for (let pn = 1; pn <= 25; pn++) {
      const page = await ok('/admin/ws/history', {
        token,
        from,
        form: { conversation_id: String(conv.id), pn: String(pn), pc: '100' },
      });
      assert.equal(page.count, 2000, `history count: ${JSON.stringify({ ...page, data: undefined })}`);
      history.push(...page.data);
      if (page.data.length < 100) break;
    }
    assert.equal(history.length, 2000, 'POST /admin/ws/history returns the 2,000 messages');
    // what is in MySQL leaves the Redis write queue (acknowledged and deleted)
    let left = -1;
    for (let i = 0; i < 50 && left !== 0; i++) {
      left = await writeQueueLength();
      if (left !== 0) await new Promise((r) => setTimeout(r, 200));
    }
    assert.equal(left, 0, 'the Redis write queue is empty once MySQL has everything');
    history.forEach((m, i) => {
      assert.equal(m.seq, i + 1, `history row ${i}: ${JSON.stringify(m)}`);
      const want = expected.get(m.seq);
      assert.equal(m.content, want.content, `history seq ${m.seq}`);
      assert.equal(m.sender_kind, want.kind, `history seq ${m.seq}`);
      assert.equal(String(m.sender_id), want.kind === 'agent' ? String(ADMIN_ID) : key, `history seq ${m.seq}`);
    });
  } finally {
    await unpair(p);
  }
});

test('kill -9 of the visitor\'s node mid-burst: it reconnects to the other node with last_seq and gets all 1,000 exactly once, in order', { timeout: 90000 }, async (t) => {
  await bothNodes();
  let p;
  try {
    p = await pair(A, B, '2');
    const { agent, visitor, key } = p;
    const pidB = relayPid(2);
    let killedAt = 0;
    let reconnectedAt = 0;
    let lastSeq = -1;
    let tries = 0;

    // killed right after the agent wrote its 11th chunk: 50 messages on
    // their way through node A's chat script and node B's channel
    const kill = (sent) => {
      if (sent === 550) {
        process.kill(pidB, 'SIGKILL');
        killedAt = Date.now();
      }
    };
    let gap = 0;
    const back = (async () => {
      await until(() => visitor.closes.length > 0, 40000, 'the visitor\'s socket to close');
      lastSeq = visitor.maxSeq();
      visitor.acked = lastSeq;
      tries = await visitor.connectRetry(direct(A, `/ws/api/link?ws_key=${key}&last_seq=${lastSeq}`), p.vfrom, 10000);
      gap = agent.acks.length ? agent.acks[agent.acks.length - 1].seq - lastSeq : 0;
      reconnectedAt = Date.now();
    })();
    // a short pause between chunks keeps what the visitor misses while it
    // reconnects well under [Relay] SendQueueMax (see the next test)
    await agent.burst(1000, 'a2', { between: 20, onSent: kill });
    await back;
    await delivered(agent, visitor, 15000);
    await sleep(300);
    t.diagnostic(
      `node B killed with 500 of 550 sent acked; the visitor had seq ${lastSeq}, closed with ${visitor.closes[0]?.code}, ` +
        `was back on node A ${reconnectedAt - killedAt} ms after the kill (${tries} attempt(s)), ` +
        `${gap} acked messages behind`,
    );

    assert.ok(!alive(pidB), 'node B is dead');
    assertNoErrors(agent);
    assertGoingOn(agent);
    assert.equal(agent.acks.length, 1000, 'the agent got an ack for each of its 1,000 messages');
    assert.equal(visitor.conns, 2, 'the visitor connected twice');
    assert.ok(visitor.chats.some((c) => c.conn === 2), 'the visitor got messages on its second connection');
    const got = checkDelivery(agent, visitor);
    assert.deepEqual(visitor.chats.map((c) => c.content), agent.sent, 'the visitor has the 1,000 exactly once, in order');
    assert.equal(visitor.chats.filter((c) => c.conn === 2)[0].seq, lastSeq + 1, 'the replay starts right after last_seq');

    // A node that took a batch of the write queue and died holds it until
    // it comes back (or another node claims it, after a minute): restart it.
    await stackCmd('start-service', 'relay2');
    await checkMysql(key, got, 20000);
  } finally {
    await unpair(p);
    await bothNodes();
  }
});

test('kill -9 of the node of a visitor that is sending: every message acked to it reaches the agent exactly once, in order, and MySQL', { timeout: 60000 }, async (t) => {
  await bothNodes();
  let p;
  try {
    p = await pair(A, B, '2c');
    const { agent, visitor, key } = p;
    const pidB = relayPid(2);
    // chunks of 50 from the visitor on node B; B dies right after the 7th
    // is written, so some of it may be stored without its ack coming back
    for (let c = 0; c < 7; c++) {
      for (let i = 0; i < CHUNK; i++) visitor.chat(`v2c-${c * CHUNK + i}`);
      if (c === 6) process.kill(pidB, 'SIGKILL');
      else await visitor.settled();
    }
    await until(() => visitor.closes.length > 0, 10000, 'the visitor\'s socket to close');
    const ackedBefore = visitor.acks.length;
    const sentBefore = visitor.sent.length;
    const lastSeq = visitor.knownSeq();
    visitor.abandonPending();
    await visitor.connectRetry(direct(A, `/ws/api/link?ws_key=${key}&last_seq=${lastSeq}`), p.vfrom, 10000);
    await visitor.burst(150, 'v2c-after');
    // the agent has every acked message; in-flight ones only if stored
    await until(
      () => agent.chats.length >= visitor.acks.length && agent.maxSeq() >= visitor.acks[visitor.acks.length - 1].seq,
      10000,
      () => `${agent.label}: the visitor's ${visitor.acks.length} acked messages (has ${agent.chats.length})`,
    );
    await sleep(300);
    t.diagnostic(
      `node B killed with ${ackedBefore} of ${sentBefore} visitor messages acked; ` +
        `${agent.chats.length - visitor.acks.length} stored without an ack`,
    );

    assertNoErrors(agent, visitor);
    assertGoingOn(agent);
    const gotSeqs = agent.chats.map((c) => c.seq);
    for (let i = 1; i < gotSeqs.length; i++) assert.ok(gotSeqs[i] > gotSeqs[i - 1], `agent: seq ${gotSeqs[i]} after ${gotSeqs[i - 1]}`);
    const byContent = new Map(agent.chats.map((c) => [c.content, c]));
    assert.equal(byContent.size, agent.chats.length, 'no message reached the agent twice');
    visitor.acks.forEach((a, i) => {
      const content = i < ackedBefore ? visitor.sent[i] : visitor.sent[sentBefore + (i - ackedBefore)];
      const c = byContent.get(content);
      assert.ok(c, `acked message '${content}' (seq ${a.seq}) never reached the agent`);
      assert.equal(c.seq, a.seq, `'${content}': the agent's seq vs the ack`);
    });
    const order = new Map(visitor.sent.map((c, i) => [c, i]));
    let prev = -1;
    for (const c of agent.chats) {
      assert.ok(order.get(c.content) > prev, `agent: '${c.content}' was never sent, or is out of order`);
      prev = order.get(c.content);
    }
    // seqs are 1..N: what was stored but not acked took a seq too, no gaps
    assert.deepEqual(gotSeqs, Array.from({ length: gotSeqs.length }, (_, i) => i + 1), 'seqs at the agent are 1..N');
    // what was stored without its ack coming back is what the replay after
    // last_seq showed the visitor (its own messages), once each
    const acked = new Set(visitor.acks.map((a) => a.seq));
    const unacked = agent.chats.filter((c) => !acked.has(c.seq));
    const replayed = visitor.chats.filter((c) => c.from === key);
    assert.deepEqual(
      replayed.map((c) => [c.seq, c.content]),
      unacked.map((c) => [c.seq, c.content]),
      `the replay after last_seq=${lastSeq} shows the visitor the messages stored without an ack`,
    );

    await stackCmd('start-service', 'relay2');
    await checkMysql(key, new Map(agent.chats.map((c) => [c.seq, { content: c.content, kind: 'visitor' }])), 20000);
  } finally {
    await unpair(p);
    await bothNodes();
  }
});

test('a visitor away within its grace while its agent sends 600 messages gets all 600 on return, in order', {
  timeout: 60000,
}, async () => {
  await bothNodes();
  let p;
  try {
    p = await pair(A, B, '2b');
    const { agent, visitor, key } = p;
    await agent.burst(20, 'a2b-before');
    await delivered(agent, visitor);
    visitor.ackReceived();
    // the visitor's connection drops (no close frame): it has its grace period
    visitor.ws.terminate();
    await until(() => visitor.closes.length > 0, 5000, 'the visitor\'s socket to close');
    await sleep(300);
    await agent.burst(600, 'a2b-away');
    assertNoErrors(agent);
    assert.equal(agent.acks.length, 620, 'messages to a visitor that is away are accepted and acked');
    const lastSeq = visitor.maxSeq();
    assert.equal(lastSeq, 20);
    await visitor.connect(direct(B, `/ws/api/link?ws_key=${key}&last_seq=${lastSeq}`), p.vfrom);
    await delivered(agent, visitor, 10000);
    await sleep(300);
    checkDelivery(agent, visitor);
    assert.deepEqual(visitor.chats.map((c) => c.content), agent.sent, 'the visitor has all 620 exactly once, in order');
    assert.ok(visitor.isOpen, `the visitor is still connected: ${JSON.stringify(visitor.closes)}`);
  } finally {
    await unpair(p);
  }
});

test('MySQL stopped for several seconds during chat: acks keep coming; once it is back every message is in MySQL exactly once', { timeout: 120000 }, async (t) => {
  await bothNodes();
  const logFrom = [logSize(1), logSize(2)];
  let p;
  let stopped = false;
  try {
    p = await pair(A, B, '3');
    const { agent, visitor, key } = p;
    await Promise.all([agent.burst(60, 'a3-before', { chunk: 20 }), visitor.burst(60, 'v3-before', { chunk: 20 })]);

    await stackCmd('stop-service', 'mysql');
    stopped = true;
    const downAt = Date.now();
    await assert.rejects(sql('SELECT 1'), 'MySQL is really down');
    let during = 0;
    while (Date.now() - downAt < 5000) {
      await Promise.all([agent.burst(10, `a3-down${during}`), visitor.burst(10, `v3-down${during}`)]);
      during++;
      await sleep(200);
    }
    assertNoErrors(agent, visitor);
    await stackCmd('start-service', 'mysql');
    stopped = false;
    t.diagnostic(`MySQL down for ${Date.now() - downAt} ms; ${during * 20} messages sent meanwhile, all acked`);

    await Promise.all([agent.burst(60, 'a3-after', { chunk: 20 }), visitor.burst(60, 'v3-after', { chunk: 20 })]);
    await delivered(agent, visitor);
    await delivered(visitor, agent);
    await sleep(200);
    assertNoErrors(agent, visitor);
    assert.equal(agent.acks.length, agent.sent.length, 'every agent message acked');
    assert.equal(visitor.acks.length, visitor.sent.length, 'every visitor message acked');
    const expected = new Map([...checkDelivery(agent, visitor), ...checkDelivery(visitor, agent)]);
    assert.equal(expected.size, agent.sent.length + visitor.sent.length);
    await checkMysql(key, expected, 30000);

    const said = logLines(/mysql unavailable/i, logFrom);
    assert.ok(said.length > 0, `a relay logged that chat writes wait for MySQL; log tails:${logTails(10)}`);
  } finally {
    if (stopped) await stackCmd('start-service', 'mysql').catch(() => {});
    await unpair(p);
  }
});

test('both nodes killed while MySQL is down, after their writers took the queued messages: once MySQL and a node are back, every message is in MySQL', { timeout: 90000 }, async (t) => {
  await bothNodes();
  let p;
  let stopped = false;
  try {
    p = await pair(A, B, '3k');
    const { agent, visitor, key } = p;
    await stackCmd('stop-service', 'mysql');
    stopped = true;
    await Promise.all([agent.burst(100, 'a3k', { chunk: 20 }), visitor.burst(100, 'v3k', { chunk: 20 })]);
    await delivered(agent, visitor);
    await delivered(visitor, agent);
    assertNoErrors(agent, visitor);
    const expected = new Map([...checkDelivery(agent, visitor), ...checkDelivery(visitor, agent)]);
    assert.equal(expected.size, 200);
    // the writers hold what they read (retrying MySQL, they read no more)
    let queued = 0;
    let taken = 0;
    await until(
      async () => {
        queued = await writeQueueLength();
        taken = queued - (await writeQueueUnread());
        return taken > 0;
      },
      5000,
      'a writer to take entries of the queue',
    );
    assert.ok(queued >= 200, `the 200 messages wait in Redis (${queued} entries)`);
    process.kill(relayPid(1), 'SIGKILL');
    process.kill(relayPid(2), 'SIGKILL');
    await until(() => !alive(relayPid(1)) && !alive(relayPid(2)), 5000, 'both nodes to die');
    await stackCmd('start-service', 'mysql');
    stopped = false;
    const back = Date.now();
    await stackCmd('start-service', 'relay1');
    // well within a minute (the age after which any writer takes another's entries)
    await checkMysql(key, expected, 20000);
    t.diagnostic(
      `${queued} entries queued, ${taken} of them taken by writers that died: all in MySQL ${Date.now() - back} ms after a node came back`,
    );
    await until(async () => (await writeQueueLength()) === 0, 5000, 'the write queue to be empty');
  } finally {
    if (stopped) await stackCmd('start-service', 'mysql').catch(() => {});
    await unpair(p);
    await bothNodes();
  }
});

test('SIGTERM drains a node: its visitor gets 1001, reconnects to the other node with last_seq and loses nothing; the node exits in time', { timeout: 90000 }, async (t) => {
  await bothNodes();
  const logFrom = [logSize(1), logSize(2)];
  let p;
  try {
    p = await pair(A, B, '5');
    const { agent, visitor, key } = p;
    await agent.burst(100, 'a5-before');
    await delivered(agent, visitor);
    visitor.ackReceived();

    const pidB = relayPid(2);
    let termAt = 0;
    let goneAfter = -1;
    let lastSeq = -1;
    const term = (async () => {
      await until(() => agent.acks.length >= 150, 30000, 'the agent\'s first 150 acks');
      process.kill(pidB, 'SIGTERM');
      termAt = Date.now();
      await until(() => !alive(pidB), (DRAIN_SEC + 5) * 1000, `node B (pid ${pidB}) to exit`);
      goneAfter = Date.now() - termAt;
    })();
    const back = (async () => {
      await until(() => visitor.closes.length > 0, 40000, 'the visitor\'s socket to close');
      lastSeq = visitor.maxSeq();
      await visitor.connectRetry(direct(A, `/ws/api/link?ws_key=${key}&last_seq=${lastSeq}`), p.vfrom, 10000);
    })();
    await agent.burst(400, 'a5-during', { chunk: 20, between: 10 });
    await Promise.all([term, back]);
    await delivered(agent, visitor, 15000);
    await sleep(300);
    t.diagnostic(`the visitor had seq ${lastSeq} at the close; node B exited ${goneAfter} ms after SIGTERM`);

    assert.equal(visitor.closes[0].code, 1001, `close code: ${JSON.stringify(visitor.closes[0])}`);
    assert.ok(goneAfter >= 0 && goneAfter <= DRAIN_SEC * 1000, `node B exited ${goneAfter} ms after SIGTERM`);
    assertNoErrors(agent);
    assertGoingOn(agent);
    assert.equal(agent.acks.length, 500);
    const got = checkDelivery(agent, visitor);
    assert.deepEqual(visitor.chats.map((c) => c.content), agent.sent, 'the visitor has all 500 exactly once, in order');
    assert.ok(logLines(/draining/, logFrom).length > 0, 'node B logged its drain');

    await stackCmd('start-service', 'relay2');
    await checkMysql(key, got, 20000);
  } finally {
    await unpair(p);
    await bothNodes();
  }
});

// Last: when the relay does not recover from the Redis restart, the stack is
// left as it is for after() to take down.
test('an agent that connects again on the other node replaces its old connection there (4001); chat goes to the new one', { timeout: 60000 }, async () => {
  await bothNodes();
  const p = await pair(A, B, 'takeover');
  try {
    // the agent registers again and connects to node B; node A's socket must go
    const reg = await ok('/admin/ws', { token: p.token, from: p.from });
    const agent2 = new Peer('agent', 'agent(takeover, 2nd)');
    peers.add(agent2);
    agent2.key = p.key;
    await agent2.connect(direct(B, reg.url), p.from);
    await until(
      () => p.agent.closes.find((c) => c.code === 4001),
      10000,
      () => `the first agent connection: close 4001; got ${JSON.stringify(p.agent.closes)}`,
    );
    await until(
      () => agent2.other.find((f) => f.type === 'connect' && f.ws_key === p.key),
      5000,
      () => `the new agent connection: a connect for its visitor; got ${brief(agent2.other)}`,
    );
    p.visitor.chat('after the takeover');
    await until(
      () => agent2.chats.find((f) => f.content === 'after the takeover'),
      5000,
      () => `the new agent connection: the visitor's chat; got ${brief(agent2.chats)}`,
    );
    agent2.chat('from the new connection');
    await until(
      () => p.visitor.chats.find((f) => f.content === 'from the new connection'),
      5000,
      () => `the visitor: the new agent connection's chat; got ${brief(p.visitor.chats)}`,
    );
    p.agent = agent2;
  } finally {
    await unpair(p);
  }
});

test('Redis restarted during chat: errors while it is down, then chat resumes on the same sockets with seq continuing', {
  timeout: 120000,
}, async (t) => {
  await bothNodes();
  const pids = [relayPid(1), relayPid(2)];
  const logFrom = [logSize(1), logSize(2)];
  let p;
  let stopped = false;
  try {
    p = await pair(A, B, '4');
    const { agent, visitor, key } = p;
    await Promise.all([agent.burst(100, 'a4-before'), visitor.burst(100, 'v4-before')]);
    await delivered(agent, visitor);
    await delivered(visitor, agent);
    assertNoErrors(agent, visitor);
    const ackedBefore = Math.max(agent.acks.at(-1).seq, visitor.acks.at(-1).seq);
    assert.equal(ackedBefore, 200);

    await stackCmd('stop-service', 'redis');
    stopped = true;
    const downAt = Date.now();
    // while Redis is down: an error frame per message, no ack, socket open
    for (let i = 0; i < 5; i++) {
      agent.chat(`a4-down-${i}`);
      visitor.chat(`v4-down-${i}`);
      await sleep(300);
    }
    const downState = [agent, visitor]
      .map((peer) => `${peer.label} sent 5 while Redis was down and got [${peer.replies.slice(100).join(', ')}]`)
      .join('; ');
    assert.ok(agent.isOpen && visitor.isOpen, 'both sockets stay open while Redis is down');
    await sleep(Math.max(0, 2000 - (Date.now() - downAt)));
    await stackCmd('start-service', 'redis');
    stopped = false;
    const upAt = Date.now();

    // probe every 500 ms until an ack arrives, each side
    for (const peer of [agent, visitor]) {
      let n = 0;
      let probeAt = 0;
      const acks = peer.acks.length;
      await until(
        () => {
          if (peer.acks.length > acks) return true;
          if (Date.now() - probeAt >= 500 && n < 40) {
            probeAt = Date.now();
            peer.chat(`${peer.kind[0]}4-probe-${n++}`);
          }
          return false;
        },
        15000,
        () =>
          `${peer.label}: an ack within 15 s of Redis being started (${n} probes sent; answers since ` +
          `Redis stopped: [${peer.replies.slice(100).join(', ')}]); before: ${downState}; relay log: ` +
          logLines(/on_cmd_|on_sub_|sweep_dead/, logFrom).join(' | '),
      );
      await peer.settled();
    }
    for (const peer of [agent, visitor]) {
      assert.deepEqual(
        peer.replies.slice(100, 105),
        ['error', 'error', 'error', 'error', 'error'],
        `${peer.label}: an error frame (no ack) for each message sent while Redis was down; ${downState}`,
      );
    }
    for (const e of [...agent.errors, ...visitor.errors]) {
      assert.equal(typeof e.content, 'string', JSON.stringify(e));
      assert.equal(e.ws_key, key, `error frame about the conversation: ${JSON.stringify(e)}`);
    }
    t.diagnostic(`Redis down ${upAt - downAt} ms; first acks again ${Date.now() - upAt} ms after it was started`);

    await Promise.all([agent.burst(100, 'a4-after'), visitor.burst(100, 'v4-after')]);
    await delivered(agent, visitor, 15000);
    await delivered(visitor, agent, 15000);
    await sleep(300);

    assert.deepEqual(p.agent.closes, [], 'the agent\'s socket never closed');
    assert.deepEqual(p.visitor.closes, [], 'the visitor\'s socket never closed');
    assert.equal(agent.conns, 1);
    assert.equal(visitor.conns, 1);
    assert.ok(alive(pids[0]) && alive(pids[1]) && relayPid(1) === pids[0] && relayPid(2) === pids[1],
      'the relays were not restarted');
    const toVisitor = checkDelivery(agent, visitor);
    const toAgent = checkDelivery(visitor, agent);
    // seq goes on from what was acked: every acked seq 1..N once, no gap
    const all = [...agent.acks, ...visitor.acks].map((a) => a.seq).sort((x, y) => x - y);
    assert.deepEqual(all, Array.from({ length: all.length }, (_, i) => i + 1), 'acked seqs are 1..N without gaps');
    for (const c of [...agent.chats, ...visitor.chats]) {
      assert.ok(!/-down-/.test(c.content), `a message refused while Redis was down was delivered: ${JSON.stringify(c)}`);
    }
    await checkMysql(key, new Map([...toVisitor, ...toAgent]), 20000);
    t.diagnostic(`relay log lines about Redis: ${logLines(/redis/i, logFrom).slice(0, 8).join(' | ')}`);
  } finally {
    if (stopped) await stackCmd('start-service', 'redis').catch(() => {});
    await unpair(p);
  }
});
