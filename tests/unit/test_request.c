/*
 * test_request.c - request: the CGI environment, parameters from the query
 * string and a form or JSON body, typed field getters, the session token,
 * and URL decoding.
 */
#include "kf_compat.h"

#include <criterion/criterion.h>

#include "kf_buf.h"
#include "kf_net.h"
#include "reply.h"
#include "request.h"

/* A request from env with body (may be NULL), and an empty reply. */
static void start(struct kf_req *req, struct kf_reply *rep, char **env, const char *body)
{
	kf_req_init(req, env, NULL);
	if (body)
		kf_buf_adds(&req->body, body);
	kf_reply_init(rep);
}

static void finish(struct kf_req *req, struct kf_reply *rep)
{
	kf_req_release(req);
	kf_reply_release(rep);
}

/* The string parameter name, or NULL. */
static const char *param(struct kf_req *req, const char *name)
{
	struct json_object *v;

	if (!json_object_object_get_ex(req->params, name, &v) ||
	    !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

/* Assert rep is an error with status and a message holding needle. */
static void assert_error(const struct kf_reply *rep, int status, const char *needle)
{
	cr_expect_eq(rep->status, status, "status %d (%s), expected %d", rep->status,
		     kf_buf_str(&rep->message), status);
	if (needle)
		cr_expect_not_null(strstr(kf_buf_str(&rep->message), needle),
				   "'%s' not in message '%s'", needle, kf_buf_str(&rep->message));
}

/* Parse a POST with content type ct and body; return kf_req_parse_params. */
static int parse_post(struct kf_req *req, struct kf_reply *rep, char *ct_env, const char *query,
		      const char *body)
{
	static char qbuf[8192];
	char *env[] = { "REQUEST_METHOD=POST", "REQUEST_URI=/x", ct_env, qbuf, NULL };

	cr_assert(snprintf(qbuf, sizeof(qbuf), "QUERY_STRING=%s", query ? query : "") <
		  (int)sizeof(qbuf));
	if (!ct_env) {
		env[2] = qbuf;
		env[3] = NULL;
	}
	start(req, rep, env, body);
	/* env is on this stack frame: parse before it goes */
	{
		int rc = kf_req_parse_params(req, rep);

		req->envp = NULL;
		req->content_type = NULL;
		req->query = "";
		return rc;
	}
}

static char *full_env[] = {
	"REQUEST_METHOD=POST",
	"REQUEST_URI=/admin/login?a=1&b=2",
	"QUERY_STRING=a=1&b=2",
	"CONTENT_TYPE=application/x-www-form-urlencoded",
	"CONTENT_LENGTH=17",
	"HTTP_COOKIE=a=b; gid=XYZ; c=d",
	"HTTP_COOKIE2=ignored",
	"HTTP_AUTHORIZATION=Bearer abcdefghijklmnopqrstuvwxyzABCDEF",
	"HTTP_ORIGIN=https://a.example",
	"REMOTE_ADDR=192.0.2.7",
	NULL,
};

Test(request, init_reads_environment)
{
	struct kf_req req;

	kf_req_init(&req, full_env, NULL);
	cr_expect_str_eq(req.method, "POST");
	cr_expect_str_eq(req.path, "/admin/login");
	cr_expect_str_eq(req.query, "a=1&b=2");
	cr_expect_str_eq(req.content_type, "application/x-www-form-urlencoded");
	cr_expect_eq(req.content_length, 17);
	cr_expect_str_eq(req.cookie, "a=b; gid=XYZ; c=d");
	cr_expect_str_eq(req.authorization, "Bearer abcdefghijklmnopqrstuvwxyzABCDEF");
	cr_expect_str_eq(req.origin, "https://a.example");
	cr_expect_str_eq(req.remote_addr, "192.0.2.7");
	cr_expect_str_eq(req.client_ip, "192.0.2.7");
	cr_assert_not_null(req.params);
	cr_expect_eq(json_object_object_length(req.params), 0);
	cr_expect_eq(req.body.len, 0);
	cr_expect_not(req.has_session);
	cr_expect_null(req.route);
	cr_expect_str_eq(kf_req_env(&req, "HTTP_COOKIE"), "a=b; gid=XYZ; c=d");
	cr_expect_str_eq(kf_req_env(&req, "HTTP_COOKIE2"), "ignored");
	cr_expect_null(kf_req_env(&req, "HTTP_COOK"));
	cr_expect_null(kf_req_env(&req, "NOPE"));
	kf_req_release(&req);
}

Test(request, init_defaults)
{
	char *env[] = { NULL };
	struct kf_req req;

	kf_req_init(&req, env, NULL);
	cr_expect_str_eq(req.method, "GET");
	cr_expect_str_eq(req.path, "/");
	cr_expect_str_eq(req.query, "");
	cr_expect_null(req.content_type);
	cr_expect_eq(req.content_length, 0);
	cr_expect_null(req.cookie);
	cr_expect_null(req.authorization);
	cr_expect_null(req.origin);
	cr_expect_str_eq(req.client_ip, "");
	kf_req_release(&req);

	kf_req_init(&req, NULL, NULL);
	cr_expect_str_eq(req.path, "/");
	kf_req_release(&req);
}

Test(request, init_path_without_request_uri)
{
	char *env[] = { "SCRIPT_NAME=/admin", "PATH_INFO=/me", "QUERY_STRING=x=1", NULL };
	struct kf_req req;

	kf_req_init(&req, env, NULL);
	cr_expect_str_eq(req.path, "/admin/me");
	cr_expect_str_eq(req.query, "x=1");
	kf_req_release(&req);
}

Test(request, init_path_excludes_query)
{
	char *env[] = { "REQUEST_URI=/healthz?", NULL };
	char *env2[] = { "REQUEST_URI=/a/b?c=d?e", NULL };
	struct kf_req req;

	kf_req_init(&req, env, NULL);
	cr_expect_str_eq(req.path, "/healthz");
	kf_req_release(&req);
	kf_req_init(&req, env2, NULL);
	cr_expect_str_eq(req.path, "/a/b");
	kf_req_release(&req);
}

Test(request, init_content_length)
{
	static const struct {
		const char *env;
		long long want;
	} cases[] = {
		{ "CONTENT_LENGTH=0", 0 },
		{ "CONTENT_LENGTH=", 0 },
		{ "CONTENT_LENGTH=65536", 65536 },
		{ "CONTENT_LENGTH=-1", -1 },
		{ "CONTENT_LENGTH=12abc", -1 },
		{ "CONTENT_LENGTH=abc", -1 },
		{ "CONTENT_LENGTH=99999999999999999999999", -1 },
	};

	for (size_t i = 0; i < KF_ARRAY_LEN(cases); i++) {
		char buf[64];
		char *env[] = { buf, NULL };
		struct kf_req req;

		cr_assert(snprintf(buf, sizeof(buf), "%s", cases[i].env) < (int)sizeof(buf));
		kf_req_init(&req, env, NULL);
		cr_expect_eq(req.content_length, cases[i].want, "%s gave %lld", cases[i].env,
			     req.content_length);
		kf_req_release(&req);
	}
}

Test(request, init_client_ip_behind_proxy)
{
	char *env[] = { "REMOTE_ADDR=127.0.0.1", "HTTP_X_FORWARDED_FOR=6.6.6.6, 198.51.100.4",
			NULL };
	struct kf_buf err = KF_BUF_INIT;
	struct kf_net_trust *t = kf_net_trust_parse("127.0.0.1", &err);
	struct kf_req req;

	cr_assert_not_null(t);
	kf_req_init(&req, env, t);
	cr_expect_str_eq(req.client_ip, "198.51.100.4");
	cr_expect_str_eq(req.remote_addr, "127.0.0.1");
	kf_req_release(&req);
	kf_req_init(&req, env, NULL);
	cr_expect_str_eq(req.client_ip, "127.0.0.1");
	kf_req_release(&req);
	kf_net_trust_free(t);
	kf_buf_release(&err);
}

Test(request, params_query_and_form)
{
	char *env[] = { "REQUEST_METHOD=POST",
			"REQUEST_URI=/x?q=1",
			"QUERY_STRING=q=1&a=from-query&flag",
			"CONTENT_TYPE=application/x-www-form-urlencoded; charset=UTF-8",
			NULL };
	struct kf_req req;
	struct kf_reply rep;

	start(&req, &rep, env, "a=1&b=x+y%21&&c=&%C3%A9=%E4%BD%A0&");
	cr_assert_eq(kf_req_parse_params(&req, &rep), 0, "%s", kf_buf_str(&rep.message));
	cr_expect_eq(rep.status, 200);
	cr_expect_str_eq(param(&req, "q"), "1");
	cr_expect_str_eq(param(&req, "flag"), "");
	/* the body wins a clash with the query string */
	cr_expect_str_eq(param(&req, "a"), "1");
	cr_expect_str_eq(param(&req, "b"), "x y!");
	cr_expect_str_eq(param(&req, "c"), "");
	cr_expect_str_eq(param(&req, "\xc3\xa9"), "\xe4\xbd\xa0");
	cr_expect_eq(json_object_object_length(req.params), 6);
	finish(&req, &rep);
}

Test(request, params_value_with_equals)
{
	struct kf_req req;
	struct kf_reply rep;

	cr_assert_eq(parse_post(&req, &rep, "CONTENT_TYPE=application/x-www-form-urlencoded", NULL,
				"k=a=b%3Dc"),
		     0);
	cr_expect_str_eq(param(&req, "k"), "a=b=c");
	finish(&req, &rep);
}

Test(request, params_json_body)
{
	char *env[] = { "REQUEST_METHOD=POST", "REQUEST_URI=/x",
			"QUERY_STRING=a=query&keep=yes",
			"CONTENT_TYPE=Application/JSON; charset=utf-8", NULL };
	struct kf_req req;
	struct kf_reply rep;
	struct json_object *v;

	start(&req, &rep, env, "{\"a\": \"json\", \"n\": 5, \"t\": true, \"o\": {\"x\": [1]}}");
	cr_assert_eq(kf_req_parse_params(&req, &rep), 0, "%s", kf_buf_str(&rep.message));
	cr_expect_str_eq(param(&req, "a"), "json");
	cr_expect_str_eq(param(&req, "keep"), "yes");
	/* a JSON body keeps its types */
	cr_assert(json_object_object_get_ex(req.params, "n", &v));
	cr_expect(json_object_is_type(v, json_type_int));
	cr_expect_eq(json_object_get_int64(v), 5);
	cr_assert(json_object_object_get_ex(req.params, "t", &v));
	cr_expect(json_object_is_type(v, json_type_boolean));
	cr_assert(json_object_object_get_ex(req.params, "o", &v));
	cr_expect(json_object_is_type(v, json_type_object));
	finish(&req, &rep);
}

Test(request, params_json_body_must_be_object)
{
	struct kf_req req;
	struct kf_reply rep;

	cr_expect_eq(parse_post(&req, &rep, "CONTENT_TYPE=application/json", NULL, "[1, 2]"), -1);
	assert_error(&rep, 400, "object");
	finish(&req, &rep);

	cr_expect_eq(parse_post(&req, &rep, "CONTENT_TYPE=application/json", NULL, "\"s\""), -1);
	assert_error(&rep, 400, "JSON");
	finish(&req, &rep);

	cr_expect_eq(parse_post(&req, &rep, "CONTENT_TYPE=application/json", NULL, "null"), -1);
	assert_error(&rep, 400, "JSON");
	finish(&req, &rep);
}

Test(request, params_json_body_malformed)
{
	static const char *const bad[] = {
		"{",
		"{\"a\":1} trailing",
		"{\"a\":\"\xff\"}",
		"{\"a\":}",
	};

	for (size_t i = 0; i < KF_ARRAY_LEN(bad); i++) {
		struct kf_req req;
		struct kf_reply rep;

		cr_expect_eq(parse_post(&req, &rep, "CONTENT_TYPE=application/json", NULL, bad[i]),
			     -1, "accepted '%s'", bad[i]);
		assert_error(&rep, 400, "invalid JSON body");
		finish(&req, &rep);
	}
}

Test(request, params_json_body_too_deep)
{
	struct kf_buf body = KF_BUF_INIT;
	struct kf_req req;
	struct kf_reply rep;

	kf_buf_adds(&body, "{\"a\":");
	for (int i = 0; i < 100; i++)
		kf_buf_addc(&body, '[');
	for (int i = 0; i < 100; i++)
		kf_buf_addc(&body, ']');
	kf_buf_addc(&body, '}');
	cr_expect_eq(parse_post(&req, &rep, "CONTENT_TYPE=application/json", NULL, body.data), -1);
	assert_error(&rep, 400, "deep");
	finish(&req, &rep);
	kf_buf_release(&body);
}

Test(request, params_unsupported_type)
{
	struct kf_req req;
	struct kf_reply rep;

	cr_expect_eq(parse_post(&req, &rep, "CONTENT_TYPE=text/plain; charset=utf-8", NULL, "hi"),
		     -1);
	assert_error(&rep, 415, "'text/plain'");
	finish(&req, &rep);

	cr_expect_eq(parse_post(&req, &rep, "CONTENT_TYPE=multipart/form-data; boundary=x", NULL,
				"--x--"),
		     -1);
	assert_error(&rep, 415, "multipart/form-data");
	finish(&req, &rep);

	/* a body without any content type */
	cr_expect_eq(parse_post(&req, &rep, NULL, NULL, "a=1"), -1);
	assert_error(&rep, 415, "(none)");
	finish(&req, &rep);
}

Test(request, params_empty_body_without_type)
{
	struct kf_req req;
	struct kf_reply rep;

	cr_expect_eq(parse_post(&req, &rep, NULL, "a=1", NULL), 0);
	cr_expect_eq(rep.status, 200);
	cr_expect_str_eq(param(&req, "a"), "1");
	finish(&req, &rep);

	/* an empty body with an unsupported type is fine too: nothing to read */
	cr_expect_eq(parse_post(&req, &rep, "CONTENT_TYPE=text/plain", NULL, NULL), 0);
	finish(&req, &rep);
	cr_expect_eq(parse_post(&req, &rep, "CONTENT_TYPE=application/json", NULL, NULL), 0);
	finish(&req, &rep);
}

Test(request, params_malformed_percent)
{
	static const char *const bad[] = { "a=%", "a=%4", "a=%zz", "a=%4g", "%=1", "a=1&b=%" };

	for (size_t i = 0; i < KF_ARRAY_LEN(bad); i++) {
		struct kf_req req;
		struct kf_reply rep;

		/* in the query string */
		cr_expect_eq(parse_post(&req, &rep, NULL, bad[i], NULL), -1, "query '%s'", bad[i]);
		assert_error(&rep, 400, "query string");
		finish(&req, &rep);
		/* and in a form body */
		cr_expect_eq(parse_post(&req, &rep,
					"CONTENT_TYPE=application/x-www-form-urlencoded", NULL,
					bad[i]),
			     -1, "body '%s'", bad[i]);
		assert_error(&rep, 400, "form body");
		finish(&req, &rep);
	}
}

Test(request, params_malformed_name)
{
	static const char *const bad[] = { "=1", "%00=1", "%FF=1", "a%00b=1" };

	for (size_t i = 0; i < KF_ARRAY_LEN(bad); i++) {
		struct kf_req req;
		struct kf_reply rep;

		cr_expect_eq(parse_post(&req, &rep, NULL, bad[i], NULL), -1, "'%s'", bad[i]);
		assert_error(&rep, 400, "field name");
		finish(&req, &rep);
	}
}

Test(request, params_too_many_fields)
{
	struct kf_buf q = KF_BUF_INIT;
	struct kf_buf j = KF_BUF_INIT;
	struct kf_req req;
	struct kf_reply rep;

	/* exactly the limit is fine */
	for (int i = 0; i < KF_REQ_MAX_PARAMS; i++)
		kf_buf_addf(&q, "%sf%d=%d", i ? "&" : "", i, i);
	cr_expect_eq(parse_post(&req, &rep, NULL, q.data, NULL), 0, "%s",
		     kf_buf_str(&rep.message));
	finish(&req, &rep);
	/* one more is not */
	kf_buf_adds(&q, "&one=more");
	cr_expect_eq(parse_post(&req, &rep, NULL, q.data, NULL), -1);
	assert_error(&rep, 400, "fields");
	finish(&req, &rep);
	cr_expect_eq(parse_post(&req, &rep, "CONTENT_TYPE=application/x-www-form-urlencoded", NULL,
				q.data),
		     -1);
	assert_error(&rep, 400, "fields");
	finish(&req, &rep);

	/* a JSON body, alone and together with the query string */
	kf_buf_addc(&j, '{');
	for (int i = 0; i <= KF_REQ_MAX_PARAMS; i++)
		kf_buf_addf(&j, "%s\"f%d\":%d", i ? "," : "", i, i);
	kf_buf_addc(&j, '}');
	cr_expect_eq(parse_post(&req, &rep, "CONTENT_TYPE=application/json", NULL, j.data), -1);
	assert_error(&rep, 400, "fields");
	finish(&req, &rep);
	cr_expect_eq(parse_post(&req, &rep, "CONTENT_TYPE=application/json", "x=1",
				"{\"a\":1,\"b\":2}"),
		     0);
	finish(&req, &rep);
	kf_buf_reset(&q);
	for (int i = 0; i < KF_REQ_MAX_PARAMS; i++)
		kf_buf_addf(&q, "%sq%d=%d", i ? "&" : "", i, i);
	cr_expect_eq(parse_post(&req, &rep, "CONTENT_TYPE=application/json", q.data,
				"{\"a\":1}"),
		     -1);
	assert_error(&rep, 400, "fields");
	finish(&req, &rep);
	kf_buf_release(&q);
	kf_buf_release(&j);
}

Test(request, str_ok)
{
	struct kf_req req;
	struct kf_reply rep;
	const char *s;
	size_t n;

	cr_assert_eq(parse_post(&req, &rep, NULL, "name=%E4%BD%A0%E5%A5%BD&u=bob", NULL), 0);
	/* the bound is in characters, not bytes */
	cr_expect_eq(kf_req_str(&req, &rep, "name", false, 1, 2, &s, &n), 0,
		     "%s", kf_buf_str(&rep.message));
	cr_expect_str_eq(s, "\xe4\xbd\xa0\xe5\xa5\xbd");
	cr_expect_eq(n, 6);
	cr_expect_eq(kf_req_str(&req, &rep, "u", false, 3, 3, &s, &n), 0);
	cr_expect_str_eq(s, "bob");
	cr_expect_eq(n, 3);
	cr_expect_eq(rep.status, 200);
	finish(&req, &rep);
}

Test(request, str_missing)
{
	struct kf_req req;
	struct kf_reply rep;
	const char *s = "unset";
	size_t n = 99;

	cr_assert_eq(parse_post(&req, &rep, NULL, "other=1&empty=", NULL), 0);
	cr_expect_eq(kf_req_str(&req, &rep, "username", false, 1, 64, &s, &n), -1);
	assert_error(&rep, 400, "missing field 'username'");
	cr_expect_null(s);
	cr_expect_eq(n, 0);
	/* an empty value counts as missing */
	kf_reply_release(&rep);
	kf_reply_init(&rep);
	cr_expect_eq(kf_req_str(&req, &rep, "empty", false, 1, 64, &s, &n), -1);
	assert_error(&rep, 400, "missing field 'empty'");
	/* optional: no error, NULL out */
	kf_reply_release(&rep);
	kf_reply_init(&rep);
	s = "unset";
	cr_expect_eq(kf_req_str(&req, &rep, "username", true, 1, 64, &s, &n), 0);
	cr_expect_null(s);
	cr_expect_eq(rep.status, 200);
	finish(&req, &rep);
}

Test(request, str_invalid_utf8)
{
	struct kf_req req;
	struct kf_reply rep;
	const char *s;
	size_t n;

	cr_assert_eq(parse_post(&req, &rep, NULL, "a=%FF&b=%C3&c=%C0%AF&d=x%00y", NULL), 0);
	cr_expect_eq(kf_req_str(&req, &rep, "a", false, 1, 64, &s, &n), -1);
	assert_error(&rep, 400, "'a'");
	assert_error(&rep, 400, "UTF-8");
	cr_expect_eq(kf_req_str(&req, &rep, "b", false, 1, 64, &s, &n), -1);
	assert_error(&rep, 400, "'b'");
	cr_expect_eq(kf_req_str(&req, &rep, "c", false, 1, 64, &s, &n), -1);
	assert_error(&rep, 400, "'c'");
	/* an embedded NUL is refused too */
	cr_expect_eq(kf_req_str(&req, &rep, "d", false, 1, 64, &s, &n), -1);
	assert_error(&rep, 400, "'d'");
	finish(&req, &rep);
}

Test(request, str_too_long_or_short)
{
	struct kf_req req;
	struct kf_reply rep;
	const char *s;
	size_t n;

	cr_assert_eq(parse_post(&req, &rep, NULL, "pw=abcdef&cjk=%E4%BD%A0%E5%A5%BD%E5%90%97", NULL),
		     0);
	cr_expect_eq(kf_req_str(&req, &rep, "pw", false, 1, 5, &s, &n), -1);
	assert_error(&rep, 400, "'pw' must be at most 5");
	cr_expect_null(s);
	cr_expect_eq(kf_req_str(&req, &rep, "pw", false, 7, 64, &s, &n), -1);
	assert_error(&rep, 400, "'pw' must be at least 7");
	cr_expect_eq(kf_req_str(&req, &rep, "pw", false, 6, 6, &s, &n), 0);
	/* 3 characters in 9 bytes */
	cr_expect_eq(kf_req_str(&req, &rep, "cjk", false, 1, 2, &s, &n), -1);
	assert_error(&rep, 400, "at most 2");
	cr_expect_eq(kf_req_str(&req, &rep, "cjk", false, 4, 64, &s, &n), -1);
	assert_error(&rep, 400, "at least 4");
	finish(&req, &rep);
}

Test(request, str_not_a_string)
{
	static const char *const names[] = { "n", "t", "o", "a", "z" };
	struct kf_req req;
	struct kf_reply rep;
	const char *s;
	size_t n;

	cr_assert_eq(parse_post(&req, &rep, "CONTENT_TYPE=application/json", NULL,
				"{\"n\":5,\"t\":true,\"o\":{},\"a\":[\"x\"],\"z\":null}"),
		     0);
	for (size_t i = 0; i < 4; i++) {
		char want[64];

		cr_expect_eq(kf_req_str(&req, &rep, names[i], false, 1, 64, &s, &n), -1, "%s",
			     names[i]);
		cr_assert(snprintf(want, sizeof(want), "'%s' must be a string", names[i]) > 0);
		assert_error(&rep, 400, want);
	}
	/* null counts as absent */
	cr_expect_eq(kf_req_str(&req, &rep, names[4], false, 1, 64, &s, &n), -1);
	assert_error(&rep, 400, "missing field 'z'");
	finish(&req, &rep);
}

Test(request, int_from_string_and_number)
{
	struct kf_req req;
	struct kf_reply rep;
	int64_t v = 0;

	cr_assert_eq(parse_post(&req, &rep, NULL, "page=3&neg=-7", NULL), 0);
	cr_expect_eq(kf_req_int(&req, &rep, "page", false, 1, 1, 100, &v), 0,
		     "%s", kf_buf_str(&rep.message));
	cr_expect_eq(v, 3);
	cr_expect_eq(kf_req_int(&req, &rep, "neg", false, 0, -10, 10, &v), 0);
	cr_expect_eq(v, -7);
	finish(&req, &rep);

	cr_assert_eq(parse_post(&req, &rep, "CONTENT_TYPE=application/json", NULL,
				"{\"page\":42,\"big\":9007199254740993}"),
		     0);
	cr_expect_eq(kf_req_int(&req, &rep, "page", false, 1, 1, 100, &v), 0,
		     "%s", kf_buf_str(&rep.message));
	cr_expect_eq(v, 42);
	cr_expect_eq(kf_req_int(&req, &rep, "big", false, 0, 0, INT64_MAX, &v), 0);
	cr_expect_eq(v, 9007199254740993LL);
	cr_expect_eq(rep.status, 200);
	finish(&req, &rep);
}

Test(request, int_bounds_inclusive)
{
	struct kf_req req;
	struct kf_reply rep;
	int64_t v = 0;

	cr_assert_eq(parse_post(&req, &rep, NULL, "lo=1&hi=100", NULL), 0);
	cr_expect_eq(kf_req_int(&req, &rep, "lo", false, 0, 1, 100, &v), 0);
	cr_expect_eq(v, 1);
	cr_expect_eq(kf_req_int(&req, &rep, "hi", false, 0, 1, 100, &v), 0);
	cr_expect_eq(v, 100);
	finish(&req, &rep);
}

Test(request, int_out_of_range)
{
	struct kf_req req;
	struct kf_reply rep;
	int64_t v = 0;

	cr_assert_eq(parse_post(&req, &rep, "CONTENT_TYPE=application/json", "s=101",
				"{\"n\":0}"),
		     0);
	cr_expect_eq(kf_req_int(&req, &rep, "s", false, 5, 1, 100, &v), -1);
	assert_error(&rep, 400, "'s' must be between 1 and 100");
	cr_expect_eq(v, 5, "out was not left at the default");
	cr_expect_eq(kf_req_int(&req, &rep, "n", false, 5, 1, 100, &v), -1);
	assert_error(&rep, 400, "'n' must be between 1 and 100");
	finish(&req, &rep);
}

Test(request, int_garbage)
{
	static const char *const names[] = { "a", "b", "c", "d", "e" };
	struct kf_req req;
	struct kf_reply rep;
	int64_t v;

	cr_assert_eq(parse_post(&req, &rep, NULL,
				"a=4x&b=x4&c=1.5&d=99999999999999999999&e=0x10", NULL),
		     0);
	for (size_t i = 0; i < KF_ARRAY_LEN(names); i++) {
		char want[64];

		cr_expect_eq(kf_req_int(&req, &rep, names[i], false, 0, INT64_MIN, INT64_MAX, &v),
			     -1, "'%s' accepted", names[i]);
		cr_assert(snprintf(want, sizeof(want), "'%s' must be a whole number", names[i]) >
			  0);
		assert_error(&rep, 400, want);
	}
	finish(&req, &rep);

	cr_assert_eq(parse_post(&req, &rep, "CONTENT_TYPE=application/json", NULL,
				"{\"f\":1.5,\"t\":true,\"o\":{},\"s\":\"7\"}"),
		     0);
	cr_expect_eq(kf_req_int(&req, &rep, "f", false, 0, 0, 10, &v), -1);
	assert_error(&rep, 400, "whole number");
	cr_expect_eq(kf_req_int(&req, &rep, "t", false, 0, 0, 10, &v), -1);
	cr_expect_eq(kf_req_int(&req, &rep, "o", false, 0, 0, 10, &v), -1);
	/* a JSON string holding digits is fine */
	cr_expect_eq(kf_req_int(&req, &rep, "s", false, 0, 0, 10, &v), 0);
	cr_expect_eq(v, 7);
	finish(&req, &rep);
}

/*
 * Regression (was a bug, now fixed): a JSON number outside int64 is silently
 * clamped.  json-c saturates 99999999999999999999 to INT64_MAX, and
 * kf_req_int() takes json_object_get_int64() at face value, so with bounds
 * INT64_MIN..INT64_MAX the request gets 9223372036854775807 (and
 * -9223372036854775809 gives INT64_MIN) with status 200, while the same
 * digits sent as a string are refused with "must be a whole number".
 */
Test(request, int_json_number_beyond_int64)
{
	struct kf_req req;
	struct kf_reply rep;
	int64_t v = 0;

	cr_assert_eq(parse_post(&req, &rep, "CONTENT_TYPE=application/json", NULL,
				"{\"big\":99999999999999999999,\"small\":-9223372036854775809}"),
		     0);
	cr_expect_eq(kf_req_int(&req, &rep, "big", false, 0, INT64_MIN, INT64_MAX, &v), -1,
		     "accepted as %lld", (long long)v);
	assert_error(&rep, 400, "'big'");
	cr_expect_eq(kf_req_int(&req, &rep, "small", false, 0, INT64_MIN, INT64_MAX, &v), -1,
		     "accepted as %lld", (long long)v);
	finish(&req, &rep);
}

Test(request, int_missing_and_optional)
{
	struct kf_req req;
	struct kf_reply rep;
	int64_t v = 0;

	cr_assert_eq(parse_post(&req, &rep, NULL, "empty=", NULL), 0);
	cr_expect_eq(kf_req_int(&req, &rep, "page", true, 9, 1, 100, &v), 0);
	cr_expect_eq(v, 9);
	cr_expect_eq(kf_req_int(&req, &rep, "empty", true, 8, 1, 100, &v), 0);
	cr_expect_eq(v, 8);
	cr_expect_eq(rep.status, 200);
	cr_expect_eq(kf_req_int(&req, &rep, "page", false, 9, 1, 100, &v), -1);
	assert_error(&rep, 400, "missing field 'page'");
	finish(&req, &rep);
}

/* The token of a request with the given Authorization and Cookie. */
static const char *token_of(struct kf_req *req, char *auth, char *cookie, size_t *len)
{
	req->authorization = auth;
	req->cookie = cookie;
	return kf_req_token(req, len);
}

Test(request, token_from_bearer)
{
	struct kf_req req;
	const char *t;
	size_t n = 0;

	kf_req_init(&req, full_env, NULL);
	t = kf_req_token(&req, &n);
	cr_assert_not_null(t);
	cr_expect_eq(n, 32);
	cr_expect_eq(strncmp(t, "abcdefghijklmnopqrstuvwxyzABCDEF", n), 0);
	/* Bearer wins over the cookie; the scheme is case-insensitive */
	t = token_of(&req, "bearer   TOK", "gid=COOKIE", &n);
	cr_assert_not_null(t);
	cr_expect_eq(n, 3);
	cr_expect_eq(strncmp(t, "TOK", n), 0);
	t = token_of(&req, "BEARER TOK trailing", NULL, &n);
	cr_assert_not_null(t);
	cr_expect_eq(n, 3);
	t = token_of(&req, "Bearer ", NULL, &n);
	cr_expect_null(t);
	kf_req_release(&req);
}

Test(request, token_from_cookie)
{
	struct kf_req req;
	const char *t;
	size_t n = 0;

	kf_req_init(&req, NULL, NULL);
	t = token_of(&req, NULL, "a=b; gid=XYZ; c=d", &n);
	cr_assert_not_null(t);
	cr_expect_eq(n, 3);
	cr_expect_eq(strncmp(t, "XYZ", n), 0);
	t = token_of(&req, NULL, "gid=FIRST;other=1", &n);
	cr_assert_not_null(t);
	cr_expect_eq(strncmp(t, "FIRST", n), 0);
	cr_expect_eq(n, 5);
	t = token_of(&req, NULL, "a=b;gid=LAST", &n);
	cr_assert_not_null(t);
	cr_expect_eq(strncmp(t, "LAST", n), 0);
	cr_expect_eq(n, 4);
	t = token_of(&req, NULL, "gid=\"QUOTED\"; x=y", &n);
	cr_assert_not_null(t);
	cr_expect_eq(strncmp(t, "QUOTED", n), 0);
	cr_expect_eq(n, 6);
	/* another scheme falls back to the cookie */
	t = token_of(&req, "Basic dXNlcjpwYXNz", "gid=C", &n);
	cr_assert_not_null(t);
	cr_expect_eq(strncmp(t, "C", n), 0);
	kf_req_release(&req);
}

Test(request, token_none)
{
	struct kf_req req;
	size_t n = 0;

	kf_req_init(&req, NULL, NULL);
	cr_expect_null(token_of(&req, NULL, NULL, &n));
	cr_expect_null(token_of(&req, NULL, "", &n));
	cr_expect_null(token_of(&req, NULL, "a=b; c=d", &n));
	cr_expect_null(token_of(&req, NULL, "xgid=NOPE; gidx=NOPE", &n));
	cr_expect_null(token_of(&req, NULL, "a=gid=NOPE", &n));
	cr_expect_null(token_of(&req, NULL, "gid=", &n));
	cr_expect_null(token_of(&req, NULL, "gid=; a=b", &n));
	cr_expect_null(token_of(&req, "Basic abc", NULL, &n));
	cr_expect_null(token_of(&req, "Bearer", NULL, &n));
	kf_req_release(&req);
}

/* Decode s; return whether it was accepted, with the result in out. */
static bool decode(const char *s, struct kf_buf *out)
{
	kf_buf_reset(out);
	return kf_req_urldecode(s, strlen(s), out);
}

Test(request, urldecode)
{
	struct kf_buf out = KF_BUF_INIT;

	cr_expect(decode("", &out));
	cr_expect_eq(out.len, 0);
	cr_expect(decode("plain", &out));
	cr_expect_str_eq(kf_buf_str(&out), "plain");
	cr_expect(decode("+", &out));
	cr_expect_str_eq(kf_buf_str(&out), " ");
	cr_expect(decode("a+b++c", &out));
	cr_expect_str_eq(kf_buf_str(&out), "a b  c");
	cr_expect(decode("%2B%2b", &out));
	cr_expect_str_eq(kf_buf_str(&out), "++");
	cr_expect(decode("%41%62%7e", &out));
	cr_expect_str_eq(kf_buf_str(&out), "Ab~");
	cr_expect(decode("%25", &out));
	cr_expect_str_eq(kf_buf_str(&out), "%");
	cr_expect(decode("%2525", &out));
	cr_expect_str_eq(kf_buf_str(&out), "%25");
	cr_expect(decode("x%41", &out));
	cr_expect_str_eq(kf_buf_str(&out), "xA");
	cr_expect(decode("%00", &out));
	cr_expect_eq(out.len, 1);
	cr_expect_eq(out.data[0], '\0');
	cr_expect(decode("%FF", &out));
	cr_expect_eq(out.len, 1);
	cr_expect_eq((unsigned char)out.data[0], 0xff);
	kf_buf_release(&out);
}

Test(request, urldecode_malformed)
{
	static const char *const bad[] = { "%", "%4", "%zz", "%4z", "%z4", "a%", "a%4", "%%41",
					   "%+1", "% 1", "%-1" };
	struct kf_buf out = KF_BUF_INIT;

	for (size_t i = 0; i < KF_ARRAY_LEN(bad); i++)
		cr_expect_not(decode(bad[i], &out), "'%s' accepted", bad[i]);
	kf_buf_release(&out);
}

Test(request, urldecode_respects_n)
{
	struct kf_buf out = KF_BUF_INIT;

	/* "%41" cut to 2 bytes is malformed even though the string goes on */
	cr_expect_not(kf_req_urldecode("%41", 2, &out));
	kf_buf_reset(&out);
	cr_expect(kf_req_urldecode("ab%41", 2, &out));
	cr_expect_str_eq(kf_buf_str(&out), "ab");
	/* it appends */
	cr_expect(kf_req_urldecode("cd", 2, &out));
	cr_expect_str_eq(kf_buf_str(&out), "abcd");
	kf_buf_release(&out);
}

Test(request, release_clears)
{
	struct kf_req req;
	struct kf_reply rep;

	start(&req, &rep, full_env, "a=1");
	cr_assert_eq(kf_req_parse_params(&req, &rep), 0);
	memcpy(req.token, "abcdefghijklmnopqrstuvwxyzABCDEF", KF_KEY_LEN + 1);
	kf_req_release(&req);
	cr_expect_null(req.path);
	cr_expect_null(req.params);
	cr_expect_null(req.body.data);
	cr_expect_eq(req.token[0], '\0');
	kf_reply_release(&rep);
}
