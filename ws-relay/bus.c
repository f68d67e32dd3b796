/*
 * bus.c - the relay's asynchronous Redis connections on the event loop:
 * "cmd" for chat scripts, history reads and acks, "sub" subscribed to the
 * control channel (PREFIX ctl) and this node's channel (PREFIX n:NODE).
 * Notices and publishes to other nodes go on "cmd" too: nothing waits
 * for them, and when "cmd" is down (or its answer is lost, or Redis forgot
 * a script) they are sent again on the synchronous connection.
 * Each reconnects on its own with a backoff of 100 ms doubling to 5 s, so
 * a Redis restart costs a few failed messages (their senders get an error
 * frame) and never a crash or a busy loop.  hiredis 0.14's libuv adapter
 * does not report a refused connect, so every attempt also has a timer of
 * [Redis] ConnectTimeoutMs: a context that is not connected by then is
 * dropped and tried again.
 */
#include "kf_compat.h"

#include <hiredis/adapters/libuv.h>

#include "kf_config.h"
#include "kf_log.h"
#include "kf_mem.h"
#include "kf_redis.h"
#include "relay.h"

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000
/* PREFIX n:NODE ([Redis] KeyPrefix is at most 64 bytes, kf_config.c) */
#define CHANNEL_MAX (64 + 2 + KF_NODE_MAX)

static void connect_cmd(void);
static void connect_sub(void);

static void retry_cmd(uv_timer_t *t)
{
	(void)t;
	connect_cmd();
}

static void retry_sub(uv_timer_t *t)
{
	(void)t;
	connect_sub();
}

static void schedule(uv_timer_t *timer, int *backoff, uv_timer_cb cb)
{
	if (!kf_relay.bus_wanted)
		return;
	*backoff = *backoff ? *backoff * 2 : BACKOFF_MIN_MS;
	if (*backoff > BACKOFF_MAX_MS)
		*backoff = BACKOFF_MAX_MS;
	uv_timer_start(timer, cb, (uint64_t)*backoff, 0);
}

/* A new async context with AUTH (and SELECT for commands) queued. */
static redisAsyncContext *open_ctx(bool select_db)
{
	const struct kf_config *cfg = kf_relay.cfg;
	const char *pw = kf_config_str(cfg, "Redis", "Password");
	const char *sock = kf_config_str(cfg, "Redis", "Socket");
	redisAsyncContext *ac = *sock ? redisAsyncConnectUnix(sock)
				      : redisAsyncConnect(kf_config_str(cfg, "Redis", "Host"),
							  (int)kf_config_int(cfg, "Redis", "Port"));

	if (!ac || ac->err) {
		kf_warn("redis: %s", ac ? ac->errstr : "out of memory");
		if (ac)
			redisAsyncFree(ac);
		return NULL;
	}
	redisLibuvAttach(ac, kf_relay.loop);
	if (*pw)
		redisAsyncCommand(ac, NULL, NULL, "AUTH %s", pw);
	if (select_db && kf_config_int(cfg, "Redis", "Db"))
		redisAsyncCommand(ac, NULL, NULL, "SELECT %d", (int)kf_config_int(cfg, "Redis", "Db"));
	return ac;
}

static void on_cmd_connect(const redisAsyncContext *ac, int status)
{
	uv_timer_stop(&kf_relay.cmd_connect_timer);
	if (status != REDIS_OK) {
		if (!kf_relay.cmd_backoff_ms)
			kf_warn("redis (commands): unable to connect: %s", ac->errstr);
		kf_relay.cmd = NULL; /* hiredis frees it */
		schedule(&kf_relay.cmd_retry, &kf_relay.cmd_backoff_ms, retry_cmd);
		return;
	}
	if (kf_relay.cmd_backoff_ms)
		kf_info("redis (commands): connected again");
	kf_relay.cmd_backoff_ms = 0;
	kf_bus_load_scripts(); /* before anything can use EVALSHA on this connection */
	kf_relay.cmd_ready = true;
}

static void on_cmd_disconnect(const redisAsyncContext *ac, int status)
{
	(void)ac;
	kf_relay.cmd = NULL;
	kf_relay.cmd_ready = false;
	if (status != REDIS_OK)
		kf_warn("redis (commands): connection lost, reconnecting");
	schedule(&kf_relay.cmd_retry, &kf_relay.cmd_backoff_ms, retry_cmd);
}

/* The connect did not finish in time (or failed unreported): start over. */
static void cmd_connect_timeout(uv_timer_t *t)
{
	(void)t;
	if (!kf_relay.cmd || kf_relay.cmd_ready)
		return;
	if (!kf_relay.cmd_backoff_ms)
		kf_warn("redis (commands): no connection after %lldms", kf_config_int(kf_relay.cfg, "Redis", "ConnectTimeoutMs"));
	redisAsyncSetDisconnectCallback(kf_relay.cmd, NULL);
	redisAsyncFree(kf_relay.cmd); /* pending commands get a NULL reply */
	kf_relay.cmd = NULL;
	schedule(&kf_relay.cmd_retry, &kf_relay.cmd_backoff_ms, retry_cmd);
}

static void sub_connect_timeout(uv_timer_t *t)
{
	(void)t;
	if (!kf_relay.sub || kf_relay.sub_ready)
		return;
	if (!kf_relay.sub_backoff_ms)
		kf_warn("redis (pub/sub): no connection after %lldms", kf_config_int(kf_relay.cfg, "Redis", "ConnectTimeoutMs"));
	redisAsyncSetDisconnectCallback(kf_relay.sub, NULL);
	redisAsyncFree(kf_relay.sub);
	kf_relay.sub = NULL;
	schedule(&kf_relay.sub_retry, &kf_relay.sub_backoff_ms, retry_sub);
}

static void start_connect_timer(uv_timer_t *timer, uv_timer_cb cb)
{
	uv_timer_start(timer, cb, (uint64_t)kf_config_int(kf_relay.cfg, "Redis", "ConnectTimeoutMs"), 0);
}

static void connect_cmd(void)
{
	redisAsyncContext *ac;

	if (kf_relay.cmd || !kf_relay.bus_wanted)
		return;
	ac = open_ctx(true);
	if (!ac) {
		schedule(&kf_relay.cmd_retry, &kf_relay.cmd_backoff_ms, retry_cmd);
		return;
	}
	redisAsyncSetConnectCallback(ac, on_cmd_connect);
	redisAsyncSetDisconnectCallback(ac, on_cmd_disconnect);
	kf_relay.cmd = ac;
	start_connect_timer(&kf_relay.cmd_connect_timer, cmd_connect_timeout);
}

static void on_message(redisAsyncContext *ac, void *r, void *priv)
{
	redisReply *reply = r;

	(void)ac;
	(void)priv;
	if (!reply || reply->type != REDIS_REPLY_ARRAY || reply->elements != 3 ||
	    reply->element[0]->type != REDIS_REPLY_STRING ||
	    reply->element[1]->type != REDIS_REPLY_STRING ||
	    reply->element[2]->type != REDIS_REPLY_STRING)
		return;
	if (strcmp(reply->element[0]->str, "message") != 0)
		return;
	kf_route_message(reply->element[1]->str, reply->element[2]->str, reply->element[2]->len);
}

static void on_sub_connect(const redisAsyncContext *ac, int status)
{
	uv_timer_stop(&kf_relay.sub_connect_timer);
	if (status != REDIS_OK) {
		if (!kf_relay.sub_backoff_ms)
			kf_warn("redis (pub/sub): unable to connect: %s", ac->errstr);
		kf_relay.sub = NULL;
		schedule(&kf_relay.sub_retry, &kf_relay.sub_backoff_ms, retry_sub);
		return;
	}
	if (kf_relay.sub_backoff_ms)
		kf_info("redis (pub/sub): subscribed again");
	else
		kf_info("redis (pub/sub): subscribed to %sctl and %sn:%s", kf_relay.prefix,
			kf_relay.prefix, kf_relay.node);
	kf_relay.sub_backoff_ms = 0;
	kf_relay.sub_ready = true;
}

static void on_sub_disconnect(const redisAsyncContext *ac, int status)
{
	(void)ac;
	kf_relay.sub = NULL;
	kf_relay.sub_ready = false;
	if (status != REDIS_OK)
		kf_warn("redis (pub/sub): connection lost, resubscribing");
	schedule(&kf_relay.sub_retry, &kf_relay.sub_backoff_ms, retry_sub);
}

static void connect_sub(void)
{
	redisAsyncContext *ac;

	if (kf_relay.sub || !kf_relay.bus_wanted)
		return;
	ac = open_ctx(false);
	if (!ac) {
		schedule(&kf_relay.sub_retry, &kf_relay.sub_backoff_ms, retry_sub);
		return;
	}
	redisAsyncSetConnectCallback(ac, on_sub_connect);
	redisAsyncSetDisconnectCallback(ac, on_sub_disconnect);
	redisAsyncCommand(ac, on_message, NULL, "SUBSCRIBE %sctl %sn:%s", kf_relay.prefix,
			  kf_relay.prefix, kf_relay.node);
	kf_relay.sub = ac;
	start_connect_timer(&kf_relay.sub_connect_timer, sub_connect_timeout);
}

void kf_bus_load_scripts(void)
{
	if (!kf_relay.cmd)
		return;
	if (!kf_relay.chat_sha[0]) {
		kf_store_script_sha(kf_store_chat_lua, kf_relay.chat_sha);
		kf_store_script_sha(kf_store_ack_lua, kf_relay.ack_sha);
	}
	redisAsyncCommand(kf_relay.cmd, NULL, NULL, "SCRIPT LOAD %s", kf_store_chat_lua);
	redisAsyncCommand(kf_relay.cmd, NULL, NULL, "SCRIPT LOAD %s", kf_store_ack_lua);
}

void kf_bus_start(void)
{
	kf_relay.bus_wanted = true;
	connect_cmd();
	connect_sub();
}

void kf_bus_stop(void)
{
	kf_relay.bus_wanted = false;
	uv_timer_stop(&kf_relay.cmd_retry);
	uv_timer_stop(&kf_relay.sub_retry);
	uv_timer_stop(&kf_relay.cmd_connect_timer);
	uv_timer_stop(&kf_relay.sub_connect_timer);
	if (kf_relay.cmd)
		redisAsyncDisconnect(kf_relay.cmd);
	if (kf_relay.sub)
		redisAsyncDisconnect(kf_relay.sub);
}

bool kf_bus_cmdargv(redisCallbackFn *fn, void *priv, int argc, const char **argv,
		    const size_t *argvlen)
{
	if (!kf_relay.cmd || !kf_relay.cmd_ready)
		return false;
	return redisAsyncCommandArgv(kf_relay.cmd, fn, priv, argc, argv, argvlen) == REDIS_OK;
}

/*
 * A publish or route call in flight: prepared once (its arguments point
 * into this struct), sent again synchronously when its answer is lost.
 */
struct resend {
	struct kf_store_cmd cmd;
	char channel[CHANNEL_MAX]; /* PUBLISH: PREFIX n:NODE */
	char id[KF_KEY_LEN + 1];   /* route: the visitor's key or the agent's id */
	char msg[];
};

static void resend_sync(struct resend *rs)
{
	redisReply *reply = kf_store_run(kf_relay.redis, rs->cmd.script ? "route" : "PUBLISH",
					 &rs->cmd);

	if (reply)
		freeReplyObject(reply);
	else
		kf_warn("unable to reach the node of %.6s...", rs->cmd.script ? rs->id : rs->channel);
	free(rs);
}

static void on_sent(redisAsyncContext *ac, void *r, void *priv)
{
	redisReply *reply = r;

	(void)ac;
	if (!reply || kf_store_noscript(reply)) { /* lost on the way, or the script was */
		resend_sync(priv);
		return;
	}
	if (reply->type == REDIS_REPLY_ERROR)
		kf_err("redis (commands): %s", reply->str);
	free(priv);
}

/* Send rs's call on "cmd", or at once on the synchronous connection. */
static void send_or_resend(struct resend *rs)
{
	if (!kf_bus_cmdargv(on_sent, rs, rs->cmd.argc, rs->cmd.argv, rs->cmd.lens))
		resend_sync(rs);
}

static struct resend *resend_new(const char *msg)
{
	size_t len = strlen(msg);
	struct resend *rs = kf_xcalloc(1, sizeof(*rs) + len + 1);

	memcpy(rs->msg, msg, len + 1);
	return rs;
}

void kf_bus_publish(const char *node, const char *msg)
{
	struct resend *rs = resend_new(msg);

	snprintf(rs->channel, sizeof(rs->channel), "%sn:%s", kf_relay.prefix, node);
	rs->cmd.argc = 3;
	rs->cmd.argv[0] = "PUBLISH";
	rs->cmd.argv[1] = rs->channel;
	rs->cmd.argv[2] = rs->msg;
	for (int i = 0; i < rs->cmd.argc; i++)
		rs->cmd.lens[i] = strlen(rs->cmd.argv[i]);
	send_or_resend(rs);
}

void kf_bus_route(char kind, const char *id, const char *msg)
{
	struct resend *rs = resend_new(msg);

	snprintf(rs->id, sizeof(rs->id), "%s", id);
	kf_store_route_cmd(&rs->cmd, kf_relay.prefix, kind, rs->id, kf_relay.node, rs->msg);
	send_or_resend(rs);
}

void kf_bus_heartbeat(void)
{
	redisReply *r = kf_redis_cmd(kf_relay.redis, "SET %snode:%s %lld EX %ld", kf_relay.prefix,
				     kf_relay.node, (long long)time(NULL), kf_relay.node_ttl);
	bool ok = r && r->type == REDIS_REPLY_STATUS;

	if (r)
		freeReplyObject(r);
	if (ok) {
		r = kf_redis_cmd(kf_relay.redis, "SADD %snodes %s", kf_relay.prefix, kf_relay.node);
		if (r)
			freeReplyObject(r);
	}
	kf_relay.last_heartbeat = time(NULL);
	if (!ok)
		kf_relay.healthy_since = 0;
	else if (!kf_relay.healthy_since)
		kf_relay.healthy_since = time(NULL);
}
