/*
 * h_auth.c - permissions (admin_auth): a name, a method pattern and a path
 * pattern (rbac.h tells how they match), enabled or not.
 *   POST /admin/auth        paged list (pn, pc) of the enabled permissions,
 *                           or of all with all=1: id, name, method, path,
 *                           enable, parent_id, create_time
 *   POST /admin/auth/add    name, method, path, enable (optional, 1) -> {id}
 *   POST /admin/auth/edit   id and any of name, method, path, enable
 *   POST /admin/auth/del    id; the grants of it go with it
 * Editing or deleting the permission that keeps the last account able to
 * reach every admin route is refused (409).
 */
#include "kf_compat.h"

#include "admin_tx.h"
#include "api.h"
#include "handlers.h"
#include "kf_db.h"
#include "kf_err.h"
#include "kf_json.h"
#include "listing.h"
#include "rbac.h"
#include "reply.h"
#include "request.h"

#define NAME_MAX_CHARS 60 /* admin_auth.name varchar(60) */
#define ID_MAX 4294967295LL

static int take_auth(void *ud, const struct kf_db_row *row)
{
	struct json_object *o = json_object_new_object();

	kf_list_set_int(o, "id", row, 0);
	kf_list_set_text(o, "name", row, 1);
	kf_list_set_text(o, "method", row, 2);
	kf_list_set_text(o, "path", row, 3);
	kf_list_set_int(o, "enable", row, 4);
	if (row->vals[5])
		kf_list_set_int(o, "parent_id", row, 5);
	else
		json_object_object_add(o, "parent_id", NULL);
	kf_list_set_time(o, "create_time", row, 6);
	json_object_array_add(ud, o);
	return 0;
}

void kf_h_auth_list(struct kf_worker *w, struct kf_req *req, struct kf_reply *rep)
{
	struct kf_page page;
	struct kf_db_param filter;
	int64_t all;

	if (kf_list_page(w, req, rep, &page) != 0 ||
	    kf_req_int(req, rep, "all", true, 0, 0, 1, &all) != 0)
		return;
	filter = KF_DB_INT(all);
	kf_list_query(w, rep, &page,
		      "SELECT COUNT(*) FROM `admin_auth` WHERE `enable` = 1 OR ? = 1",
		      "SELECT `id`, `name`, `method`, `path`, `enable`, `parent_id`, `create_time`"
		      " FROM `admin_auth` WHERE `enable` = 1 OR ? = 1 ORDER BY `id` LIMIT ? OFFSET ?",
		      &filter, 1, take_auth);
}

struct auth_fields {
	int64_t id;
	const char *name, *method, *path;
	size_t name_len, method_len, path_len;
	int64_t enable; /* -1: absent */
};

/* Read the fields; every one optional when edit.  0, or -1 with rep set. */
static int read_fields(struct kf_req *req, struct kf_reply *rep, bool edit, struct auth_fields *f)
{
	const char *why;

	memset(f, 0, sizeof(*f));
	if (edit && kf_req_int(req, rep, "id", false, 0, 1, ID_MAX, &f->id) != 0)
		return -1;
	if (kf_req_str(req, rep, "name", edit, 1, NAME_MAX_CHARS, &f->name, &f->name_len) != 0 ||
	    kf_req_str(req, rep, "method", edit, 1, KF_RBAC_METHOD_MAX, &f->method,
		       &f->method_len) != 0 ||
	    kf_req_str(req, rep, "path", edit, 1, KF_RBAC_PATH_MAX, &f->path, &f->path_len) != 0 ||
	    kf_req_int(req, rep, "enable", true, edit ? -1 : 1, 0, 1, &f->enable) != 0)
		return -1;
	if (f->method && (why = kf_rbac_method_invalid(f->method, f->method_len))) {
		kf_reply_error(rep, 400, "field 'method' %s", why);
		return -1;
	}
	if (f->path && (why = kf_rbac_path_invalid(f->path, f->path_len))) {
		kf_reply_error(rep, 400, "field 'path' %s", why);
		return -1;
	}
	if (edit && !f->name && !f->method && !f->path && f->enable < 0) {
		kf_reply_error(rep, 400, "missing field: give at least one of 'name', 'method', "
					 "'path', 'enable'");
		return -1;
	}
	return 0;
}

static struct kf_db_param text_or_null(const char *s, size_t n)
{
	return s ? KF_DB_STR(s, n) : KF_DB_NULLP;
}

void kf_h_auth_add(struct kf_worker *w, struct kf_req *req, struct kf_reply *rep)
{
	struct kf_admin_tx tx = { 0 };
	struct auth_fields f;
	struct kf_db_param p[4];
	uint64_t id = 0;

	if (read_fields(req, rep, false, &f) != 0)
		return;
	if (kf_admin_tx_begin(&tx, w, rep) != 0)
		goto out;
	p[0] = KF_DB_STR(f.name, f.name_len);
	p[1] = KF_DB_STR(f.method, f.method_len);
	p[2] = KF_DB_STR(f.path, f.path_len);
	p[3] = KF_DB_INT(f.enable);
	if (kf_db_exec(w->db,
		       "INSERT INTO `admin_auth` (`name`, `method`, `path`, `enable`, `create_time`)"
		       " VALUES (?, ?, ?, ?, UNIX_TIMESTAMP())",
		       p, 4, NULL, &id) != 0) {
		kf_admin_store_down(rep);
		goto out;
	}
	if (kf_admin_tx_commit(&tx, rep) != 0)
		goto out;
	{
		struct json_object *data = json_object_new_object();

		kf_json_set_int(data, "id", (int64_t)id);
		kf_json_set_strn(data, "name", f.name, f.name_len);
		kf_json_set_strn(data, "method", f.method, f.method_len);
		kf_json_set_strn(data, "path", f.path, f.path_len);
		kf_json_set_int(data, "enable", f.enable);
		kf_reply_ok(rep, data);
	}
out:
	kf_admin_tx_abort(&tx);
}


/* Lock permission id.  0, or -1 with rep set (404 or 503). */
static int lock_auth(struct kf_worker *w, struct kf_reply *rep, int64_t id)
{
	return kf_admin_row_exists(w, rep, "SELECT `id` FROM `admin_auth` WHERE `id` = ? FOR UPDATE",
				   "id", "permission", id);
}

static void reply_id(struct kf_reply *rep, int64_t id)
{
	struct json_object *data = json_object_new_object();

	kf_json_set_int(data, "id", id);
	kf_reply_ok(rep, data);
}

void kf_h_auth_edit(struct kf_worker *w, struct kf_req *req, struct kf_reply *rep)
{
	struct kf_admin_tx tx = { 0 };
	struct auth_fields f;
	struct kf_db_param p[5];

	if (read_fields(req, rep, true, &f) != 0)
		return;
	if (kf_admin_tx_begin(&tx, w, rep) != 0 || lock_auth(w, rep, f.id) != 0)
		goto out;
	p[0] = text_or_null(f.name, f.name_len);
	p[1] = text_or_null(f.method, f.method_len);
	p[2] = text_or_null(f.path, f.path_len);
	p[3] = f.enable < 0 ? KF_DB_NULLP : KF_DB_INT(f.enable);
	p[4] = KF_DB_INT(f.id);
	if (kf_db_exec(w->db,
		       "UPDATE `admin_auth` SET `name` = COALESCE(?, `name`),"
		       " `method` = COALESCE(?, `method`), `path` = COALESCE(?, `path`),"
		       " `enable` = COALESCE(?, `enable`) WHERE `id` = ?",
		       p, 5, NULL, NULL) != 0) {
		kf_admin_store_down(rep);
		goto out;
	}
	if (kf_admin_tx_commit(&tx, rep) != 0)
		goto out;
	reply_id(rep, f.id);
out:
	kf_admin_tx_abort(&tx);
}

void kf_h_auth_del(struct kf_worker *w, struct kf_req *req, struct kf_reply *rep)
{
	struct kf_admin_tx tx = { 0 };
	struct kf_db_param p;
	int64_t id;

	if (kf_req_int(req, rep, "id", false, 0, 1, ID_MAX, &id) != 0)
		return;
	if (kf_admin_tx_begin(&tx, w, rep) != 0 || lock_auth(w, rep, id) != 0)
		goto out;
	p = KF_DB_INT(id);
	if (kf_db_exec(w->db, "DELETE FROM `admin_auth_map` WHERE `auth` = ?", &p, 1, NULL,
		       NULL) != 0 ||
	    kf_db_exec(w->db, "DELETE FROM `admin_auth` WHERE `id` = ?", &p, 1, NULL, NULL) != 0) {
		kf_admin_store_down(rep);
		goto out;
	}
	if (kf_admin_tx_commit(&tx, rep) != 0)
		goto out;
	reply_id(rep, id);
out:
	kf_admin_tx_abort(&tx);
}
