// Chat events to RabbitMQ and Kafka, and the retrying task queue (issue 6).
//
// This file brings up a stack of its own (same web server as the suite,
// KEFU_WEB) in tests/var-events.PID-$KEFU_WEB with a private RabbitMQ node
// (KEFU_RABBITMQ=1) and a Kafka stand-in: build/test/kafka-mock, librdkafka's
// mock cluster of 3 brokers in a child process of this test, told to take
// its brokers down and up on its standard input. kefu.ini gets (through
// KEFU_EXTRA_INI) [Events] Backend = both, TaskWorker = true (the relay runs
// the worker) and short delays, and [Kafka] Brokers = the mock.
//
// build/test/events-tool drives kf_events and kf_taskqueue directly
// (publish, worker, enqueue, mq-get), so the broker outage and the worker
// tests do not depend on the relay's hooks; the chat test checks them.
//
// Consumers: events-tool mq-get takes every message off the [Mq] Queue
// (basic.get); kafka-mock consume reads the whole topic from the start.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import http from 'node:http';
import { execFile, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import { ipAllocator } from './lib.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '../..');
const STACK = process.env.KEFU_STACK || path.join(ROOT, 'deploy/stack');
const WEB = process.env.KEFU_WEB || 'lighttpd';
const DIR = path.join(ROOT, 'tests', `var-events.${process.pid}-${WEB}`);
const TOOLS = process.env.KEFU_TOOLS || path.join(ROOT, 'build/test');
const EVTOOL = path.join(TOOLS, 'events-tool');
const KMOCK = path.join(TOOLS, 'kafka-mock');
const TOPIC = 'kefu.events';

const ip = ipAllocator(import.meta.url);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

let E; // DIR/stack.env
let mock; // the kafka-mock child
let bootstrap = '';
let stackUp = false;
const children = new Set();

// ---------------------------------------------------------------- processes

function run(cmd, args, opts = {}) {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { timeout: 180000, maxBuffer: 32 << 20, ...opts }, (err, stdout, stderr) => {
      if (err) {
        err.message += `\n--- stdout\n${stdout.slice(-4000)}\n--- stderr\n${stderr.slice(-4000)}`;
        reject(err);
      } else {
        resolve({ stdout, stderr });
      }
    });
  });
}

const stack = (...args) => run(STACK, [...args, DIR], { env: { ...process.env, ...stackEnv() } });

function stackEnv() {
  return {
    KEFU_WEB: WEB,
    KEFU_RABBITMQ: '1',
    KEFU_RELAYS: '1',
    KEFU_EXTRA_INI: path.join(DIR, 'events-extra.ini'),
    KEFU_PORT_BASE: '',
  };
}

/* SQL on the stack's MariaDB as root over its socket; rows as arrays. */
async function sql(query) {
  const { stdout } = await run('mariadb', ['--no-defaults', '-S', E.KEFU_MYSQL_SOCKET, '-uroot', '-N', '-B', 'kefu', '-e', query]);
  return stdout.split('\n').filter((l) => l.length).map((l) => l.split('\t'));
}

/* A config for the tools: the stack's kefu.ini plus extra lines. */
function toolIni(name, extra = '') {
  const file = path.join(DIR, `tool-${name}.ini`);
  fs.writeFileSync(
    file,
    fs.readFileSync(path.join(DIR, 'kefu.ini'), 'utf8') +
      `\n[Log]\nFile = ${path.join(DIR, 'log', `tool-${name}.log`)}\n` +
      extra,
  );
  return file;
}

/* events-tool CMD with config ini and args; resolves to stdout. */
async function evtool(ini, cmd, args = []) {
  const { stdout } = await run(EVTOOL, ['--config', ini, cmd, ...args]);
  return stdout;
}

/* A long-running events-tool worker; resolves once it printed "ready". */
function startWorker(ini, args) {
  return new Promise((resolve, reject) => {
    const p = spawn(EVTOOL, ['--config', ini, 'worker', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    children.add(p);
    let out = '';
    let err = '';
    p.stdout.on('data', (d) => {
      out += d;
      if (/^ready$/m.test(out)) resolve(p);
    });
    p.stderr.on('data', (d) => (err += d));
    p.on('exit', (code, sig) => {
      children.delete(p);
      reject(new Error(`worker exited (${code ?? sig}) before it was ready: ${err.slice(-2000)}`));
    });
  });
}

function stopChild(p, sig = 'SIGTERM') {
  return new Promise((resolve) => {
    if (p.exitCode !== null || p.signalCode !== null) return resolve();
    p.once('exit', () => resolve());
    p.kill(sig);
  });
}

/* The mock's answer to one command ("down", "up 2", ...). */
function mockCmd(cmd) {
  return new Promise((resolve, reject) => {
    const word = cmd.split(' ')[0];
    const onData = (d) => {
      const m = new RegExp(`^(ok|error) ${word}`, 'm').exec(String(d));
      if (m) {
        mock.stdout.off('data', onData);
        m[1] === 'ok' ? resolve() : reject(new Error(`kafka-mock: ${String(d).trim()}`));
      }
    };
    mock.stdout.on('data', onData);
    mock.stdin.write(`${cmd}\n`);
  });
}

function startMock() {
  return new Promise((resolve, reject) => {
    mock = spawn(KMOCK, ['serve', '--brokers', '3', '--topic', TOPIC, '--partitions', '3'], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let out = '';
    const onData = (d) => {
      out += d;
      const m = /^bootstrap (\S+)$/m.exec(out);
      if (m && /^ready$/m.test(out)) {
        mock.stdout.off('data', onData);
        bootstrap = m[1];
        resolve();
      }
    };
    mock.stdout.on('data', onData);
    mock.stderr.on('data', () => {});
    mock.on('exit', (code) => reject(new Error(`kafka-mock exited (${code}) before it was ready`)));
  });
}

// ---------------------------------------------------------------- consumers

const parseEvents = (lines) =>
  lines
    .filter((l) => l.trim().startsWith('{'))
    .map((l) => JSON.parse(l));

/* Every message now in the RabbitMQ queue (taken off it), as events. */
async function drainMq(ini) {
  return parseEvents((await evtool(ini, 'mq-get', ['--idle-ms', '1500'])).split('\n'));
}

/* Every message in the topic, from the start: {partition, offset, key, event}. */
async function readTopic() {
  const { stdout } = await run(KMOCK, ['consume', '--bootstrap', bootstrap, '--topic', TOPIC, '--partitions', '3', '--idle-ms', '2500']);
  return stdout
    .split('\n')
    .filter((l) => l.length)
    .map((l) => {
      const [partition, offset, key, ...rest] = l.split('\t');
      return { partition: Number(partition), offset: Number(offset), key, event: JSON.parse(rest.join('\t')) };
    });
}

/* The "ID TAB CONVERSATION TAB SEQ" lines events-tool publish printed. */
const published = (stdout) =>
  stdout
    .split('\n')
    .filter((l) => l.length)
    .map((l) => {
      const [id, conversation, seq] = l.split('\t');
      return { id, conversation, seq: Number(seq) };
    });

/* Assert events (in arrival order) hold each conversation's seqs 1..n in order. */
function assertInOrder(events, what) {
  const byConv = new Map();
  for (const e of events) {
    if (!byConv.has(e.conversation)) byConv.set(e.conversation, []);
    byConv.get(e.conversation).push(e.seq);
  }
  for (const [conv, seqs] of byConv) {
    assert.deepEqual(seqs, seqs.map((_, i) => i + 1), `${what}: ${conv} arrived out of order: ${seqs}`);
  }
}

// ---------------------------------------------------------------- HTTP and WebSocket

/* POST form to this file's stack from a source address; the JSON envelope's data. */
function post(urlPath, { token, from, form = {} } = {}) {
  const body = Buffer.from(new URLSearchParams(form).toString());
  const base = new URL(E.KEFU_HTTP);
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        hostname: base.hostname,
        port: base.port,
        method: 'POST',
        path: urlPath,
        localAddress: from,
        agent: false,
        headers: {
          'Content-Type': 'application/x-www-form-urlencoded',
          'Content-Length': String(body.length),
          ...(token ? { Authorization: `Bearer ${token}` } : {}),
        },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d) => (text += d));
        res.on('end', () => {
          let json = null;
          try {
            json = JSON.parse(text);
          } catch {
            /* not JSON */
          }
          if (res.statusCode !== 200 || json?.code !== 200) {
            reject(new Error(`POST ${urlPath}: ${res.statusCode} ${text.slice(0, 300)}`));
          } else {
            resolve(json.data);
          }
        });
      },
    );
    req.setTimeout(20000, () => req.destroy(new Error(`POST ${urlPath}: no reply`)));
    req.on('error', reject);
    req.end(body);
  });
}

/* A WebSocket that keeps its frames; next(pred) takes the first matching one. */
function connectWs(url, from) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { localAddress: from, perMessageDeflate: false, handshakeTimeout: 10000 });
    const frames = [];
    const waiting = [];
    ws.on('message', (d) => {
      let f;
      try {
        f = JSON.parse(String(d));
      } catch {
        return;
      }
      frames.push(f);
      for (const w of [...waiting]) w();
    });
    ws.once('open', () =>
      resolve({
        ws,
        send: (o) => ws.send(JSON.stringify(o)),
        next(pred, ms = 5000) {
          return new Promise((res, rej) => {
            const check = () => {
              const i = frames.findIndex(pred);
              if (i < 0) return false;
              const [f] = frames.splice(i, 1);
              waiting.splice(waiting.indexOf(check), 1);
              clearTimeout(timer);
              res(f);
              return true;
            };
            const timer = setTimeout(() => {
              waiting.splice(waiting.indexOf(check), 1);
              rej(new Error(`no such frame within ${ms} ms; have ${JSON.stringify(frames).slice(0, 500)}`));
            }, ms);
            waiting.push(check);
            check();
          });
        },
      }),
    );
    ws.once('error', reject);
    ws.on('unexpected-response', (req, res) => reject(new Error(`upgrade refused: HTTP ${res.statusCode}`)));
  });
}

// ---------------------------------------------------------------- the stack

before(async () => {
  for (const t of [EVTOOL, KMOCK]) {
    assert.ok(fs.existsSync(t), `${t} is missing: build it with make (or set KEFU_TOOLS)`);
  }
  await startMock();
  fs.mkdirSync(DIR, { recursive: true });
  fs.writeFileSync(
    path.join(DIR, 'events-extra.ini'),
    [
      '[Events]',
      'Backend = both',
      'TaskWorker = true',
      'TaskPollSec = 1',
      'TaskFirstDelaySec = 1',
      'TaskRetryDelaySec = 2',
      'TaskTimeoutSec = 5',
      'TaskStaleSec = 6',
      'TaskShutdownWaitSec = 2',
      'FlushTimeoutSec = 2',
      '[Kafka]',
      `Brokers = ${bootstrap}`,
      'MessageTimeoutMs = 3000',
      '[Mq]',
      'ConfirmTimeoutMs = 2000',
      'ReconnectMaxMs = 1000',
      '',
    ].join('\n'),
  );
  await stack('up');
  stackUp = true;
  E = Object.fromEntries(
    fs
      .readFileSync(path.join(DIR, 'stack.env'), 'utf8')
      .split('\n')
      .map((l) => /^([A-Z_]+)='(.*)'$/.exec(l))
      .filter(Boolean)
      .map((m) => [m[1], m[2]]),
  );
  assert.equal(E.KEFU_RABBITMQ, '1', 'the stack has no RabbitMQ');
});

after(async () => {
  for (const p of children) await stopChild(p, 'SIGKILL');
  if (stackUp) {
    await stack('down').catch(() => {});
    fs.rmSync(DIR, { recursive: true, force: true });
  }
  if (mock) {
    mock.stdin.end();
    await stopChild(mock);
  }
});

// ---------------------------------------------------------------- tests

test('published events reach RabbitMQ and Kafka, each once, in order per conversation', { timeout: 60000 }, async () => {
  const ini = toolIni('t1');
  await drainMq(ini);
  const sent = published(await evtool(ini, 'publish', ['--count', '30', '--conversations', '3', '--prefix', 't1']));
  assert.equal(sent.length, 30);
  const ids = new Set(sent.map((s) => s.id));
  assert.equal(ids.size, 30, 'event ids are unique');

  const mq = (await drainMq(ini)).filter((e) => e.conversation.startsWith('t1-'));
  assert.deepEqual(mq.map((e) => e.id).sort(), [...ids].sort(), 'RabbitMQ: exactly the published events');
  assertInOrder(mq, 'RabbitMQ');
  for (const e of mq) {
    assert.equal(e.v, 1);
    assert.equal(e.type, 'chat');
    assert.equal(e.node, 'tool');
    assert.equal(typeof e.time, 'number');
    assert.match(e.content, /^message \d+$/);
  }

  const topic = (await readTopic()).filter((m) => m.event.conversation.startsWith('t1-'));
  assert.deepEqual(topic.map((m) => m.event.id).sort(), [...ids].sort(), 'Kafka: exactly the published events');
  for (const m of topic) assert.equal(m.key, m.event.conversation, 'the message key is the conversation');
  const parts = new Map();
  for (const m of topic) {
    if (!parts.has(m.key)) parts.set(m.key, new Set());
    parts.get(m.key).add(m.partition);
  }
  for (const [k, p] of parts) assert.equal(p.size, 1, `${k} spread over partitions ${[...p]}`);
  assertInOrder(
    [...topic].sort((a, b) => a.partition - b.partition || a.offset - b.offset).map((m) => m.event),
    'Kafka',
  );
});

test('brokers down: events become tasks, retried with retry_times and fail_msg; back: all delivered, rows gone', { timeout: 150000 }, async (t) => {
  const ini = toolIni('t2');
  await drainMq(ini);
  await stack('stop-service', 'rabbitmq');
  await mockCmd('down');
  let sent;
  try {
    sent = published(await evtool(ini, 'publish', ['--count', '6', '--conversations', '2', '--prefix', 't2']));
    const ids = sent.map((s) => s.id).sort();
    const rows = await sql("SELECT type, JSON_VALUE(param, '$.event.id') FROM taskqueue WHERE param LIKE '%\"t2-%'");
    assert.deepEqual(rows.filter((r) => r[0] === 'mq').map((r) => r[1]).sort(), ids, `mq tasks: ${JSON.stringify(rows)}`);
    assert.deepEqual(rows.filter((r) => r[0] === 'kafka').map((r) => r[1]).sort(), ids, `kafka tasks: ${JSON.stringify(rows)}`);

    // the relay's worker retries them (TaskFirstDelaySec 1, TaskRetryDelaySec 2) and fails
    let seen;
    const deadline = Date.now() + 60000;
    for (;;) {
      seen = await sql("SELECT type, retry_times, fail_msg FROM taskqueue WHERE param LIKE '%\"t2-%'");
      if (seen.length === 12 && seen.every((r) => Number(r[1]) >= 1)) break;
      assert.ok(Date.now() < deadline, `tasks not retried within 60 s: ${JSON.stringify(seen)}`);
      await sleep(500);
    }
    for (const [type, , msg] of seen) {
      assert.ok(msg && msg !== 'NULL', `${type} task without fail_msg`);
      if (type === 'mq') assert.match(msg, /connect|unavailable|socket|broker/i, msg);
      else assert.match(msg, /timed out|transport|broker|purge|down|kafka/i, msg);
    }
    t.diagnostic(`fail_msg examples: ${[...new Set(seen.map((r) => `${r[0]}: ${r[2]}`))].slice(0, 4).join(' | ')}`);
  } finally {
    await stack('start-service', 'rabbitmq');
    await mockCmd('up');
  }

  const ids = sent.map((s) => s.id).sort();
  const deadline = Date.now() + 60000;
  for (;;) {
    const left = await sql("SELECT COUNT(*) FROM taskqueue WHERE param LIKE '%\"t2-%'");
    if (left[0][0] === '0') break;
    assert.ok(Date.now() < deadline, `${left[0][0]} tasks still there 60 s after the brokers came back`);
    await sleep(500);
  }
  const mq = (await drainMq(ini)).filter((e) => e.conversation.startsWith('t2-'));
  const topic = (await readTopic()).filter((m) => m.event.conversation.startsWith('t2-')).map((m) => m.event);
  assert.deepEqual([...new Set(mq.map((e) => e.id))].sort(), ids, 'RabbitMQ: every event, none lost');
  assert.deepEqual([...new Set(topic.map((e) => e.id))].sort(), ids, 'Kafka: every event, none lost');
  const dups = mq.length - ids.length + (topic.length - ids.length);
  if (dups) t.diagnostic(`${dups} duplicate deliveries (at least once; consumers drop them by id)`);
});

test('two workers on one table never run the same task', { timeout: 120000 }, async () => {
  const N = 300;
  const ini = toolIni('t3', '[Events]\nTaskPollSec = 1\nTaskBatch = 10\nTaskConcurrency = 4\n');
  const log = path.join(DIR, 'log', 'two-workers.txt');
  fs.rmSync(log, { force: true });
  await evtool(ini, 'enqueue', ['--type', 'twoworkers', '--count', String(N)]);
  const w1 = await startWorker(ini, ['--types', 'twoworkers', '--log', log, '--sleep-ms', '5']);
  const w2 = await startWorker(ini, ['--types', 'twoworkers', '--log', log, '--sleep-ms', '5']);
  try {
    const deadline = Date.now() + 90000;
    for (;;) {
      const left = await sql("SELECT COUNT(*) FROM taskqueue WHERE type = 'twoworkers'");
      if (left[0][0] === '0') break;
      assert.ok(Date.now() < deadline, `${left[0][0]} of ${N} tasks left after 90 s`);
      await sleep(300);
    }
  } finally {
    await stopChild(w1);
    await stopChild(w2);
  }
  const lines = fs.readFileSync(log, 'utf8').split('\n').filter((l) => l.length);
  const ids = lines.map((l) => l.split(' ')[0]);
  const pids = new Set(lines.map((l) => l.split(' ')[1]));
  const counts = new Map();
  for (const id of ids) counts.set(id, (counts.get(id) || 0) + 1);
  const twice = [...counts].filter(([, n]) => n > 1);
  assert.deepEqual(twice, [], 'tasks run more than once');
  assert.equal(counts.size, N, `ran ${counts.size} distinct tasks of ${N}`);
  assert.equal(pids.size, 2, `both workers ran tasks (pids ${[...pids]})`);
});

test('a worker killed mid-task leaves a task that another takes up after TaskStaleSec', { timeout: 90000 }, async () => {
  const ini = toolIni('t4', '[Events]\nTaskPollSec = 1\nTaskTimeoutSec = 2\nTaskStaleSec = 4\n');
  const logA = path.join(DIR, 'log', 'stale-a.txt');
  const logB = path.join(DIR, 'log', 'stale-b.txt');
  fs.rmSync(logA, { force: true });
  fs.rmSync(logB, { force: true });
  await evtool(ini, 'enqueue', ['--type', 'stale', '--count', '1']);
  const [[id]] = await sql("SELECT id FROM taskqueue WHERE type = 'stale'");

  const a = await startWorker(ini, ['--types', 'stale', '--mode', 'hang', '--log', logA]);
  let deadline = Date.now() + 10000;
  while (!(fs.existsSync(logA) && fs.readFileSync(logA, 'utf8').includes(`start ${id} `))) {
    assert.ok(Date.now() < deadline, 'worker A never started the task');
    await sleep(100);
  }
  await stopChild(a, 'SIGKILL');
  const [[status, claim]] = await sql(`SELECT status, claim FROM taskqueue WHERE id = ${Number(id)}`);
  assert.equal(status, '1', 'the killed worker left the task running');
  assert.match(claim, new RegExp(`^events-tool/${a.pid}/`));

  const b = await startWorker(ini, ['--types', 'stale', '--log', logB, '--sleep-ms', '1500']);
  try {
    let row;
    deadline = Date.now() + 20000;
    for (;;) {
      [row] = await sql(`SELECT status, claim, retry_times, fail_msg FROM taskqueue WHERE id = ${Number(id)}`);
      if (row && row[1].startsWith(`events-tool/${b.pid}/`)) break;
      assert.ok(row, 'the task vanished before worker B took it');
      assert.ok(Date.now() < deadline, `worker B did not take the stale task: ${JSON.stringify(row)}`);
      await sleep(200);
    }
    assert.equal(row[0], '1');
    assert.equal(row[2], '1', 'taking a stale task counts as a retry');
    assert.match(row[3], /taken again/);
    deadline = Date.now() + 10000;
    while ((await sql(`SELECT COUNT(*) FROM taskqueue WHERE id = ${Number(id)}`))[0][0] !== '0') {
      assert.ok(Date.now() < deadline, 'worker B did not finish the task');
      await sleep(200);
    }
    assert.match(fs.readFileSync(logB, 'utf8'), new RegExp(`^${id} ${b.pid}$`, 'm'));
  } finally {
    await stopChild(b);
  }
});

test('a scripted chat through the relay produces its events, in order', { timeout: 60000 }, async () => {
  const ini = toolIni('t5');
  await drainMq(ini);
  const tag = `ev-${process.pid}-${Date.now()}`;
  const from = ip();
  const login = await post('/admin/login', { from, form: { username: E.KEFU_ADMIN_USER, password: E.KEFU_ADMIN_PASSWORD } });
  const token = login.token;
  const reg = await post('/admin/ws', { token, from });
  const agent = await connectWs(reg.url, from);
  let visitor;
  try {
    const vfrom = ip();
    const link = await post('/api/link', { from: vfrom });
    visitor = await connectWs(link.url, vfrom);
    await agent.next((f) => f.type === 'connect');
    await visitor.next((f) => f.type === 'connect');
    const said = (content) => (f) => f.type === 'chat' && f.content === content;
    visitor.send({ type: 'chat', content: `${tag} 1` });
    await agent.next(said(`${tag} 1`));
    agent.send({ type: 'chat', content: `${tag} 2`, to: link.ws_key });
    await visitor.next(said(`${tag} 2`));
    visitor.send({ type: 'chat', content: `${tag} 3` });
    await agent.next(said(`${tag} 3`));
    visitor.ws.close(1000);
    await agent.next((f) => f.type === 'close');

    let events = [];
    const deadline = Date.now() + 8000;
    while (Date.now() < deadline) {
      events = events.concat(await drainMq(ini));
      const first = events.find((e) => e.content === `${tag} 1`);
      if (first && events.some((e) => e.type === 'close' && e.conversation === first.conversation)) break;
    }
    const first = events.find((e) => e.type === 'chat' && e.content === `${tag} 1`);
    assert.ok(first, `no chat event from the relay: ${JSON.stringify(events).slice(0, 1000)}`);
    const conv = events.filter((e) => e.conversation === first.conversation);
    assert.doesNotMatch(JSON.stringify(conv), new RegExp(link.ws_key), 'the ws_key never leaves the relay');
    assert.match(first.conversation, /^[0-9a-f]{32}$/);
    const types = conv.map((e) => e.type);
    const chats = conv.filter((e) => e.type === 'chat');
    const agentName = chats[1]?.from;
    assert.match(agentName ?? '', /^agent:\d+$/, JSON.stringify(conv));
    assert.deepEqual(chats.map((e) => e.content), [`${tag} 1`, `${tag} 2`, `${tag} 3`], JSON.stringify(conv));
    assert.deepEqual(chats.map((e) => e.seq), [1, 2, 3]);
    assert.deepEqual(chats.map((e) => e.from), ['visitor', agentName, 'visitor']);
    assert.deepEqual(chats.map((e) => e.to), [agentName, 'visitor', agentName]);
    assert.ok(types.includes('connect') && types.indexOf('connect') < types.indexOf('chat'), `connect first: ${types}`);
    const assign = conv.find((e) => e.type === 'assign');
    assert.ok(assign, `an assign event: ${types}`);
    assert.equal(assign.to, agentName);
    assert.equal(types[types.length - 1], 'close', `close last: ${types}`);
    assert.equal(conv[conv.length - 1].content, 'left');
    for (const e of conv) assert.equal(e.node, 'node1');
  } finally {
    if (visitor) visitor.ws.terminate();
    await post('/admin/ws/close', { token, from }).catch(() => {});
    agent.ws.terminate();
  }
});
