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
/* True when the last command reached Redis. */
bool kf_redis_up(const struct kf_redis *r);

#endif
