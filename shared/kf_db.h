/*
 * kf_db.h - MySQL/MariaDB access for one thread (libmysqlclient API).
 *
 * A kf_db holds a primary connection (every write) and, when [Db] HostSlave
 * or SocketSlave is set, a replica connection (reads that ask for it).
 * Connections open on first use with the [Db] timeouts and utf8mb4, are
 * reopened after ConnMaxLifetimeMinus, and after a failure are retried with
 * a backoff (100 ms doubling to 2 s) during which calls fail at once.  A
 * statement that fails because a working connection went away is retried
 * once on a fresh one.
 *
 * Every statement with data is a prepared statement (cached per connection,
 * keyed by its SQL text); kf_db_script() runs trusted multi-statement SQL
 * (migrations) and takes no parameters.  Not thread-safe: one per thread.
 */
#ifndef KF_DB_H
#define KF_DB_H

#include "kf_compat.h"

struct kf_config;
struct kf_db;

enum kf_db_side {
	KF_DB_PRIMARY = 0,
	KF_DB_REPLICA = 1, /* the primary when no replica is configured */
};

enum kf_db_type { KF_DB_NULL, KF_DB_INT, KF_DB_STR };

struct kf_db_param {
	enum kf_db_type type;
	int64_t i;
	const char *s; /* borrowed for the call */
	size_t len;
};

#define KF_DB_INT(v) ((struct kf_db_param){ KF_DB_INT, (int64_t)(v), NULL, 0 })
#define KF_DB_STR(p, n) ((struct kf_db_param){ KF_DB_STR, 0, (p), (n) })
#define KF_DB_CSTR(p) ((struct kf_db_param){ KF_DB_STR, 0, (p), strlen(p) })
#define KF_DB_NULLP ((struct kf_db_param){ KF_DB_NULL, 0, NULL, 0 })

/* One result row: vals[i] is NUL-terminated, or NULL for SQL NULL. */
struct kf_db_row {
	unsigned ncols;
	char **vals;
	const unsigned long *lens;
};

/* Called per row; a non-zero return stops the query and is returned. */
typedef int (*kf_db_row_fn)(void *ud, const struct kf_db_row *row);

/* Options copied from cfg; nothing connected yet.  Never NULL. */
struct kf_db *kf_db_new(const struct kf_config *cfg);
void kf_db_free(struct kf_db *db);

/*
 * Run a statement on the primary.  affected and insert_id may be NULL.
 * Returns 0, KF_ERR_EXISTS (duplicate key), KF_ERR_STORE (unavailable or
 * failed; logged) or KF_ERR_INVAL (too many parameters).
 */
int kf_db_exec(struct kf_db *db, const char *sql, const struct kf_db_param *params,
	       size_t nparams, uint64_t *affected, uint64_t *insert_id);
/* Run a query and call fn for each row.  Returns as kf_db_exec, or fn's value. */
int kf_db_query(struct kf_db *db, enum kf_db_side side, const char *sql,
		const struct kf_db_param *params, size_t nparams, kf_db_row_fn fn, void *ud);
/*
 * START TRANSACTION / COMMIT / ROLLBACK on the primary.  Inside a
 * transaction a lost connection is never retried on a fresh one (the
 * statement would run outside the transaction): every later statement and
 * the commit fail with KF_ERR_STORE, and rollback returns 0 (the server
 * has rolled back).  kf_db_begin returns KF_ERR_INVAL when a transaction is
 * already open; commit and rollback always end it.
 */
int kf_db_begin(struct kf_db *db);
int kf_db_commit(struct kf_db *db);
int kf_db_rollback(struct kf_db *db);
/* Run trusted SQL text holding several statements (no data!) on the primary. */
int kf_db_script(struct kf_db *db, const char *sql);
/* 0 when the side answers, KF_ERR_STORE otherwise. */
int kf_db_ping(struct kf_db *db, enum kf_db_side side);
/* The last error text of side ("" when none).  Borrowed. */
const char *kf_db_error(struct kf_db *db, enum kf_db_side side);

#endif
