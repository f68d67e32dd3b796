/*
 * kf_store.h - the Redis store contract: every key name kefu uses and the
 * operations on them that both tiers share.
 *
 * All keys start with [Redis] KeyPrefix (default "kf:"):
 *   PREFIX sess:DIGEST          hash {admin, role} of a login session; TTL =
 *                               [Api] SessionLifetimeSec.  DIGEST is
 *                               kf_key_digest(token): the token itself is
 *                               never stored.
 *   PREFIX lf:ip:IP:YYYYMMDD    failed logins from IP that day (local time);
 *                               expires at the next midnight
 *   PREFIX lf:u:DIGEST          failed logins for a username (digest of the
 *                               name); expires LoginFailWindowSec after the
 *                               first failure
 *   PREFIX rl:link:IP:MINUTE    visitor keys issued to IP that minute
 *                               (POST /api/link, kf_store_visitor_issue)
 *   PREFIX rbac:ver             the RBAC version: a random string replaced
 *                               after every change to accounts, roles or
 *                               grants; absent until the first change.
 *                               Each kefu-api process reloads its grant
 *                               cache when it moves (fcgi-api/rbac.h)
 *
 * Live chat (kf_store_chat.c; every change is one Lua script, so several
 * kefu-api processes and relay nodes never see half a change):
 *   PREFIX at:TICKET            an agent's single-use ws_key -> admin id;
 *                               TTL [Relay] AgentKeyTtlSec
 *   PREFIX v:KEY                a visitor: hash {ip, state, agent, gen, node};
 *                               state new (issued, never connected; TTL
 *                               VisitorKeyTtlSec), waiting (in the queue),
 *                               bound (has an agent) or grace (connection
 *                               dropped; TTL grace + 60 s)
 *   PREFIX visitors             zset KEY -> expiry (+inf while connected):
 *                               the live visitors, counted against
 *                               [Websocket] MaxConnection
 *   PREFIX agents               set of registered agents (POST /admin/ws)
 *   PREFIX ag:ID                an agent: hash {name, key, node, state, gen};
 *                               state online (socket connected) or grace
 *   PREFIX ag:ID:v              set of the agent's visitor keys
 *   PREFIX avail                zset ID -> load: agents taking visitors
 *   PREFIX queue                list of waiting visitor keys, oldest first
 *   PREFIX ctl                  pub/sub channel: {"op":"agent_closed",
 *                               "admin":ID,"visitors":[KEY...]}
 *   PREFIX h:KEY                the conversation's recent history: a stream
 *                               with entry IDs SEQ-0 {from, content, st};
 *                               capped at [Relay] HistoryMax; kept an hour
 *                               after the conversation ends
 *   PREFIX wq                   stream of writes waiting for MySQL: t=start
 *                               {k, agent, ip, ts}, t=msg {k, seq, kind, id,
 *                               content, ts, agent}, t=end {k, reason, ts};
 *                               consumer group "writers", read with NOACK
 *                               (ws-relay/persist.c)
 *   PREFIX nodes                set of relay node ids seen
 *   PREFIX node:ID              a node's heartbeat (expires when it dies)
 *   PREFIX nc:ID                set of "v|KEY" / "a|ID" connected to node ID
 *   PREFIX n:ID                 pub/sub channel of node ID: {"op":"chat",
 *                               "kind":"v"|"a","to":...,"key":K,"seq":N,
 *                               "frame":"..."} and the notices of route.c
 *   PREFIX graces               zset "v|KEY|GEN" / "a|ID|GEN" -> deadline:
 *                               reconnect grace periods, settled by any node
 * gen counts a visitor's or agent's connections: a relay passes the gen it
 * saw, and a change from a connection that has since been replaced is
 * ignored.
 *
 * Functions return 0, KF_ERR_NOTFOUND, or KF_ERR_STORE when Redis is
 * unavailable or answered an error (logged).
 */
#ifndef KF_STORE_H
#define KF_STORE_H

#include "kf_compat.h"

#include <time.h>

#include <hiredis/hiredis.h>

#include "kf_net.h"

struct kf_redis;

struct kf_session {
	int64_t admin_id;
	int64_t role;
};

/* Create a session; writes a fresh token (KF_KEY_LEN chars + NUL). */
int kf_store_session_create(struct kf_redis *r, const char *prefix,
			    const struct kf_session *s, long ttl_sec, char *token_out);
/* Look up token (n bytes).  KF_ERR_NOTFOUND when absent or malformed. */
int kf_store_session_get(struct kf_redis *r, const char *prefix, const char *token, size_t n,
			 struct kf_session *out);
int kf_store_session_delete(struct kf_redis *r, const char *prefix, const char *token,
			    size_t n);
/*
 * kf_store_session_get and kf_store_rbac_version in one round trip (a
 * pipeline): for the routes that check permissions.  0, KF_ERR_NOTFOUND
 * (no such session; version is still set) or KF_ERR_STORE.  extra (may be
 * NULL) is one more command for the same round trip, a route's prefetch
 * that does not depend on who asks; its answer goes to *extra_reply
 * (caller frees; NULL on KF_ERR_STORE).
 */
#define KF_STORE_VERSION_MAX 40 /* room for an RBAC version string with its NUL */
struct kf_store_cmd;
int kf_store_session_get_rbac(struct kf_redis *r, const char *prefix, const char *token,
			      size_t n, struct kf_session *out, char version[KF_STORE_VERSION_MAX],
			      struct kf_store_cmd *extra, redisReply **extra_reply);

/* Current failure counts for ip and username (0 when none). */
int kf_store_login_failures(struct kf_redis *r, const char *prefix, const char *ip,
			    const char *user, size_t user_len, time_t now, long *ip_count,
			    long *user_count);
/* Count one failure against ip (until midnight) and user (window_sec). */
int kf_store_login_failed(struct kf_redis *r, const char *prefix, const char *ip,
			  const char *user, size_t user_len, time_t now, long window_sec);
/* Seconds from now to the next local midnight (at least 1). */
long kf_store_until_midnight(time_t now);


/*
 * The current RBAC version into out ("" when none was ever stored).
 * Returns 0 or KF_ERR_STORE.
 */
int kf_store_rbac_version(struct kf_redis *r, const char *prefix,
			  char out[KF_STORE_VERSION_MAX]);
/* Store a new random RBAC version.  Returns 0 or KF_ERR_STORE. */
int kf_store_rbac_bump(struct kf_redis *r, const char *prefix);

/* ---- live chat (kf_store_chat.c) ---- */

#include "kf_key.h"

/* Room for a relay node id with its NUL ([Relay] NodeId is at most 64). */
#define KF_NODE_MAX 65

struct kf_pair {
	char visitor[KF_KEY_LEN + 1];
	int64_t agent;
	char ip[KF_NET_ADDR_MAX];      /* the visitor's address */
	int64_t seq;                   /* the conversation's last seq */
	int64_t ack;                   /* what the agent acknowledged (attach) */
	char visitor_node[KF_NODE_MAX];
	char agent_node[KF_NODE_MAX];
};

/* Visitors newly bound to agents by a change; release with kf_pairs_release. */
struct kf_pairs {
	struct kf_pair *v;
	size_t n;
};

struct kf_keys {
	char (*v)[KF_KEY_LEN + 1];
	size_t n;
};

void kf_pairs_release(struct kf_pairs *p);
void kf_keys_release(struct kf_keys *k);

/* POST /admin/ws: register admin_id (display name) and issue a ticket. */
int kf_store_agent_register(struct kf_redis *r, const char *prefix, int64_t admin_id,
			    const char *name, long ttl_sec, char ticket[KF_KEY_LEN + 1]);
/*
 * POST /admin/ws/close: unregister admin_id, end its chats and tell the
 * relays (PREFIX ctl).  visitors receives the keys that were bound.
 * KF_ERR_NOTFOUND when the agent was not registered.
 */
int kf_store_agent_close(struct kf_redis *r, const char *prefix, int64_t admin_id,
			 struct kf_keys *visitors);
/*
 * POST /api/link: issue a visitor key for ip, counting it against ip's
 * link_limit links a minute (0: no limit; PREFIX rl:link:IP:MINUTE).
 * One script: KF_ERR_LIMIT when ip is over its limit,
 * KF_ERR_TOOBIG while max_live visitors are live, KF_ERR_STORE.
 */
int kf_store_visitor_issue(struct kf_redis *r, const char *prefix, const char *ip,
			   long ttl_sec, long max_live, long link_limit, time_t now,
			   char key[KF_KEY_LEN + 1]);
/*
 * The shared view for /admin/ws/info and /admin/ws/link_user: the raw
 * reply of one script, { {key, ip, agent-or-"" ...}, {id, name, ticket,
 * state, {keys...}} ... } (see kf_store_chat.c), or NULL when Redis is
 * down.  admin_id > 0 limits the agents to that one.  Caller frees.
 */
redisReply *kf_store_chat_view(struct kf_redis *r, const char *prefix, int64_t admin_id);
/* The same as a command to pipeline (kf_store_cmd, below), as of now. */
void kf_store_chat_view_cmd(struct kf_store_cmd *c, const char *prefix, int64_t admin_id,
			    time_t now);

struct kf_visitor_redeem {
	int64_t gen;
	char ip[KF_NET_ADDR_MAX];
	int64_t agent;      /* bound agent when resumed, else 0 */
	bool resumed;       /* came back within the grace period */
	int64_t seq;        /* the conversation's last seq */
	int64_t ack;        /* the last seq the visitor acknowledged */
	char old_node[KF_NODE_MAX]; /* the node of its previous connection */
	struct kf_pairs assigned; /* bindings made, this visitor's among them */
};

/* What ending or pausing a visitor's connection changed. */
struct kf_leave {
	int64_t agent;                 /* its agent (0: none) */
	char agent_node[KF_NODE_MAX];  /* where that agent is connected */
	struct kf_pairs assigned;      /* bindings made with the freed capacity */
};

/* A grace period that ran out, or a connection of a dead node. */
struct kf_item {
	char kind;                     /* 'v' visitor, 'a' agent */
	char id[KF_KEY_LEN + 1];       /* visitor key or admin id */
	int64_t gen;
};

struct kf_items {
	struct kf_item *v;
	size_t n;
};

void kf_items_release(struct kf_items *it);

/*
 * A visitor connects with key: resume its conversation or join the queue,
 * then hand waiting visitors to free agents.  A live connection with the
 * same key is replaced (its gen no longer counts).  Returns 0,
 * KF_ERR_NOTFOUND (unknown or expired), KF_ERR_INVAL (an agent's key) or
 * KF_ERR_STORE.
 */
int kf_store_visitor_redeem(struct kf_redis *r, const char *prefix, const char *key, size_t len,
			    const char *node, long cap, time_t now, struct kf_visitor_redeem *out);
/*
 * An agent connects with a ticket (consumed).  *gen receives its
 * connection number, bound its current visitors, assigned the new
 * bindings, old_node (KF_NODE_MAX bytes, may be NULL) the node of its
 * previous connection.  KF_ERR_NOTFOUND (unknown, expired or used),
 * KF_ERR_INVAL (a visitor's key), KF_ERR_AUTH (no longer registered).
 */
int kf_store_agent_redeem(struct kf_redis *r, const char *prefix, const char *ticket,
			  size_t len, const char *node, long cap, int64_t *admin_id, int64_t *gen,
			  struct kf_pairs *bound, struct kf_pairs *assigned, char *old_node);
/* As kf_store_agent_redeem for an agent identified by its session instead. */
int kf_store_agent_attach(struct kf_redis *r, const char *prefix, int64_t admin_id,
			  const char *node, long cap, int64_t *gen, struct kf_pairs *bound,
			  struct kf_pairs *assigned, char *old_node);
/*
 * A store call prepared once and sent on either connection: EVALSHA of
 * the script with its arguments (or a plain command, script NULL).  argv
 * points into the struct and into the strings handed to the builder, which
 * must live as long as the struct.  On the relay's asynchronous connection
 * (redisAsyncCommandArgv) an answer for which kf_store_noscript() is true
 * means Redis has lost its scripts: kf_store_run() the same call, which
 * loads it.
 */
#define KF_STORE_CMD_ARGS 14
#define KF_STORE_CMD_NUMS 5
struct kf_store_cmd {
	int argc;
	const char *argv[KF_STORE_CMD_ARGS];
	size_t lens[KF_STORE_CMD_ARGS];
	const char *script;                 /* its text, for EVAL */
	char num[KF_STORE_CMD_NUMS][24];    /* the numbers among the arguments */
};
bool kf_store_noscript(const redisReply *reply);
/*
 * Run c synchronously (by its text when Redis does not know the script).
 * The reply (caller frees), or NULL (logged as the script name) on an
 * outage or an error.
 */
redisReply *kf_store_run(struct kf_redis *r, const char *name, struct kf_store_cmd *c);

/*
 * The visitor's conversation ends (it left, timed out, or its grace ran
 * out; reason is recorded): unbind it and hand waiting visitors to free
 * agents.  out->assigned must be released.  KF_ERR_NOTFOUND when gen is
 * stale (a newer connection owns the key).
 */
void kf_store_visitor_leave_cmd(struct kf_store_cmd *c, const char *prefix, const char *key,
				int64_t gen, const char *reason, long cap);
/* The answer of a leave or grace call (NULL or an error: KF_ERR_STORE). */
int kf_store_visitor_leave_parse(const redisReply *reply, struct kf_leave *out);
/* The visitor's connection dropped: keep it for grace_sec (P graces). */
void kf_store_visitor_grace_cmd(struct kf_store_cmd *c, const char *prefix, const char *key,
				int64_t gen, long grace_sec, time_t now);
/*
 * The agent's connection dropped: stop assigning to it and start its grace
 * period; visitors receives its visitors.
 */
void kf_store_agent_drop_cmd(struct kf_store_cmd *c, const char *prefix, int64_t admin_id,
			     int64_t gen, long grace_sec, time_t now);
int kf_store_agent_drop_parse(const redisReply *reply, struct kf_pairs *visitors);
/*
 * The agent did not come back in time: unregister it, put its visitors at
 * the front of the queue (requeued) and dispatch (assigned).
 */
int kf_store_agent_expire(struct kf_redis *r, const char *prefix, int64_t admin_id,
			  int64_t gen, long cap, struct kf_pairs *requeued,
			  struct kf_pairs *assigned);
/* Take up to max grace periods due by now off P graces (each taken once). */
int kf_store_graces_due(struct kf_redis *r, const char *prefix, time_t now, long max,
			struct kf_items *out);
/*
 * Put the connections of other nodes whose heartbeat expired into grace.
 * Items: 'v' visitor keys and 'a' agent ids moved, then 'w' items for the
 * visitors of each moved agent (to be told their agent is away).
 */
int kf_store_sweep(struct kf_redis *r, const char *prefix, const char *node, long visitor_grace,
		   long agent_grace, time_t now, struct kf_items *out);
/*
 * Publish msg to the node that holds visitor id (kind 'v') or agent id
 * (kind 'a'), unless that is node itself (then nothing is sent).
 */
void kf_store_route_cmd(struct kf_store_cmd *c, const char *prefix, char kind, const char *id,
			const char *node, const char *msg);

/*
 * Scripts the relay runs on its asynchronous connection (EVAL script 0
 * PREFIX CAP args...): kf_store_chat_lua takes NODE HISTORY_MAX
 * BACKLOG_MAX and then, for each of one or more messages, KEY KIND(v|a)
 * FROM_ID CONTENT SEND_TIME; it answers an array with, per message in
 * order, {seq, target_node, agent} or {status}: -1 not bound, -3 not
 * the agent's visitor, -4 unknown visitor, -5 the write backlog is full.
 * kf_store_ack_lua (EVAL script 0 PREFIX KEY FIELD SEQ) keeps the highest
 * acknowledged seq in ack_v / ack_a.
 */
extern const char kf_store_chat_lua[];
extern const char kf_store_ack_lua[];
/* The SHA-1 Redis names script by (EVALSHA), 40 hex digits + NUL. */
void kf_store_script_sha(const char *script, char out[41]);
/* Element i of an array reply as a number (0) or a string (""). */
long long kf_store_elem_int(const redisReply *a, size_t i);
const char *kf_store_elem_str(const redisReply *a, size_t i);
/* True when admin_id is registered (POST /admin/ws and not closed). */
int kf_store_agent_registered(struct kf_redis *r, const char *prefix, int64_t admin_id,
			      bool *registered);

#endif
