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

#include <stdlib.h>

#include "kf_buf.h"
#include "kf_err.h"
#include "kf_log.h"
#include "kf_mem.h"
#include "kf_redis.h"

#define LUA_PRELUDE                                                                       \
	"local P = ARGV[1]\n"                                                             \
	"local CAP = tonumber(ARGV[2])\n"                                                 \
	"local function bind(k, a)\n"                                                     \
	"  redis.call('HSET', P..'v:'..k, 'agent', a, 'state', 'bound')\n"                \
	"  redis.call('SADD', P..'ag:'..a..':v', k)\n"                                    \
	"  redis.call('ZINCRBY', P..'avail', 1, a)\n"                                     \
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
	"      out[#out+1] = k\n"                                                         \
	"      out[#out+1] = c[1]\n"                                                      \
	"      out[#out+1] = redis.call('HGET', P..'v:'..k, 'ip') or ''\n"                \
	"    end\n"                                                                       \
	"  end\n"                                                                         \
	"end\n"                                                                           \
	"local function attach(a, node)\n"                                                \
	"  if redis.call('SISMEMBER', P..'agents', a) == 0 then return {-4} end\n"        \
	"  local gen = redis.call('HINCRBY', P..'ag:'..a, 'gen', 1)\n"                    \
	"  redis.call('HSET', P..'ag:'..a, 'node', node, 'state', 'online')\n"            \
	"  local keys = redis.call('SMEMBERS', P..'ag:'..a..':v')\n"                      \
	"  local bound = {}\n"                                                            \
	"  for _, k in ipairs(keys) do\n"                                                 \
	"    bound[#bound+1] = k\n"                                                       \
	"    bound[#bound+1] = a\n"                                                       \
	"    bound[#bound+1] = redis.call('HGET', P..'v:'..k, 'ip') or ''\n"              \
	"  end\n"                                                                         \
	"  redis.call('ZADD', P..'avail', #keys, a)\n"                                    \
	"  local out = {}\n"                                                              \
	"  dispatch(out)\n"                                                               \
	"  return {0, tonumber(a), gen, bound, out}\n"                                    \
	"end\n"

/* ARGV: key ip ttl max now */
static const char visitor_issue_lua[] = LUA_PRELUDE
	"local key, ip, ttl, max, now = ARGV[3], ARGV[4], tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])\n"
	"redis.call('ZREMRANGEBYSCORE', P..'visitors', '-inf', now)\n"
	"if redis.call('ZCARD', P..'visitors') >= max then return 0 end\n"
	"redis.call('HSET', P..'v:'..key, 'ip', ip, 'state', 'new', 'gen', 0, 'agent', '')\n"
	"redis.call('EXPIRE', P..'v:'..key, ttl)\n"
	"redis.call('ZADD', P..'visitors', now + ttl, key)\n"
	"return 1\n";

/* ARGV: key node */
static const char visitor_redeem_lua[] = LUA_PRELUDE
	"local key, node = ARGV[3], ARGV[4]\n"
	"local h = P..'v:'..key\n"
	"local st = redis.call('HGET', h, 'state')\n"
	"if not st then\n"
	"  if redis.call('EXISTS', P..'at:'..key) == 1 then return {-2} end\n"
	"  return {-1}\n"
	"end\n"
	"local gen = redis.call('HINCRBY', h, 'gen', 1)\n"
	"redis.call('HSET', h, 'node', node)\n"
	"redis.call('PERSIST', h)\n"
	"redis.call('ZADD', P..'visitors', '+inf', key)\n"
	"local ip = redis.call('HGET', h, 'ip') or ''\n"
	"local agent = redis.call('HGET', h, 'agent') or ''\n"
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
	"return {0, gen, ip, agent, resumed, out}\n";

/* ARGV: key gen */
static const char visitor_leave_lua[] = LUA_PRELUDE
	"local key, gen = ARGV[3], ARGV[4]\n"
	"local h = P..'v:'..key\n"
	"if redis.call('HGET', h, 'gen') ~= gen then return {-1} end\n"
	"local a = redis.call('HGET', h, 'agent') or ''\n"
	"redis.call('DEL', h)\n"
	"redis.call('ZREM', P..'visitors', key)\n"
	"redis.call('LREM', P..'queue', 0, key)\n"
	"if a ~= '' then\n"
	"  redis.call('SREM', P..'ag:'..a..':v', key)\n"
	"  if redis.call('ZSCORE', P..'avail', a) then redis.call('ZINCRBY', P..'avail', -1, a) end\n"
	"end\n"
	"local out = {}\n"
	"dispatch(out)\n"
	"return {0, a, out}\n";

/* ARGV: key gen grace now */
static const char visitor_grace_lua[] = LUA_PRELUDE
	"local key, gen, grace, now = ARGV[3], ARGV[4], tonumber(ARGV[5]), tonumber(ARGV[6])\n"
	"local h = P..'v:'..key\n"
	"if redis.call('HGET', h, 'gen') ~= gen then return {-1} end\n"
	"if redis.call('HGET', h, 'state') == 'waiting' then redis.call('LREM', P..'queue', 0, key) end\n"
	"redis.call('HSET', h, 'state', 'grace')\n"
	"redis.call('EXPIRE', h, grace + 60)\n"
	"redis.call('ZADD', P..'visitors', now + grace, key)\n"
	"return {0, redis.call('HGET', h, 'agent') or ''}\n";

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

/* ARGV: admin gen */
static const char agent_drop_lua[] = LUA_PRELUDE
	"local a, gen = ARGV[3], ARGV[4]\n"
	"if redis.call('HGET', P..'ag:'..a, 'gen') ~= gen then return {-1} end\n"
	"redis.call('ZREM', P..'avail', a)\n"
	"redis.call('HSET', P..'ag:'..a, 'state', 'grace')\n"
	"return {0, redis.call('SMEMBERS', P..'ag:'..a..':v')}\n";

/* ARGV: admin gen */
static const char agent_expire_lua[] = LUA_PRELUDE
	"local a, gen = ARGV[3], ARGV[4]\n"
	"if redis.call('HGET', P..'ag:'..a, 'gen') ~= gen or\n"
	"   redis.call('HGET', P..'ag:'..a, 'state') ~= 'grace' then return {-1} end\n"
	"local vs = redis.call('SMEMBERS', P..'ag:'..a..':v')\n"
	"local requeued = {}\n"
	"for i = #vs, 1, -1 do\n"
	"  local h = P..'v:'..vs[i]\n"
	"  local st = redis.call('HGET', h, 'state')\n"
	"  if st == 'bound' then\n"
	"    redis.call('HSET', h, 'agent', '', 'state', 'waiting')\n"
	"    redis.call('LPUSH', P..'queue', vs[i])\n"
	"    requeued[#requeued+1] = vs[i]\n"
	"  elseif st then\n"
	"    redis.call('HSET', h, 'agent', '')\n"
	"  end\n"
	"end\n"
	"redis.call('DEL', P..'ag:'..a..':v', P..'ag:'..a)\n"
	"redis.call('SREM', P..'agents', a)\n"
	"redis.call('ZREM', P..'avail', a)\n"
	"local out = {}\n"
	"dispatch(out)\n"
	"return {0, requeued, out}\n";

/* ARGV: admin */
static const char agent_close_lua[] = LUA_PRELUDE
	"local a = ARGV[3]\n"
	"local was = redis.call('SREM', P..'agents', a)\n"
	"redis.call('ZREM', P..'avail', a)\n"
	"local vs = redis.call('SMEMBERS', P..'ag:'..a..':v')\n"
	"for _, k in ipairs(vs) do\n"
	"  redis.call('DEL', P..'v:'..k)\n"
	"  redis.call('ZREM', P..'visitors', k)\n"
	"  redis.call('LREM', P..'queue', 0, k)\n"
	"end\n"
	"redis.call('DEL', P..'ag:'..a..':v', P..'ag:'..a)\n"
	"local msg = '{\"op\":\"agent_closed\",\"admin\":'..tonumber(a)..',\"visitors\":['\n"
	"for i, k in ipairs(vs) do\n"
	"  msg = msg..(i > 1 and ',' or '')..cjson.encode(k)\n"
	"end\n"
	"redis.call('PUBLISH', P..'ctl', msg..']}')\n"
	"return {was, vs}\n";

/* ARGV: admin(0 = all) now */
static const char view_lua[] = LUA_PRELUDE
	"local only, now = ARGV[3], tonumber(ARGV[4])\n"
	"local users = {}\n"
	"for _, k in ipairs(redis.call('ZRANGEBYSCORE', P..'visitors', now, '+inf')) do\n"
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

#define MAX_ARGS 12

/*
 * EVAL script with ARGV = prefix, cap, then the n strings in args.
 * Returns the reply (caller frees), or NULL (logged) on an outage or a
 * script error.
 */
static redisReply *eval(struct kf_redis *r, const char *name, const char *script,
			const char *prefix, long cap, const char *const *args, size_t n)
{
	const char *argv[MAX_ARGS];
	size_t lens[MAX_ARGS];
	char capbuf[24];
	redisReply *reply;
	size_t argc = 0;

	snprintf(capbuf, sizeof(capbuf), "%ld", cap);
	argv[argc++] = "EVAL";
	argv[argc++] = script;
	argv[argc++] = "0";
	argv[argc++] = prefix;
	argv[argc++] = capbuf;
	for (size_t i = 0; i < n && argc < MAX_ARGS; i++)
		argv[argc++] = args[i];
	for (size_t i = 0; i < argc; i++)
		lens[i] = strlen(argv[i]);
	reply = kf_redis_cmdargv(r, (int)argc, argv, lens);
	if (reply && reply->type == REDIS_REPLY_ERROR) {
		kf_err("redis script %s: %s", name, reply->str);
		freeReplyObject(reply);
		return NULL;
	}
	return reply;
}

static long long elem_int(const redisReply *a, size_t i)
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

static const char *elem_str(const redisReply *a, size_t i)
{
	if (!a || a->type != REDIS_REPLY_ARRAY || i >= a->elements ||
	    a->element[i]->type != REDIS_REPLY_STRING)
		return "";
	return a->element[i]->str;
}

static void copy_key(char dst[KF_KEY_LEN + 1], const char *src)
{
	size_t n = strlen(src);

	if (n > KF_KEY_LEN)
		n = KF_KEY_LEN;
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
			copy_key(out->v[out->n++], arr->element[i]->str);
}

/* Pairs from a flat {key, agent, ip, key, agent, ip ...} array element. */
static void take_pairs(const redisReply *arr, struct kf_pairs *out)
{
	out->v = NULL;
	out->n = 0;
	if (!arr || arr->type != REDIS_REPLY_ARRAY || arr->elements < 3)
		return;
	out->v = kf_xcalloc(arr->elements / 3, sizeof(*out->v));
	for (size_t i = 0; i + 2 < arr->elements; i += 3) {
		const char *ip = elem_str(arr, i + 2);
		size_t n = strlen(ip);

		copy_key(out->v[out->n].visitor, elem_str(arr, i));
		out->v[out->n].agent = elem_int(arr, i + 1);
		if (n >= sizeof(out->v[out->n].ip))
			n = sizeof(out->v[out->n].ip) - 1;
		memcpy(out->v[out->n].ip, ip, n);
		out->v[out->n].ip[n] = '\0';
		out->n++;
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
			   long ttl_sec, long max_live, time_t now, char key[KF_KEY_LEN + 1])
{
	char ttl[24], max[24], t[24];
	const char *args[5] = { key, ip, ttl, max, t };
	redisReply *reply;
	int rc;

	kf_key_random(key, KF_KEY_LEN);
	snprintf(ttl, sizeof(ttl), "%ld", ttl_sec);
	snprintf(max, sizeof(max), "%ld", max_live);
	snprintf(t, sizeof(t), "%lld", (long long)now);
	reply = eval(r, "visitor_issue", visitor_issue_lua, prefix, 0, args, 5);
	if (!reply)
		return KF_ERR_STORE;
	rc = reply->type == REDIS_REPLY_INTEGER && reply->integer == 1 ? 0 : KF_ERR_LIMIT;
	freeReplyObject(reply);
	return rc;
}

redisReply *kf_store_chat_view(struct kf_redis *r, const char *prefix, int64_t admin_id)
{
	char id[24], t[24];
	const char *args[2] = { id, t };

	snprintf(id, sizeof(id), "%lld", (long long)admin_id);
	snprintf(t, sizeof(t), "%lld", (long long)time(NULL));
	return eval(r, "view", view_lua, prefix, 0, args, 2);
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
		const char *ip = elem_str(reply, 2);
		size_t n = strlen(ip);

		out->gen = elem_int(reply, 1);
		if (n >= sizeof(out->ip))
			n = sizeof(out->ip) - 1;
		memcpy(out->ip, ip, n);
		out->ip[n] = '\0';
		out->agent = elem_int(reply, 3);
		out->resumed = elem_int(reply, 4) == 1;
		take_pairs(elem(reply, 5), &out->assigned);
	}
	freeReplyObject(reply);
	return rc;
}

static int attach_result(redisReply *reply, int64_t *admin_id, int64_t *gen,
			 struct kf_pairs *bound, struct kf_pairs *assigned)
{
	int rc = status_rc(reply);

	if (rc == 0) {
		if (admin_id)
			*admin_id = elem_int(reply, 1);
		*gen = elem_int(reply, 2);
		take_pairs(elem(reply, 3), bound);
		take_pairs(elem(reply, 4), assigned);
	}
	freeReplyObject(reply);
	return rc;
}

int kf_store_agent_redeem(struct kf_redis *r, const char *prefix, const char *ticket,
			  size_t len, const char *node, long cap, int64_t *admin_id, int64_t *gen,
			  struct kf_pairs *bound, struct kf_pairs *assigned)
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
	return attach_result(reply, admin_id, gen, bound, assigned);
}

int kf_store_agent_attach(struct kf_redis *r, const char *prefix, int64_t admin_id,
			  const char *node, long cap, int64_t *gen, struct kf_pairs *bound,
			  struct kf_pairs *assigned)
{
	char id[24];
	const char *args[2] = { id, node };
	redisReply *reply;

	snprintf(id, sizeof(id), "%lld", (long long)admin_id);
	reply = eval(r, "agent_attach", agent_attach_lua, prefix, cap, args, 2);
	if (!reply)
		return KF_ERR_STORE;
	return attach_result(reply, NULL, gen, bound, assigned);
}

int kf_store_visitor_leave(struct kf_redis *r, const char *prefix, const char *key, int64_t gen,
			   long cap, int64_t *agent, struct kf_pairs *assigned)
{
	char g[24];
	const char *args[2] = { key, g };
	redisReply *reply;
	int rc;

	*agent = 0;
	assigned->v = NULL;
	assigned->n = 0;
	snprintf(g, sizeof(g), "%lld", (long long)gen);
	reply = eval(r, "visitor_leave", visitor_leave_lua, prefix, cap, args, 2);
	if (!reply)
		return KF_ERR_STORE;
	rc = status_rc(reply);
	if (rc == 0) {
		*agent = elem_int(reply, 1);
		take_pairs(elem(reply, 2), assigned);
	}
	freeReplyObject(reply);
	return rc;
}

int kf_store_visitor_grace(struct kf_redis *r, const char *prefix, const char *key, int64_t gen,
			   long grace_sec, time_t now, int64_t *agent)
{
	char g[24], gr[24], t[24];
	const char *args[4] = { key, g, gr, t };
	redisReply *reply;
	int rc;

	*agent = 0;
	snprintf(g, sizeof(g), "%lld", (long long)gen);
	snprintf(gr, sizeof(gr), "%ld", grace_sec);
	snprintf(t, sizeof(t), "%lld", (long long)now);
	reply = eval(r, "visitor_grace", visitor_grace_lua, prefix, 0, args, 4);
	if (!reply)
		return KF_ERR_STORE;
	rc = status_rc(reply);
	if (rc == 0)
		*agent = elem_int(reply, 1);
	freeReplyObject(reply);
	return rc;
}

int kf_store_agent_drop(struct kf_redis *r, const char *prefix, int64_t admin_id, int64_t gen,
			struct kf_keys *visitors)
{
	char id[24], g[24];
	const char *args[2] = { id, g };
	redisReply *reply;
	int rc;

	visitors->v = NULL;
	visitors->n = 0;
	snprintf(id, sizeof(id), "%lld", (long long)admin_id);
	snprintf(g, sizeof(g), "%lld", (long long)gen);
	reply = eval(r, "agent_drop", agent_drop_lua, prefix, 0, args, 2);
	if (!reply)
		return KF_ERR_STORE;
	rc = status_rc(reply);
	if (rc == 0)
		take_keys(elem(reply, 1), visitors);
	freeReplyObject(reply);
	return rc;
}

int kf_store_agent_expire(struct kf_redis *r, const char *prefix, int64_t admin_id,
			  int64_t gen, long cap, struct kf_keys *requeued,
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
		take_keys(elem(reply, 1), requeued);
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
