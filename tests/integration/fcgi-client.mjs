// A minimal FastCGI client (responder role, one request per connection), so
// that a test can talk to a kefu-api process directly on its --listen
// socket, without a web server in front of it.
//
//   fcgiRequest(socketPath, method, path, opts) -> Promise<{status, headers, text, json}>
//     opts.headers  request headers ({'Authorization': 'Bearer ...'})
//     opts.form     object: sent as application/x-www-form-urlencoded
//     opts.json     any value: sent as application/json
//     opts.query    query string without '?'
//     opts.remoteAddr  REMOTE_ADDR (default 127.0.0.1)
//     opts.timeoutMs   default 10000

import net from 'node:net';

const VERSION = 1;
const BEGIN_REQUEST = 1;
const END_REQUEST = 3;
const PARAMS = 4;
const STDIN = 5;
const STDOUT = 6;
const STDERR = 7;
const RESPONDER = 1;
const REQUEST_ID = 1;

function record(type, content = Buffer.alloc(0)) {
  const out = [];
  for (let off = 0; off === 0 || off < content.length; off += 65535) {
    const part = content.subarray(off, off + 65535);
    const pad = (8 - (part.length % 8)) % 8;
    const head = Buffer.alloc(8);
    head.writeUInt8(VERSION, 0);
    head.writeUInt8(type, 1);
    head.writeUInt16BE(REQUEST_ID, 2);
    head.writeUInt16BE(part.length, 4);
    head.writeUInt8(pad, 6);
    out.push(head, part, Buffer.alloc(pad));
    if (content.length === 0) break;
  }
  return Buffer.concat(out);
}

function nvLength(n) {
  if (n < 128) return Buffer.from([n]);
  const b = Buffer.alloc(4);
  b.writeUInt32BE((n | 0x80000000) >>> 0, 0);
  return b;
}

function encodeParams(params) {
  const parts = [];
  for (const [k, v] of Object.entries(params)) {
    const kb = Buffer.from(k);
    const vb = Buffer.from(String(v));
    parts.push(nvLength(kb.length), nvLength(vb.length), kb, vb);
  }
  return Buffer.concat(parts);
}

function parseResponse(stdout) {
  const text = stdout.toString('utf8');
  const sep = text.indexOf('\r\n\r\n');
  const head = sep >= 0 ? text.slice(0, sep) : text;
  const body = sep >= 0 ? text.slice(sep + 4) : '';
  const headers = {};
  let status = 200;
  for (const line of head.split('\r\n')) {
    const i = line.indexOf(':');
    if (i < 0) continue;
    const name = line.slice(0, i).trim().toLowerCase();
    const value = line.slice(i + 1).trim();
    if (name === 'status') status = parseInt(value, 10);
    else headers[name] = value;
  }
  let json = null;
  try {
    json = JSON.parse(body);
  } catch {
    json = null;
  }
  return { status, headers, text: body, json };
}

export function fcgiRequest(socketPath, method, path, opts = {}) {
  let body = Buffer.alloc(0);
  let contentType = '';
  if (opts.form !== undefined) {
    body = Buffer.from(new URLSearchParams(opts.form).toString());
    contentType = 'application/x-www-form-urlencoded';
  } else if (opts.json !== undefined) {
    body = Buffer.from(JSON.stringify(opts.json));
    contentType = 'application/json';
  }
  const query = opts.query || '';
  const params = {
    GATEWAY_INTERFACE: 'CGI/1.1',
    SERVER_PROTOCOL: 'HTTP/1.1',
    REQUEST_METHOD: method,
    REQUEST_URI: query ? `${path}?${query}` : path,
    SCRIPT_NAME: path,
    QUERY_STRING: query,
    REMOTE_ADDR: opts.remoteAddr || '127.0.0.1',
    SERVER_NAME: 'localhost',
    SERVER_PORT: '80',
    CONTENT_LENGTH: String(body.length),
  };
  if (contentType) params.CONTENT_TYPE = contentType;
  for (const [k, v] of Object.entries(opts.headers || {})) {
    const name = k.toUpperCase().replace(/-/g, '_');
    if (name === 'CONTENT_TYPE') params.CONTENT_TYPE = v;
    else params[`HTTP_${name}`] = v;
  }
  const begin = Buffer.alloc(8);
  begin.writeUInt16BE(RESPONDER, 0);
  const request = Buffer.concat([
    record(BEGIN_REQUEST, begin),
    record(PARAMS, encodeParams(params)),
    record(PARAMS),
    ...(body.length ? [record(STDIN, body)] : []),
    record(STDIN),
  ]);
  const timeoutMs = opts.timeoutMs || 10000;

  return new Promise((resolve, reject) => {
    const sock = net.connect(socketPath);
    let buf = Buffer.alloc(0);
    const stdout = [];
    let done = false;
    const timer = setTimeout(() => {
      sock.destroy();
      if (!done) reject(new Error(`FastCGI ${method} ${path}: no reply within ${timeoutMs} ms`));
      done = true;
    }, timeoutMs);
    const finish = (err, value) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock.destroy();
      if (err) reject(err);
      else resolve(value);
    };
    sock.on('connect', () => sock.write(request));
    sock.on('error', (e) => finish(e));
    sock.on('data', (chunk) => {
      buf = Buffer.concat([buf, chunk]);
      while (buf.length >= 8) {
        const type = buf.readUInt8(1);
        const len = buf.readUInt16BE(4);
        const pad = buf.readUInt8(6);
        if (buf.length < 8 + len + pad) break;
        const content = buf.subarray(8, 8 + len);
        buf = buf.subarray(8 + len + pad);
        if (type === STDOUT) stdout.push(Buffer.from(content));
        else if (type === END_REQUEST) return finish(null, parseResponse(Buffer.concat(stdout)));
        else if (type !== STDERR) return finish(new Error(`unexpected FastCGI record type ${type}`));
      }
    });
    sock.on('close', () => finish(new Error(`FastCGI ${method} ${path}: connection closed early`)));
  });
}
