// GET /admin/perf/stats: uptime, RSS, open fds, threads, store state, and
// requests with latency by route, for the kefu-api process that answers.

import test, { before } from 'node:test';
import assert from 'node:assert/strict';
import { request, ipAllocator, assertEnvelope } from './lib.mjs';
import { call, adminToken } from './admin.mjs';

const ip = ipAllocator(import.meta.url);
let admin;

before(async () => {
  admin = await adminToken(ip());
});

function stats() {
  return call(admin, 'GET', '/admin/perf/stats', undefined, ip());
}

function routeOf(data, path) {
  return data.requests.routes.find((r) => r.path === path);
}

test('process figures and store state', async () => {
  const r = await stats();
  assertEnvelope(r, 200);
  const d = r.json.data;
  assert.ok(Number.isInteger(d.pid) && d.pid > 1, r.text);
  assert.ok(Number.isInteger(d.uptime_sec) && d.uptime_sec >= 0, r.text);
  assert.ok(d.rss_bytes > 1024 * 1024 && d.rss_bytes < 4 * 1024 ** 3, `rss ${d.rss_bytes}`);
  assert.ok(d.open_fds >= 3 && d.open_fds < 20000, `fds ${d.open_fds}`);
  assert.ok(d.threads >= 2, `threads ${d.threads}`);
  assert.deepEqual({ redis: d.stores.redis, mysql: d.stores.mysql }, { redis: 'ok', mysql: 'ok' });
});

test('requests are counted by route, with latency', async () => {
  const before1 = (await stats()).json.data;
  const hBefore = routeOf(before1, '/healthz')?.count ?? 0;
  const nBefore = routeOf(before1, '(unmatched)')?.count ?? 0;
  for (let i = 0; i < 5; i++) assertEnvelope(await request('GET', '/healthz', { from: ip() }), 200);
  for (let i = 0; i < 3; i++) assertEnvelope(await request('GET', '/no/such/route', { from: ip() }), 404);
  const d = (await stats()).json.data;
  const h = routeOf(d, '/healthz');
  assert.ok(h, JSON.stringify(d.requests));
  assert.ok(h.count >= hBefore + 5, `healthz ${h.count} after ${hBefore}`);
  assert.ok(h.status_2xx >= 5);
  assert.equal(h.methods, 'GET');
  for (const k of ['avg_us', 'max_us', 'p50_us', 'p99_us']) {
    assert.ok(Number.isInteger(h[k]) && h[k] > 0, `${k}: ${h[k]}`);
  }
  assert.ok(h.p50_us <= h.p99_us && h.p99_us <= h.max_us, JSON.stringify(h));
  assert.ok(h.avg_us <= h.max_us);
  const n = routeOf(d, '(unmatched)');
  assert.ok(n && n.count >= nBefore + 3 && n.status_4xx >= 3, JSON.stringify(n));
  assert.ok(d.requests.total >= d.requests.routes.reduce((s, r) => Math.max(s, r.count), 0));
  const self = routeOf(d, '/admin/perf/stats');
  assert.ok(self && self.count >= 1, 'the stats route counts itself');
});

test('no session -> 401; POST -> 405', async () => {
  assertEnvelope(await request('GET', '/admin/perf/stats', { from: ip() }), 401);
  assertEnvelope(await request('POST', '/admin/perf/stats', { from: ip(), headers: { Authorization: `Bearer ${admin}` } }), 405);
});
