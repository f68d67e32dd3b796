/*
 * request.h - one HTTP request as FastCGI hands it over: the CGI
 * environment, the body, and the parameters parsed from the query string
 * and a form or JSON body, under limits.
 *
 * Parameters land in one JSON object (req->params): query-string fields
 * first, then body fields, which win on a clash.  Form and query values are
 * strings; a JSON body keeps its types.  Field getters check type, UTF-8
 * and length, and on failure fill the reply with a 400 naming the field.
 *
 * A request borrows envp (valid until the FastCGI request finishes) and
 * owns everything else; kf_req_release() frees it.
 */
#ifndef KF_REQUEST_H
#define KF_REQUEST_H

#include "kf_compat.h"

#include <json-c/json.h>

#include "kf_buf.h"
#include "kf_key.h"
#include "kf_net.h"
#include "kf_store.h"

struct kf_reply;
struct kf_route;

/* Most parameters one request may carry. */
#define KF_REQ_MAX_PARAMS 64

struct kf_req {
	char **envp;
	const char *method;
	char *path;
	const char *query;
	const char *content_type;
	long long content_length;  /* -1 when absent or malformed */
	const char *cookie;
	const char *authorization;
	const char *origin;
	const char *remote_addr;
	char client_ip[KF_NET_ADDR_MAX];
	struct json_object *params;
	struct kf_buf body;
	const struct kf_route *route;
	bool has_session;
	struct kf_session session;
	char token[KF_KEY_LEN + 1];  /* the session token presented, when valid */
	bool has_rbac_version;       /* read with the session (KF_AUTH_RBAC routes) */
	char rbac_version[KF_STORE_VERSION_MAX];
	redisReply *prefetched;      /* the route's prefetch (router.h), or NULL */
};

/* Read the CGI environment (NULL-terminated "NAME=value" strings). */
void kf_req_init(struct kf_req *req, char **envp, const struct kf_net_trust *trusted);
void kf_req_release(struct kf_req *req);
/* The value of a CGI variable, or NULL. */
const char *kf_req_env(const struct kf_req *req, const char *name);

/*
 * Parse the query string and req->body into req->params.  On bad input
 * fills rep (400 or 415, naming the problem) and returns -1; else 0.
 */
int kf_req_parse_params(struct kf_req *req, struct kf_reply *rep);

/*
 * The session token the request carries: "Authorization: Bearer T" first,
 * else the gid cookie.  NULL when none; *len receives its length.
 */
const char *kf_req_token(const struct kf_req *req, size_t *len);

/*
 * String field name, 1..max_chars characters (min_chars when larger than
 * 1), valid UTF-8, no NUL.  Absent: 400 "missing field 'name'" unless
 * optional, when *out = NULL and 0 is returned.  Returns 0 or -1 (rep set).
 */
int kf_req_str(struct kf_req *req, struct kf_reply *rep, const char *name, bool optional,
	       size_t min_chars, size_t max_chars, const char **out, size_t *len);
/*
 * Integer field name in lo..hi, from a JSON number or a decimal string.
 * Absent: *out = def and 0 when optional, else 400.  Returns 0 or -1.
 */
int kf_req_int(struct kf_req *req, struct kf_reply *rep, const char *name, bool optional,
	       int64_t def, int64_t lo, int64_t hi, int64_t *out);

/*
 * Decode the n bytes at s (application/x-www-form-urlencoded: '+' is a
 * space, %XX a byte) into out.  Returns false on a malformed escape.
 */
bool kf_req_urldecode(const char *s, size_t n, struct kf_buf *out);

#endif
