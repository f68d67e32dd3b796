#!/usr/bin/env node
// A small line-based WebSocket client for trying kefu by hand.
//   node tests/wscat.mjs URL [--header 'Name: value']...
// Each line typed is sent as a chat message. Commands:
//   /to KEY text   chat to one visitor (agents)
//   /ping          send a ping
//   /raw {...}     send a frame as it is
//   /quit          close normally (1000)
import readline from 'node:readline';
import WebSocket from 'ws';

const args = process.argv.slice(2);
const url = args.shift();
if (!url) {
  console.error('usage: node tests/wscat.mjs URL [--header "Name: value"]...');
  process.exit(2);
}
const headers = {};
while (args.length) {
  const flag = args.shift();
  const value = args.shift();
  if (flag !== '--header' || !value || !value.includes(':')) {
    console.error(`wscat: unexpected argument '${flag}'`);
    process.exit(2);
  }
  const i = value.indexOf(':');
  headers[value.slice(0, i).trim()] = value.slice(i + 1).trim();
}

let lastVisitor = null; // for agents: where a plain line goes
const ws = new WebSocket(url, { headers });
const rl = readline.createInterface({ input: process.stdin });

ws.on('unexpected-response', (req, res) => {
  let body = '';
  res.on('data', (d) => { body += d; });
  res.on('end', () => {
    console.error(`refused: HTTP ${res.statusCode} ${body}`);
    process.exit(1);
  });
});
ws.on('error', (e) => { console.error(`error: ${e.message}`); process.exit(1); });
ws.on('open', () => console.error('connected; type a line to chat, /quit to leave'));
ws.on('message', (data) => {
  const text = data.toString();
  let f;
  try { f = JSON.parse(text); } catch { console.log(`<- ${text}`); return; }
  if (f.ws_key && f.from !== 'agent') lastVisitor = f.ws_key;
  const who = f.from ? (f.from === 'agent' ? 'agent' : `visitor ${f.from}`) : '';
  const extra = f.type === 'connect' && f.ip ? ` (ip ${f.ip})` : '';
  console.log(`<- [${f.send_time || ''}] ${f.type}${who ? ' from ' + who : ''}` +
              `${f.ws_key && !who ? ' ' + f.ws_key : ''}: ${f.content ?? ''}${extra}`);
});
ws.on('close', (code, reason) => {
  console.error(`closed ${code} ${reason}`);
  process.exit(0);
});

// Keep the connection alive: the relay closes clients that never ping.
const keepalive = setInterval(() => {
  if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify({ type: 'ping' }));
}, 20000);
keepalive.unref();

rl.on('line', (line) => {
  if (ws.readyState !== WebSocket.OPEN) return;
  if (line === '/quit') { ws.close(1000); return; }
  if (line === '/ping') { ws.send(JSON.stringify({ type: 'ping' })); return; }
  if (line.startsWith('/raw ')) { ws.send(line.slice(5)); return; }
  if (line.startsWith('/to ')) {
    const [, to, ...rest] = line.split(' ');
    ws.send(JSON.stringify({ type: 'chat', to, content: rest.join(' ') }));
    return;
  }
  if (!line) return;
  const frame = { type: 'chat', content: line };
  if (lastVisitor && url.includes('/admin/')) frame.to = lastVisitor;
  ws.send(JSON.stringify(frame));
});
rl.on('close', () => ws.close(1000));
