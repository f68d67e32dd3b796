#include "kf_compat.h"

#include "kf_redis.h"

#include <poll.h>
#include <stdarg.h>
#include <stdlib.h>
#include <time.h>

#include "kf_config.h"
#include "kf_log.h"
#include "kf_mem.h"

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 2000

struct kf_redis {
	redisContext *ctx;
	char *host;
	int port;
	char *socket;                  /* [Redis] Socket: used instead of host:port when set */
	char *where;                   /* "host:port" or the socket path, for log lines */
	char *password;
	int db;
	int connect_timeout_ms;
	int command_timeout_ms;
	int64_t next_attempt_ms;
	int backoff_ms;
	int spin_us;                   /* kf_redis_set_spin */
	bool up;
};

static int64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int64_t now_ms(void)
{
	return now_us() / 1000;
}

static struct timeval ms_to_tv(int ms)
{
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };

	return tv;
}

struct kf_redis *kf_redis_new(const struct kf_config *cfg)
{
	struct kf_redis *r = kf_xcalloc(1, sizeof(*r));

	char where[300];

	r->host = kf_xstrdup(kf_config_str(cfg, "Redis", "Host"));
	r->port = (int)kf_config_int(cfg, "Redis", "Port");
	r->socket = kf_xstrdup(kf_config_str(cfg, "Redis", "Socket"));
	if (*r->socket)
		snprintf(where, sizeof(where), "%s", r->socket);
	else
		snprintf(where, sizeof(where), "%s:%d", r->host, r->port);
	r->where = kf_xstrdup(where);
	r->password = kf_xstrdup(kf_config_str(cfg, "Redis", "Password"));
	r->db = (int)kf_config_int(cfg, "Redis", "Db");
	r->connect_timeout_ms = (int)kf_config_int(cfg, "Redis", "ConnectTimeoutMs");
	r->command_timeout_ms = (int)kf_config_int(cfg, "Redis", "CommandTimeoutMs");
	return r;
}

static void drop(struct kf_redis *r)
{
	if (r->ctx)
		redisFree(r->ctx);
	r->ctx = NULL;
	r->up = false;
}

void kf_redis_free(struct kf_redis *r)
{
	if (!r)
		return;
	drop(r);
	free(r->host);
	free(r->socket);
	free(r->where);
	if (r->password)
		memset(r->password, 0, strlen(r->password));
	free(r->password);
	free(r);
}

/* Run one setup command; false (and a log line) unless it answers OK. */
static bool setup_cmd(struct kf_redis *r, const char *what, redisReply *reply)
{
	bool ok = reply && reply->type == REDIS_REPLY_STATUS;

	if (!ok)
		kf_err("redis %s: %s failed: %s", r->where, what,
		       reply && reply->type == REDIS_REPLY_ERROR ? reply->str
		       : r->ctx->err			       ? r->ctx->errstr
							       : "unexpected reply");
	if (reply)
		freeReplyObject(reply);
	return ok;
}

static void schedule_retry(struct kf_redis *r)
{
	r->backoff_ms = r->backoff_ms ? r->backoff_ms * 2 : BACKOFF_MIN_MS;
	if (r->backoff_ms > BACKOFF_MAX_MS)
		r->backoff_ms = BACKOFF_MAX_MS;
	r->next_attempt_ms = now_ms() + r->backoff_ms;
}

/* Connect when there is no connection and the backoff allows.  0 or -1. */
static int ensure(struct kf_redis *r)
{
	struct timeval tv;

	if (r->ctx)
		return 0;
	if (now_ms() < r->next_attempt_ms)
		return -1;
	tv = ms_to_tv(r->connect_timeout_ms);
	if (*r->socket)
		r->ctx = redisConnectUnixWithTimeout(r->socket, tv);
	else
		r->ctx = redisConnectWithTimeout(r->host, r->port, tv);
	if (!r->ctx || r->ctx->err) {
		if (r->backoff_ms == 0)
			kf_err("redis %s: unable to connect: %s", r->where,
			       r->ctx ? r->ctx->errstr : "out of memory");
		goto out_fail;
	}
	tv = ms_to_tv(r->command_timeout_ms);
	if (redisSetTimeout(r->ctx, tv) != REDIS_OK)
		goto out_fail;
	if (*r->password &&
	    !setup_cmd(r, "AUTH", redisCommand(r->ctx, "AUTH %s", r->password)))
		goto out_fail;
	if (r->db && !setup_cmd(r, "SELECT", redisCommand(r->ctx, "SELECT %d", r->db)))
		goto out_fail;
	if (r->backoff_ms)
		kf_info("redis %s: connected again", r->where);
	r->backoff_ms = 0;
	return 0;

out_fail:
	drop(r);
	schedule_retry(r);
	return -1;
}

void kf_redis_set_spin(struct kf_redis *r, int usec)
{
	r->spin_us = usec > 0 ? usec : 0;
}

/*
 * The next reply.  With a spin, what is buffered is written first and the
 * socket is polled without sleeping for up to spin_us; hiredis's blocking
 * read then finds the answer there (or waits as before).
 */
static int get_reply(struct kf_redis *r, void **reply)
{
	if (r->spin_us > 0) {
		struct pollfd p = { .fd = r->ctx->fd, .events = POLLIN };
		int done = 0;
		int64_t end;

		while (!done)
			if (redisBufferWrite(r->ctx, &done) != REDIS_OK)
				return REDIS_ERR;
		end = now_us() + r->spin_us;
		while (poll(&p, 1, 0) == 0 && now_us() < end)
			;
	}
	return redisGetReply(r->ctx, reply);
}

typedef redisReply *(*run_fn)(struct kf_redis *r, void *arg);

/* Run fn on a working connection, retrying once on a stale one. */
static redisReply *run(struct kf_redis *r, run_fn fn, void *arg)
{
	for (int attempt = 0; attempt < 2; attempt++) {
		bool was_connected = r->ctx != NULL;
		redisReply *reply;

		if (ensure(r) != 0)
			break;
		reply = fn(r, arg);
		if (reply) {
			r->up = true;
			return reply;
		}
		kf_warn("redis %s: command failed: %s", r->where,
			r->ctx->errstr[0] ? r->ctx->errstr : "no reply");
		drop(r);
		if (!was_connected) {
			schedule_retry(r);
			break;
		}
		/* the old connection died: try a fresh one once, now */
		r->next_attempt_ms = 0;
	}
	r->up = false;
	return NULL;
}

struct vcmd {
	const char *fmt;
	va_list *ap;
};

static redisReply *run_vcmd(struct kf_redis *r, void *arg)
{
	struct vcmd *v = arg;
	va_list ap;
	void *reply = NULL;
	int rc;

	va_copy(ap, *v->ap);
	rc = redisvAppendCommand(r->ctx, v->fmt, ap);
	va_end(ap);
	if (rc != REDIS_OK || get_reply(r, &reply) != REDIS_OK)
		return NULL;
	return reply;
}

redisReply *kf_redis_cmd(struct kf_redis *r, const char *fmt, ...)
{
	va_list ap;
	struct vcmd v = { fmt, &ap };
	redisReply *reply;

	va_start(ap, fmt);
	reply = run(r, run_vcmd, &v);
	va_end(ap);
	return reply;
}

struct argv_cmd {
	int argc;
	const char **argv;
	const size_t *argvlen;
};

static redisReply *run_argv(struct kf_redis *r, void *arg)
{
	struct argv_cmd *a = arg;
	void *reply = NULL;

	if (redisAppendCommandArgv(r->ctx, a->argc, a->argv, a->argvlen) != REDIS_OK ||
	    get_reply(r, &reply) != REDIS_OK)
		return NULL;
	return reply;
}

redisReply *kf_redis_cmdargv(struct kf_redis *r, int argc, const char **argv,
			     const size_t *argvlen)
{
	struct argv_cmd a = { argc, argv, argvlen };

	return run(r, run_argv, &a);
}

struct pipe {
	size_t n;
	const struct kf_redis_argv *cmds;
	redisReply **replies;
};

/* All replies, or none (NULL): the first reply stands for the whole. */
static redisReply *run_pipe(struct kf_redis *r, void *arg)
{
	struct pipe *p = arg;
	size_t got = 0;

	for (size_t i = 0; i < p->n; i++)
		if (redisAppendCommandArgv(r->ctx, p->cmds[i].argc, p->cmds[i].argv,
					   p->cmds[i].argvlen) != REDIS_OK)
			return NULL; /* nothing was written yet: the connection is dropped */
	for (; got < p->n; got++) {
		void *reply = NULL;

		if ((got == 0 ? get_reply(r, &reply) : redisGetReply(r->ctx, &reply)) != REDIS_OK ||
		    !reply)
			break;
		p->replies[got] = reply;
	}
	if (got == p->n)
		return p->replies[0];
	while (got > 0)
		freeReplyObject(p->replies[--got]);
	return NULL;
}

int kf_redis_pipeline(struct kf_redis *r, size_t n, const struct kf_redis_argv *cmds,
		      redisReply **replies)
{
	struct pipe p = { n, cmds, replies };

	for (size_t i = 0; i < n; i++)
		replies[i] = NULL;
	if (n == 0)
		return 0;
	return run(r, run_pipe, &p) ? 0 : -1;
}

bool kf_redis_up(const struct kf_redis *r)
{
	return r->up;
}
