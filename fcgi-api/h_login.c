/*
 * h_login.c - POST /admin/login, /admin/logout, /admin/me.
 */
#include "kf_compat.h"

#include <stdlib.h>
#include <time.h>

#include "api.h"
#include "handlers.h"
#include "kf_db.h"
#include "kf_err.h"
#include "kf_json.h"
#include "kf_log.h"
#include "kf_mem.h"
#include "kf_password.h"
#include "kf_store.h"
#include "reply.h"
#include "request.h"

/* Longest username (the admin.username column). */
#define USERNAME_MAX 60

static const char bad_credentials[] = "invalid username or password";

struct admin_row {
	bool found;
	int64_t id;
	int64_t role;
	char *password;
	char *name;
	char *username;
};

static void admin_row_release(struct admin_row *a)
{
	if (a->password)
		sodium_memzero(a->password, strlen(a->password));
	free(a->password);
	free(a->name);
	free(a->username);
}

/* Columns: id, password, role, name, username. */
static int take_admin(void *ud, const struct kf_db_row *row)
{
	struct admin_row *a = ud;

	a->found = true;
	a->id = strtoll(row->vals[0], NULL, 10);
	a->password = kf_xstrdup_or_empty(row->vals[1]);
	a->role = strtoll(row->vals[2], NULL, 10);
	a->name = kf_xstrdup_or_empty(row->vals[3]);
	a->username = kf_xstrdup_or_empty(row->vals[4]);
	return 0;
}

static void store_down(struct kf_reply *rep)
{
	kf_reply_error(rep, 503, "service unavailable: a data store is down, try again shortly");
}

/* Replace a legacy or outdated hash after a successful login. */
static void rehash(struct kf_worker *w, const struct admin_row *a, const char *pw, size_t n)
{
	char hash[KF_PASSWORD_HASH_MAX];
	struct kf_db_param p[3];
	int rc;

	if (kf_password_hash(&w->api->cost, pw, n, hash) != 0) {
		kf_warn("admin %lld: unable to re-hash the password", (long long)a->id);
		return;
	}
	p[0] = KF_DB_CSTR(hash);
	p[1] = KF_DB_INT(a->id);
	p[2] = KF_DB_CSTR(a->password);
	rc = kf_db_exec(w->db, "UPDATE `admin` SET `password` = ? WHERE `id` = ? AND `password` = ?",
			p, 3, NULL, NULL);
	if (rc != 0)
		kf_warn("admin %lld: unable to store the re-hashed password: %s",
			(long long)a->id, kf_err_str(rc));
	else
		kf_info("admin %lld: password hash upgraded to Argon2id", (long long)a->id);
}

static void set_cookie(struct kf_worker *w, struct kf_reply *rep, const char *token, long max_age)
{
	kf_reply_header(rep, "Set-Cookie: gid=%s; Path=/; Max-Age=%ld; HttpOnly; SameSite=Lax%s",
			token, max_age, w->api->cookie_secure ? "; Secure" : "");
}

void kf_h_login(struct kf_worker *w, struct kf_req *req, struct kf_reply *rep)
{
	const struct kf_api *api = w->api;
	struct admin_row a = { 0 };
	const char *user, *pw;
	size_t user_len, pw_len;
	long ip_fails = 0, user_fails = 0;
	time_t now = time(NULL);
	enum kf_password_check check;
	struct kf_db_param p;
	char token[KF_KEY_LEN + 1];
	int rc;

	if (kf_req_str(req, rep, "username", false, 1, USERNAME_MAX, &user, &user_len) != 0 ||
	    kf_req_str(req, rep, "password", false, 1, KF_PASSWORD_MAX, &pw, &pw_len) != 0)
		return;
	if (pw_len > KF_PASSWORD_MAX) {
		kf_reply_error(rep, 400, "field 'password' must be at most %d bytes",
			       KF_PASSWORD_MAX);
		return;
	}
	rc = kf_store_login_failures(w->redis, api->prefix, req->client_ip, user, user_len, now,
				     &ip_fails, &user_fails);
	if (rc != 0) {
		store_down(rep);
		return;
	}
	if (ip_fails >= api->login_max_ip || user_fails >= api->login_max_user) {
		long retry = ip_fails >= api->login_max_ip ? kf_store_until_midnight(now)
							   : api->login_window;

		kf_reply_header(rep, "Retry-After: %ld", retry);
		kf_reply_error(rep, 429, "too many failed logins, try again later");
		return;
	}
	p = KF_DB_STR(user, user_len);
	rc = kf_db_query(w->db, KF_DB_PRIMARY,
			 "SELECT `id`, `password`, `role`, `name`, `username` FROM `admin`"
			 " WHERE `username` = ? LIMIT 1",
			 &p, 1, take_admin, &a);
	if (rc != 0) {
		store_down(rep);
		goto out;
	}
	check = kf_password_verify(&api->cost, a.found ? a.password : NULL, pw, pw_len);
	if (check == KF_PASSWORD_BAD) {
		if (kf_store_login_failed(w->redis, api->prefix, req->client_ip, user, user_len, now,
					  api->login_window) != 0) {
			store_down(rep);
			goto out;
		}
		kf_reply_error(rep, 401, bad_credentials);
		goto out;
	}
	if (check == KF_PASSWORD_REHASH)
		rehash(w, &a, pw, pw_len);
	{
		struct kf_session s = { a.id, a.role };

		rc = kf_store_session_create(w->redis, api->prefix, &s, api->session_ttl, token);
	}
	if (rc != 0) {
		store_down(rep);
		goto out;
	}
	set_cookie(w, rep, token, api->session_ttl);
	{
		struct json_object *data = json_object_new_object();

		kf_json_set_str(data, "token", token);
		kf_json_set_int(data, "admin_id", a.id);
		kf_json_set_str(data, "username", a.username);
		kf_json_set_str(data, "name", a.name);
		kf_json_set_int(data, "role", a.role);
		kf_json_set_int(data, "expires_in", api->session_ttl);
		kf_reply_ok(rep, data);
	}
	sodium_memzero(token, sizeof(token));
out:
	admin_row_release(&a);
}

void kf_h_logout(struct kf_worker *w, struct kf_req *req, struct kf_reply *rep)
{
	int rc = kf_store_session_delete(w->redis, w->api->prefix, req->token, strlen(req->token));

	if (rc == KF_ERR_STORE) {
		store_down(rep);
		return;
	}
	if (rc != 0) { /* expired between the check and now */
		kf_reply_error(rep, 401, "not logged in");
		return;
	}
	set_cookie(w, rep, "", 0);
	kf_reply_ok(rep, NULL);
}

void kf_h_me(struct kf_worker *w, struct kf_req *req, struct kf_reply *rep)
{
	struct admin_row a = { 0 };
	struct kf_db_param p = KF_DB_INT(req->session.admin_id);
	struct json_object *data;
	int rc;

	rc = kf_db_query(w->db, KF_DB_REPLICA,
			 "SELECT `id`, NULL, `role`, `name`, `username` FROM `admin` WHERE `id` = ?",
			 &p, 1, take_admin, &a);
	if (rc != 0) {
		store_down(rep);
		goto out;
	}
	if (!a.found) {
		kf_reply_error(rep, 401, "not logged in: the account no longer exists");
		goto out;
	}
	data = json_object_new_object();
	kf_json_set_int(data, "admin_id", a.id);
	kf_json_set_str(data, "username", a.username);
	kf_json_set_str(data, "name", a.name);
	kf_json_set_int(data, "role", a.role);
	kf_reply_ok(rep, data);
out:
	admin_row_release(&a);
}
