#include "kf_compat.h"

#include "admin_tx.h"

#include "api.h"
#include "kf_db.h"
#include "kf_err.h"
#include "kf_log.h"
#include "rbac.h"
#include "reply.h"

void kf_admin_store_down(struct kf_reply *rep)
{
	kf_reply_error(rep, 503, "service unavailable: a data store is down, try again shortly");
}

static int count_rows(void *ud, const struct kf_db_row *row)
{
	(void)row;
	(*(long *)ud)++;
	return 0;
}

/* Lock the admin row of app_lock (creating it when someone removed it). */
static int take_lock(struct kf_db *db)
{
	static const char lock_sql[] =
		"SELECT `name` FROM `app_lock` WHERE `name` = 'admin' FOR UPDATE";
	long n = 0;
	int rc = kf_db_query(db, KF_DB_PRIMARY, lock_sql, NULL, 0, count_rows, &n);

	if (rc != 0 || n > 0)
		return rc;
	rc = kf_db_exec(db, "INSERT IGNORE INTO `app_lock` (`name`) VALUES ('admin')", NULL, 0,
			NULL, NULL);
	if (rc != 0)
		return rc;
	return kf_db_query(db, KF_DB_PRIMARY, lock_sql, NULL, 0, count_rows, &n);
}

int kf_admin_tx_begin(struct kf_admin_tx *tx, struct kf_worker *w, struct kf_reply *rep)
{
	tx->w = w;
	tx->supers = 0;
	tx->open = false;
	if (kf_db_begin(w->db) != 0) {
		kf_admin_store_down(rep);
		return -1;
	}
	tx->open = true;
	if (take_lock(w->db) != 0 || kf_rbac_count_super(w->db, &tx->supers) != 0) {
		kf_admin_tx_abort(tx);
		kf_admin_store_down(rep);
		return -1;
	}
	return 0;
}

int kf_admin_tx_commit(struct kf_admin_tx *tx, struct kf_reply *rep)
{
	long after = 0;

	if (kf_rbac_count_super(tx->w->db, &after) != 0) {
		kf_admin_store_down(rep);
		goto out_abort;
	}
	if (tx->supers > 0 && after == 0) {
		kf_reply_error(rep, 409,
			       "refused: this would leave no account able to reach /admin/**; "
			       "keep at least one account whose role is granted every admin route");
		goto out_abort;
	}
	tx->open = false;
	if (kf_db_commit(tx->w->db) != 0) {
		kf_admin_store_down(rep);
		return -1;
	}
	kf_rbac_changed(tx->w); /* logged when Redis cannot be told */
	return 0;

out_abort:
	kf_admin_tx_abort(tx);
	return -1;
}

void kf_admin_tx_abort(struct kf_admin_tx *tx)
{
	if (!tx->open)
		return;
	tx->open = false;
	if (kf_db_rollback(tx->w->db) != 0)
		kf_warn("rollback failed: %s", kf_db_error(tx->w->db, KF_DB_PRIMARY));
}

int kf_admin_row_exists(struct kf_worker *w, struct kf_reply *rep, const char *sql,
			const char *field, const char *what, int64_t id)
{
	struct kf_db_param p = KF_DB_INT(id);
	long n = 0;

	if (kf_db_query(w->db, KF_DB_PRIMARY, sql, &p, 1, count_rows, &n) != 0) {
		kf_admin_store_down(rep);
		return -1;
	}
	if (n == 0) {
		kf_reply_error(rep, 404, "field '%s': no %s with id %lld", field, what, (long long)id);
		return -1;
	}
	return 0;
}
