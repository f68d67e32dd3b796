#include "kf_compat.h"

#include "request.h"

#include <errno.h>
#include <stdlib.h>
#include <strings.h>

#include <sodium.h>

#include "kf_json.h"
#include "kf_mem.h"
#include "reply.h"

const char *kf_req_env(const struct kf_req *req, const char *name)
{
	size_t n = strlen(name);

	if (!req->envp)
		return NULL;
	for (char **e = req->envp; *e; e++)
		if (strncmp(*e, name, n) == 0 && (*e)[n] == '=')
			return *e + n + 1;
	return NULL;
}

void kf_req_init(struct kf_req *req, char **envp, const struct kf_net_trust *trusted)
{
	const char *uri, *cl;

	memset(req, 0, sizeof(*req));
	req->envp = envp;
	req->method = kf_req_env(req, "REQUEST_METHOD");
	if (!req->method)
		req->method = "GET";
	/*
	 * REQUEST_URI is the one variable every server sets the same way
	 * (Apache's mod_proxy_fcgi puts the whole path in SCRIPT_NAME).
	 */
	uri = kf_req_env(req, "REQUEST_URI");
	if (uri && *uri) {
		const char *q = strchr(uri, '?');

		req->path = kf_xmemdup0(uri, q ? (size_t)(q - uri) : strlen(uri));
	} else {
		struct kf_buf p = KF_BUF_INIT;
		const char *sn = kf_req_env(req, "SCRIPT_NAME");
		const char *pi = kf_req_env(req, "PATH_INFO");

		kf_buf_adds(&p, sn ? sn : "");
		kf_buf_adds(&p, pi ? pi : "");
		if (p.len == 0)
			kf_buf_addc(&p, '/');
		req->path = kf_buf_detach(&p, NULL);
	}
	req->query = kf_req_env(req, "QUERY_STRING");
	if (!req->query)
		req->query = "";
	req->content_type = kf_req_env(req, "CONTENT_TYPE");
	req->content_length = 0;
	cl = kf_req_env(req, "CONTENT_LENGTH");
	if (cl && *cl) {
		char *end;

		errno = 0;
		req->content_length = strtoll(cl, &end, 10);
		if (*end || errno || req->content_length < 0)
			req->content_length = -1;
	}
	req->cookie = kf_req_env(req, "HTTP_COOKIE");
	req->authorization = kf_req_env(req, "HTTP_AUTHORIZATION");
	req->origin = kf_req_env(req, "HTTP_ORIGIN");
	req->remote_addr = kf_req_env(req, "REMOTE_ADDR");
	kf_net_client_ip(trusted, req->remote_addr, kf_req_env(req, "HTTP_X_FORWARDED_FOR"),
			 req->client_ip);
	req->params = json_object_new_object();
}

void kf_req_release(struct kf_req *req)
{
	free(req->path);
	json_object_put(req->params);
	kf_buf_release(&req->body);
	sodium_memzero(req->token, sizeof(req->token));
	if (req->prefetched)
		freeReplyObject(req->prefetched);
	memset(req, 0, sizeof(*req));
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

bool kf_req_urldecode(const char *s, size_t n, struct kf_buf *out)
{
	kf_buf_grow(out, n);
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '+') {
			kf_buf_addc(out, ' ');
		} else if (s[i] == '%') {
			int hi, lo;

			if (i + 2 >= n)
				return false;
			hi = hexval(s[i + 1]);
			lo = hexval(s[i + 2]);
			if (hi < 0 || lo < 0)
				return false;
			kf_buf_addc(out, (char)(hi * 16 + lo));
			i += 2;
		} else {
			kf_buf_addc(out, s[i]);
		}
	}
	return true;
}

/* Parse "a=1&b=2" into params.  -1 with rep set on bad input. */
static int parse_urlencoded(struct kf_req *req, struct kf_reply *rep, const char *s, size_t n,
			    const char *where)
{
	struct kf_buf name = KF_BUF_INIT, value = KF_BUF_INIT;
	size_t i = 0;
	int rc = 0;

	while (i < n) {
		size_t start = i, eq = (size_t)-1;

		while (i < n && s[i] != '&') {
			if (s[i] == '=' && eq == (size_t)-1)
				eq = i;
			i++;
		}
		if (i > start) {
			size_t name_end = eq == (size_t)-1 ? i : eq;

			kf_buf_reset(&name);
			kf_buf_reset(&value);
			if (!kf_req_urldecode(s + start, name_end - start, &name) ||
			    (eq != (size_t)-1 && !kf_req_urldecode(s + eq + 1, i - eq - 1, &value))) {
				kf_reply_error(rep, 400, "malformed percent-encoding in the %s", where);
				rc = -1;
				break;
			}
			if (name.len == 0 || memchr(name.data, '\0', name.len) ||
			    !kf_utf8_valid(name.data, name.len) || name.len > 64) {
				kf_reply_error(rep, 400, "malformed field name in the %s", where);
				rc = -1;
				break;
			}
			if (json_object_object_length(req->params) >= KF_REQ_MAX_PARAMS) {
				kf_reply_error(rep, 400, "more than %d fields", KF_REQ_MAX_PARAMS);
				rc = -1;
				break;
			}
			kf_json_set_strn(req->params, name.data, kf_buf_str(&value), value.len);
		}
		i++; /* skip '&' */
	}
	kf_buf_release(&name);
	kf_buf_release(&value);
	return rc;
}

/* The media type of a Content-Type value, lowercased, without parameters. */
static void media_type(const char *ct, char *out, size_t size)
{
	size_t n = 0;

	while (*ct == ' ')
		ct++;
	while (*ct && *ct != ';' && *ct != ' ' && n + 1 < size) {
		char c = *ct++;

		out[n++] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
	}
	out[n] = '\0';
}

static int parse_json_body(struct kf_req *req, struct kf_reply *rep)
{
	const char *why;
	struct json_object *obj = kf_json_parse(req->body.data, req->body.len, 0, &why);

	if (!obj) {
		kf_reply_error(rep, 400, "invalid JSON body: %s", why ? why : "null is not an object");
		return -1;
	}
	if (!json_object_is_type(obj, json_type_object)) {
		kf_reply_error(rep, 400, "invalid JSON body: expected an object");
		json_object_put(obj);
		return -1;
	}
	if (json_object_object_length(obj) + json_object_object_length(req->params) >
	    KF_REQ_MAX_PARAMS) {
		kf_reply_error(rep, 400, "more than %d fields", KF_REQ_MAX_PARAMS);
		json_object_put(obj);
		return -1;
	}
	json_object_object_foreach(obj, key, val)
		json_object_object_add(req->params, key, json_object_get(val));
	json_object_put(obj);
	return 0;
}

int kf_req_parse_params(struct kf_req *req, struct kf_reply *rep)
{
	char type[128];

	if (parse_urlencoded(req, rep, req->query, strlen(req->query), "query string") != 0)
		return -1;
	if (req->body.len == 0)
		return 0;
	media_type(req->content_type ? req->content_type : "", type, sizeof(type));
	if (strcmp(type, "application/json") == 0)
		return parse_json_body(req, rep);
	if (strcmp(type, "application/x-www-form-urlencoded") == 0)
		return parse_urlencoded(req, rep, req->body.data, req->body.len, "form body");
	kf_reply_error(rep, 415,
		       "unsupported content type '%s': send application/json or "
		       "application/x-www-form-urlencoded",
		       *type ? type : "(none)");
	return -1;
}

const char *kf_req_token(const struct kf_req *req, size_t *len)
{
	return kf_key_from_headers(req->authorization, req->cookie, len);
}

int kf_req_str(struct kf_req *req, struct kf_reply *rep, const char *name, bool optional,
	       size_t min_chars, size_t max_chars, const char **out, size_t *len)
{
	struct json_object *v;
	const char *s;
	size_t n, chars;

	*out = NULL;
	*len = 0;
	if (!json_object_object_get_ex(req->params, name, &v) || !v) {
		if (optional)
			return 0;
		kf_reply_error(rep, 400, "missing field '%s'", name);
		return -1;
	}
	if (!json_object_is_type(v, json_type_string)) {
		kf_reply_error(rep, 400, "field '%s' must be a string", name);
		return -1;
	}
	s = json_object_get_string(v);
	n = (size_t)json_object_get_string_len(v);
	if (!kf_utf8_valid(s, n) || memchr(s, '\0', n)) {
		kf_reply_error(rep, 400, "field '%s' must be valid UTF-8 text", name);
		return -1;
	}
	chars = kf_utf8_len(s, n);
	if (chars == 0 && !optional) {
		kf_reply_error(rep, 400, "missing field '%s'", name);
		return -1;
	}
	if (chars < min_chars) {
		kf_reply_error(rep, 400, "field '%s' must be at least %zu characters", name,
			       min_chars);
		return -1;
	}
	if (chars > max_chars) {
		kf_reply_error(rep, 400, "field '%s' must be at most %zu characters", name,
			       max_chars);
		return -1;
	}
	*out = s;
	*len = n;
	return 0;
}

int kf_req_int(struct kf_req *req, struct kf_reply *rep, const char *name, bool optional,
	       int64_t def, int64_t lo, int64_t hi, int64_t *out)
{
	struct json_object *v;
	int64_t n;

	*out = def;
	if (!json_object_object_get_ex(req->params, name, &v) || !v ||
	    (json_object_is_type(v, json_type_string) && json_object_get_string_len(v) == 0)) {
		if (optional)
			return 0;
		kf_reply_error(rep, 400, "missing field '%s'", name);
		return -1;
	}
	if (json_object_is_type(v, json_type_int)) {
		n = json_object_get_int64(v);
		if (n == INT64_MAX || n == INT64_MIN) { /* json-c saturates out-of-range numbers */
			kf_reply_error(rep, 400, "field '%s' must be between %lld and %lld", name,
				       (long long)lo, (long long)hi);
			return -1;
		}
	} else if (json_object_is_type(v, json_type_string)) {
		const char *s = json_object_get_string(v);
		char *end;

		errno = 0;
		n = strtoll(s, &end, 10);
		if (*end || errno || end == s || (size_t)(end - s) !=
						      (size_t)json_object_get_string_len(v)) {
			kf_reply_error(rep, 400, "field '%s' must be a whole number", name);
			return -1;
		}
	} else {
		kf_reply_error(rep, 400, "field '%s' must be a whole number", name);
		return -1;
	}
	if (n < lo || n > hi) {
		kf_reply_error(rep, 400, "field '%s' must be between %lld and %lld", name,
			       (long long)lo, (long long)hi);
		return -1;
	}
	*out = n;
	return 0;
}
