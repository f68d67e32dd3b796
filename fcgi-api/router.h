/*
 * router.h - the route table: method, path, what authentication a route
 * needs, and its handler.  The table itself lives in router.c; tests walk
 * it with kf_router_table() so a new route is covered without a new test.
 */
#ifndef KF_ROUTER_H
#define KF_ROUTER_H

#include "kf_compat.h"

struct kf_buf;
struct kf_reply;
struct kf_req;
struct kf_worker;

enum kf_method {
	KF_M_GET = 1 << 0,
	KF_M_POST = 1 << 1,
	KF_M_PUT = 1 << 2,
	KF_M_DELETE = 1 << 3,
	KF_M_PATCH = 1 << 4,
	KF_M_HEAD = 1 << 5,
	KF_M_OPTIONS = 1 << 6,
};

enum kf_auth {
	KF_AUTH_NONE = 0,    /* anyone */
	KF_AUTH_SESSION = 1, /* a valid login session */
	KF_AUTH_RBAC = 2,    /* a session whose role is granted method + path */
};

/*
 * What a route reads from Redis whoever asks: sent in the same round trip
 * as the session and RBAC version (kf_store_session_get_rbac), handed to
 * the handler in req->prefetched.
 */
enum kf_prefetch {
	KF_PREFETCH_NONE = 0,
	KF_PREFETCH_VIEW = 1, /* kf_store_chat_view of every agent */
};

typedef void (*kf_handler_fn)(struct kf_worker *w, struct kf_req *req, struct kf_reply *rep);

struct kf_route {
	const char *path;
	unsigned methods;   /* enum kf_method bits */
	enum kf_auth auth;
	kf_handler_fn fn;
	enum kf_prefetch prefetch; /* KF_AUTH_RBAC routes only */
};

/* The bit of an HTTP method name; 0 when unknown. */
unsigned kf_method_bit(const char *method);
/*
 * The route for path and method bit m.  NULL when there is none; then
 * *allowed holds the methods the path does take (0: unknown path, 404;
 * otherwise 405).
 */
const struct kf_route *kf_router_match(const char *path, unsigned m, unsigned *allowed);
/* Every route, for tests and listings. */
const struct kf_route *kf_router_table(size_t *n);
/* "GET, POST" for a set of method bits, appended to out. */
void kf_router_allow(unsigned methods, struct kf_buf *out);
/*
 * The table as JSON, appended to out: [{"path": P, "methods": ["GET", ...],
 * "auth": "none" | "session" | "rbac"}, ...] (kefu-api --routes).
 */
void kf_router_json(struct kf_buf *out);

#endif
