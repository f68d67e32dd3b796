/*
 * api.h - what every part of kefu-api shares.
 *
 * struct kf_api is built once at start-up from the config and is read-only
 * afterwards (shared by all workers).  struct kf_worker is one worker
 * thread's own state: its Redis and MySQL connections.
 */
#ifndef KF_API_H
#define KF_API_H

#include "kf_compat.h"

#include "kf_password.h"

struct kf_config;
struct kf_db;
struct kf_net_trust;
struct kf_rbac;
struct kf_redis;

struct kf_api {
	const struct kf_config *cfg;   /* borrowed; outlives the api */
	const char *prefix;            /* [Redis] KeyPrefix */
	struct kf_password_cost cost;
	size_t max_body;
	long session_ttl;
	bool cookie_secure;
	long login_max_ip, login_max_user, login_window;
	char **cors_origins;           /* NULL-terminated */
	struct kf_net_trust *trusted;
	struct kf_rbac *rbac;          /* grants cache shared by the workers (rbac.h) */
};

struct kf_worker {
	const struct kf_api *api;
	struct kf_redis *redis;
	struct kf_db *db;
};

/*
 * Build the api from cfg.  Returns NULL with reasons appended to err (a
 * config value that only the api can check, such as TrustedProxies).
 */
struct kf_buf;
struct kf_api *kf_api_new(const struct kf_config *cfg, struct kf_buf *err);
void kf_api_free(struct kf_api *api);
/* True when origin (may be NULL) is in [Api] CorsAllowOrigins. */
bool kf_api_origin_allowed(const struct kf_api *api, const char *origin);

/* A worker's store connections (opened lazily).  Never NULL. */
struct kf_worker *kf_worker_new(const struct kf_api *api);
void kf_worker_free(struct kf_worker *w);

#endif
