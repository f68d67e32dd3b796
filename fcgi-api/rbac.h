/*
 * rbac.h - who may call which route: permissions (admin_auth), the roles
 * that hold them (admin_auth_map) and the role of each account (admin).
 *
 * A permission names a method pattern and a path pattern:
 *   method  "*" (any), one method ("GET") or a list ("GET,POST"); names
 *           are compared without case, spaces around them are ignored
 *   path    "/"-separated segments; a segment "**" matches any number of
 *           segments (none included), "*" inside a segment matches any run
 *           of characters but never "/" (so "/admin/" followed by "*"
 *           matches "/admin/user", not "/admin/user/add"); anything else
 *           is literal
 * A role is granted a request when it holds an enabled permission whose
 * method and path both match.  Deny by default.
 *
 * Each process keeps one cache of the enabled grants by role and of every
 * account's current role, shared by its worker threads (a rwlock).  Every
 * change made through the API stores a new random version under the Redis
 * key PREFIX rbac:ver (kf_store.h); each request reads that key (one GET)
 * and reloads the cache from MySQL when it moved, so a change is in force
 * on the next request in every worker of every process.  The cache is also
 * reloaded when older than [Api] RbacReloadSec, which covers changes made
 * behind kefu's back (SQL by hand).
 *
 * The request's account is checked by its current role from MySQL (through
 * the cache), never the role recorded in the session: an account that was
 * deleted is logged out on its next request, one that was demoted has the
 * rights of its new role.
 */
#ifndef KF_RBAC_H
#define KF_RBAC_H

#include "kf_compat.h"

struct kf_db;
struct kf_rbac;
struct kf_reply;
struct kf_req;
struct kf_route;
struct kf_worker;

/* Longest method and path pattern (the admin_auth columns), in bytes. */
#define KF_RBAC_METHOD_MAX 20
#define KF_RBAC_PATH_MAX 200

/* One enabled permission held by a role; strings borrowed. */
struct kf_rbac_grant {
	int64_t role;
	const char *method;
	const char *path;
};

/* True when method pattern pat (NULL: none) matches method (e.g. "POST"). */
bool kf_rbac_method_match(const char *pat, const char *method);
/* True when path pattern pat (NULL: none) matches path. */
bool kf_rbac_path_match(const char *pat, const char *path);
/*
 * Check a method pattern (n bytes) a client wants to store: "*" or a
 * comma-separated list of GET, POST, PUT, DELETE, PATCH, HEAD, OPTIONS.
 * Returns NULL when good, else a static reason.
 */
const char *kf_rbac_method_invalid(const char *pat, size_t n);
/*
 * Check a path pattern (n bytes): starts with "/", no empty segment but a
 * final one, no whitespace or control characters, no '?' or '#'.  Returns
 * NULL when good, else a static reason.
 */
const char *kf_rbac_path_invalid(const char *pat, size_t n);

/*
 * True when the n grants (whatever their role field) together let through
 * every method of every KF_AUTH_RBAC route under /admin/ in routes[0..nr):
 * such a role "reaches every admin route", as the seed's grant of "*" on
 * "/admin/" + "**" did.  kefu keeps at least one account whose role does
 * (see kf_rbac_count_super).
 */
bool kf_rbac_covers_admin(const struct kf_rbac_grant *g, size_t n,
			  const struct kf_route *routes, size_t nr);

/* An empty cache; reloaded when older than max_age_sec.  Never NULL. */
struct kf_rbac *kf_rbac_new(long max_age_sec);
void kf_rbac_free(struct kf_rbac *rbac);
/* Forget the cache so the next check in this process reloads it. */
void kf_rbac_invalidate(struct kf_rbac *rbac);

/*
 * Is req's session account, by its current role, granted method on path?
 * Uses the RBAC version read with the session (req->has_rbac_version) or
 * else reads it from the worker's Redis; MySQL for reloads.  Returns 0 (granted;
 * *role receives the account's role), KF_ERR_AUTH (not granted),
 * KF_ERR_NOTFOUND (no such account) or KF_ERR_STORE.
 */
int kf_rbac_check(struct kf_worker *w, const struct kf_req *req, const char *method,
		  const char *path, int64_t *role);

/*
 * The pipeline's grant check for a request that has a session: true when
 * granted (req->session.role is set to the current role); otherwise fills
 * rep with 401 (the account is gone: the session is deleted too), 403 or
 * 503, and returns false.
 */
bool kf_rbac_authorize(struct kf_worker *w, struct kf_req *req, struct kf_reply *rep);

/*
 * Inside a transaction on db's primary: how many accounts hold a role that
 * reaches every admin route (kf_rbac_covers_admin over the route table),
 * read with locking reads so that the count is the committed truth.
 * Returns 0 or KF_ERR_STORE.
 */
int kf_rbac_count_super(struct kf_db *db, long *count);

/*
 * After a committed change to accounts, roles or grants: store a new
 * version in Redis and drop this process's cache.  Returns 0, or
 * KF_ERR_STORE when Redis could not be told (other processes then see the
 * change within [Api] RbacReloadSec).
 */
int kf_rbac_changed(struct kf_worker *w);

#endif
