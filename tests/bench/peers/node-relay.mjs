// node-relay.mjs - the Node.js peer for kefu's benchmarks: kefu's 1:1 chat
// protocol (PROTOCOL.md) on the `ws` package, in one process, no storage.
//
//   node node-relay.mjs PORT
//
// Visitors connect to /ws/api/link?ws_key=K and agents to
// /ws/admin/link?ws_key=K; the visitor and the agent that give the same K
// are a pair. When both are there each gets a `connect` frame. Frames as in
// kefu: ping -> pong; chat -> `ack` {seq, ws_key} to the sender and
// `chat` {content, from, ws_key, seq, send_time} to the other side (an
// agent's `to` must name its visitor); anything else -> `error`.
// Every frame is parsed and built as JSON, as kefu does.
import http from 'node:http';
import { WebSocketServer } from 'ws';

const port = Number(process.argv[2] || 0);
if (!port) {
  console.error('usage: node node-relay.mjs PORT');
  process.exit(2);
}

const pairs = new Map(); // key -> { v, a, seq }
let stamp = '', stampSec = -1;
function sendTime() {
  const s = Math.floor(Date.now() / 1000);
  if (s !== stampSec) {
    stampSec = s;
    const d = new Date(s * 1000), p = (n) => String(n).padStart(2, '0');
    stamp = `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ` +
      `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
  }
  return stamp;
}

const server = http.createServer((req, res) => {
  const ok = req.url === '/healthz';
  res.writeHead(ok ? 200 : 404, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ code: ok ? 200 : 404, message: ok ? 'ok' : 'not found', data: null }));
});
const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false, maxPayload: 65536 });

function refuse(sock, status, text) {
  const body = JSON.stringify({ code: status, message: text, data: null });
  sock.end(`HTTP/1.1 ${status} ${text}\r\nContent-Type: application/json\r\n` +
    `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
}

server.on('upgrade', (req, sock, head) => {
  const u = new URL(req.url, 'http://relay');
  const kind = u.pathname === '/ws/api/link' ? 'v' : u.pathname === '/ws/admin/link' ? 'a' : '';
  const key = u.searchParams.get('ws_key') || '';
  if (!kind) return refuse(sock, 404, 'Not Found');
  if (!key) return refuse(sock, 401, 'Unauthorized');
  wss.handleUpgrade(req, sock, head, (ws) => attach(ws, kind, key));
});

function frame(o) {
  o.send_time = sendTime();
  return JSON.stringify(o);
}

function attach(ws, kind, key) {
  let p = pairs.get(key);
  if (!p) pairs.set(key, (p = { v: null, a: null, seq: 0 }));
  const old = p[kind];
  p[kind] = ws;
  if (old) old.close(4001, 'replaced by a newer connection');
  if (p.v && p.a) {
    p.v.send(frame({ type: 'connect', content: 'an agent joined', ws_key: key }));
    p.a.send(frame({ type: 'connect', content: 'a new visitor', ws_key: key, ip: '127.0.0.1' }));
  }
  ws.on('message', (data, isBinary) => {
    if (isBinary) return ws.close(1003, 'binary frames are not supported');
    let m;
    try {
      m = JSON.parse(data);
    } catch {
      return ws.send(frame({ type: 'error', content: 'invalid JSON' }));
    }
    if (m === null || typeof m !== 'object') return ws.send(frame({ type: 'error', content: 'not an object' }));
    if (m.type === 'ping') return ws.send(frame({ type: 'pong' }));
    if (m.type === 'ack') return;
    if (m.type !== 'chat' || typeof m.content !== 'string' || !m.content)
      return ws.send(frame({ type: 'error', content: 'invalid chat' }));
    if (kind === 'a' && m.to !== undefined && m.to !== key)
      return ws.send(frame({ type: 'error', content: "'to' is not one of your visitors", ws_key: m.to }));
    const other = kind === 'v' ? p.a : p.v;
    if (!other) return ws.send(frame({ type: 'system', content: 'waiting for an agent', ws_key: key }));
    const seq = ++p.seq;
    ws.send(frame({ type: 'ack', seq, ws_key: key }));
    other.send(frame({ type: 'chat', content: m.content, from: kind === 'v' ? key : 'agent', ws_key: key, seq }));
  });
  ws.on('close', () => {
    if (p[kind] === ws) p[kind] = null;
    if (!p.v && !p.a) pairs.delete(key);
  });
  ws.on('error', () => {});
}

server.listen(port, '127.0.0.1', () => console.log(`node-relay (ws) listening on 127.0.0.1:${port}`));
for (const s of ['SIGTERM', 'SIGINT']) process.on(s, () => process.exit(0));
