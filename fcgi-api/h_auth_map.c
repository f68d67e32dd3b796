/*
 * h_auth_map.c - which role holds which permission (admin_auth_map):
 *   POST /admin/auth_map        paged list (pn, pc) of one role's grants
 *                               (role): role, auth, role_name,
 *                               role_describe, auth_name, method, path,
 *                               enable, create_time
 *   POST /admin/auth_map/add    role, auth: grant one permission
 *   POST /admin/auth_map/edit   role, auth: a list ("1,2,5", a JSON array,
 *                               or "" / [] for none): the role then holds
 *                               exactly those
 *   POST /admin/auth_map/del    role, auth: take one permission back
 * A change that would leave no account able to reach every admin route is
 * refused
 * (409).
 */
#include "kf_compat.h"

#include <errno.h>
#include <stdlib.h>

#include "admin_tx.h"
#include "api.h"
#include "handlers.h"
#include "kf_db.h"
#include "kf_err.h"
#include "kf_json.h"
#include "kf_mem.h"
#include "listing.h"
#include "reply.h"
#include "request.h"

#define ID_MAX 4294967295LL
/* Most permissions one auth_map/edit may list. */
#define EDIT_MAX_IDS 200


static int check_role(struct kf_worker *w, struct kf_reply *rep, int64_t role, bool locking)
{
	return kf_admin_row_exists(w, rep,
			    locking ? "SELECT `id` FROM `admin_role` WHERE `id` = ? LOCK IN SHARE MODE"
				    : "SELECT `id` FROM `admin_role` WHERE `id` = ?",
			    "role", "role", role);
}

static int check_auth(struct kf_worker *w, struct kf_reply *rep, int64_t auth)
{
	return kf_admin_row_exists(w, rep,
			    "SELECT `id` FROM `admin_auth` WHERE `id` = ? LOCK IN SHARE MODE", "auth",
			    "permission", auth);
}

static int take_map(void *ud, const struct kf_db_row *row)
{
	struct json_object *o = json_object_new_object();

	kf_list_set_int(o, "role", row, 0);
	kf_list_set_int(o, "auth", row, 1);
	kf_list_set_text(o, "role_name", row, 2);
	kf_list_set_text(o, "role_describe", row, 3);
	kf_list_set_text(o, "auth_name", row, 4);
	kf_list_set_text(o, "method", row, 5);
	kf_list_set_text(o, "path", row, 6);
	kf_list_set_int(o, "enable", row, 7);
	kf_list_set_time(o, "create_time", row, 8);
	json_object_array_add(ud, o);
	return 0;
}

void kf_h_auth_map_list(struct kf_worker *w, struct kf_req *req, struct kf_reply *rep)
{
	struct kf_page page;
	struct kf_db_param filter;
	int64_t role;

	if (kf_req_int(req, rep, "role", false, 0, 1, ID_MAX, &role) != 0 ||
	    kf_list_page(w, req, rep, &page) != 0)
		return;
	if (check_role(w, rep, role, false) != 0)
		return;
	filter = KF_DB_INT(role);
	kf_list_query(w, rep, &page, "SELECT COUNT(*) FROM `admin_auth_map` WHERE `role` = ?",
		      "SELECT m.`role`, m.`auth`, r.`name`, r.`describe`, a.`name`, a.`method`,"
		      " a.`path`, a.`enable`, m.`create_time` FROM `admin_auth_map` m"
		      " JOIN `admin_role` r ON r.`id` = m.`role`"
		      " LEFT JOIN `admin_auth` a ON a.`id` = m.`auth`"
		      " WHERE m.`role` = ? ORDER BY m.`auth` LIMIT ? OFFSET ?",
		      &filter, 1, take_map);
}

static void reply_pair(struct kf_reply *rep, int64_t role, int64_t auth)
{
	struct json_object *data = json_object_new_object();

	kf_json_set_int(data, "role", role);
	kf_json_set_int(data, "auth", auth);
	kf_reply_ok(rep, data);
}

static int read_pair(struct kf_req *req, struct kf_reply *rep, int64_t *role, int64_t *auth)
{
	if (kf_req_int(req, rep, "role", false, 0, 1, ID_MAX, role) != 0 ||
	    kf_req_int(req, rep, "auth", false, 0, 1, ID_MAX, auth) != 0)
		return -1;
	return 0;
}

void kf_h_auth_map_add(struct kf_worker *w, struct kf_req *req, struct kf_reply *rep)
{
	struct kf_admin_tx tx = { 0 };
	struct kf_db_param p[2];
	int64_t role, auth;
	int rc;

	if (read_pair(req, rep, &role, &auth) != 0)
		return;
	if (kf_admin_tx_begin(&tx, w, rep) != 0 || check_role(w, rep, role, true) != 0 ||
	    check_auth(w, rep, auth) != 0)
		goto out;
	p[0] = KF_DB_INT(role);
	p[1] = KF_DB_INT(auth);
	rc = kf_db_exec(w->db,
			"INSERT INTO `admin_auth_map` (`role`, `auth`, `create_time`)"
			" VALUES (?, ?, UNIX_TIMESTAMP())",
			p, 2, NULL, NULL);
	if (rc == KF_ERR_EXISTS) {
		kf_reply_error(rep, 409, "role %lld already holds permission %lld",
			       (long long)role, (long long)auth);
		goto out;
	}
	if (rc != 0) {
		kf_admin_store_down(rep);
		goto out;
	}
	if (kf_admin_tx_commit(&tx, rep) != 0)
		goto out;
	reply_pair(rep, role, auth);
out:
	kf_admin_tx_abort(&tx);
}

void kf_h_auth_map_del(struct kf_worker *w, struct kf_req *req, struct kf_reply *rep)
{
	struct kf_admin_tx tx = { 0 };
	struct kf_db_param p[2];
	int64_t role, auth;
	uint64_t affected = 0;

	if (read_pair(req, rep, &role, &auth) != 0)
		return;
	if (kf_admin_tx_begin(&tx, w, rep) != 0)
		goto out;
	p[0] = KF_DB_INT(role);
	p[1] = KF_DB_INT(auth);
	if (kf_db_exec(w->db, "DELETE FROM `admin_auth_map` WHERE `role` = ? AND `auth` = ?", p, 2,
		       &affected, NULL) != 0) {
		kf_admin_store_down(rep);
		goto out;
	}
	if (affected == 0) {
		kf_reply_error(rep, 404, "role %lld does not hold permission %lld", (long long)role,
			       (long long)auth);
		goto out;
	}
	if (kf_admin_tx_commit(&tx, rep) != 0)
		goto out;
	reply_pair(rep, role, auth);
out:
	kf_admin_tx_abort(&tx);
}

/* A set of ids, kept sorted and without repeats. */
struct ids {
	int64_t *v;
	size_t n, cap;
};

static void ids_add(struct ids *s, int64_t id)
{
	size_t i = 0;

	while (i < s->n && s->v[i] < id)
		i++;
	if (i < s->n && s->v[i] == id)
		return;
	if (s->n == s->cap) {
		s->cap = s->cap ? s->cap * 2 : 8;
		s->v = kf_xrealloc(s->v, s->cap * sizeof(*s->v));
	}
	memmove(s->v + i + 1, s->v + i, (s->n - i) * sizeof(*s->v));
	s->v[i] = id;
	s->n++;
}

static bool ids_has(const struct ids *s, int64_t id)
{
	for (size_t i = 0; i < s->n; i++)
		if (s->v[i] == id)
			return true;
	return false;
}

static void ids_release(struct ids *s)
{
	free(s->v);
	memset(s, 0, sizeof(*s));
}

/* One id from text (n bytes, surrounding spaces allowed).  False if bad. */
static bool parse_id(const char *s, size_t n, int64_t *out)
{
	char buf[24];
	char *end;
	long long v;

	while (n && (*s == ' ' || *s == '\t')) {
		s++;
		n--;
	}
	while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
		n--;
	if (n == 0 || n >= sizeof(buf) || *s < '0' || *s > '9')
		return false;
	memcpy(buf, s, n);
	buf[n] = '\0';
	errno = 0;
	v = strtoll(buf, &end, 10);
	if (*end || errno || v < 1 || v > ID_MAX)
		return false;
	*out = v;
	return true;
}

/* The "auth" list of auth_map/edit.  0, or -1 with rep set (400). */
static int read_id_list(struct kf_req *req, struct kf_reply *rep, struct ids *out)
{
	static const char bad[] = "field 'auth' must be a list of permission ids: \"1,2\", "
				  "[1, 2], or \"\" for none";
	struct json_object *v;

	if (!json_object_object_get_ex(req->params, "auth", &v)) {
		kf_reply_error(rep, 400, "missing field 'auth'");
		return -1;
	}
	if (json_object_is_type(v, json_type_int)) {
		int64_t id = json_object_get_int64(v);

		if (id < 1 || id > ID_MAX)
			goto out_bad;
		ids_add(out, id);
	} else if (json_object_is_type(v, json_type_string)) {
		const char *s = json_object_get_string(v);
		size_t n = (size_t)json_object_get_string_len(v), i = 0;
		bool blank = true;

		for (size_t k = 0; k < n; k++)
			if (s[k] != ' ' && s[k] != '\t')
				blank = false;
		while (!blank && i <= n) {
			size_t start = i;
			int64_t id;

			while (i < n && s[i] != ',')
				i++;
			if (!parse_id(s + start, i - start, &id))
				goto out_bad;
			ids_add(out, id);
			if (out->n > EDIT_MAX_IDS)
				goto out_many;
			i++;
		}
	} else if (json_object_is_type(v, json_type_array)) {
		size_t n = json_object_array_length(v);

		for (size_t k = 0; k < n; k++) {
			struct json_object *e = json_object_array_get_idx(v, k);
			int64_t id;

			if (json_object_is_type(e, json_type_int)) {
				id = json_object_get_int64(e);
				if (id < 1 || id > ID_MAX)
					goto out_bad;
			} else if (!json_object_is_type(e, json_type_string) ||
				   !parse_id(json_object_get_string(e),
					     (size_t)json_object_get_string_len(e), &id)) {
				goto out_bad;
			}
			ids_add(out, id);
			if (out->n > EDIT_MAX_IDS)
				goto out_many;
		}
	} else {
		goto out_bad;
	}
	return 0;

out_many:
	kf_reply_error(rep, 400, "field 'auth' lists more than %d permissions", EDIT_MAX_IDS);
	return -1;
out_bad:
	kf_reply_error(rep, 400, "%s", bad);
	return -1;
}

static int take_id(void *ud, const struct kf_db_row *row)
{
	ids_add(ud, kf_list_col_int(row, 0));
	return 0;
}

/*
 * Inside the transaction: make role hold exactly want, deleting and adding
 * rows (the rows it keeps keep their create_time).  0 or KF_ERR_STORE.
 */
static int set_grants(struct kf_worker *w, int64_t role, const struct ids *want)
{
	struct ids have = { 0 };
	struct kf_db_param p[2];
	int rc;

	p[0] = KF_DB_INT(role);
	rc = kf_db_query(w->db, KF_DB_PRIMARY,
			 "SELECT `auth` FROM `admin_auth_map` WHERE `role` = ? FOR UPDATE", p, 1,
			 take_id, &have);
	for (size_t i = 0; rc == 0 && i < have.n; i++) {
		if (ids_has(want, have.v[i]))
			continue;
		p[1] = KF_DB_INT(have.v[i]);
		rc = kf_db_exec(w->db, "DELETE FROM `admin_auth_map` WHERE `role` = ? AND `auth` = ?",
				p, 2, NULL, NULL);
	}
	for (size_t i = 0; rc == 0 && i < want->n; i++) {
		if (ids_has(&have, want->v[i]))
			continue;
		p[1] = KF_DB_INT(want->v[i]);
		rc = kf_db_exec(w->db,
				"INSERT INTO `admin_auth_map` (`role`, `auth`, `create_time`)"
				" VALUES (?, ?, UNIX_TIMESTAMP())",
				p, 2, NULL, NULL);
	}
	ids_release(&have);
	return rc ? KF_ERR_STORE : 0;
}

void kf_h_auth_map_edit(struct kf_worker *w, struct kf_req *req, struct kf_reply *rep)
{
	struct kf_admin_tx tx = { 0 };
	struct ids want = { 0 };
	struct json_object *data, *list;
	int64_t role;

	if (kf_req_int(req, rep, "role", false, 0, 1, ID_MAX, &role) != 0 ||
	    read_id_list(req, rep, &want) != 0)
		goto out;
	if (kf_admin_tx_begin(&tx, w, rep) != 0 || check_role(w, rep, role, true) != 0)
		goto out;
	for (size_t i = 0; i < want.n; i++)
		if (check_auth(w, rep, want.v[i]) != 0)
			goto out;
	if (set_grants(w, role, &want) != 0) {
		kf_admin_store_down(rep);
		goto out;
	}
	if (kf_admin_tx_commit(&tx, rep) != 0)
		goto out;
	data = json_object_new_object();
	list = json_object_new_array();
	for (size_t i = 0; i < want.n; i++)
		json_object_array_add(list, json_object_new_int64(want.v[i]));
	kf_json_set_int(data, "role", role);
	json_object_object_add(data, "auth", list);
	kf_reply_ok(rep, data);
out:
	kf_admin_tx_abort(&tx);
	ids_release(&want);
}
