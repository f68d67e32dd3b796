// HTTP-level behaviour: health, unknown routes, methods, bodies, content
// types, CORS ([Api] CorsAllowOrigins = http://allowed.example, from test.ini).

import test from 'node:test';
import assert from 'node:assert/strict';
import { env, request, ipAllocator, assertEnvelope } from './lib.mjs';

const ip = ipAllocator(import.meta.url);
const ALLOWED = 'http://allowed.example';
const EVIL = 'http://evil.example';

test('GET /healthz -> 200, redis and mysql ok', async () => {
  const r = await request('GET', '/healthz', { from: ip() });
  assertEnvelope(r, 200);
  assert.equal(r.json.data?.redis, 'ok', r.text);
  assert.equal(r.json.data?.mysql, 'ok', r.text);
});

test('unknown path /nope -> 404 JSON envelope', async () => {
  const r = await request('GET', '/nope', { from: ip() });
  assertEnvelope(r, 404);
});

test('unknown path under /admin -> 404 JSON envelope', async () => {
  const r = await request('GET', '/admin/nope-not-a-route', { from: ip() });
  assertEnvelope(r, 404);
});

test('GET /admin/login -> 405 with Allow: POST', async () => {
  const r = await request('GET', '/admin/login', { from: ip() });
  assertEnvelope(r, 405);
  assert.ok(r.headers.allow, 'no Allow header');
  assert.match(r.headers.allow, /\bPOST\b/);
});

test('malformed JSON body -> 400 mentioning JSON', async () => {
  const r = await request('POST', '/admin/login', {
    body: '{"username":',
    headers: { 'Content-Type': 'application/json' },
    from: ip(),
  });
  assertEnvelope(r, 400);
  assert.match(r.json.message, /json/i);
});

test('JSON body that is an array -> 400', async () => {
  const r = await request('POST', '/admin/login', {
    body: JSON.stringify([{ username: env.adminUser, password: env.adminPassword }]),
    headers: { 'Content-Type': 'application/json' },
    from: ip(),
  });
  assertEnvelope(r, 400);
});

test('body larger than 65536 bytes -> 413', async () => {
  const big = 'username=' + 'a'.repeat(70000) + '&password=x';
  const r = await request('POST', '/admin/login', { form: big, from: ip() });
  assertEnvelope(r, 413);
});

test('Content-Type text/plain with a body -> 415', async () => {
  const r = await request('POST', '/admin/login', {
    body: 'username=admin&password=x',
    headers: { 'Content-Type': 'text/plain' },
    from: ip(),
  });
  assertEnvelope(r, 415);
});

test('CORS preflight from the allowed origin -> 204 with credentials', async () => {
  const r = await request('OPTIONS', '/admin/login', {
    headers: { Origin: ALLOWED, 'Access-Control-Request-Method': 'POST' },
    from: ip(),
  });
  assert.equal(r.status, 204, `${r.status} ${r.text}`);
  assert.equal(r.headers['access-control-allow-origin'], ALLOWED);
  assert.equal(r.headers['access-control-allow-credentials'], 'true');
});

test('CORS preflight from another origin -> 403 without Allow-Origin', async () => {
  const r = await request('OPTIONS', '/admin/login', {
    headers: { Origin: EVIL, 'Access-Control-Request-Method': 'POST' },
    from: ip(),
  });
  assert.equal(r.status, 403, `${r.status} ${r.text}`);
  assert.equal(r.headers['access-control-allow-origin'], undefined);
});

test('CORS: a POST from the allowed origin carries Allow-Origin', async () => {
  const r = await request('POST', '/admin/login', {
    form: { username: env.adminUser, password: env.adminPassword },
    headers: { Origin: ALLOWED },
    from: ip(),
  });
  assertEnvelope(r, 200);
  assert.equal(r.headers['access-control-allow-origin'], ALLOWED);
  assert.equal(r.headers['access-control-allow-credentials'], 'true');
});

test('CORS: a POST from another origin carries no Allow-Origin', async () => {
  const r = await request('POST', '/admin/login', {
    form: { username: env.adminUser, password: env.adminPassword },
    headers: { Origin: EVIL },
    from: ip(),
  });
  assert.ok(r.status < 500, `server error: ${r.status} ${r.text}`);
  assert.ok(r.json, `not JSON: ${r.text}`);
  assert.equal(r.headers['access-control-allow-origin'], undefined);
});
