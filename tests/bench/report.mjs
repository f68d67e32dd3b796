// report.mjs - turn tests/bench/run.sh's raw results into BENCHMARKS.md.
//
//   node tests/bench/report.mjs RESULTS_DIR OUT.md [NOTES.md]
//
// RESULTS_DIR holds meta.txt, commands.txt and SCENARIO/SYSTEM.RUN.txt
// (load generator or wrk output). Every figure is the median over the runs;
// every kefu figure is printed beside each peer's with the ratio kefu/peer.
// NOTES.md (hand-written analysis) is appended as it is.
import fs from 'node:fs';
import path from 'node:path';

const [res, out, notes] = process.argv.slice(2);
if (!res || !out) {
  console.error('usage: node report.mjs RESULTS_DIR OUT.md [NOTES.md]');
  process.exit(2);
}

const meta = {};
for (const line of fs.readFileSync(path.join(res, 'meta.txt'), 'utf8').split('\n')) {
  const i = line.indexOf('=');
  if (i > 0) meta[line.slice(0, i)] = line.slice(i + 1);
}

// parse one output file
function parse(file) {
  const text = fs.readFileSync(file, 'utf8');
  const r = { R: {}, S: [], text };
  for (const line of text.split('\n')) {
    let m;
    if ((m = /^R (\S+) (\S+)$/.exec(line))) r.R[m[1]] = Number(m[2]);
    else if ((m = /^L (\S+) (\S+)$/.exec(line))) r.R[m[1]] = Number(m[2]);
    else if (line.startsWith('S ')) {
      const s = {};
      for (const kv of line.slice(2).split(' ')) {
        const j = kv.indexOf('=');
        if (j > 0) s[kv.slice(0, j)] = isNaN(Number(kv.slice(j + 1))) ? kv.slice(j + 1) : Number(kv.slice(j + 1));
      }
      r.S.push(s);
    } else if ((m = /^Requests\/sec:\s+([\d.]+)/.exec(line))) r.R.rps = Number(m[1]);
    else if ((m = /^\s+Non-2xx or 3xx responses: (\d+)/.exec(line))) r.R.non2xx = Number(m[1]);
    else if ((m = /^\s+Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(line)))
      r.R.sockerr = Number(m[1]) + Number(m[2]) + Number(m[3]) + Number(m[4]);
    else if ((m = /^\s+(50|99)(?:\.000)?%\s+([\d.]+)(us|ms|s)$/.exec(line))) {
      const f = { us: 1e-3, ms: 1, s: 1e3 }[m[3]];
      r.R[`lat_p${m[1]}_ms`] = Number(m[2]) * f;
    }
  }
  return r;
}

// runs[scenario][system] = [parsed...]
const runs = {};
for (const scen of fs.readdirSync(res)) {
  const d = path.join(res, scen);
  if (!fs.statSync(d).isDirectory()) continue;
  runs[scen] = {};
  for (const f of fs.readdirSync(d).sort()) {
    const m = /^(.+)\.(\d+)\.txt$/.exec(f);
    if (!m) continue;
    (runs[scen][m[1]] ||= []).push(parse(path.join(d, f)));
  }
}

const median = (xs) => {
  const v = xs.filter((x) => typeof x === 'number' && !isNaN(x)).sort((a, b) => a - b);
  if (!v.length) return NaN;
  const h = v.length >> 1;
  return v.length % 2 ? v[h] : (v[h - 1] + v[h]) / 2;
};
const med = (scen, sys, fn) => median((runs[scen]?.[sys] || []).map(fn));
const fmt = (x, d = 0) => (x === undefined || isNaN(x) ? 'n/a' : x.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d }));
const ratio = (a, b) => (isNaN(a) || isNaN(b) || b === 0 ? 'n/a' : (a / b).toFixed(2));
const nRuns = (scen, sys) => (runs[scen]?.[sys] || []).length;

const L = [];
const p = (s = '') => L.push(s);

p('# kefu benchmarks');
p();
p(`Written by \`tests/bench/run.sh\` (${meta.quick === '1' ? '`make bench QUICK=1`: one run of each scenario, short steps' : '`make bench`: median of ' + meta.runs + ' runs'}) on ${meta.date}, in ${meta.seconds} s. Raw outputs: \`build/bench/results/\`.`);
p();
p('## Machine and versions');
p();
p(`- CPU: ${meta.cpu}, ${meta.ncpu} cores; memory ${meta.mem}; ${meta.os}, kernel ${meta.kernel}; open files per process: ${meta.nofile} (hard limit, not raisable here)`);
p(`- Pinning: ${meta.pin}. The relay's MySQL writer thread is part of the relay process and runs on its core.`);
p(`- Load average at the start ${meta.load_start}, at the end ${meta.load_end}. **This machine is a VM that may be shared** (other work can run beside the benchmark, and wakeups across its two cores are costly), so tails (p99, p99.9) are noisier than on an idle machine, and runs minutes apart differ by up to 2x; each run's 1-minute load average (which counts the benchmark's own processes) is in its raw output. Compare kefu with the peers of the same run.`);
p(`- kefu ${meta.kefu}; libwebsockets ${meta.lws}, libuv ${meta.libuv}, hiredis ${meta.hiredis}; Redis ${meta.redis}; MariaDB ${meta.mariadb}; ${meta.lighttpd}; nginx ${meta.nginx} with Nchan ${meta.nchan}; Node ${meta.node} with ws ${meta.ws}; wrk ${meta.wrk}; libfcgi ${meta.libfcgi}`);
p(`- kefu settings: defaults plus \`tests/bench/bench.ini\` (limits only: MaxConnection, LinkPerIpPerMinute, MaxVisitorsPerAgent = 1 for 1:1 chat, MaxMessagesPerSec, BacklogMax, ChatLastTimeSec). The relay: ${meta.relay_nofile || 'see its log'}.`);
p('- Load generator: `build/bench/loadgen` (tests/bench/loadgen.c), one process per 19,000 connections, plain epoll WebSocket client, connections spread over 127.0.0.2-127.0.0.9; latency from a CLOCK_MONOTONIC timestamp in every message; straight to the relay / peer port (not through the web server).');
p('- kefu keys: visitor keys through `POST /api/link` on lighttpd (4-node scenario: the same Lua script called directly in Redis, `kf_store_visitor_issue`); agent keys through `kf_store_agent_register` in Redis (the script `POST /admin/ws` runs) with one synthetic admin id per agent, because the REST call registers only the logged-in admin.');
p('- Peers: `tests/bench/peers/node-relay.mjs` (the same 1:1 protocol and JSON frames, incl. `ack` and `seq`, no storage); Nchan `nchan_pubsub websocket` with one worker, each client subscribed to its own channel and publishing to its peer\'s (raw content, no JSON, no acks).');
p();

// ---------------------------------------------------------------- held
function heldRow(label, fn, better) {
  const k = med('held', 'kefu', fn), n = med('held', 'node', fn), c = med('held', 'nchan', fn);
  p(`| ${label} | ${fmt(k)} | ${fmt(n)} | ${fmt(c)} | ${ratio(k, n)} | ${ratio(k, c)} | ${better} |`);
}
const heldFirst = Number(meta.held_idle || 10000), heldRest = 2 * Number(meta.held_pairs || 4995);
const heldAll = heldFirst + heldRest;
if (runs.held) {
  p('## 1 and 2. Connections held on one node; idle memory per connection');
  p();
  p(`Each server is a fresh process. ${fmt(heldFirst)} connections (${fmt(heldFirst / 2)} visitor/agent pairs) are opened, each sends one ping and gets its answer, then RSS is read; then ${fmt(heldRest)} more up to ${fmt(heldAll)}${meta.quick === '1' ? ' (QUICK: a smoke test well below the limit, where the growth of fixed tables weighs more per connection; the full mode goes up to 19,990, the 20,000 open files a process may have, less what the server itself holds, and is where the 3 KB target is judged)' : ' (the 20,000 open files a process may have, less what the server itself holds)'}, ping again, read RSS again, hold. Memory per connection = (RSS now - RSS of the fresh process) / open connections. Kernel memory: the TCP line of /proc/net/sockstat (buffer pages; both ends are on this machine).`);
  p();
  p('| figure | kefu | Node ws | Nchan | kefu/Node | kefu/Nchan | better |');
  p('|---|---:|---:|---:|---:|---:|---|');
  const main = { kefu: 'relay', node: 'node', nchan: 'nchan' };
  const byPid = (key) => (sys) => (r) => r.R[`${key}${main[sys]}`];
  const row = (label, f, better) => {
    const k = med('held', 'kefu', f('kefu')), n = med('held', 'node', f('node')), c = med('held', 'nchan', f('nchan'));
    p(`| ${label} | ${fmt(k)} | ${fmt(n)} | ${fmt(c)} | ${ratio(k, n)} | ${ratio(k, c)} | ${better} |`);
  };
  heldRow('connections asked for', (r) => (r.R.idle_open || 0) + (r.R.idle_failed || 0) + (r.R.chat_open || 0) + (r.R.chat_failed || 0), '');
  heldRow('held after the hold', (r) => r.R.held, 'higher');
  heldRow('failed to connect', (r) => (r.R.idle_failed || 0) + (r.R.chat_failed || 0), 'lower');
  heldRow('dropped while held', (r) => r.R.dropped_after_hold, 'lower');
  heldRow(`handshakes/s (first ${fmt(heldFirst)})`, (r) => r.R.idle_hs_per_sec, 'higher');
  heldRow('handshakes/s (the rest)', (r) => r.R.chat_hs_per_sec, 'higher');
  row(`RSS per connection at ${fmt(heldFirst)}, bytes`, byPid('idle_bytes_per_conn_'), 'lower');
  row(`RSS per connection at ${fmt(heldAll)}, bytes`, byPid('bytes_per_conn_'), 'lower');
  row(`server RSS at ${fmt(heldAll)}, KB`, byPid('rss_kb_'), 'lower');
  heldRow(`kernel TCP buffer memory at ${fmt(heldAll)}, KB`, (r) => r.R.tcp_mem_kb, 'lower');
  row('server CPU % while holding idle connections', byPid('hold_cpu_'), 'lower');
  p();
  const emfile = med('held', 'kefu', (r) => r.R.relay_emfile_log_lines);
  const kinds = (sys) => {
    const t = runs.held?.[sys]?.[0]?.text || '';
    const m = /failures by kind: (.*)/.exec(t);
    return m ? m[1].split(' ').filter((x) => !/=0$/.test(x)).join(', ') || 'none' : 'none';
  };
  p(`${heldAll >= 19000 ? 'Connections that failed were asked beyond what the server\'s 20,000 open files allow (its own files and, for kefu, a reserve included): failures' : 'Failures'} by kind (run 1) kefu ${kinds('kefu')}; Node ${kinds('node')}; Nchan ${kinds('nchan')} (eof: closed by the server; timeout: left in the listen backlog for 5 s).${emfile > 0 ? ` kefu's relay logged \`lws: accept: errno 24\` (EMFILE) ${fmt(emfile)} times: at the limit lws retried the pending accept in a busy loop (see its CPU while holding).` : ' kefu\'s relay logged no failed accept (EMFILE).'}`);
  p();
  p('Target (issue 7): at most 3 KB of relay RSS per connection; every connection up to the fd limit held with no failure.');
  p();
}
if (runs.held4) {
  p('### Across 4 relay nodes behind one Redis (kefu only)');
  p();
  const open = med('held4', 'kefu', (r) => r.R.held);
  const asked = med('held4', 'kefu', (r) => (r.R.chat_open || 0) + (r.R.chat_failed || 0));
  const per = med('held4', 'kefu', (r) => {
    let d = 0;
    for (let i = 1; i <= 4; i++) d += (r.R[`rss_kb_relay${i}`] - r.R[`rss_kb_before_relay${i}`]) * 1024;
    return d / r.R.open;
  });
  p(`| connections asked for | held | failed | RSS per connection, bytes | handshakes/s |`);
  p('|---:|---:|---:|---:|---:|');
  p(`| ${fmt(asked)} | ${fmt(open)} | ${fmt(med('held4', 'kefu', (r) => r.R.chat_failed))} | ${fmt(per)} | ${fmt(med('held4', 'kefu', (r) => r.R.chat_hs_per_sec))} |`);
  p();
}

// ---------------------------------------------------------------- tput
const stepsTable = (scen, sys, title) => {
  const r = runs[scen]?.[sys]?.[0];
  if (!r || !r.S.length) return;
  const cpuKeys = Object.keys(r.S[0]).filter((k) => k.startsWith('cpu_') || /^core\d_busy$/.test(k));
  const cpuName = (k) => (k.startsWith('cpu_') ? k.slice(4) + ' CPU %' : `CPU ${k[4]} busy % (all processes)`);
  p(`<details><summary>${title} (run 1)</summary>`);
  p();
  p(`| rate asked | delivered msg/s | p50 ms | p99 ms | p99.9 ms | max ms | loss/errors | loadgen CPU % | ${cpuKeys.map(cpuName).join(' | ')} |`);
  p(`|---:|---:|---:|---:|---:|---:|---|---:|${cpuKeys.map(() => '---:|').join('')}`);
  for (const s of r.S) {
    const bad = [];
    if (s.sent > s.delivered) bad.push(`${s.sent - s.delivered} lost`);
    if (s.errors) bad.push(`${s.errors} errors`);
    if (s.skipped) bad.push(`${s.skipped} not sent (server not reading)`);
    if (s.dropped) bad.push(`${s.dropped} dropped`);
    if (s.client_limited) bad.push('client-limited');
    if (s.lg_cpu >= 90) bad.push('load generator at ' + s.lg_cpu + ' % CPU: client-bound');
    p(`| ${fmt(s.rate)} | ${fmt(s.mps)} | ${fmt(s.p50_ms, 3)} | ${fmt(s.p99_ms, 3)} | ${fmt(s.p999_ms, 3)} | ${fmt(s.max_ms, 1)} | ${bad.join(', ') || 'none'} | ${fmt(s.lg_cpu)} | ${cpuKeys.map((k) => fmt(s[k])).join(' | ')} |`);
  }
  p();
  p('</details>');
  p();
};
if (runs.tput) {
  p('## 3. 1:1 throughput, 1,000 pairs, rate stepped up');
  p();
  p(`1,000 visitor/agent pairs; both sides send; the total rate is raised step by step (${meta.step_sec || 4} s per step, then up to ${meta.drain_sec || 2} s to drain). A step counts if nothing was lost (every message sent arrived, no error frame, no connection dropped, no sender blocked by an unread socket) and the load generator kept up. Stepping stops at the first step with p99 > 100 ms or a loss, or one the load generator could not send. Delivered msg/s = chat messages received by the other side per second (kefu and Node also send each sender an \`ack\`, not counted).`);
  p();
  p('| figure | kefu (1 node) | kefu (2 nodes, via Redis) | Node ws | Nchan | kefu/Node | kefu/Nchan | kefu 2 nodes / 1 node |');
  p('|---|---:|---:|---:|---:|---:|---:|---:|');
  for (const [label, key] of [['best msg/s with p99 <= 10 ms', 'best_p99_10ms'], ['best msg/s with p99 <= 100 ms, no loss', 'best_p99_100ms']]) {
    const k = med('tput', 'kefu', (r) => r.R[key]), k2 = med('tput', 'kefu2', (r) => r.R[key]);
    const n = med('tput', 'node', (r) => r.R[key]), c = med('tput', 'nchan', (r) => r.R[key]);
    p(`| ${label} | ${fmt(k)} | ${fmt(k2)} | ${fmt(n)} | ${fmt(c)} | ${ratio(k, n)} | ${ratio(k, c)} | ${ratio(k2, k)} |`);
  }
  p();
  p(`Targets (issue 7): >= 100,000 msg/s at p99 <= 10 ms in-process; more than Nchan at p99 <= 100 ms; through Redis on two nodes at least half the in-process figure. A 0 means not even the first step (${fmt(Number((meta.rates || '1000').split(',')[0]))} msg/s) met the bound.`);
  p();
  for (const [sys, name] of [['kefu', 'kefu (1 node)'], ['kefu2', 'kefu (2 nodes)'], ['node', 'Node ws'], ['nchan', 'Nchan']]) {
    const sat = (runs.tput[sys] || []).flatMap((r) => r.S.filter((st) => st.lg_cpu >= 90 || st.client_limited).map((st) => st.rate));
    if (sat.length)
      p(`- ${name}: the load generator's core was the limit from ${fmt(Math.min(...sat))} msg/s asked (its CPU >= 90 % or it could not send the rate); figures from there on are bounded by the client, not the server.`);
  }
  p();
  stepsTable('tput', 'kefu', 'kefu, 1 node: every step');
  stepsTable('tput', 'kefu2', 'kefu, 2 nodes (visitors on node 1, agents on node 2): every step');
  stepsTable('tput', 'node', 'Node ws: every step');
  stepsTable('tput', 'nchan', 'Nchan: every step');
}

// ---------------------------------------------------------------- lat
if (runs.lat) {
  const latIdle = Number(meta.lat_idle || 15000);
  p(`## 4. Latency at 2,000 msg/s with ${fmt(latIdle)} idle connections`);
  p();
  p(`${fmt(latIdle)} idle connections (pinged), then 1,000 chatting pairs at 2,000 msg/s in total for ${meta.lat_sec || 10} s.${meta.quick === '1' ? ' (QUICK; the full mode: 15,000 idle, 10 s.)' : ''}${meta.lat_with_held === '1' ? ' QUICK measures it in the runs of section 1: the same connections, after their hold.' : ''}`);
  p();
  p('| figure | kefu | Node ws | Nchan | kefu/Node | kefu/Nchan |');
  p('|---|---:|---:|---:|---:|---:|');
  for (const [label, key, d] of [['delivered msg/s', 'mps', 0], ['p50 ms', 'p50_ms', 3], ['p99 ms', 'p99_ms', 3], ['p99.9 ms', 'p999_ms', 3], ['max ms', 'max_ms', 2], ['lost or errors', null, 0]]) {
    const f = key ? (r) => r.S[0]?.[key] : (r) => (r.S[0] ? r.S[0].sent - r.S[0].delivered + r.S[0].errors : NaN);
    const k = med('lat', 'kefu', f), n = med('lat', 'node', f), c = med('lat', 'nchan', f);
    p(`| ${label} | ${fmt(k, d)} | ${fmt(n, d)} | ${fmt(c, d)} | ${ratio(k, n)} | ${ratio(k, c)} |`);
  }
  const idle = (sys) => med('lat', sys, (r) => r.R.idle_open);
  p(`| idle connections open | ${fmt(idle('kefu'))} | ${fmt(idle('node'))} | ${fmt(idle('nchan'))} | | |`);
  p();
  p('Target (issue 7): p99 under 0.5 ms and p99.9 under 2 ms.');
  p();
}

// ---------------------------------------------------------------- slow
if (runs.slow) {
  p('## 5. Slow consumers');
  p();
  p(`50 pairs at 5,000 msg/s with 400-byte messages: one step as it is, then the same step (${meta.slow_sec || 30} s) with 1 % of the connections no longer reading (they were opened with a 4 KB SO_RCVBUF, so their backlog reaches the server sooner); they keep sending. The others' latency should not move, the server's memory should stay bounded (kefu: at most [Relay] SendQueueMax = 256 frames per reader, then the reader is dropped with 1008).`);
  p();
  p('| figure | kefu | Node ws | Nchan | kefu/Node | kefu/Nchan |');
  p('|---|---:|---:|---:|---:|---:|');
  const main = { kefu: 'relay', node: 'node', nchan: 'nchan' };
  const rows = [
    ['others\' p99 without stalls, ms', (sys) => (r) => r.S[0]?.p99_ms, 3],
    ['others\' p99 with 1 % stalled, ms', (sys) => (r) => r.S[1]?.p99_ms, 3],
    ['others\' p99.9 without / with, ms', null, 3],
    ['server RSS after the step without stalls, KB', (sys) => (r) => r.S[0]?.[`rss_kb_${main[sys]}`], 0],
    ['server RSS after the step with stalls, KB', (sys) => (r) => r.S[1]?.[`rss_kb_${main[sys]}`], 0],
    ['readers stalled', (sys) => (r) => r.S[1]?.stalled, 0],
    ['stalled readers dropped by the server', (sys) => (r) => r.S[1]?.dropped, 0],
    ['messages not delivered (to stalled readers)', (sys) => (r) => (r.S[1] ? r.S[1].sent - r.S[1].delivered : NaN), 0],
  ];
  for (const [label, f, d] of rows) {
    if (!f) {
      const v = (sys) => `${fmt(med('slow', sys, (r) => r.S[0]?.p999_ms), d)} / ${fmt(med('slow', sys, (r) => r.S[1]?.p999_ms), d)}`;
      p(`| ${label} | ${v('kefu')} | ${v('node')} | ${v('nchan')} | | |`);
      continue;
    }
    const k = med('slow', 'kefu', f('kefu')), n = med('slow', 'node', f('node')), c = med('slow', 'nchan', f('nchan'));
    p(`| ${label} | ${fmt(k, d)} | ${fmt(n, d)} | ${fmt(c, d)} | ${ratio(k, n)} | ${ratio(k, c)} |`);
  }
  p();
  p('Target (issue 7): the relay\'s memory stays bounded and the others\' p99 does not move.');
  p();
}

// ---------------------------------------------------------------- storm
if (runs.storm) {
  const dropped = med('storm', 'kefu', (r) => r.R.storm_dropped);
  p('## 6. Reconnect storm');
  p();
  p(`${fmt(dropped)} connections (every idle connection and every chatting visitor) are reset at once, without a close frame, while 200 pairs chat at 1,000 msg/s; all reconnect at once (kefu visitors with \`last_seq\` = the last seq they saw, kefu agents with new tickets). "Back" = the WebSocket handshake succeeded again. Stored = \`ack\`s the chatting agents received during the step; delivered = distinct agent messages (by seq, in order) their visitors received, replays included; recovered = those of them sent before the visitor was back; missed = stored - delivered. Nchan has no acks or seq: only its times are comparable.${meta.quick === '1' ? ' QUICK uses fewer idle connections than the full mode (15,000).' : ''}`);
  p();
  p('| figure | kefu | Node ws | Nchan | kefu/Node | kefu/Nchan | better |');
  p('|---|---:|---:|---:|---:|---:|---|');
  for (const [label, key, better, nchanToo] of [
    ['connections reset', 'storm_dropped', '', true],
    ['back', 'storm_back', 'higher', true],
    ['failed to reconnect', 'storm_failed', 'lower', true],
    ['time until 99 % were back, ms', 'storm_t99_ms', 'lower', true],
    ['time until all were back, ms', 'storm_t100_ms', 'lower', true],
    ['agents\' messages stored (acked)', 'storm_acked', '', false],
    ['delivered to their visitors', 'storm_delivered', '', false],
    ['of them recovered (sent while the visitor was away)', 'storm_recovered', 'higher', false],
    ['missed (stored, never delivered)', 'storm_missed', 'lower', false],
    ['duplicates', 'storm_dup', 'lower', false],
  ]) {
    const f = (r) => (r.R[key] === -1 ? NaN : r.R[key]);
    const k = med('storm', 'kefu', f), n = med('storm', 'node', f), c = nchanToo ? med('storm', 'nchan', f) : NaN;
    p(`| ${label} | ${fmt(k)} | ${fmt(n)} | ${nchanToo ? fmt(c) : 'n/a'} | ${ratio(k, n)} | ${nchanToo ? ratio(k, c) : 'n/a'} | ${better} |`);
  }
  p();
  p('Target (issue 7): 15k back within 5 s, nothing missed after recovery. (A time of n/a: not everyone came back within the step.)');
  p();
}

// ---------------------------------------------------------------- api
if (runs.api) {
  let sizes = '';
  try {
    sizes = fs.readFileSync(path.join(res, 'api', 'sizes'), 'utf8').trim();
  } catch {}
  const [, infoSize, , linkSize] = sizes.split(' ');
  p('## API through lighttpd');
  p();
  p(`\`wrk -t1 -c32 --latency\` for ${meta.wrk_sec || 10} s per figure, against one lighttpd (one process, on the server core) in front of kefu-api (${meta.api_workers || 4} worker threads), the bare FastCGI app (\`tests/bench/peers/bare-fcgi.c\`, ${meta.api_workers || 4} threads, answering the bytes kefu-api answered: ${infoSize} bytes for info, ${linkSize} for link) and static files with the same bytes. \`info\` is logged in (Bearer token) and runs first, on an empty Redis (no live visitors, so its answer is small); each \`POST /api/link\` issues a real visitor key in Redis.`);
  p();
  p('| endpoint | kefu req/s | bare FastCGI req/s | static file req/s | kefu/bare | kefu/static | kefu p50 / p99 ms | bare p50 / p99 ms | non-2xx (kefu) |');
  p('|---|---:|---:|---:|---:|---:|---|---|---:|');
  for (const ep of ['info', 'link']) {
    const k = med('api', `kefu_${ep}`, (r) => r.R.rps), b = med('api', `bare_${ep}`, (r) => r.R.rps), s = med('api', `static_${ep}`, (r) => r.R.rps);
    const l = (sys) => `${fmt(med('api', sys, (r) => r.R.lat_p50_ms), 2)} / ${fmt(med('api', sys, (r) => r.R.lat_p99_ms), 2)}`;
    p(`| POST ${ep === 'info' ? '/admin/ws/info' : '/api/link'} | ${fmt(k)} | ${fmt(b)} | ${fmt(s)} | ${ratio(k, b)} | ${ratio(k, s)} | ${l(`kefu_${ep}`)} | ${l(`bare_${ep}`)} | ${fmt(med('api', `kefu_${ep}`, (r) => r.R.non2xx || 0))} |`);
  }
  p();
  p('Target (issue 7): kefu at 70 % or more of the bare FastCGI app (kefu/bare >= 0.70).');
  p();
}

// ---------------------------------------------------------------- not done
p('## Scenarios not measured by this suite yet');
p();
const missing = [];
if (!runs.held4) missing.push('(1) the connection count across 4 relay nodes: runs in the full mode only (`make bench`), not in QUICK');
missing.push('(2) idle memory per connection at the limit is measured (section 1); at 10k it is the first sample of the same run rather than a run of its own');
if (!runs.slow) missing.push('(5) slow consumers: not in this run');
if (!runs.storm) missing.push('(6) the reconnect storm: not in this run');
missing.push('Median of 3: only in the full mode; QUICK is one run');
for (const m of missing) p(`- ${m}`);
p();

// ---------------------------------------------------------------- commands
p('## Exact commands');
p();
p('```sh');
p(meta.quick === '1' ? 'make bench QUICK=1      # or: bash tests/bench/run.sh --quick' : 'make bench              # or: bash tests/bench/run.sh');
p('```');
p();
p('The load generator and wrk commands of this run (paths and ports are this run\'s; `build/bench/stack/stack.env` has the stack\'s):');
p();
p('```sh');
for (const line of fs.readFileSync(path.join(res, 'commands.txt'), 'utf8').trim().split('\n')) p(line);
p('```');
p();

if (notes && fs.existsSync(notes)) {
  p(fs.readFileSync(notes, 'utf8').trim());
  p();
}
fs.writeFileSync(out, L.join('\n'));
