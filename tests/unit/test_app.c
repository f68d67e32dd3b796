/*
 * test_app.c - kf_app: one request through the pipeline without FastCGI.
 * The worker's Redis and MySQL point at a closed port (127.0.0.1:1), so
 * only the paths that never reach a store, and the 503 a store call gives,
 * are covered here; the integration tests cover the rest.
 */
#include "kf_compat.h"

#include <criterion/criterion.h>

#include <stdlib.h>
#include <unistd.h>

#include "api.h"
#include "app.h"
#include "kf_buf.h"
#include "kf_config.h"
#include "kf_key.h"
#include "kf_log.h"
#include "reply.h"
#include "request.h"

static struct kf_config *cfg;
static struct kf_api *api;
static struct kf_worker *worker;

static const char config_text[] = "[Redis]\n"
				  "Host = 127.0.0.1\n"
				  "Port = 1\n"
				  "ConnectTimeoutMs = 200\n"
				  "[Db]\n"
				  "HostMaster = 127.0.0.1\n"
				  "PortMaster = 1\n"
				  "ConnectTimeoutSec = 1\n"
				  "[Api]\n"
				  "MaxBodyBytes = 256\n"
				  "CorsAllowOrigins = https://a.example, https://b.example\n"
				  "TrustedProxies = 127.0.0.1\n";

static void setup(void)
{
	struct kf_buf err = KF_BUF_INIT;
	char path[] = "/tmp/kefu-test-app-XXXXXX";
	int fd = mkstemp(path);

	cr_assert(fd >= 0);
	cr_assert_eq(write(fd, config_text, sizeof(config_text) - 1),
		     (ssize_t)sizeof(config_text) - 1);
	close(fd);
	cr_assert_eq(kf_key_init(), 0);
	/* the store errors below are expected: keep them off the test output */
	cr_assert_eq(kf_log_set_file("/dev/null"), 0);
	cfg = kf_config_load(path, &err);
	unlink(path);
	cr_assert_not_null(cfg, "%s", kf_buf_str(&err));
	api = kf_api_new(cfg, &err);
	cr_assert_not_null(api, "%s", kf_buf_str(&err));
	kf_buf_release(&err);
	worker = kf_worker_new(api);
}

static void teardown(void)
{
	kf_worker_free(worker);
	kf_api_free(api);
	kf_config_free(cfg);
	kf_log_set_file(NULL);
}

TestSuite(app, .init = setup, .fini = teardown);

/*
 * Run a request from env with body (may be NULL) the way main.c does:
 * the body check first, then the pipeline.
 */
static void run(char **env, const char *body, struct kf_req *req, struct kf_reply *rep)
{
	kf_req_init(req, env, api->trusted);
	kf_reply_init(rep);
	if (kf_app_refuse_body(worker, req, rep))
		return;
	if (body)
		kf_buf_adds(&req->body, body);
	kf_app_handle(worker, req, rep);
}

static void done(struct kf_req *req, struct kf_reply *rep)
{
	kf_req_release(req);
	kf_reply_release(rep);
}

static bool has_header(const struct kf_reply *rep, const char *line)
{
	struct kf_buf want = KF_BUF_INIT;
	bool found;

	kf_buf_addf(&want, "%s\r\n", line);
	found = strstr(kf_buf_str(&rep->headers), want.data) != NULL;
	kf_buf_release(&want);
	return found;
}

static void expect_status(const struct kf_reply *rep, int status, const char *needle)
{
	cr_expect_eq(rep->status, status, "status %d (%s), expected %d", rep->status,
		     kf_buf_str(&rep->message), status);
	if (needle)
		cr_expect_not_null(strstr(kf_buf_str(&rep->message), needle),
				   "'%s' not in '%s'", needle, kf_buf_str(&rep->message));
}

Test(app, api_from_config)
{
	cr_expect_eq(api->max_body, 256);
	cr_expect(kf_api_origin_allowed(api, "https://a.example"));
	cr_expect(kf_api_origin_allowed(api, "https://b.example"));
	cr_expect_not(kf_api_origin_allowed(api, "https://c.example"));
	cr_expect_not(kf_api_origin_allowed(api, "https://a.example.evil"));
	cr_expect_not(kf_api_origin_allowed(api, "null"));
	cr_expect_not(kf_api_origin_allowed(api, ""));
	cr_expect_not(kf_api_origin_allowed(api, NULL));
	cr_expect_str_eq(api->prefix, "kf:");
}

Test(app, api_refuses_bad_values)
{
	struct kf_buf err = KF_BUF_INIT;
	char path[] = "/tmp/kefu-test-app-XXXXXX";
	static const char text[] = "[Api]\nCorsAllowOrigins = a.example\nTrustedProxies = nope\n";
	int fd = mkstemp(path);
	struct kf_config *c;
	struct kf_api *a;

	cr_assert(fd >= 0);
	cr_assert_eq(write(fd, text, sizeof(text) - 1), (ssize_t)sizeof(text) - 1);
	close(fd);
	c = kf_config_load(path, &err);
	unlink(path);
	cr_assert_not_null(c, "%s", kf_buf_str(&err));
	a = kf_api_new(c, &err);
	cr_expect_null(a);
	kf_api_free(a);
	cr_expect_not_null(strstr(kf_buf_str(&err), "[Api] CorsAllowOrigins"), "%s",
			   kf_buf_str(&err));
	cr_expect_not_null(strstr(kf_buf_str(&err), "[Api] TrustedProxies"), "%s",
			   kf_buf_str(&err));
	kf_config_free(c);
	kf_buf_release(&err);
}

Test(app, body_limit)
{
	char *too_big[] = { "REQUEST_METHOD=POST", "REQUEST_URI=/admin/login",
			    "CONTENT_TYPE=application/json", "CONTENT_LENGTH=257", NULL };
	char *at_limit[] = { "REQUEST_METHOD=POST", "REQUEST_URI=/admin/login",
			     "CONTENT_TYPE=application/json", "CONTENT_LENGTH=256", NULL };
	char *bad_len[] = { "REQUEST_METHOD=POST", "REQUEST_URI=/admin/login",
			    "CONTENT_LENGTH=12x", NULL };
	char *huge[] = { "REQUEST_METHOD=POST", "REQUEST_URI=/admin/login",
			 "CONTENT_LENGTH=99999999999999999", NULL };
	struct kf_req req;
	struct kf_reply rep;

	kf_req_init(&req, too_big, NULL);
	kf_reply_init(&rep);
	cr_expect(kf_app_refuse_body(worker, &req, &rep));
	expect_status(&rep, 413, "256");
	done(&req, &rep);

	kf_req_init(&req, huge, NULL);
	kf_reply_init(&rep);
	cr_expect(kf_app_refuse_body(worker, &req, &rep));
	expect_status(&rep, 413, NULL);
	done(&req, &rep);

	kf_req_init(&req, at_limit, NULL);
	kf_reply_init(&rep);
	cr_expect_not(kf_app_refuse_body(worker, &req, &rep));
	cr_expect_eq(rep.status, 200);
	done(&req, &rep);

	kf_req_init(&req, bad_len, NULL);
	kf_reply_init(&rep);
	cr_expect(kf_app_refuse_body(worker, &req, &rep));
	expect_status(&rep, 400, "Content-Length");
	done(&req, &rep);
}

Test(app, unknown_path_404)
{
	char *env[] = { "REQUEST_METHOD=GET", "REQUEST_URI=/nope?x=1", NULL };
	struct kf_req req;
	struct kf_reply rep;

	run(env, NULL, &req, &rep);
	expect_status(&rep, 404, "no such endpoint");
	cr_expect_null(req.route);
	done(&req, &rep);
}

Test(app, wrong_method_405)
{
	char *env[] = { "REQUEST_METHOD=GET", "REQUEST_URI=/admin/login", NULL };
	char *brew[] = { "REQUEST_METHOD=BREW", "REQUEST_URI=/healthz", NULL };
	struct kf_req req;
	struct kf_reply rep;

	run(env, NULL, &req, &rep);
	expect_status(&rep, 405, "POST");
	cr_expect(has_header(&rep, "Allow: POST"), "%s", kf_buf_str(&rep.headers));
	done(&req, &rep);

	/* an unknown method on a known path */
	run(brew, NULL, &req, &rep);
	expect_status(&rep, 405, "BREW");
	cr_expect(has_header(&rep, "Allow: GET"), "%s", kf_buf_str(&rep.headers));
	done(&req, &rep);
}

Test(app, unsupported_type_415)
{
	char *env[] = { "REQUEST_METHOD=POST", "REQUEST_URI=/admin/login",
			"CONTENT_TYPE=text/plain", "CONTENT_LENGTH=5", NULL };
	struct kf_req req;
	struct kf_reply rep;

	run(env, "hello", &req, &rep);
	expect_status(&rep, 415, "text/plain");
	done(&req, &rep);
}

Test(app, bad_params_400)
{
	char *json[] = { "REQUEST_METHOD=POST", "REQUEST_URI=/admin/login",
			 "CONTENT_TYPE=application/json", "CONTENT_LENGTH=9", NULL };
	char *query[] = { "REQUEST_METHOD=POST", "REQUEST_URI=/admin/login?a=%zz",
			  "QUERY_STRING=a=%zz", NULL };
	char *missing[] = { "REQUEST_METHOD=POST", "REQUEST_URI=/admin/login",
			    "CONTENT_TYPE=application/x-www-form-urlencoded", "CONTENT_LENGTH=12",
			    NULL };
	struct kf_req req;
	struct kf_reply rep;

	run(json, "{\"a\":1,}", &req, &rep);
	expect_status(&rep, 400, "invalid JSON body");
	done(&req, &rep);

	run(query, NULL, &req, &rep);
	expect_status(&rep, 400, "percent-encoding");
	done(&req, &rep);

	/* the login handler checks its fields before it touches a store */
	run(missing, "username=bob", &req, &rep);
	expect_status(&rep, 400, "missing field 'password'");
	done(&req, &rep);
}

Test(app, preflight_allowed)
{
	char *env[] = { "REQUEST_METHOD=OPTIONS", "REQUEST_URI=/admin/login",
			"HTTP_ORIGIN=https://a.example",
			"HTTP_ACCESS_CONTROL_REQUEST_METHOD=POST", NULL };
	struct kf_req req;
	struct kf_reply rep;
	struct kf_buf out = KF_BUF_INIT;

	run(env, NULL, &req, &rep);
	cr_expect_eq(rep.status, 204);
	cr_expect(has_header(&rep, "Access-Control-Allow-Origin: https://a.example"), "%s",
		  kf_buf_str(&rep.headers));
	cr_expect(has_header(&rep, "Access-Control-Allow-Credentials: true"));
	cr_expect(has_header(&rep, "Vary: Origin"));
	cr_expect_not_null(strstr(kf_buf_str(&rep.headers), "Access-Control-Allow-Methods: "));
	cr_expect_not_null(strstr(kf_buf_str(&rep.headers), "Access-Control-Allow-Headers: "));
	cr_expect_not_null(strstr(kf_buf_str(&rep.headers), "Authorization"));
	kf_reply_render(&rep, &out);
	cr_expect_eq(strncmp(kf_buf_str(&out), "Status: 204 No Content\r\n", 24), 0);
	cr_expect_null(strstr(kf_buf_str(&out), "Content-Length"));
	kf_buf_release(&out);
	done(&req, &rep);
}

Test(app, preflight_refused_origin)
{
	char *env[] = { "REQUEST_METHOD=OPTIONS", "REQUEST_URI=/admin/login",
			"HTTP_ORIGIN=https://evil.example",
			"HTTP_ACCESS_CONTROL_REQUEST_METHOD=POST", NULL };
	struct kf_req req;
	struct kf_reply rep;

	run(env, NULL, &req, &rep);
	expect_status(&rep, 403, "https://evil.example");
	cr_expect_null(strstr(kf_buf_str(&rep.headers), "Access-Control-Allow-Origin"));
	done(&req, &rep);
}

Test(app, options_without_preflight_is_routed)
{
	char *env[] = { "REQUEST_METHOD=OPTIONS", "REQUEST_URI=/admin/login",
			"HTTP_ORIGIN=https://a.example", NULL };
	struct kf_req req;
	struct kf_reply rep;

	run(env, NULL, &req, &rep);
	expect_status(&rep, 405, NULL);
	done(&req, &rep);
}

Test(app, cors_headers_on_replies)
{
	char *allowed[] = { "REQUEST_METHOD=GET", "REQUEST_URI=/nope",
			    "HTTP_ORIGIN=https://b.example", NULL };
	char *other[] = { "REQUEST_METHOD=GET", "REQUEST_URI=/nope",
			  "HTTP_ORIGIN=https://evil.example", NULL };
	struct kf_req req;
	struct kf_reply rep;

	run(allowed, NULL, &req, &rep);
	expect_status(&rep, 404, NULL);
	cr_expect(has_header(&rep, "Access-Control-Allow-Origin: https://b.example"), "%s",
		  kf_buf_str(&rep.headers));
	cr_expect(has_header(&rep, "Access-Control-Allow-Credentials: true"));
	done(&req, &rep);

	run(other, NULL, &req, &rep);
	expect_status(&rep, 404, NULL);
	cr_expect_null(strstr(kf_buf_str(&rep.headers), "Access-Control"), "%s",
		       kf_buf_str(&rep.headers));
	done(&req, &rep);
}

Test(app, session_route_without_token_401)
{
	char *none[] = { "REQUEST_METHOD=GET", "REQUEST_URI=/admin/me", NULL };
	char *malformed[] = { "REQUEST_METHOD=GET", "REQUEST_URI=/admin/me",
			      "HTTP_COOKIE=gid=short", NULL };
	struct kf_req req;
	struct kf_reply rep;

	run(none, NULL, &req, &rep);
	expect_status(&rep, 401, "not logged in");
	cr_expect_not(req.has_session);
	done(&req, &rep);

	/* a token of the wrong shape is refused without asking Redis */
	run(malformed, NULL, &req, &rep);
	expect_status(&rep, 401, "not logged in");
	done(&req, &rep);
}

Test(app, session_route_store_down_503)
{
	char *bearer[] = { "REQUEST_METHOD=GET", "REQUEST_URI=/admin/me",
			   "HTTP_AUTHORIZATION=Bearer abcdefghijklmnopqrstuvwxyzABCDEF", NULL };
	char *cookie[] = { "REQUEST_METHOD=POST", "REQUEST_URI=/admin/logout",
			   "HTTP_COOKIE=x=1; gid=abcdefghijklmnopqrstuvwxyzABCDEF", NULL };
	struct kf_req req;
	struct kf_reply rep;

	run(bearer, NULL, &req, &rep);
	expect_status(&rep, 503, "unavailable");
	cr_expect_not(req.has_session);
	done(&req, &rep);

	run(cookie, NULL, &req, &rep);
	expect_status(&rep, 503, "unavailable");
	done(&req, &rep);
}

Test(app, login_store_down_503)
{
	char *env[] = { "REQUEST_METHOD=POST", "REQUEST_URI=/admin/login",
			"CONTENT_TYPE=application/json", "CONTENT_LENGTH=38", NULL };
	struct kf_req req;
	struct kf_reply rep;

	run(env, "{\"username\":\"bob\",\"password\":\"secret\"}", &req, &rep);
	expect_status(&rep, 503, NULL);
	cr_expect_null(strstr(kf_buf_str(&rep.headers), "Set-Cookie"));
	done(&req, &rep);
}

Test(app, trace_hides_secrets)
{
	char path[] = "/tmp/kefu-test-trace-XXXXXX";
	char *env[] = { "REQUEST_METHOD=POST", "REQUEST_URI=/admin/login",
			"CONTENT_TYPE=application/x-www-form-urlencoded", NULL };
	struct kf_req req;
	struct kf_reply rep;
	char text[4096];
	ssize_t n;
	int fd = mkstemp(path);

	cr_assert(fd >= 0);
	cr_assert_eq(kf_log_set_file(path), 0);
	kf_log_set_level(KF_LOG_INFO);
	kf_req_init(&req, env, NULL);
	kf_reply_init(&rep);
	kf_buf_adds(&req.body,
		    "username=bob&password=hunter2&ws_key=KEYVALUE&gid=GIDVALUE&Token=TOKVALUE");
	cr_assert_eq(kf_req_parse_params(&req, &rep), 0);
	kf_reply_error(&rep, 401, "invalid username or password");
	kf_app_trace(&req, &rep, 1234);
	kf_log_set_file("/dev/null");
	n = read(fd, text, sizeof(text) - 1);
	close(fd);
	unlink(path);
	cr_assert_gt(n, 0, "nothing was logged");
	text[n] = '\0';
	cr_expect_not_null(strstr(text, "/admin/login"), "%s", text);
	cr_expect_not_null(strstr(text, "status=401"), "%s", text);
	cr_expect_not_null(strstr(text, "bob"), "%s", text);
	cr_expect_null(strstr(text, "hunter2"), "%s", text);
	cr_expect_null(strstr(text, "KEYVALUE"), "%s", text);
	cr_expect_null(strstr(text, "GIDVALUE"), "%s", text);
	cr_expect_null(strstr(text, "TOKVALUE"), "%s", text);
	done(&req, &rep);
}
