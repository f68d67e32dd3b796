/*
 * kf_store_chat.c - the live-chat half of the store contract (kf_store.h):
 * agents, visitors, the queue and assignment, each change one Lua script.
 *
 * Every script gets ARGV[1] = key prefix and ARGV[2] = capacity per agent
 * ([Relay] MaxVisitorsPerAgent), then its own arguments.  The scripts
 * touch keys they compute from the prefix (not declared in KEYS), so they
 * need one Redis server, not a cluster.
 */
#include "kf_compat.h"

#include "kf_store.h"

#include <pthread.h>
#include <stdlib.h>

#include <nettle/sha1.h>

#include "kf_buf.h"
#include "kf_err.h"
#include "kf_log.h"
#include "kf_mem.h"
#include "kf_redis.h"

#define LUA_PRELUDE                                                                       \
	"local P = ARGV[1]\n"                                                             \
	"local CAP = tonumber(ARGV[2])\n"                                                 \
	"local function now() return tonumber(redis.call('TIME')[1]) end\n"               \
	"local function bind(k, a)\n"                                                     \
	"  local h = P..'v:'..k\n"                                                        \
	"  redis.call('HSET', h, 'agent', a, 'state', 'bound')\n"                         \
	"  redis.call('SADD', P..'ag:'..a..':v', k)\n"                                    \
	"  redis.call('ZINCRBY', P..'avail', 1, a)\n"                                     \
	"  redis.call('XADD', P..'wq', '*', 't', 'start', 'k', k, 'agent', a,\n"          \
	"             'ip', redis.call('HGET', h, 'ip') or '', 'ts', now())\n"            \
	"end\n"                                                                           \
	"local function tuple(out, k, a, ack)\n"                                          \
	"  local f = redis.call('HMGET', P..'v:'..k, 'ip', 'seq', 'node')\n"              \
	"  out[#out+1] = k\n"                                                             \
	"  out[#out+1] = a\n"                                                             \
	"  out[#out+1] = f[1] or ''\n"                                                    \
	"  out[#out+1] = tonumber(f[2] or '0') or 0\n"                                    \
	"  out[#out+1] = ack\n"                                                           \
	"  out[#out+1] = f[3] or ''\n"                                                    \
	"  out[#out+1] = redis.call('HGET', P..'ag:'..a, 'node') or ''\n"                \
	"end\n"                                                                           \
	"local function dispatch(out)\n"                                                  \
	"  while true do\n"                                                               \
	"    local k = redis.call('LINDEX', P..'queue', 0)\n"                             \
	"    if not k then return end\n"                                                  \
	"    if redis.call('HGET', P..'v:'..k, 'state') ~= 'waiting' then\n"              \
	"      redis.call('LPOP', P..'queue')\n"                                          \
	"    else\n"                                                                      \
	"      local c = redis.call('ZRANGEBYSCORE', P..'avail', '-inf', '('..CAP, 'LIMIT', 0, 1)\n" \
	"      if #c == 0 then return end\n"                                              \
	"      redis.call('LPOP', P..'queue')\n"                                          \
	"      bind(k, c[1])\n"                                                           \
	"      tuple(out, k, c[1], 0)\n"                                                  \
	"    end\n"                                                                       \
	"  end\n"                                                                         \
	"end\n"                                                                           \
	"local function attach(a, node)\n"                                                \
	"  if redis.call('SISMEMBER', P..'agents', a) == 0 then return {-4} end\n"        \
	"  local ah = P..'ag:'..a\n"                                                      \
	"  local old = redis.call('HGET', ah, 'node')\n"                                  \
	"  if old and old ~= node then redis.call('SREM', P..'nc:'..old, 'a|'..a) end\n"  \
	"  local gen = redis.call('HINCRBY', ah, 'gen', 1)\n"                             \
	"  redis.call('HSET', ah, 'node', node, 'state', 'online')\n"                     \
	"  redis.call('SADD', P..'nc:'..node, 'a|'..a)\n"                                 \
	"  local keys = redis.call('SMEMBERS', ah..':v')\n"                               \
	"  local bound = {}\n"                                                            \
	"  for _, k in ipairs(keys) do\n"                                                 \
	"    tuple(bound, k, a, tonumber(redis.call('HGET', P..'v:'..k, 'ack_a') or '0') or 0)\n" \
	"  end\n"                                                                         \
	"  redis.call('ZADD', P..'avail', #keys, a)\n"                                    \
	"  local out = {}\n"                                                              \
	"  dispatch(out)\n"                                                               \
	"  return {0, tonumber(a), gen, bound, out, old or ''}\n"                       \
	"end\n"                                                                           \
	"local function unbind(k, reason)\n"                                              \
	"  local h = P..'v:'..k\n"                                                        \
	"  local f = redis.call('HMGET', h, 'agent', 'node')\n"                           \
	"  local a = f[1] or ''\n"                                                        \
	"  redis.call('DEL', h)\n"                                                        \
	"  redis.call('EXPIRE', P..'h:'..k, 3600)\n"                                      \
	"  redis.call('ZREM', P..'visitors', k)\n"                                        \
	"  redis.call('LREM', P..'queue', 0, k)\n"                                        \
	"  if f[2] then redis.call('SREM', P..'nc:'..f[2], 'v|'..k) end\n"               \
	"  if a ~= '' then\n"                                                             \
	"    redis.call('SREM', P..'ag:'..a..':v', k)\n"                                  \
	"    if redis.call('ZSCORE', P..'avail', a) then redis.call('ZINCRBY', P..'avail', -1, a) end\n" \
	"  end\n"                                                                         \
	"  redis.call('XADD', P..'wq', '*', 't', 'end', 'k', k, 'reason', reason, 'ts', now())\n" \
	"  return a\n"                                                                    \
	"end\n"

/*
 * ARGV: key ip ttl max now limit.  The per-IP rate (limit a minute, 0: none;
 * PREFIX rl:link:IP:MINUTE) first, then the live visitors.
 * -> -1 rate-limited, 0 full, 1 issued
 */
static const char visitor_issue_lua[] = LUA_PRELUDE
	"local key, ip, ttl, max, t = ARGV[3], ARGV[4], tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])\n"
	"local limit = tonumber(ARGV[8])\n"
	"if limit > 0 then\n"
	"  local rk = P..'rl:link:'..ip..':'..math.floor(t / 60)\n"
	"  local n = redis.call('INCR', rk)\n"
	"  if n == 1 then redis.call('EXPIRE', rk, 61) end\n"
	"  if n > limit then return -1 end\n"
	"end\n"
	"redis.call('ZREMRANGEBYSCORE', P..'visitors', '-inf', t)\n"
	"if redis.call('ZCARD', P..'visitors') >= max then return 0 end\n"
	"redis.call('HSET', P..'v:'..key, 'ip', ip, 'state', 'new', 'gen', 0, 'agent', '', 'seq', 0)\n"
	"redis.call('EXPIRE', P..'v:'..key, ttl)\n"
	"redis.call('ZADD', P..'visitors', t + ttl, key)\n"
	"return 1\n";

/* ARGV: key node -> {0, gen, ip, agent, resumed, seq, ack_v, old_node, assigned} */
static const char visitor_redeem_lua[] = LUA_PRELUDE
	"local key, node = ARGV[3], ARGV[4]\n"
	"local h = P..'v:'..key\n"
	"local st = redis.call('HGET', h, 'state')\n"
	"if not st then\n"
	"  if redis.call('EXISTS', P..'at:'..key) == 1 then return {-2} end\n"
	"  return {-1}\n"
	"end\n"
	"local old = redis.call('HGET', h, 'node') or ''\n"
	"if old ~= '' and old ~= node then redis.call('SREM', P..'nc:'..old, 'v|'..key) end\n"
	"local gen = redis.call('HINCRBY', h, 'gen', 1)\n"
	"redis.call('HSET', h, 'node', node)\n"
	"redis.call('SADD', P..'nc:'..node, 'v|'..key)\n"
	"redis.call('PERSIST', h)\n"
	"redis.call('ZADD', P..'visitors', '+inf', key)\n"
	"local f = redis.call('HMGET', h, 'ip', 'agent', 'seq', 'ack_v')\n"
	"local agent = f[2] or ''\n"
	"local resumed = 0\n"
	"if agent ~= '' then\n"
	"  redis.call('HSET', h, 'state', 'bound')\n"
	"  resumed = 1\n"
	"elseif st ~= 'waiting' then\n"
	"  redis.call('HSET', h, 'state', 'waiting')\n"
	"  redis.call('RPUSH', P..'queue', key)\n"
	"end\n"
	"local out = {}\n"
	"dispatch(out)\n"
	"return {0, gen, f[1] or '', agent, resumed, tonumber(f[3] or '0') or 0,\n"
	"        tonumber(f[4] or '0') or 0, old, out}\n";

/* ARGV: key gen reason -> {0, agent, agent_node, assigned} */
static const char visitor_leave_lua[] = LUA_PRELUDE
	"local key, gen, reason = ARGV[3], ARGV[4], ARGV[5]\n"
	"local h = P..'v:'..key\n"
	"if redis.call('HGET', h, 'gen') ~= gen then return {-1} end\n"
	"local a = unbind(key, reason)\n"
	"local out = {}\n"
	"dispatch(out)\n"
	"return {0, a, a ~= '' and (redis.call('HGET', P..'ag:'..a, 'node') or '') or '', out}\n";

/* ARGV: key gen grace now -> {0, agent, agent_node} */
static const char visitor_grace_lua[] = LUA_PRELUDE
	"local key, gen, grace, t = ARGV[3], ARGV[4], tonumber(ARGV[5]), tonumber(ARGV[6])\n"
	"local h = P..'v:'..key\n"
	"if redis.call('HGET', h, 'gen') ~= gen then return {-1} end\n"
	"if redis.call('HGET', h, 'state') == 'waiting' then redis.call('LREM', P..'queue', 0, key) end\n"
	"redis.call('HSET', h, 'state', 'grace')\n"
	"redis.call('EXPIRE', h, grace + 3600)\n"
	"redis.call('ZADD', P..'visitors', t + grace, key)\n"
	"redis.call('ZADD', P..'graces', t + grace, 'v|'..key..'|'..gen)\n"
	"local a = redis.call('HGET', h, 'agent') or ''\n"
	"return {0, a, a ~= '' and (redis.call('HGET', P..'ag:'..a, 'node') or '') or ''}\n";

/* ARGV: admin name ticket ttl */
static const char agent_register_lua[] = LUA_PRELUDE
	"local a, name, ticket, ttl = ARGV[3], ARGV[4], ARGV[5], tonumber(ARGV[6])\n"
	"redis.call('SADD', P..'agents', a)\n"
	"redis.call('HSET', P..'ag:'..a, 'name', name, 'key', ticket)\n"
	"if not redis.call('HGET', P..'ag:'..a, 'state') then\n"
	"  redis.call('HSET', P..'ag:'..a, 'state', 'registered')\n"
	"end\n"
	"redis.call('SET', P..'at:'..ticket, a, 'EX', ttl)\n"
	"return 1\n";

/* ARGV: ticket node */
static const char agent_redeem_lua[] = LUA_PRELUDE
	"local ticket, node = ARGV[3], ARGV[4]\n"
	"local a = redis.call('GET', P..'at:'..ticket)\n"
	"if not a then\n"
	"  if redis.call('EXISTS', P..'v:'..ticket) == 1 then return {-2} end\n"
	"  return {-1}\n"
	"end\n"
	"redis.call('DEL', P..'at:'..ticket)\n"
	"return attach(a, node)\n";

/* ARGV: admin node */
static const char agent_attach_lua[] = LUA_PRELUDE
	"return attach(ARGV[3], ARGV[4])\n";

/* ARGV: admin gen grace now -> {0, visitors} */
static const char agent_drop_lua[] = LUA_PRELUDE
	"local a, gen, grace, t = ARGV[3], ARGV[4], tonumber(ARGV[5]), tonumber(ARGV[6])\n"
	"if redis.call('HGET', P..'ag:'..a, 'gen') ~= gen then return {-1} end\n"
	"redis.call('ZREM', P..'avail', a)\n"
	"redis.call('HSET', P..'ag:'..a, 'state', 'grace')\n"
	"redis.call('ZADD', P..'graces', t + grace, 'a|'..a..'|'..gen)\n"
	"local vs = {}\n"
	"for _, k in ipairs(redis.call('SMEMBERS', P..'ag:'..a..':v')) do tuple(vs, k, a, 0) end\n"
	"return {0, vs}\n";

/* ARGV: admin gen -> {0, requeued tuples, assigned} */
static const char agent_expire_lua[] = LUA_PRELUDE
	"local a, gen = ARGV[3], ARGV[4]\n"
	"local ah = P..'ag:'..a\n"
	"if redis.call('HGET', ah, 'gen') ~= gen or\n"
	"   redis.call('HGET', ah, 'state') ~= 'grace' then return {-1} end\n"
	"local vs = redis.call('SMEMBERS', ah..':v')\n"
	"local requeued = {}\n"
	"for i = #vs, 1, -1 do\n"
	"  local h = P..'v:'..vs[i]\n"
	"  local st = redis.call('HGET', h, 'state')\n"
	"  if st == 'bound' then\n"
	"    redis.call('HSET', h, 'agent', '', 'state', 'waiting')\n"
	"    redis.call('LPUSH', P..'queue', vs[i])\n"
	"    tuple(requeued, vs[i], a, 0)\n"
	"  elseif st then\n"
	"    redis.call('HSET', h, 'agent', '')\n"
	"  end\n"
	"end\n"
	"local node = redis.call('HGET', ah, 'node')\n"
	"if node then redis.call('SREM', P..'nc:'..node, 'a|'..a) end\n"
	"redis.call('DEL', ah..':v', ah)\n"
	"redis.call('SREM', P..'agents', a)\n"
	"redis.call('ZREM', P..'avail', a)\n"
	"local out = {}\n"
	"dispatch(out)\n"
	"return {0, requeued, out}\n";

/* ARGV: admin */
static const char agent_close_lua[] = LUA_PRELUDE
	"local a = ARGV[3]\n"
	"local ah = P..'ag:'..a\n"
	"local was = redis.call('SREM', P..'agents', a)\n"
	"redis.call('ZREM', P..'avail', a)\n"
	"local vs = redis.call('SMEMBERS', ah..':v')\n"
	"for _, k in ipairs(vs) do unbind(k, 'agent_closed') end\n"
	"local node = redis.call('HGET', ah, 'node')\n"
	"if node then redis.call('SREM', P..'nc:'..node, 'a|'..a) end\n"
	"redis.call('DEL', ah..':v', ah)\n"
	"local msg = '{\"op\":\"agent_closed\",\"admin\":'..tonumber(a)..',\"visitors\":['\n"
	"for i, k in ipairs(vs) do\n"
	"  msg = msg..(i > 1 and ',' or '')..cjson.encode(k)\n"
	"end\n"
	"redis.call('PUBLISH', P..'ctl', msg..']}')\n"
	"return {was, vs}\n";

/* ARGV: admin(0 = all) now */
static const char view_lua[] = LUA_PRELUDE
	"local only, t = ARGV[3], tonumber(ARGV[4])\n"
	"local users = {}\n"
	"for _, k in ipairs(redis.call('ZRANGEBYSCORE', P..'visitors', t, '+inf')) do\n"
	"  local f = redis.call('HMGET', P..'v:'..k, 'state', 'ip', 'agent')\n"
	"  if f[1] and f[1] ~= 'new' then\n"
	"    users[#users+1] = {k, f[2] or '', f[3] or '', f[1]}\n"
	"  end\n"
	"end\n"
	"local ids = only ~= '0' and {only} or redis.call('SMEMBERS', P..'agents')\n"
	"local agents = {}\n"
	"for _, a in ipairs(ids) do\n"
	"  if redis.call('SISMEMBER', P..'agents', a) == 1 then\n"
	"    local f = redis.call('HMGET', P..'ag:'..a, 'name', 'key', 'state')\n"
	"    agents[#agents+1] = {a, f[1] or '', f[2] or '', f[3] or '',\n"
	"                         redis.call('SMEMBERS', P..'ag:'..a..':v')}\n"
	"  end\n"
	"end\n"
	"return {users, agents}\n";

/* ARGV: now max -> {kind, id, gen, ...} taken off P graces */
static const char graces_due_lua[] = LUA_PRELUDE
	"local t, max = ARGV[3], tonumber(ARGV[4])\n"
	"local due = redis.call('ZRANGEBYSCORE', P..'graces', '-inf', t, 'LIMIT', 0, max)\n"
	"local out = {}\n"
	"for _, m in ipairs(due) do\n"
	"  redis.call('ZREM', P..'graces', m)\n"
	"  local kind, id, gen = string.match(m, '^(%a)|([^|]+)|(%d+)$')\n"
	"  if kind then\n"
	"    out[#out+1] = kind\n"
	"    out[#out+1] = id\n"
	"    out[#out+1] = gen\n"
	"  end\n"
	"end\n"
	"return out\n";

/*
 * ARGV: vgrace agrace now me.  Nodes but me whose heartbeat (PREFIX node:ID) has
 * expired: their visitors and agents go into grace as if their sockets had
 * dropped.  Returns {kind, id, ...} of what was moved.
 */
static const char sweep_lua[] = LUA_PRELUDE
	"local vg, ag, t, me = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5]), ARGV[6]\n"
	"local out = {}\n"
	"for _, n in ipairs(redis.call('SMEMBERS', P..'nodes')) do\n"
	"  if n ~= me and redis.call('EXISTS', P..'node:'..n) == 0 then\n"
	"    for _, m in ipairs(redis.call('SMEMBERS', P..'nc:'..n)) do\n"
	"      local kind, id = string.sub(m, 1, 1), string.sub(m, 3)\n"
	"      if kind == 'v' then\n"
	"        local h = P..'v:'..id\n"
	"        local f = redis.call('HMGET', h, 'node', 'state', 'gen')\n"
	"        if f[1] == n and (f[2] == 'bound' or f[2] == 'waiting') then\n"
	"          if f[2] == 'waiting' then redis.call('LREM', P..'queue', 0, id) end\n"
	"          redis.call('HSET', h, 'state', 'grace')\n"
	"          redis.call('EXPIRE', h, vg + 3600)\n"
	"          redis.call('ZADD', P..'visitors', t + vg, id)\n"
	"          redis.call('ZADD', P..'graces', t + vg, 'v|'..id..'|'..f[3])\n"
	"          out[#out+1] = 'v'\n"
	"          out[#out+1] = id\n"
	"        end\n"
	"      else\n"
	"        local h = P..'ag:'..id\n"
	"        local f = redis.call('HMGET', h, 'node', 'state', 'gen')\n"
	"        if f[1] == n and f[2] == 'online' then\n"
	"          redis.call('ZREM', P..'avail', id)\n"
	"          redis.call('HSET', h, 'state', 'grace')\n"
	"          redis.call('ZADD', P..'graces', t + ag, 'a|'..id..'|'..f[3])\n"
	"          out[#out+1] = 'a'\n"
	"          out[#out+1] = id\n"
	"          for _, k in ipairs(redis.call('SMEMBERS', h..':v')) do\n"
	"            out[#out+1] = 'w'\n"
	"            out[#out+1] = k\n"
	"          end\n"
	"        end\n"
	"      end\n"
	"    end\n"
	"    redis.call('DEL', P..'nc:'..n)\n"
	"    redis.call('SREM', P..'nodes', n)\n"
	"  end\n"
	"end\n"
	"return out\n";

/*
 * The chat script, run by the relay on its asynchronous connection for the
 * messages its clients sent in one turn of its event loop.
 * ARGV: node history_max backlog_max, then 5 per message: key kind(v|a)
 * from_id content send_time
 * -> per message {seq, target_node, agent} or {negative status}; the frame
 * is built by the node that delivers it (here only for another node)
 */
const char kf_store_chat_lua[] = LUA_PRELUDE
	"local node, hmax, wqmax = ARGV[3], ARGV[4], tonumber(ARGV[5])\n"
	"local wqlen = redis.call('XLEN', P..'wq')\n"
	"local ts = now()\n"
	"local function chat(key, kind, fromid, content, st)\n"
	"  local h = P..'v:'..key\n"
	"  local v = redis.call('HMGET', h, 'agent', 'state', 'node')\n"
	"  local agent = v[1]\n"
	"  if not agent then return {-4} end\n"
	"  if agent == '' then return {-1} end\n"
	"  if kind == 'a' and agent ~= fromid then return {-3} end\n"
	"  if wqlen >= wqmax then return {-5} end\n"
	"  wqlen = wqlen + 1\n"
	"  local seq = redis.call('HINCRBY', h, 'seq', 1)\n"
	"  local from = kind == 'v' and key or 'agent'\n"
	"  redis.call('XADD', P..'h:'..key, 'MAXLEN', '~', hmax, seq..'-0', 'from', from,\n"
	"             'content', content, 'st', st)\n"
	"  redis.call('XADD', P..'wq', '*', 't', 'msg', 'k', key, 'seq', seq, 'kind', kind,\n"
	"             'id', fromid, 'content', content, 'ts', ts, 'agent', agent)\n"
	"  local tnode = ''\n"
	"  if kind == 'v' then\n"
	"    local f = redis.call('HMGET', P..'ag:'..agent, 'state', 'node')\n"
	"    if f[1] == 'online' then tnode = f[2] or '' end\n"
	"  elseif v[2] == 'bound' then\n"
	"    tnode = v[3] or ''\n"
	"  end\n"
	"  if tnode ~= '' and tnode ~= node then\n"
	"    local frame = cjson.encode({type='chat', content=content, send_time=st, from=from,\n"
	"                                ws_key=key, seq=seq})\n"
	"    redis.call('PUBLISH', P..'n:'..tnode, cjson.encode({op='chat',\n"
	"      kind=(kind == 'v' and 'a' or 'v'), to=(kind == 'v' and agent or key),\n"
	"      key=key, seq=seq, frame=frame}))\n"
	"  end\n"
	"  return {seq, tnode, agent}\n"
	"end\n"
	"local out = {}\n"
	"for i = 6, #ARGV - 4, 5 do\n"
	"  out[#out+1] = chat(ARGV[i], ARGV[i+1], ARGV[i+2], ARGV[i+3], ARGV[i+4])\n"
	"end\n"
	"return out\n";

/* ARGV: key field(ack_v|ack_a) seq: keep the highest */
const char kf_store_ack_lua[] =
	"local h = ARGV[1]..'v:'..ARGV[2]\n"
	"local cur = tonumber(redis.call('HGET', h, ARGV[3]) or '0') or 0\n"
	"if redis.call('EXISTS', h) == 1 and tonumber(ARGV[4]) > cur then\n"
	"  redis.call('HSET', h, ARGV[3], ARGV[4])\n"
	"end\n"
	"return 1\n";

/*
 * ARGV: node msg.  Publish msg on the channel of the node that holds
 * visitor KEY (kind v) or agent ID (kind a), unless it is this node.
 * KEYS none; ARGV[3] kind, ARGV[4] id.  Returns the node or ''.
 */
static const char route_lua[] = LUA_PRELUDE
	"local kind, id, me, msg = ARGV[3], ARGV[4], ARGV[5], ARGV[6]\n"
	"local n = redis.call('HGET', P..(kind == 'v' and 'v:' or 'ag:')..id, 'node') or ''\n"
	"if n ~= '' and n ~= me then redis.call('PUBLISH', P..'n:'..n, msg) end\n"
	"return n\n";

#define TUPLE 7

/* The SHA-1 of each script, computed once (scripts are static strings). */
#define SHA_SLOTS 32

static struct {
	const char *script;
	char sha[41];
} sha_cache[SHA_SLOTS];
static pthread_mutex_t sha_lock = PTHREAD_MUTEX_INITIALIZER;

/* The EVALSHA name of script; NULL when the cache is full (use EVAL). */
static const char *script_sha(const char *script)
{
	const char *sha = NULL;

	pthread_mutex_lock(&sha_lock);
	for (size_t i = 0; i < SHA_SLOTS; i++) {
		if (sha_cache[i].script == script) {
			sha = sha_cache[i].sha;
			break;
		}
		if (!sha_cache[i].script) {
			kf_store_script_sha(script, sha_cache[i].sha);
			sha_cache[i].script = script;
			sha = sha_cache[i].sha;
			break;
		}
	}
	pthread_mutex_unlock(&sha_lock);
	return sha;
}

/* The EVALSHA (EVAL when the SHA-1 cache is full) of script into c. */
static void build(struct kf_store_cmd *c, const char *script, const char *prefix, long cap,
		  const char *const *args, size_t n)
{
	const char *sha = script_sha(script);

	c->script = script;
	snprintf(c->num[KF_STORE_CMD_NUMS - 1], sizeof(c->num[0]), "%ld", cap);
	c->argc = 0;
	c->argv[c->argc++] = sha ? "EVALSHA" : "EVAL";
	c->argv[c->argc++] = sha ? sha : script;
	c->argv[c->argc++] = "0";
	c->argv[c->argc++] = prefix;
	c->argv[c->argc++] = c->num[KF_STORE_CMD_NUMS - 1];
	for (size_t i = 0; i < n && c->argc < KF_STORE_CMD_ARGS; i++)
		c->argv[c->argc++] = args[i];
	for (int i = 0; i < c->argc; i++)
		c->lens[i] = strlen(c->argv[i]);
}

bool kf_store_noscript(const redisReply *reply)
{
	return reply && reply->type == REDIS_REPLY_ERROR && strncmp(reply->str, "NOSCRIPT", 8) == 0;
}

/*
 * Run the prepared call c: by its SHA-1 (EVALSHA), and by its text (EVAL)
 * when Redis does not know it yet.  Returns the reply (caller frees), or
 * NULL (logged) on an outage or a script error.
 */
redisReply *kf_store_run(struct kf_redis *r, const char *name, struct kf_store_cmd *c)
{
	redisReply *reply = kf_redis_cmdargv(r, c->argc, c->argv, c->lens);

	if (c->script && kf_store_noscript(reply)) {
		freeReplyObject(reply);
		c->argv[0] = "EVAL";
		c->argv[1] = c->script;
		c->lens[0] = strlen(c->argv[0]);
		c->lens[1] = strlen(c->argv[1]);
		reply = kf_redis_cmdargv(r, c->argc, c->argv, c->lens);
	}
	if (reply && reply->type == REDIS_REPLY_ERROR) {
		kf_err("redis %s%s: %s", c->script ? "script " : "", name, reply->str);
		freeReplyObject(reply);
		return NULL;
	}
	return reply;
}

/* Run script with ARGV = prefix, cap, then the n strings in args (kf_store_run). */
static redisReply *eval(struct kf_redis *r, const char *name, const char *script,
			const char *prefix, long cap, const char *const *args, size_t n)
{
	struct kf_store_cmd c;

	build(&c, script, prefix, cap, args, n);
	return kf_store_run(r, name, &c);
}

long long kf_store_elem_int(const redisReply *a, size_t i)
{
	const redisReply *e;

	if (!a || a->type != REDIS_REPLY_ARRAY || i >= a->elements)
		return 0;
	e = a->element[i];
	if (e->type == REDIS_REPLY_INTEGER)
		return e->integer;
	if (e->type == REDIS_REPLY_STRING)
		return strtoll(e->str, NULL, 10);
	return 0;
}

const char *kf_store_elem_str(const redisReply *a, size_t i)
{
	if (!a || a->type != REDIS_REPLY_ARRAY || i >= a->elements ||
	    a->element[i]->type != REDIS_REPLY_STRING)
		return "";
	return a->element[i]->str;
}

#define elem_int kf_store_elem_int
#define elem_str kf_store_elem_str

static void copy_str(char *dst, size_t size, const char *src)
{
	size_t n = strlen(src);

	if (n >= size)
		n = size - 1;
	memcpy(dst, src, n);
	dst[n] = '\0';
}

/* Keys from an array reply element (may be absent). */
static void take_keys(const redisReply *arr, struct kf_keys *out)
{
	out->v = NULL;
	out->n = 0;
	if (!arr || arr->type != REDIS_REPLY_ARRAY || arr->elements == 0)
		return;
	out->v = kf_xcalloc(arr->elements, sizeof(*out->v));
	for (size_t i = 0; i < arr->elements; i++)
		if (arr->element[i]->type == REDIS_REPLY_STRING)
			copy_str(out->v[out->n++], sizeof(out->v[0]), arr->element[i]->str);
}

/* Pairs from a flat array of TUPLE-element tuples (see tuple() in the Lua). */
static void take_pairs(const redisReply *arr, struct kf_pairs *out)
{
	out->v = NULL;
	out->n = 0;
	if (!arr || arr->type != REDIS_REPLY_ARRAY || arr->elements < TUPLE)
		return;
	out->v = kf_xcalloc(arr->elements / TUPLE, sizeof(*out->v));
	for (size_t i = 0; i + TUPLE - 1 < arr->elements; i += TUPLE) {
		struct kf_pair *p = &out->v[out->n++];

		copy_str(p->visitor, sizeof(p->visitor), elem_str(arr, i));
		p->agent = elem_int(arr, i + 1);
		copy_str(p->ip, sizeof(p->ip), elem_str(arr, i + 2));
		p->seq = elem_int(arr, i + 3);
		p->ack = elem_int(arr, i + 4);
		copy_str(p->visitor_node, sizeof(p->visitor_node), elem_str(arr, i + 5));
		copy_str(p->agent_node, sizeof(p->agent_node), elem_str(arr, i + 6));
	}
}

static const redisReply *elem(const redisReply *a, size_t i)
{
	return a && a->type == REDIS_REPLY_ARRAY && i < a->elements ? a->element[i] : NULL;
}

void kf_pairs_release(struct kf_pairs *p)
{
	if (!p)
		return;
	free(p->v);
	p->v = NULL;
	p->n = 0;
}

void kf_keys_release(struct kf_keys *k)
{
	if (!k)
		return;
	free(k->v);
	k->v = NULL;
	k->n = 0;
}

int kf_store_agent_register(struct kf_redis *r, const char *prefix, int64_t admin_id,
			    const char *name, long ttl_sec, char ticket[KF_KEY_LEN + 1])
{
	char id[24], ttl[24];
	const char *args[4] = { id, name, ticket, ttl };
	redisReply *reply;

	kf_key_random(ticket, KF_KEY_LEN);
	snprintf(id, sizeof(id), "%lld", (long long)admin_id);
	snprintf(ttl, sizeof(ttl), "%ld", ttl_sec);
	reply = eval(r, "agent_register", agent_register_lua, prefix, 0, args, 4);
	if (!reply)
		return KF_ERR_STORE;
	freeReplyObject(reply);
	return 0;
}

int kf_store_agent_close(struct kf_redis *r, const char *prefix, int64_t admin_id,
			 struct kf_keys *visitors)
{
	char id[24];
	const char *args[1] = { id };
	redisReply *reply;
	int rc;

	snprintf(id, sizeof(id), "%lld", (long long)admin_id);
	reply = eval(r, "agent_close", agent_close_lua, prefix, 0, args, 1);
	if (!reply)
		return KF_ERR_STORE;
	take_keys(elem(reply, 1), visitors);
	rc = elem_int(reply, 0) > 0 || visitors->n ? 0 : KF_ERR_NOTFOUND;
	freeReplyObject(reply);
	return rc;
}

int kf_store_visitor_issue(struct kf_redis *r, const char *prefix, const char *ip,
			   long ttl_sec, long max_live, long link_limit, time_t now,
			   char key[KF_KEY_LEN + 1])
{
	char ttl[24], max[24], t[24], lim[24];
	const char *args[6] = { key, ip, ttl, max, t, lim };
	redisReply *reply;
	int rc;

	kf_key_random(key, KF_KEY_LEN);
	snprintf(ttl, sizeof(ttl), "%ld", ttl_sec);
	snprintf(max, sizeof(max), "%ld", max_live);
	snprintf(t, sizeof(t), "%lld", (long long)now);
	snprintf(lim, sizeof(lim), "%ld", link_limit);
	reply = eval(r, "visitor_issue", visitor_issue_lua, prefix, 0, args, 6);
	if (!reply)
		return KF_ERR_STORE;
	if (reply->type != REDIS_REPLY_INTEGER)
		rc = KF_ERR_STORE;
	else if (reply->integer == 1)
		rc = 0;
	else
		rc = reply->integer < 0 ? KF_ERR_LIMIT : KF_ERR_TOOBIG;
	freeReplyObject(reply);
	return rc;
}

void kf_store_chat_view_cmd(struct kf_store_cmd *c, const char *prefix, int64_t admin_id,
			    time_t now)
{
	const char *args[2] = { c->num[0], c->num[1] };

	snprintf(c->num[0], sizeof(c->num[0]), "%lld", (long long)admin_id);
	snprintf(c->num[1], sizeof(c->num[1]), "%lld", (long long)now);
	build(c, view_lua, prefix, 0, args, 2);
}

redisReply *kf_store_chat_view(struct kf_redis *r, const char *prefix, int64_t admin_id)
{
	struct kf_store_cmd c;

	kf_store_chat_view_cmd(&c, prefix, admin_id, time(NULL));
	return kf_store_run(r, "view", &c);
}

/* Map a script's leading status to an error code. */
static int status_rc(const redisReply *reply)
{
	switch (elem_int(reply, 0)) {
	case 0: return 0;
	case -2: return KF_ERR_INVAL;
	case -4: return KF_ERR_AUTH;
	default: return KF_ERR_NOTFOUND;
	}
}

int kf_store_visitor_redeem(struct kf_redis *r, const char *prefix, const char *key, size_t len,
			    const char *node, long cap, time_t now, struct kf_visitor_redeem *out)
{
	char k[KF_KEY_LEN + 1];
	const char *args[2] = { k, node };
	redisReply *reply;
	int rc;

	(void)now;
	memset(out, 0, sizeof(*out));
	if (!kf_key_valid(key, len))
		return KF_ERR_NOTFOUND;
	memcpy(k, key, len);
	k[len] = '\0';
	reply = eval(r, "visitor_redeem", visitor_redeem_lua, prefix, cap, args, 2);
	if (!reply)
		return KF_ERR_STORE;
	rc = status_rc(reply);
	if (rc == 0) {
		out->gen = elem_int(reply, 1);
		copy_str(out->ip, sizeof(out->ip), elem_str(reply, 2));
		out->agent = elem_int(reply, 3);
		out->resumed = elem_int(reply, 4) == 1;
		out->seq = elem_int(reply, 5);
		out->ack = elem_int(reply, 6);
		copy_str(out->old_node, sizeof(out->old_node), elem_str(reply, 7));
		take_pairs(elem(reply, 8), &out->assigned);
	}
	freeReplyObject(reply);
	return rc;
}

static int attach_result(redisReply *reply, int64_t *admin_id, int64_t *gen,
			 struct kf_pairs *bound, struct kf_pairs *assigned, char *old_node)
{
	int rc = status_rc(reply);

	if (rc == 0) {
		if (admin_id)
			*admin_id = elem_int(reply, 1);
		*gen = elem_int(reply, 2);
		take_pairs(elem(reply, 3), bound);
		take_pairs(elem(reply, 4), assigned);
		if (old_node)
			copy_str(old_node, KF_NODE_MAX, elem_str(reply, 5));
	}
	freeReplyObject(reply);
	return rc;
}

int kf_store_agent_redeem(struct kf_redis *r, const char *prefix, const char *ticket,
			  size_t len, const char *node, long cap, int64_t *admin_id, int64_t *gen,
			  struct kf_pairs *bound, struct kf_pairs *assigned, char *old_node)
{
	char k[KF_KEY_LEN + 1];
	const char *args[2] = { k, node };
	redisReply *reply;

	if (!kf_key_valid(ticket, len))
		return KF_ERR_NOTFOUND;
	memcpy(k, ticket, len);
	k[len] = '\0';
	reply = eval(r, "agent_redeem", agent_redeem_lua, prefix, cap, args, 2);
	if (!reply)
		return KF_ERR_STORE;
	return attach_result(reply, admin_id, gen, bound, assigned, old_node);
}

int kf_store_agent_attach(struct kf_redis *r, const char *prefix, int64_t admin_id,
			  const char *node, long cap, int64_t *gen, struct kf_pairs *bound,
			  struct kf_pairs *assigned, char *old_node)
{
	char id[24];
	const char *args[2] = { id, node };
	redisReply *reply;

	snprintf(id, sizeof(id), "%lld", (long long)admin_id);
	reply = eval(r, "agent_attach", agent_attach_lua, prefix, cap, args, 2);
	if (!reply)
		return KF_ERR_STORE;
	return attach_result(reply, NULL, gen, bound, assigned, old_node);
}

void kf_store_visitor_leave_cmd(struct kf_store_cmd *c, const char *prefix, const char *key,
				int64_t gen, const char *reason, long cap)
{
	const char *args[3] = { key, c->num[0], reason };

	snprintf(c->num[0], sizeof(c->num[0]), "%lld", (long long)gen);
	build(c, visitor_leave_lua, prefix, cap, args, 3);
}

void kf_store_visitor_grace_cmd(struct kf_store_cmd *c, const char *prefix, const char *key,
				int64_t gen, long grace_sec, time_t now)
{
	const char *args[4] = { key, c->num[0], c->num[1], c->num[2] };

	snprintf(c->num[0], sizeof(c->num[0]), "%lld", (long long)gen);
	snprintf(c->num[1], sizeof(c->num[1]), "%ld", grace_sec);
	snprintf(c->num[2], sizeof(c->num[2]), "%lld", (long long)now);
	build(c, visitor_grace_lua, prefix, 0, args, 4);
}

int kf_store_visitor_leave_parse(const redisReply *reply, struct kf_leave *out)
{
	int rc;

	memset(out, 0, sizeof(*out));
	if (!reply || reply->type != REDIS_REPLY_ARRAY)
		return KF_ERR_STORE;
	rc = status_rc(reply);
	if (rc == 0) {
		out->agent = elem_int(reply, 1);
		copy_str(out->agent_node, sizeof(out->agent_node), elem_str(reply, 2));
		take_pairs(elem(reply, 3), &out->assigned);
	}
	return rc;
}

void kf_store_agent_drop_cmd(struct kf_store_cmd *c, const char *prefix, int64_t admin_id,
			     int64_t gen, long grace_sec, time_t now)
{
	const char *args[4] = { c->num[0], c->num[1], c->num[2], c->num[3] };

	snprintf(c->num[0], sizeof(c->num[0]), "%lld", (long long)admin_id);
	snprintf(c->num[1], sizeof(c->num[1]), "%lld", (long long)gen);
	snprintf(c->num[2], sizeof(c->num[2]), "%ld", grace_sec);
	snprintf(c->num[3], sizeof(c->num[3]), "%lld", (long long)now);
	build(c, agent_drop_lua, prefix, 0, args, 4);
}

int kf_store_agent_drop_parse(const redisReply *reply, struct kf_pairs *visitors)
{
	int rc;

	visitors->v = NULL;
	visitors->n = 0;
	if (!reply || reply->type != REDIS_REPLY_ARRAY)
		return KF_ERR_STORE;
	rc = status_rc(reply);
	if (rc == 0)
		take_pairs(elem(reply, 1), visitors);
	return rc;
}

int kf_store_agent_expire(struct kf_redis *r, const char *prefix, int64_t admin_id,
			  int64_t gen, long cap, struct kf_pairs *requeued,
			  struct kf_pairs *assigned)
{
	char id[24], g[24];
	const char *args[2] = { id, g };
	redisReply *reply;
	int rc;

	requeued->v = NULL;
	requeued->n = 0;
	assigned->v = NULL;
	assigned->n = 0;
	snprintf(id, sizeof(id), "%lld", (long long)admin_id);
	snprintf(g, sizeof(g), "%lld", (long long)gen);
	reply = eval(r, "agent_expire", agent_expire_lua, prefix, cap, args, 2);
	if (!reply)
		return KF_ERR_STORE;
	rc = status_rc(reply);
	if (rc == 0) {
		take_pairs(elem(reply, 1), requeued);
		take_pairs(elem(reply, 2), assigned);
	}
	freeReplyObject(reply);
	return rc;
}

int kf_store_agent_registered(struct kf_redis *r, const char *prefix, int64_t admin_id,
			      bool *registered)
{
	redisReply *reply = kf_redis_cmd(r, "SISMEMBER %sagents %lld", prefix, (long long)admin_id);
	int rc = KF_ERR_STORE;

	if (!reply)
		return rc;
	if (reply->type == REDIS_REPLY_INTEGER) {
		*registered = reply->integer == 1;
		rc = 0;
	}
	freeReplyObject(reply);
	return rc;
}

/* Items {kind, id, gen} or {kind, id} from a flat reply. */
static void take_items(const redisReply *reply, size_t width, struct kf_items *out)
{
	out->v = NULL;
	out->n = 0;
	if (!reply || reply->type != REDIS_REPLY_ARRAY || reply->elements < width)
		return;
	out->v = kf_xcalloc(reply->elements / width, sizeof(*out->v));
	for (size_t i = 0; i + width - 1 < reply->elements; i += width) {
		struct kf_item *it = &out->v[out->n++];

		it->kind = elem_str(reply, i)[0];
		copy_str(it->id, sizeof(it->id), elem_str(reply, i + 1));
		it->gen = width > 2 ? elem_int(reply, i + 2) : 0;
	}
}

void kf_items_release(struct kf_items *it)
{
	if (!it)
		return;
	free(it->v);
	it->v = NULL;
	it->n = 0;
}

int kf_store_graces_due(struct kf_redis *r, const char *prefix, time_t now, long max,
			struct kf_items *out)
{
	char t[24], m[24];
	const char *args[2] = { t, m };
	redisReply *reply;

	snprintf(t, sizeof(t), "%lld", (long long)now);
	snprintf(m, sizeof(m), "%ld", max);
	reply = eval(r, "graces_due", graces_due_lua, prefix, 0, args, 2);
	if (!reply)
		return KF_ERR_STORE;
	take_items(reply, 3, out);
	freeReplyObject(reply);
	return 0;
}

int kf_store_sweep(struct kf_redis *r, const char *prefix, const char *node, long visitor_grace,
		   long agent_grace, time_t now, struct kf_items *out)
{
	char vg[24], ag[24], t[24];
	const char *args[4] = { vg, ag, t, node };
	redisReply *reply;

	snprintf(vg, sizeof(vg), "%ld", visitor_grace);
	snprintf(ag, sizeof(ag), "%ld", agent_grace);
	snprintf(t, sizeof(t), "%lld", (long long)now);
	reply = eval(r, "sweep", sweep_lua, prefix, 0, args, 4);
	if (!reply)
		return KF_ERR_STORE;
	take_items(reply, 2, out);
	freeReplyObject(reply);
	return 0;
}

void kf_store_route_cmd(struct kf_store_cmd *c, const char *prefix, char kind, const char *id,
			const char *node, const char *msg)
{
	const char *args[4] = { c->num[0], id, node, msg };

	c->num[0][0] = kind;
	c->num[0][1] = '\0';
	build(c, route_lua, prefix, 0, args, 4);
}

void kf_store_script_sha(const char *script, char out[41])
{
	static const char hex[] = "0123456789abcdef";
	struct sha1_ctx ctx;
	uint8_t d[SHA1_DIGEST_SIZE];

	sha1_init(&ctx);
	sha1_update(&ctx, strlen(script), (const uint8_t *)script);
	sha1_digest(&ctx, sizeof(d), d);
	for (size_t i = 0; i < sizeof(d); i++) {
		out[2 * i] = hex[d[i] >> 4];
		out[2 * i + 1] = hex[d[i] & 15];
	}
	out[40] = '\0';
}
