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
 * Functions return 0, KF_ERR_NOTFOUND, or KF_ERR_STORE when Redis is
 * unavailable or answered an error (logged).
 */
#ifndef KF_STORE_H
#define KF_STORE_H

#include "kf_compat.h"

#include <time.h>

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

/* Current failure counts for ip and username (0 when none). */
int kf_store_login_failures(struct kf_redis *r, const char *prefix, const char *ip,
			    const char *user, size_t user_len, time_t now, long *ip_count,
			    long *user_count);
/* Count one failure against ip (until midnight) and user (window_sec). */
int kf_store_login_failed(struct kf_redis *r, const char *prefix, const char *ip,
			  const char *user, size_t user_len, time_t now, long window_sec);
/* Seconds from now to the next local midnight (at least 1). */
long kf_store_until_midnight(time_t now);

#endif
