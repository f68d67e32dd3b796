/*
 * admin_tx.h - the transaction every administrative change runs in.
 *
 * kf_admin_tx_begin() starts a transaction on the worker's primary, takes
 * the admin lock (the 'admin' row of table app_lock, FOR UPDATE) so that
 * changes to accounts, roles, permissions and grants run one at a time
 * across every process, and counts the accounts whose role reaches
 * every admin route (kf_rbac_count_super).  The handler then reads what it checks
 * with locking reads and makes its change on the same worker's db.
 * kf_admin_tx_commit() counts again and refuses (409, rolled back) a
 * change that would leave no such account where there was one; else it
 * commits and publishes the change to every process (kf_rbac_changed).
 *
 * Usage:
 *	struct kf_admin_tx tx;
 *	if (kf_admin_tx_begin(&tx, w, rep) != 0)
 *		return;
 *	... on a refusal: set rep, goto out ...
 *	if (kf_admin_tx_commit(&tx, rep) != 0)
 *		goto out;
 *	kf_reply_ok(rep, ...);
 * out:
 *	kf_admin_tx_abort(&tx);    (rolls back unless committed)
 */
#ifndef KF_ADMIN_TX_H
#define KF_ADMIN_TX_H

#include "kf_compat.h"

struct kf_reply;
struct kf_worker;

struct kf_admin_tx {
	struct kf_worker *w;
	long supers; /* accounts reaching every admin route at the start */
	bool open;
};

/* Begin.  Returns 0, or -1 with rep set to 503 (nothing left open). */
int kf_admin_tx_begin(struct kf_admin_tx *tx, struct kf_worker *w, struct kf_reply *rep);
/*
 * Check the last-admin rule, commit and publish.  Returns 0, or -1 with
 * rep set (409 refused, 503 store down) and the transaction rolled back.
 */
int kf_admin_tx_commit(struct kf_admin_tx *tx, struct kf_reply *rep);
/* Roll back when still open; a no-op after a commit or a failure. */
void kf_admin_tx_abort(struct kf_admin_tx *tx);
/* Fill rep with the 503 every store failure gets. */
void kf_admin_store_down(struct kf_reply *rep);
/*
 * Does the row that sql (one ? for id; it may lock: FOR UPDATE, LOCK IN
 * SHARE MODE) selects exist?  0, or -1 with rep set: 404 "field 'FIELD':
 * no WHAT with id ID", or 503.
 */
int kf_admin_row_exists(struct kf_worker *w, struct kf_reply *rep, const char *sql,
			const char *field, const char *what, int64_t id);

#endif
