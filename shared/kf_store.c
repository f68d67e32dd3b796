#include "kf_compat.h"

#include "kf_store.h"

#include <stdlib.h>

#include "kf_buf.h"
#include "kf_err.h"
#include "kf_key.h"
#include "kf_log.h"
#include "kf_redis.h"

/* INCR a counter and give it an expiry when it is new: atomic in Redis. */
static const char incr_script[] =
	"local n = redis.call('INCR', KEYS[1]) "
	"if n == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end "
	"return n";

static void session_key(struct kf_buf *k, const char *prefix, const char *token, size_t n)
{
	char digest[33];

	kf_key_digest(token, n, digest);
	kf_buf_addf(k, "%ssess:%s", prefix, digest);
}

/* Release reply and map it to 0 / KF_ERR_STORE, logging Redis errors. */
static int check(redisReply *reply, const char *what)
{
	int rc = 0;

	if (!reply)
		return KF_ERR_STORE;
	if (reply->type == REDIS_REPLY_ERROR) {
		kf_err("redis %s: %s", what, reply->str);
		rc = KF_ERR_STORE;
	}
	freeReplyObject(reply);
	return rc;
}

int kf_store_session_create(struct kf_redis *r, const char *prefix,
			    const struct kf_session *s, long ttl_sec, char *token_out)
{
	struct kf_buf k = KF_BUF_INIT;
	int rc;

	kf_key_random(token_out, KF_KEY_LEN);
	session_key(&k, prefix, token_out, KF_KEY_LEN);
	rc = check(kf_redis_cmd(r, "HSET %s admin %lld role %lld", k.data,
				(long long)s->admin_id, (long long)s->role),
		   "HSET session");
	if (rc == 0)
		rc = check(kf_redis_cmd(r, "EXPIRE %s %ld", k.data, ttl_sec), "EXPIRE session");
	if (rc != 0) /* never leave a session without its expiry */
		check(kf_redis_cmd(r, "DEL %s", k.data), "DEL session");
	kf_buf_release(&k);
	return rc;
}

/* The reply to HMGET session admin role into out: 0, KF_ERR_NOTFOUND or KF_ERR_STORE. */
static int session_parse(const redisReply *reply, struct kf_session *out)
{
	if (reply->type == REDIS_REPLY_ARRAY && reply->elements == 2 &&
	    reply->element[0]->type == REDIS_REPLY_STRING &&
	    reply->element[1]->type == REDIS_REPLY_STRING) {
		out->admin_id = strtoll(reply->element[0]->str, NULL, 10);
		out->role = strtoll(reply->element[1]->str, NULL, 10);
		return out->admin_id > 0 ? 0 : KF_ERR_NOTFOUND;
	}
	if (reply->type == REDIS_REPLY_ERROR) {
		kf_err("redis HMGET session: %s", reply->str);
		return KF_ERR_STORE;
	}
	return KF_ERR_NOTFOUND;
}

/* The reply to GET rbac:ver into out: 0 or KF_ERR_STORE. */
static int version_parse(const redisReply *reply, char out[KF_STORE_VERSION_MAX])
{
	out[0] = '\0';
	if (reply->type == REDIS_REPLY_STRING) {
		/* snprintf truncates a longer value: still a version */
		snprintf(out, KF_STORE_VERSION_MAX, "%.*s", (int)reply->len, reply->str);
	} else if (reply->type != REDIS_REPLY_NIL) {
		kf_err("redis GET rbac version: %s",
		       reply->type == REDIS_REPLY_ERROR ? reply->str : "unexpected reply");
		return KF_ERR_STORE;
	}
	return 0;
}

int kf_store_session_get(struct kf_redis *r, const char *prefix, const char *token, size_t n,
			 struct kf_session *out)
{
	struct kf_buf k = KF_BUF_INIT;
	redisReply *reply;
	int rc;

	if (!kf_key_valid(token, n))
		return KF_ERR_NOTFOUND;
	session_key(&k, prefix, token, n);
	reply = kf_redis_cmd(r, "HMGET %s admin role", k.data);
	kf_buf_release(&k);
	if (!reply)
		return KF_ERR_STORE;
	rc = session_parse(reply, out);
	freeReplyObject(reply);
	return rc;
}

static void rbac_key(struct kf_buf *k, const char *prefix);

int kf_store_session_get_rbac(struct kf_redis *r, const char *prefix, const char *token,
			      size_t n, struct kf_session *out, char version[KF_STORE_VERSION_MAX],
			      struct kf_store_cmd *extra, redisReply **extra_reply)
{
	struct kf_buf sk = KF_BUF_INIT, vk = KF_BUF_INIT;
	const char *hmget[] = { "HMGET", NULL, "admin", "role" }, *get[] = { "GET", NULL };
	size_t hmget_len[4] = { 5, 0, 5, 4 }, get_len[2] = { 3, 0 };
	struct kf_redis_argv cmds[3] = { { 4, hmget, hmget_len }, { 2, get, get_len } };
	redisReply *replies[3] = { NULL, NULL, NULL };
	int rc;

	version[0] = '\0';
	if (extra_reply)
		*extra_reply = NULL;
	if (!kf_key_valid(token, n))
		return KF_ERR_NOTFOUND;
	if (extra)
		cmds[2] = (struct kf_redis_argv){ extra->argc, extra->argv, extra->lens };
	session_key(&sk, prefix, token, n);
	rbac_key(&vk, prefix);
	hmget[1] = sk.data;
	hmget_len[1] = sk.len;
	get[1] = vk.data;
	get_len[1] = vk.len;
	rc = kf_redis_pipeline(r, extra ? 3 : 2, cmds, replies) == 0 ? 0 : KF_ERR_STORE;
	kf_buf_release(&sk);
	kf_buf_release(&vk);
	if (rc != 0)
		return rc;
	if (extra)
		*extra_reply = replies[2];
	rc = version_parse(replies[1], version);
	if (rc == 0)
		rc = session_parse(replies[0], out);
	freeReplyObject(replies[0]);
	freeReplyObject(replies[1]);
	return rc;
}

int kf_store_session_delete(struct kf_redis *r, const char *prefix, const char *token,
			    size_t n)
{
	struct kf_buf k = KF_BUF_INIT;
	redisReply *reply;
	int rc;

	if (!kf_key_valid(token, n))
		return KF_ERR_NOTFOUND;
	session_key(&k, prefix, token, n);
	reply = kf_redis_cmd(r, "DEL %s", k.data);
	kf_buf_release(&k);
	if (!reply)
		return KF_ERR_STORE;
	rc = reply->type == REDIS_REPLY_INTEGER ? (reply->integer > 0 ? 0 : KF_ERR_NOTFOUND)
						: KF_ERR_STORE;
	freeReplyObject(reply);
	return rc;
}

long kf_store_until_midnight(time_t now)
{
	struct tm tm;
	time_t midnight;

	localtime_r(&now, &tm);
	tm.tm_hour = 0;
	tm.tm_min = 0;
	tm.tm_sec = 0;
	tm.tm_mday += 1;
	tm.tm_isdst = -1;
	midnight = mktime(&tm);
	return midnight > now ? (long)(midnight - now) : 1;
}

static void ip_key(struct kf_buf *k, const char *prefix, const char *ip, time_t now)
{
	struct tm tm;

	localtime_r(&now, &tm);
	kf_buf_addf(k, "%slf:ip:%s:%04d%02d%02d", prefix, ip, tm.tm_year + 1900, tm.tm_mon + 1,
		    tm.tm_mday);
}

static void user_key(struct kf_buf *k, const char *prefix, const char *user, size_t n)
{
	char digest[33];

	kf_key_digest(user, n, digest);
	kf_buf_addf(k, "%slf:u:%s", prefix, digest);
}

static long reply_count(const redisReply *e)
{
	if (e->type == REDIS_REPLY_STRING)
		return strtol(e->str, NULL, 10);
	if (e->type == REDIS_REPLY_INTEGER)
		return (long)e->integer;
	return 0;
}

int kf_store_login_failures(struct kf_redis *r, const char *prefix, const char *ip,
			    const char *user, size_t user_len, time_t now, long *ip_count,
			    long *user_count)
{
	struct kf_buf ki = KF_BUF_INIT, ku = KF_BUF_INIT;
	redisReply *reply;
	int rc = KF_ERR_STORE;

	ip_key(&ki, prefix, ip, now);
	user_key(&ku, prefix, user, user_len);
	reply = kf_redis_cmd(r, "MGET %s %s", ki.data, ku.data);
	if (reply && reply->type == REDIS_REPLY_ARRAY && reply->elements == 2) {
		*ip_count = reply_count(reply->element[0]);
		*user_count = reply_count(reply->element[1]);
		rc = 0;
	} else if (reply && reply->type == REDIS_REPLY_ERROR) {
		kf_err("redis MGET login failures: %s", reply->str);
	}
	if (reply)
		freeReplyObject(reply);
	kf_buf_release(&ki);
	kf_buf_release(&ku);
	return rc;
}

int kf_store_login_failed(struct kf_redis *r, const char *prefix, const char *ip,
			  const char *user, size_t user_len, time_t now, long window_sec)
{
	struct kf_buf ki = KF_BUF_INIT, ku = KF_BUF_INIT;
	int rc;

	ip_key(&ki, prefix, ip, now);
	user_key(&ku, prefix, user, user_len);
	rc = check(kf_redis_cmd(r, "EVAL %s 1 %s %ld", incr_script, ki.data,
				kf_store_until_midnight(now) + 60),
		   "count ip failure");
	if (rc == 0)
		rc = check(kf_redis_cmd(r, "EVAL %s 1 %s %ld", incr_script, ku.data, window_sec),
			   "count user failure");
	kf_buf_release(&ki);
	kf_buf_release(&ku);
	return rc;
}

static void rbac_key(struct kf_buf *k, const char *prefix)
{
	kf_buf_addf(k, "%srbac:ver", prefix);
}

int kf_store_rbac_version(struct kf_redis *r, const char *prefix,
			  char out[KF_STORE_VERSION_MAX])
{
	struct kf_buf k = KF_BUF_INIT;
	redisReply *reply;
	int rc;

	out[0] = '\0';
	rbac_key(&k, prefix);
	reply = kf_redis_cmd(r, "GET %s", k.data);
	kf_buf_release(&k);
	if (!reply)
		return KF_ERR_STORE;
	rc = version_parse(reply, out);
	freeReplyObject(reply);
	return rc;
}

int kf_store_rbac_bump(struct kf_redis *r, const char *prefix)
{
	struct kf_buf k = KF_BUF_INIT;
	char version[17];
	int rc;

	kf_key_random(version, sizeof(version) - 1);
	rbac_key(&k, prefix);
	rc = check(kf_redis_cmd(r, "SET %s %s", k.data, version), "SET rbac version");
	kf_buf_release(&k);
	return rc;
}
