/*
 * kf_redis.h - a synchronous Redis connection for one thread (hiredis).
 *
 * The connection is opened on first use with [Redis] Host, Port, Password
 * (AUTH), Db (SELECT) and the connect/command timeouts.  When Redis cannot
 * be reached, commands fail at once (no waiting) until a backoff of 100 ms
 * doubling to 2 s has passed; then the next command tries again.  A command
 * that fails on a connection that had been working (Redis restarted) is
 * retried once on a fresh connection.  Not thread-safe: one per thread.
 */
#ifndef KF_REDIS_H
#define KF_REDIS_H

#include "kf_compat.h"

#include <hiredis/hiredis.h>

struct kf_config;
struct kf_redis;

/* Options are copied from cfg; nothing is connected yet.  Never NULL. */
struct kf_redis *kf_redis_new(const struct kf_config *cfg);
void kf_redis_free(struct kf_redis *r);

/*
 * Run one command (hiredis format: %s, %b with pointer and length, ...).
 * Returns the reply, which the caller frees with freeReplyObject(); a reply
 * may be of type REDIS_REPLY_ERROR.  Returns NULL when Redis is unavailable.
 */
redisReply *kf_redis_cmd(struct kf_redis *r, const char *fmt, ...);
redisReply *kf_redis_cmdargv(struct kf_redis *r, int argc, const char **argv,
			     const size_t *argvlen);
/* One command of a pipeline, as for kf_redis_cmdargv. */
struct kf_redis_argv {
	int argc;
	const char **argv;
	const size_t *argvlen;
};

/*
 * Send n commands in one write and read their n replies: one round trip.
 * Returns 0 with replies[0..n-1] set (the caller frees each; any may be of
 * type REDIS_REPLY_ERROR), or -1 with none set when Redis is unavailable.
 * Retried once on a fresh connection like kf_redis_cmd.
 */
int kf_redis_pipeline(struct kf_redis *r, size_t n, const struct kf_redis_argv *cmds,
		      redisReply **replies);
/*
 * Poll for each reply without sleeping for up to usec microseconds before
 * the blocking read (0, the default: sleep at once).  For a single-threaded
 * loop that cannot do anything else while it waits: a sleep and a wakeup
 * cost it more than a short answer takes.
 */
void kf_redis_set_spin(struct kf_redis *r, int usec);
/* True when the last command reached Redis. */
bool kf_redis_up(const struct kf_redis *r);

#endif
