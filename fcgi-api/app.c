#include "kf_compat.h"

#include "app.h"

#include <strings.h>

#include "api.h"
#include "kf_err.h"
#include "kf_json.h"
#include "kf_log.h"
#include "kf_store.h"
#include "rbac.h"
#include "reply.h"
#include "request.h"
#include "router.h"

/* Longest parameter dump on a trace line. */
#define TRACE_PARAMS_MAX 512

bool kf_app_refuse_body(struct kf_worker *w, struct kf_req *req, struct kf_reply *rep)
{
	if (req->content_length < 0) {
		kf_reply_error(rep, 400, "malformed Content-Length");
		return true;
	}
	if ((unsigned long long)req->content_length > w->api->max_body) {
		kf_reply_error(rep, 413, "request body too large: at most %zu bytes",
			       w->api->max_body);
		return true;
	}
	return false;
}

static void cors_headers(struct kf_worker *w, struct kf_req *req, struct kf_reply *rep)
{
	if (!kf_api_origin_allowed(w->api, req->origin))
		return;
	kf_reply_header(rep, "Access-Control-Allow-Origin: %s", req->origin);
	kf_reply_header(rep, "Access-Control-Allow-Credentials: true");
	kf_reply_header(rep, "Vary: Origin");
}

/* Answer a CORS preflight.  True when req was one. */
static bool preflight(struct kf_worker *w, struct kf_req *req, struct kf_reply *rep)
{
	if (strcmp(req->method, "OPTIONS") != 0 || !req->origin ||
	    !kf_req_env(req, "HTTP_ACCESS_CONTROL_REQUEST_METHOD"))
		return false;
	if (!kf_api_origin_allowed(w->api, req->origin)) {
		kf_reply_error(rep, 403, "origin '%s' is not allowed", req->origin);
		return true;
	}
	kf_reply_set(rep, 204, "", NULL);
	cors_headers(w, req, rep);
	kf_reply_header(rep, "Access-Control-Allow-Methods: GET, POST, OPTIONS");
	kf_reply_header(rep, "Access-Control-Allow-Headers: Content-Type, Authorization");
	kf_reply_header(rep, "Access-Control-Max-Age: 600");
	return true;
}

/* Check the session a route needs.  False with rep set when refused. */
static bool authenticate(struct kf_worker *w, struct kf_req *req, struct kf_reply *rep)
{
	size_t len = 0;
	const char *token = kf_req_token(req, &len);
	int rc;

	if (!token) {
		kf_reply_error(rep, 401, "not logged in");
		return false;
	}
	if (req->route->auth == KF_AUTH_RBAC) {
		/* the permission check needs the RBAC version: same round trip,
		 * and so does what the route reads whoever asks */
		struct kf_store_cmd view, *pre = NULL;

		if (req->route->prefetch == KF_PREFETCH_VIEW) {
			kf_store_chat_view_cmd(&view, w->api->prefix, 0, time(NULL));
			pre = &view;
		}
		rc = kf_store_session_get_rbac(w->redis, w->api->prefix, token, len,
					       &req->session, req->rbac_version, pre,
					       &req->prefetched);
		req->has_rbac_version = rc != KF_ERR_STORE;
	} else {
		rc = kf_store_session_get(w->redis, w->api->prefix, token, len, &req->session);
	}
	if (rc == KF_ERR_STORE) {
		kf_reply_error(rep, 503, "service unavailable: a data store is down, try again shortly");
		return false;
	}
	if (rc != 0) {
		kf_reply_error(rep, 401, "not logged in");
		return false;
	}
	memcpy(req->token, token, len);
	req->token[len] = '\0';
	req->has_session = true;
	return true;
}

void kf_app_handle(struct kf_worker *w, struct kf_req *req, struct kf_reply *rep)
{
	unsigned allowed = 0;
	unsigned m = kf_method_bit(req->method);

	if (preflight(w, req, rep))
		return;
	cors_headers(w, req, rep);
	req->route = kf_router_match(req->path, m, &allowed);
	if (!req->route) {
		if (allowed) {
			struct kf_buf list = KF_BUF_INIT;

			kf_router_allow(allowed, &list);
			kf_reply_header(rep, "Allow: %s", list.data);
			kf_reply_error(rep, 405, "method %s not allowed on %s (use %s)", req->method,
				       req->path, list.data);
			kf_buf_release(&list);
		} else {
			kf_reply_error(rep, 404, "no such endpoint");
		}
		return;
	}
	if (kf_req_parse_params(req, rep) != 0)
		return;
	if (req->route->auth != KF_AUTH_NONE && !authenticate(w, req, rep))
		return;
	if (req->route->auth == KF_AUTH_RBAC && !kf_rbac_authorize(w, req, rep))
		return;
	req->route->fn(w, req, rep);
}

/* True when word (lowercase) occurs in s, ignoring case. */
static bool contains_word(const char *s, const char *word)
{
	size_t n = strlen(word);

	for (; *s; s++)
		if (strncasecmp(s, word, n) == 0)
			return true;
	return false;
}

/* A field whose value must never reach a log. */
static bool secret_field(const char *name)
{
	static const char *const words[] = { "password", "pwd", "token", "secret", "key", "gid" };

	for (size_t i = 0; i < KF_ARRAY_LEN(words); i++)
		if (contains_word(name, words[i]))
			return true;
	return false;
}

void kf_app_trace(const struct kf_req *req, const struct kf_reply *rep, long long usec)
{
	struct json_object *shown;
	struct kf_buf params = KF_BUF_INIT;

	if (!kf_log_enabled(KF_LOG_INFO))
		return;
	shown = json_object_new_object();
	json_object_object_foreach(req->params, key, val) {
		if (secret_field(key))
			kf_json_set_str(shown, key, "***");
		else
			json_object_object_add(shown, key, json_object_get(val));
	}
	kf_json_append(&params, shown);
	json_object_put(shown);
	kf_info("%s %.200s ip=%s status=%d dur=%lld.%03lldms type=%.60s params=%.*s%s",
		req->method, req->path, req->client_ip, rep->status, usec / 1000, usec % 1000,
		req->content_type ? req->content_type : "-",
		(int)(params.len > TRACE_PARAMS_MAX ? TRACE_PARAMS_MAX : params.len),
		kf_buf_str(&params), params.len > TRACE_PARAMS_MAX ? "..." : "");
	kf_buf_release(&params);
}
