/*
 * h_history.c - stored conversations:
 *   POST /admin/ws/conversations  (pn, pc) conversations, newest first
 *   POST /admin/ws/history        (conversation_id, pn, pc) its messages in
 *                                 seq order
 * An agent sees its own conversations; a role that is also granted
 * POST /admin/ws/conversations/all (the seed's administrator role is, by
 * a grant on every /admin path) sees everyone's.
 */
#include "kf_compat.h"

#include "api.h"
#include "handlers.h"
#include "kf_db.h"
#include "kf_err.h"
#include "kf_json.h"
#include "listing.h"
#include "rbac.h"
#include "reply.h"
#include "request.h"

#define ALL_PATH "/admin/ws/conversations/all"

static void store_down(struct kf_reply *rep)
{
	kf_reply_error(rep, 503, "service unavailable: a data store is down, try again shortly");
}

/* Does the caller see every agent's conversations?  -1 on a store error. */
static int sees_all(struct kf_worker *w, struct kf_req *req)
{
	int64_t role;
	int rc = kf_rbac_check(w, req, "POST", ALL_PATH, &role);

	if (rc == 0)
		return 1;
	return rc == KF_ERR_STORE ? -1 : 0;
}

static int take_conversation(void *ud, const struct kf_db_row *row)
{
	struct json_object *o = json_object_new_object();

	kf_list_set_int(o, "id", row, 0);
	kf_list_set_text(o, "ws_key", row, 1);
	kf_list_set_text(o, "visitor_ip", row, 2);
	kf_list_set_int(o, "admin_id", row, 3);
	kf_list_set_text(o, "admin_name", row, 4);
	kf_list_set_time(o, "start", row, 5);
	kf_list_set_time(o, "end", row, 6);
	kf_list_set_text(o, "end_reason", row, 7);
	json_object_array_add(ud, o);
	return 0;
}

void kf_h_ws_conversations(struct kf_worker *w, struct kf_req *req, struct kf_reply *rep)
{
	struct kf_page page;
	struct json_object *rows;
	int64_t count = 0;
	int all = sees_all(w, req);
	struct kf_db_param p[2];
	int rc;

	if (all < 0) {
		store_down(rep);
		return;
	}
	if (kf_list_page(w, req, rep, &page) != 0)
		return;
	p[0] = KF_DB_INT(all);
	p[1] = KF_DB_INT(req->session.admin_id);
	rc = kf_db_query(w->db, KF_DB_REPLICA,
			 "SELECT COUNT(*) FROM `conversation` WHERE (? = 1 OR `admin_id` = ?)", p, 2,
			 kf_list_take_count, &count);
	if (rc != 0) {
		store_down(rep);
		return;
	}
	rows = json_object_new_array();
	{
		struct kf_db_param q[4] = { p[0], p[1], KF_DB_INT(page.pc), KF_DB_INT(page.offset) };

		rc = kf_db_query(w->db, KF_DB_REPLICA,
				 "SELECT c.`id`, c.`ws_key`, c.`visitor_ip`, c.`admin_id`, a.`name`,"
				 " NULLIF(c.`started`, 0), NULLIF(c.`ended`, 0), c.`end_reason`"
				 " FROM `conversation` c LEFT JOIN `admin` a ON a.`id` = c.`admin_id`"
				 " WHERE (? = 1 OR c.`admin_id` = ?) ORDER BY c.`id` DESC LIMIT ? OFFSET ?",
				 q, 4, take_conversation, rows);
	}
	if (rc != 0) {
		json_object_put(rows);
		store_down(rep);
		return;
	}
	kf_list_reply(rep, rows, count, &page);
}

static int take_message(void *ud, const struct kf_db_row *row)
{
	struct json_object *o = json_object_new_object();

	kf_list_set_int(o, "seq", row, 0);
	kf_list_set_text(o, "sender_kind", row, 1);
	kf_list_set_text(o, "sender_id", row, 2);
	kf_list_set_text(o, "content", row, 3);
	kf_list_set_time(o, "create_time", row, 4);
	json_object_array_add(ud, o);
	return 0;
}

static int take_owner(void *ud, const struct kf_db_row *row)
{
	*(int64_t *)ud = kf_list_col_int(row, 0);
	return 0;
}

void kf_h_ws_history(struct kf_worker *w, struct kf_req *req, struct kf_reply *rep)
{
	struct kf_page page;
	struct json_object *rows;
	int64_t conv, owner = -1, count = 0;
	int all;
	int rc;

	if (kf_req_int(req, rep, "conversation_id", false, 0, 1, INT64_MAX - 1, &conv) != 0 ||
	    kf_list_page(w, req, rep, &page) != 0)
		return;
	all = sees_all(w, req);
	if (all < 0) {
		store_down(rep);
		return;
	}
	{
		struct kf_db_param p = KF_DB_INT(conv);

		rc = kf_db_query(w->db, KF_DB_REPLICA,
				 "SELECT `admin_id` FROM `conversation` WHERE `id` = ?", &p, 1, take_owner,
				 &owner);
		if (rc == 0)
			rc = kf_db_query(w->db, KF_DB_REPLICA,
					 "SELECT COUNT(*) FROM `message` WHERE `conversation_id` = ?", &p,
					 1, kf_list_take_count, &count);
	}
	if (rc != 0) {
		store_down(rep);
		return;
	}
	if (owner < 0 || (!all && owner != req->session.admin_id)) {
		/* another agent's conversation is as unknown as a missing one */
		kf_reply_error(rep, 404, "no conversation %lld", (long long)conv);
		return;
	}
	rows = json_object_new_array();
	{
		struct kf_db_param q[3] = { KF_DB_INT(conv), KF_DB_INT(page.pc),
					    KF_DB_INT(page.offset) };

		rc = kf_db_query(w->db, KF_DB_REPLICA,
				 "SELECT `seq`, `sender_kind`, `sender_id`, `content`, `created`"
				 " FROM `message` WHERE `conversation_id` = ? ORDER BY `seq`"
				 " LIMIT ? OFFSET ?",
				 q, 3, take_message, rows);
	}
	if (rc != 0) {
		json_object_put(rows);
		store_down(rep);
		return;
	}
	kf_list_reply(rep, rows, count, &page);
}
