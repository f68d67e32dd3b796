/*
 * h_role.c - roles:
 *   POST /admin/role        paged list (pn, pc): id, name, describe,
 *                           create_time
 *   POST /admin/role/add    name, describe (optional) -> {id}
 *   POST /admin/role/edit   id, name, describe (optional: absent keeps it)
 *   POST /admin/role/del    id; 409 while an account holds the role; its
 *                           grants go with it
 */
#include "kf_compat.h"

#include "admin_tx.h"
#include "api.h"
#include "handlers.h"
#include "kf_db.h"
#include "kf_err.h"
#include "kf_json.h"
#include "listing.h"
#include "reply.h"
#include "request.h"

#define NAME_MAX_CHARS 60     /* admin_role.name varchar(60) */
#define DESCRIBE_MAX_CHARS 100 /* admin_role.describe varchar(100) */
#define ID_MAX 4294967295LL

static int take_role(void *ud, const struct kf_db_row *row)
{
	struct json_object *o = json_object_new_object();

	kf_list_set_int(o, "id", row, 0);
	kf_list_set_text(o, "name", row, 1);
	kf_list_set_text(o, "describe", row, 2);
	kf_list_set_time(o, "create_time", row, 3);
	json_object_array_add(ud, o);
	return 0;
}

void kf_h_role_list(struct kf_worker *w, struct kf_req *req, struct kf_reply *rep)
{
	struct kf_page page;

	if (kf_list_page(w, req, rep, &page) != 0)
		return;
	kf_list_query(w, rep, &page, "SELECT COUNT(*) FROM `admin_role`",
		      "SELECT `id`, `name`, `describe`, `create_time` FROM `admin_role`"
		      " ORDER BY `id` LIMIT ? OFFSET ?",
		      NULL, 0, take_role);
}

static void reply_role(struct kf_reply *rep, int64_t id, const char *name, size_t name_len,
		       const char *describe, size_t describe_len)
{
	struct json_object *data = json_object_new_object();

	kf_json_set_int(data, "id", id);
	kf_json_set_strn(data, "name", name, name_len);
	if (describe)
		kf_json_set_strn(data, "describe", describe, describe_len);
	kf_reply_ok(rep, data);
}

void kf_h_role_add(struct kf_worker *w, struct kf_req *req, struct kf_reply *rep)
{
	struct kf_admin_tx tx = { 0 };
	const char *name, *describe;
	size_t name_len, describe_len;
	struct kf_db_param p[2];
	uint64_t id = 0;

	if (kf_req_str(req, rep, "name", false, 1, NAME_MAX_CHARS, &name, &name_len) != 0 ||
	    kf_req_str(req, rep, "describe", true, 0, DESCRIBE_MAX_CHARS, &describe,
		       &describe_len) != 0)
		return;
	if (!describe) {
		describe = "";
		describe_len = 0;
	}
	if (kf_admin_tx_begin(&tx, w, rep) != 0)
		goto out;
	p[0] = KF_DB_STR(name, name_len);
	p[1] = KF_DB_STR(describe, describe_len);
	if (kf_db_exec(w->db,
		       "INSERT INTO `admin_role` (`name`, `describe`, `create_time`)"
		       " VALUES (?, ?, UNIX_TIMESTAMP())",
		       p, 2, NULL, &id) != 0) {
		kf_admin_store_down(rep);
		goto out;
	}
	if (kf_admin_tx_commit(&tx, rep) != 0)
		goto out;
	reply_role(rep, (int64_t)id, name, name_len, describe, describe_len);
out:
	kf_admin_tx_abort(&tx);
}


/* Lock role id.  0, or -1 with rep set (404 or 503). */
static int lock_role(struct kf_worker *w, struct kf_reply *rep, int64_t id)
{
	return kf_admin_row_exists(w, rep, "SELECT `id` FROM `admin_role` WHERE `id` = ? FOR UPDATE",
				   "id", "role", id);
}

void kf_h_role_edit(struct kf_worker *w, struct kf_req *req, struct kf_reply *rep)
{
	struct kf_admin_tx tx = { 0 };
	const char *name, *describe;
	size_t name_len, describe_len;
	struct kf_db_param p[3];
	int64_t id;

	if (kf_req_int(req, rep, "id", false, 0, 1, ID_MAX, &id) != 0 ||
	    kf_req_str(req, rep, "name", false, 1, NAME_MAX_CHARS, &name, &name_len) != 0 ||
	    kf_req_str(req, rep, "describe", true, 0, DESCRIBE_MAX_CHARS, &describe,
		       &describe_len) != 0)
		return;
	if (kf_admin_tx_begin(&tx, w, rep) != 0 || lock_role(w, rep, id) != 0)
		goto out;
	p[0] = KF_DB_STR(name, name_len);
	p[1] = describe ? KF_DB_STR(describe, describe_len) : KF_DB_NULLP;
	p[2] = KF_DB_INT(id);
	if (kf_db_exec(w->db,
		       "UPDATE `admin_role` SET `name` = ?, `describe` = COALESCE(?, `describe`)"
		       " WHERE `id` = ?",
		       p, 3, NULL, NULL) != 0) {
		kf_admin_store_down(rep);
		goto out;
	}
	if (kf_admin_tx_commit(&tx, rep) != 0)
		goto out;
	reply_role(rep, id, name, name_len, describe, describe_len);
out:
	kf_admin_tx_abort(&tx);
}

void kf_h_role_del(struct kf_worker *w, struct kf_req *req, struct kf_reply *rep)
{
	struct kf_admin_tx tx = { 0 };
	struct kf_db_param p;
	int64_t id, holders = 0;

	if (kf_req_int(req, rep, "id", false, 0, 1, ID_MAX, &id) != 0)
		return;
	if (kf_admin_tx_begin(&tx, w, rep) != 0 || lock_role(w, rep, id) != 0)
		goto out;
	p = KF_DB_INT(id);
	if (kf_db_query(w->db, KF_DB_PRIMARY,
			"SELECT COUNT(*) FROM `admin` WHERE `role` = ? LOCK IN SHARE MODE", &p, 1,
			kf_list_take_count, &holders) != 0) {
		kf_admin_store_down(rep);
		goto out;
	}
	if (holders > 0) {
		kf_reply_error(rep, 409,
			       "role %lld is still in use by %lld account%s: move them to another "
			       "role first",
			       (long long)id, (long long)holders, holders == 1 ? "" : "s");
		goto out;
	}
	if (kf_db_exec(w->db, "DELETE FROM `admin_auth_map` WHERE `role` = ?", &p, 1, NULL,
		       NULL) != 0 ||
	    kf_db_exec(w->db, "DELETE FROM `admin_role` WHERE `id` = ?", &p, 1, NULL, NULL) != 0) {
		kf_admin_store_down(rep);
		goto out;
	}
	if (kf_admin_tx_commit(&tx, rep) != 0)
		goto out;
	{
		struct json_object *data = json_object_new_object();

		kf_json_set_int(data, "id", id);
		kf_reply_ok(rep, data);
	}
out:
	kf_admin_tx_abort(&tx);
}
