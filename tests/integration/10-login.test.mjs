// POST /admin/login, the session (cookie and Bearer), logout, and the login
// limits, as an HTTP client sees them.
//
// Failed logins for the real admin stay well under the per-username limit
// (LoginMaxFailPerUser = 10): the per-IP test uses 5, the wrong-password test
// 1; every other failure uses a throwaway name.

import test from 'node:test';
import assert from 'node:assert/strict';
import {
  env,
  request,
  login,
  loginOk,
  ipAllocator,
  randomName,
  assertEnvelope,
  assertJsonType,
  gidCookie,
} from './lib.mjs';

const ip = ipAllocator(import.meta.url);
const TOKEN_RE = /^[A-Za-z0-9]{32}$/;

function checkLoginReply(r) {
  assertEnvelope(r, 200);
  assertJsonType(r);
  const token = r.json.data?.token;
  assert.equal(typeof token, 'string', `data.token: ${r.text}`);
  assert.match(token, TOKEN_RE);

  const cookie = gidCookie(r);
  assert.ok(cookie, `no gid cookie in Set-Cookie: ${JSON.stringify(r.headers['set-cookie'])}`);
  const parts = cookie.split(';').map((s) => s.trim());
  assert.equal(parts[0], `gid=${token}`, 'cookie value is the token');
  const attrs = parts.slice(1).map((s) => s.toLowerCase());
  assert.ok(attrs.includes('httponly'), `HttpOnly missing: ${cookie}`);
  assert.ok(attrs.includes('samesite=lax'), `SameSite=Lax missing: ${cookie}`);
  assert.ok(attrs.includes('path=/'), `Path=/ missing: ${cookie}`);
  assert.ok(attrs.includes('max-age=86400'), `Max-Age=86400 missing: ${cookie}`);
  assert.ok(!attrs.includes('secure'), `Secure must not be set (CookieSecure=false): ${cookie}`);
  return token;
}

test('login with a form: 200, token, cookie', async () => {
  const r = await login(env.adminUser, env.adminPassword, ip());
  checkLoginReply(r);
});

test('login with a JSON body: 200, token, cookie', async () => {
  const r = await request('POST', '/admin/login', {
    json: { username: env.adminUser, password: env.adminPassword },
    from: ip(),
  });
  checkLoginReply(r);
});

test('two logins get two different tokens', async () => {
  const a = await loginOk(ip());
  const b = await loginOk(ip());
  assert.notEqual(a, b);
});

test('session works by cookie and by Bearer; none or made-up -> 401', async () => {
  const from = ip();
  const token = await loginOk(from);

  const byCookie = await request('GET', '/admin/me', { headers: { Cookie: `gid=${token}` }, from });
  assertEnvelope(byCookie, 200);
  assert.equal(byCookie.json.data?.username, env.adminUser);

  const byBearer = await request('GET', '/admin/me', {
    headers: { Authorization: `Bearer ${token}` },
    from,
  });
  assertEnvelope(byBearer, 200);
  assert.equal(byBearer.json.data?.username, env.adminUser);

  const none = await request('GET', '/admin/me', { from });
  assertEnvelope(none, 401);

  const madeUp = 'A'.repeat(16) + 'b'.repeat(16);
  const fakeCookie = await request('GET', '/admin/me', { headers: { Cookie: `gid=${madeUp}` }, from });
  assertEnvelope(fakeCookie, 401);
  const fakeBearer = await request('GET', '/admin/me', {
    headers: { Authorization: `Bearer ${madeUp}` },
    from,
  });
  assertEnvelope(fakeBearer, 401);
});

test('logout by cookie (GET) ends the session', async () => {
  const from = ip();
  const token = await loginOk(from);
  const cookie = { Cookie: `gid=${token}` };

  const out = await request('GET', '/admin/logout', { headers: cookie, from });
  assertEnvelope(out, 200);

  const me = await request('GET', '/admin/me', { headers: cookie, from });
  assertEnvelope(me, 401);
  const meBearer = await request('GET', '/admin/me', {
    headers: { Authorization: `Bearer ${token}` },
    from,
  });
  assertEnvelope(meBearer, 401);

  const again = await request('GET', '/admin/logout', { headers: cookie, from });
  assertEnvelope(again, 401);
});

test('logout by Bearer (POST) ends the session', async () => {
  const from = ip();
  const token = await loginOk(from);
  const bearer = { Authorization: `Bearer ${token}` };

  const out = await request('POST', '/admin/logout', { headers: bearer, from });
  assertEnvelope(out, 200);

  const me = await request('GET', '/admin/me', { headers: bearer, from });
  assertEnvelope(me, 401);
});

test('logout without a session -> 401', async () => {
  const r = await request('GET', '/admin/logout', { from: ip() });
  assertEnvelope(r, 401);
});

test('wrong password and unknown user: both 401 with the same message', async () => {
  const wrong = await login(env.adminUser, env.adminPassword + 'x', ip());
  assertEnvelope(wrong, 401);
  const unknown = await login(randomName(), 'whatever-password', ip());
  assertEnvelope(unknown, 401);
  assert.equal(wrong.json.message, unknown.json.message, 'messages must not tell which was wrong');
  assert.equal(gidCookie(wrong), undefined, 'no cookie on a failed login');
});

test('missing username -> 400 naming username', async () => {
  const r = await request('POST', '/admin/login', { form: { password: 'x' }, from: ip() });
  assertEnvelope(r, 400);
  assert.match(r.json.message, /username/);

  const j = await request('POST', '/admin/login', { json: { password: 'x' }, from: ip() });
  assertEnvelope(j, 400);
  assert.match(j.json.message, /username/);
});

test('missing password -> 400 naming password', async () => {
  const r = await request('POST', '/admin/login', { form: { username: env.adminUser }, from: ip() });
  assertEnvelope(r, 400);
  assert.match(r.json.message, /password/);

  const j = await request('POST', '/admin/login', { json: { username: env.adminUser }, from: ip() });
  assertEnvelope(j, 400);
  assert.match(j.json.message, /password/);
});

test('SQL injection as username -> 401', async (t) => {
  for (const name of [`admin' OR '1'='1`, `admin'-- `, `" OR ""="`, `admin'#`]) {
    await t.test(JSON.stringify(name), async () => {
      const r = await login(name, `x' OR '1'='1`, ip());
      assertEnvelope(r, 401);
      assert.equal(gidCookie(r), undefined);
    });
  }
});

test('invalid UTF-8 username in a form -> 400 naming username', async () => {
  const r = await request('POST', '/admin/login', {
    form: 'username=%FF%FEadmin&password=x',
    from: ip(),
  });
  assertEnvelope(r, 400);
  assert.match(r.json.message, /username/);
});

test('invalid UTF-8 bytes inside a JSON username -> 400', async () => {
  const body = Buffer.concat([
    Buffer.from('{"username":"ad'),
    Buffer.from([0xff, 0xfe, 0xc3]),
    Buffer.from('min","password":"x"}'),
  ]);
  const r = await request('POST', '/admin/login', {
    body,
    headers: { 'Content-Type': 'application/json' },
    from: ip(),
  });
  assertEnvelope(r, 400);
});

test('per-IP limit: 5 failures, then even the right password -> 429', async () => {
  const from = ip();
  for (let i = 1; i <= 5; i++) {
    const r = await login(env.adminUser, `wrong-${i}`, from);
    assertEnvelope(r, 401);
  }
  const r = await login(env.adminUser, env.adminPassword, from);
  assertEnvelope(r, 429);
  assert.equal(gidCookie(r), undefined, 'no session when limited');

  // Another address is not affected.
  await loginOk(ip());
});

test('X-Forwarded-For does not dodge the per-IP limit', async () => {
  const from = ip();
  const name = randomName();
  for (let i = 1; i <= 5; i++) {
    const r = await login(name, 'wrong', from, { headers: { 'X-Forwarded-For': `10.1.2.${i}` } });
    assertEnvelope(r, 401);
  }
  const r = await login(env.adminUser, env.adminPassword, from, {
    headers: { 'X-Forwarded-For': '10.1.2.99' },
  });
  assertEnvelope(r, 429);
});

test('per-username limit: 10 failures over several IPs, the 11th from a new IP -> 429', async () => {
  const name = randomName();
  let from = null;
  for (let i = 0; i < 10; i++) {
    if (i % 4 === 0) from = ip(); // at most 4 failures per address
    const r = await login(name, `wrong-${i}`, from);
    assertEnvelope(r, 401);
  }
  const r = await login(name, 'wrong-again', ip());
  assertEnvelope(r, 429);

  // The admin (another name) from yet another address still logs in.
  await loginOk(ip());
});
