/*
 * h_user.c - admin accounts:
 *   POST /admin/user        paged list (pn, pc): id, name, user_name, role,
 *                           role_name, describe (the role's), create_time
 *   POST /admin/user/add    username, password, name, role -> {id}
 *   POST /admin/user/edit   id, username, name, role, password (optional:
 *                           absent or empty keeps the old one)
 *   POST /admin/user/del    id
 * Changes run in an admin transaction (admin_tx.h): a duplicate username is
 * 409, an unknown account or role 404, and the last account that reaches
 * every admin route cannot be deleted or moved to a role that does not
 * (409).
 */
#include "kf_compat.h"

#include "admin_tx.h"
#include "api.h"
#include "handlers.h"
#include "kf_db.h"
#include "kf_err.h"
#include "kf_json.h"
#include "kf_password.h"
#include "listing.h"
#include "reply.h"
#include "request.h"

#define USERNAME_MIN 2
#define USERNAME_MAX 60 /* admin.username varchar(60) */
#define NAME_MAX_CHARS 60
#define PASSWORD_MIN 8
#define ID_MAX 4294967295LL /* int unsigned */

struct user_fields {
	int64_t id;
	const char *username, *name, *password;
	size_t username_len, name_len, password_len;
	int64_t role;
};

/* Read the account fields; id only when edit.  0, or -1 with rep set. */
static int read_fields(struct kf_req *req, struct kf_reply *rep, bool edit, struct user_fields *f)
{
	memset(f, 0, sizeof(*f));
	if (edit && kf_req_int(req, rep, "id", false, 0, 1, ID_MAX, &f->id) != 0)
		return -1;
	if (kf_req_str(req, rep, "username", false, USERNAME_MIN, USERNAME_MAX, &f->username,
		       &f->username_len) != 0 ||
	    kf_req_str(req, rep, "name", false, 1, NAME_MAX_CHARS, &f->name, &f->name_len) != 0 ||
	    kf_req_str(req, rep, "password", edit, 0, KF_PASSWORD_MAX, &f->password,
		       &f->password_len) != 0 ||
	    kf_req_int(req, rep, "role", false, 0, 1, ID_MAX, &f->role) != 0)
		return -1;
	if (f->password && f->password_len == 0 && edit)
		f->password = NULL; /* empty: keep the old one */
	if (f->password && kf_utf8_len(f->password, f->password_len) < PASSWORD_MIN) {
		kf_reply_error(rep, 400, "field 'password' must be at least %d characters",
			       PASSWORD_MIN);
		return -1;
	}
	if (f->password_len > KF_PASSWORD_MAX) {
		kf_reply_error(rep, 400, "field 'password' must be at most %d bytes",
			       KF_PASSWORD_MAX);
		return -1;
	}
	return 0;
}


/*
 * Inside the transaction: does role exist?  Locks the row against a
 * concurrent delete.  0 (rep untouched) or -1 with rep set (404 or 503).
 */
static int check_role(struct kf_worker *w, struct kf_reply *rep, int64_t role)
{
	return kf_admin_row_exists(w, rep,
				   "SELECT `id` FROM `admin_role` WHERE `id` = ? LOCK IN SHARE MODE",
				   "role", "role", role);
}

static int hash_password(struct kf_worker *w, struct kf_reply *rep, const struct user_fields *f,
			 char hash[KF_PASSWORD_HASH_MAX])
{
	if (kf_password_hash(&w->api->cost, f->password, f->password_len, hash) != 0) {
		kf_reply_error(rep, 503, "service unavailable: unable to hash the password now, "
					 "try again shortly");
		return -1;
	}
	return 0;
}

static int take_user(void *ud, const struct kf_db_row *row)
{
	struct json_object *o = json_object_new_object();

	kf_list_set_int(o, "id", row, 0);
	kf_list_set_text(o, "name", row, 1);
	kf_list_set_text(o, "user_name", row, 2);
	kf_list_set_int(o, "role", row, 3);
	kf_list_set_text(o, "role_name", row, 4);
	kf_list_set_text(o, "describe", row, 5);
	kf_list_set_time(o, "create_time", row, 6);
	json_object_array_add(ud, o);
	return 0;
}

void kf_h_user_list(struct kf_worker *w, struct kf_req *req, struct kf_reply *rep)
{
	struct kf_page page;

	if (kf_list_page(w, req, rep, &page) != 0)
		return;
	kf_list_query(w, rep, &page, "SELECT COUNT(*) FROM `admin`",
		      "SELECT a.`id`, a.`name`, a.`username`, a.`role`, r.`name`, r.`describe`,"
		      " a.`create_time` FROM `admin` a LEFT JOIN `admin_role` r ON r.`id` = a.`role`"
		      " ORDER BY a.`id` DESC LIMIT ? OFFSET ?",
		      NULL, 0, take_user);
}

static void reply_account(struct kf_reply *rep, int64_t id, const struct user_fields *f)
{
	struct json_object *data = json_object_new_object();

	kf_json_set_int(data, "id", id);
	kf_json_set_strn(data, "user_name", f->username, f->username_len);
	kf_json_set_strn(data, "name", f->name, f->name_len);
	kf_json_set_int(data, "role", f->role);
	kf_reply_ok(rep, data);
}

static void username_taken(struct kf_reply *rep, const struct user_fields *f)
{
	kf_reply_error(rep, 409, "field 'username': '%.*s' is already taken",
		       (int)f->username_len, f->username);
}

void kf_h_user_add(struct kf_worker *w, struct kf_req *req, struct kf_reply *rep)
{
	struct user_fields f;
	char hash[KF_PASSWORD_HASH_MAX] = "";
	struct kf_admin_tx tx = { 0 };
	struct kf_db_param p[4];
	uint64_t id = 0;
	int rc;

	if (read_fields(req, rep, false, &f) != 0 || hash_password(w, rep, &f, hash) != 0)
		goto out;
	if (kf_admin_tx_begin(&tx, w, rep) != 0 || check_role(w, rep, f.role) != 0)
		goto out;
	p[0] = KF_DB_STR(f.username, f.username_len);
	p[1] = KF_DB_CSTR(hash);
	p[2] = KF_DB_STR(f.name, f.name_len);
	p[3] = KF_DB_INT(f.role);
	rc = kf_db_exec(w->db,
			"INSERT INTO `admin` (`username`, `password`, `name`, `role`, `create_time`)"
			" VALUES (?, ?, ?, ?, UNIX_TIMESTAMP())",
			p, 4, NULL, &id);
	if (rc == KF_ERR_EXISTS) {
		username_taken(rep, &f);
		goto out;
	}
	if (rc != 0) {
		kf_admin_store_down(rep);
		goto out;
	}
	if (kf_admin_tx_commit(&tx, rep) != 0)
		goto out;
	reply_account(rep, (int64_t)id, &f);
out:
	kf_admin_tx_abort(&tx);
	sodium_memzero(hash, sizeof(hash));
}

/* Lock account id.  0, or -1 with rep set (404 or 503). */
static int lock_account(struct kf_worker *w, struct kf_reply *rep, int64_t id)
{
	return kf_admin_row_exists(w, rep, "SELECT `id` FROM `admin` WHERE `id` = ? FOR UPDATE",
				   "id", "account", id);
}

void kf_h_user_edit(struct kf_worker *w, struct kf_req *req, struct kf_reply *rep)
{
	struct user_fields f;
	char hash[KF_PASSWORD_HASH_MAX] = "";
	struct kf_admin_tx tx = { 0 };
	struct kf_db_param p[5];
	int rc;

	if (read_fields(req, rep, true, &f) != 0 ||
	    (f.password && hash_password(w, rep, &f, hash) != 0))
		goto out;
	if (kf_admin_tx_begin(&tx, w, rep) != 0 || lock_account(w, rep, f.id) != 0 ||
	    check_role(w, rep, f.role) != 0)
		goto out;
	p[0] = KF_DB_STR(f.username, f.username_len);
	p[1] = KF_DB_STR(f.name, f.name_len);
	p[2] = KF_DB_INT(f.role);
	if (f.password) {
		p[3] = KF_DB_CSTR(hash);
		p[4] = KF_DB_INT(f.id);
		rc = kf_db_exec(w->db,
				"UPDATE `admin` SET `username` = ?, `name` = ?, `role` = ?,"
				" `password` = ? WHERE `id` = ?",
				p, 5, NULL, NULL);
	} else {
		p[3] = KF_DB_INT(f.id);
		rc = kf_db_exec(w->db,
				"UPDATE `admin` SET `username` = ?, `name` = ?, `role` = ?"
				" WHERE `id` = ?",
				p, 4, NULL, NULL);
	}
	if (rc == KF_ERR_EXISTS) {
		username_taken(rep, &f);
		goto out;
	}
	if (rc != 0) {
		kf_admin_store_down(rep);
		goto out;
	}
	if (kf_admin_tx_commit(&tx, rep) != 0)
		goto out;
	reply_account(rep, f.id, &f);
out:
	kf_admin_tx_abort(&tx);
	sodium_memzero(hash, sizeof(hash));
}

void kf_h_user_del(struct kf_worker *w, struct kf_req *req, struct kf_reply *rep)
{
	struct kf_admin_tx tx = { 0 };
	struct kf_db_param p;
	int64_t id;

	if (kf_req_int(req, rep, "id", false, 0, 1, ID_MAX, &id) != 0)
		return;
	if (kf_admin_tx_begin(&tx, w, rep) != 0 || lock_account(w, rep, id) != 0)
		goto out;
	p = KF_DB_INT(id);
	if (kf_db_exec(w->db, "DELETE FROM `admin` WHERE `id` = ?", &p, 1, NULL, NULL) != 0) {
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
