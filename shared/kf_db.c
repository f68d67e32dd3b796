#include "kf_compat.h"

#include "kf_db.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

#include <mysql.h>
#include <errmsg.h>
#include <mysqld_error.h>

#include "kf_config.h"
#include "kf_err.h"
#include "kf_log.h"
#include "kf_mem.h"

#define STMT_CACHE 64
/* Most parameters one statement may take (multi-row inserts use many). */
#define MAX_PARAMS 400
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 2000

struct stmt_slot {
	char *sql;
	MYSQL_STMT *stmt;
};

struct conn {
	const char *name; /* "primary" or "replica" */
	char *host, *socket, *user, *password, *database;
	unsigned port;
	MYSQL *mysql;
	time_t opened;
	int64_t next_attempt_ms;
	int64_t failed_ms; /* when its last connect failed */
	int backoff_ms;
	struct stmt_slot stmts[STMT_CACHE];
	size_t nstmts;
	char error[256];
	unsigned gen; /* counts successful connects */
};

struct kf_db {
	struct conn primary;
	struct conn replica;
	bool has_replica;
	unsigned connect_timeout, read_timeout, write_timeout;
	long lifetime_sec;
	bool in_tx;      /* between kf_db_begin and commit/rollback */
	unsigned tx_gen; /* the primary's gen when the transaction began */
};

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void conn_init(struct conn *c, const char *name, const struct kf_config *cfg,
		      const char *suffix, const struct conn *fallback)
{
	char key[32];

#define STR(field, k)                                                             \
	do {                                                                      \
		snprintf(key, sizeof(key), "%s%s", k, suffix);                    \
		c->field = kf_xstrdup(kf_config_str(cfg, "Db", key));             \
		if (!*c->field && fallback) {                                     \
			free(c->field);                                           \
			c->field = kf_xstrdup(fallback->field);                   \
		}                                                                 \
	} while (0)
	c->name = name;
	STR(host, "Host");
	STR(socket, "Socket");
	STR(user, "Username");
	STR(password, "Password");
	STR(database, "Database");
#undef STR
	snprintf(key, sizeof(key), "Port%s", suffix);
	c->port = (unsigned)kf_config_int(cfg, "Db", key);
}

struct kf_db *kf_db_new(const struct kf_config *cfg)
{
	struct kf_db *db = kf_xcalloc(1, sizeof(*db));

	conn_init(&db->primary, "primary", cfg, "Master", NULL);
	db->has_replica = *kf_config_str(cfg, "Db", "HostSlave") ||
			  *kf_config_str(cfg, "Db", "SocketSlave");
	if (db->has_replica)
		conn_init(&db->replica, "replica", cfg, "Slave", &db->primary);
	db->connect_timeout = (unsigned)kf_config_int(cfg, "Db", "ConnectTimeoutSec");
	db->read_timeout = (unsigned)kf_config_int(cfg, "Db", "ReadTimeoutSec");
	db->write_timeout = (unsigned)kf_config_int(cfg, "Db", "WriteTimeoutSec");
	db->lifetime_sec = (long)kf_config_int(cfg, "Db", "ConnMaxLifetimeMinus") * 60;
	return db;
}

static void conn_close(struct conn *c)
{
	for (size_t i = 0; i < c->nstmts; i++) {
		mysql_stmt_close(c->stmts[i].stmt);
		free(c->stmts[i].sql);
	}
	c->nstmts = 0;
	if (c->mysql)
		mysql_close(c->mysql);
	c->mysql = NULL;
}

static void conn_release(struct conn *c)
{
	conn_close(c);
	free(c->host);
	free(c->socket);
	free(c->user);
	if (c->password)
		memset(c->password, 0, strlen(c->password));
	free(c->password);
	free(c->database);
}

void kf_db_free(struct kf_db *db)
{
	if (!db)
		return;
	conn_release(&db->primary);
	if (db->has_replica)
		conn_release(&db->replica);
	free(db);
}

static void set_error(struct conn *c, const char *what, const char *msg)
{
	snprintf(c->error, sizeof(c->error), "%s: %s", what, msg);
}

/*
 * When a connection of this process last got through, per side (0 primary,
 * 1 replica): a connection waiting out its backoff tries again at once once
 * another (another worker's) has connected after its own failure, so the
 * server's return is seen by every worker, not one by one.
 */
static _Atomic int64_t connected_ms[2];

static int conn_open(struct kf_db *db, struct conn *c)
{
	bool had_failed = c->backoff_ms != 0;
	int side = c == &db->replica;

	if (c->mysql && db->lifetime_sec && time(NULL) - c->opened > db->lifetime_sec &&
	    !(db->in_tx && c == &db->primary))
		conn_close(c);
	if (c->mysql)
		return 0;
	if (now_ms() < c->next_attempt_ms && atomic_load(&connected_ms[side]) <= c->failed_ms)
		return KF_ERR_STORE;
	c->mysql = mysql_init(NULL);
	if (!c->mysql)
		return KF_ERR_NOMEM;
	mysql_options(c->mysql, MYSQL_OPT_CONNECT_TIMEOUT, &db->connect_timeout);
	mysql_options(c->mysql, MYSQL_OPT_READ_TIMEOUT, &db->read_timeout);
	mysql_options(c->mysql, MYSQL_OPT_WRITE_TIMEOUT, &db->write_timeout);
	mysql_options(c->mysql, MYSQL_SET_CHARSET_NAME, "utf8mb4");
	if (!mysql_real_connect(c->mysql, *c->socket ? NULL : c->host, c->user, c->password,
				c->database, *c->socket ? 0 : c->port,
				*c->socket ? c->socket : NULL, CLIENT_MULTI_STATEMENTS)) {
		set_error(c, "connect", mysql_error(c->mysql));
		if (!had_failed)
			kf_err("mysql %s (%s): unable to connect: %s", c->name,
			       *c->socket ? c->socket : c->host, mysql_error(c->mysql));
		mysql_close(c->mysql);
		c->mysql = NULL;
		c->backoff_ms = c->backoff_ms ? c->backoff_ms * 2 : BACKOFF_MIN_MS;
		if (c->backoff_ms > BACKOFF_MAX_MS)
			c->backoff_ms = BACKOFF_MAX_MS;
		c->failed_ms = now_ms();
		c->next_attempt_ms = c->failed_ms + c->backoff_ms;
		return KF_ERR_STORE;
	}
	atomic_store(&connected_ms[side], now_ms());
	if (had_failed)
		kf_info("mysql %s: connected again", c->name);
	c->backoff_ms = 0;
	c->opened = time(NULL);
	c->error[0] = '\0';
	c->gen++;
	return 0;
}

static bool lost_connection(unsigned err)
{
	return err == CR_SERVER_GONE_ERROR || err == CR_SERVER_LOST ||
	       err == CR_CONNECTION_ERROR || err == CR_CONN_HOST_ERROR ||
	       err == CR_SERVER_LOST_EXTENDED || err == ER_CONNECTION_KILLED ||
	       err == CR_COMMANDS_OUT_OF_SYNC;
}

/* The cached statement for sql, prepared on first use. */
static MYSQL_STMT *get_stmt(struct conn *c, const char *sql, unsigned *err)
{
	MYSQL_STMT *stmt;

	for (size_t i = 0; i < c->nstmts; i++)
		if (strcmp(c->stmts[i].sql, sql) == 0)
			return c->stmts[i].stmt;
	stmt = mysql_stmt_init(c->mysql);
	if (!stmt) {
		*err = CR_OUT_OF_MEMORY;
		return NULL;
	}
	if (mysql_stmt_prepare(stmt, sql, strlen(sql)) != 0) {
		*err = mysql_stmt_errno(stmt);
		set_error(c, "prepare", mysql_stmt_error(stmt));
		mysql_stmt_close(stmt);
		return NULL;
	}
	if (c->nstmts == STMT_CACHE) { /* full: evict the oldest */
		mysql_stmt_close(c->stmts[0].stmt);
		free(c->stmts[0].sql);
		memmove(&c->stmts[0], &c->stmts[1], sizeof(c->stmts[0]) * (STMT_CACHE - 1));
		c->nstmts--;
	}
	c->stmts[c->nstmts].sql = kf_xstrdup(sql);
	c->stmts[c->nstmts].stmt = stmt;
	c->nstmts++;
	return stmt;
}

struct result {
	MYSQL_BIND *binds;
	char **bufs;
	unsigned long *lens;
	my_bool *nulls;
	char **vals;
	unsigned ncols;
};

static void result_release(struct result *r)
{
	for (unsigned i = 0; i < r->ncols; i++)
		free(r->bufs[i]);
	free(r->binds);
	free(r->bufs);
	free(r->lens);
	free(r->nulls);
	free(r->vals);
}

/*
 * Execute stmt with params; for queries deliver rows to fn.  *err is the
 * MySQL error number on failure.  Returns 0, fn's non-zero value, or -1.
 */
static int run_stmt(struct conn *c, MYSQL_STMT *stmt, const struct kf_db_param *params,
		    size_t nparams, kf_db_row_fn fn, void *ud, unsigned *err, uint64_t *affected,
		    uint64_t *insert_id)
{
	MYSQL_BIND *pb = NULL;
	struct result res = { 0 };
	MYSQL_RES *meta = NULL;
	int rc = -1;

	if (mysql_stmt_param_count(stmt) != nparams) {
		set_error(c, "bind", "parameter count does not match the statement");
		*err = CR_INVALID_PARAMETER_NO;
		return -1;
	}
	pb = kf_xcalloc(nparams ? nparams : 1, sizeof(*pb));
	for (size_t i = 0; i < nparams; i++) {
		switch (params[i].type) {
		case KF_DB_NULL:
			pb[i].buffer_type = MYSQL_TYPE_NULL;
			break;
		case KF_DB_INT:
			pb[i].buffer_type = MYSQL_TYPE_LONGLONG;
			pb[i].buffer = (void *)&params[i].i;
			break;
		case KF_DB_STR:
			pb[i].buffer_type = MYSQL_TYPE_STRING;
			pb[i].buffer = (void *)(params[i].s ? params[i].s : "");
			pb[i].buffer_length = params[i].len;
			break;
		}
	}
	if (nparams && mysql_stmt_bind_param(stmt, pb) != 0)
		goto out_stmt_error;
	meta = mysql_stmt_result_metadata(stmt);
	if (meta) {
		my_bool on = 1;

		mysql_stmt_attr_set(stmt, STMT_ATTR_UPDATE_MAX_LENGTH, &on);
	}
	if (mysql_stmt_execute(stmt) != 0)
		goto out_stmt_error;
	if (!meta) {
		if (affected)
			*affected = mysql_stmt_affected_rows(stmt);
		if (insert_id)
			*insert_id = mysql_stmt_insert_id(stmt);
		rc = 0;
		goto out;
	}
	if (mysql_stmt_store_result(stmt) != 0)
		goto out_stmt_error;
	res.ncols = mysql_num_fields(meta);
	res.binds = kf_xcalloc(res.ncols, sizeof(*res.binds));
	res.bufs = kf_xcalloc(res.ncols, sizeof(*res.bufs));
	res.lens = kf_xcalloc(res.ncols, sizeof(*res.lens));
	res.nulls = kf_xcalloc(res.ncols, sizeof(*res.nulls));
	res.vals = kf_xcalloc(res.ncols, sizeof(*res.vals));
	{
		MYSQL_FIELD *fields = mysql_fetch_fields(meta);

		for (unsigned i = 0; i < res.ncols; i++) {
			unsigned long size = fields[i].max_length + 1;

			if (size < 64)
				size = 64;
			res.bufs[i] = kf_xmalloc(size);
			res.binds[i].buffer_type = MYSQL_TYPE_STRING;
			res.binds[i].buffer = res.bufs[i];
			res.binds[i].buffer_length = size;
			res.binds[i].length = &res.lens[i];
			res.binds[i].is_null = &res.nulls[i];
		}
	}
	if (mysql_stmt_bind_result(stmt, res.binds) != 0)
		goto out_stmt_error;
	rc = 0;
	for (;;) {
		int f = mysql_stmt_fetch(stmt);
		struct kf_db_row row;

		if (f == MYSQL_NO_DATA)
			break;
		if (f == 1)
			goto out_stmt_error;
		if (f == MYSQL_DATA_TRUNCATED) {
			for (unsigned i = 0; i < res.ncols; i++) {
				if (res.nulls[i] || res.lens[i] < res.binds[i].buffer_length)
					continue;
				res.bufs[i] = kf_xrealloc(res.bufs[i], res.lens[i] + 1);
				res.binds[i].buffer = res.bufs[i];
				res.binds[i].buffer_length = res.lens[i] + 1;
				if (mysql_stmt_fetch_column(stmt, &res.binds[i], i, 0) != 0)
					goto out_stmt_error;
			}
			if (mysql_stmt_bind_result(stmt, res.binds) != 0)
				goto out_stmt_error;
		}
		for (unsigned i = 0; i < res.ncols; i++) {
			if (res.nulls[i]) {
				res.vals[i] = NULL;
				continue;
			}
			res.bufs[i][res.lens[i]] = '\0';
			res.vals[i] = res.bufs[i];
		}
		row.ncols = res.ncols;
		row.vals = res.vals;
		row.lens = res.lens;
		if (fn) {
			rc = fn(ud, &row);
			if (rc != 0)
				break;
		}
	}
	goto out;

out_stmt_error:
	*err = mysql_stmt_errno(stmt);
	set_error(c, "execute", mysql_stmt_error(stmt));
	rc = -1;
out:
	free(pb);
	mysql_stmt_free_result(stmt);
	mysql_stmt_reset(stmt);
	if (meta)
		mysql_free_result(meta);
	result_release(&res);
	return rc;
}

static int do_stmt(struct kf_db *db, enum kf_db_side side, const char *sql,
		   const struct kf_db_param *params, size_t nparams, kf_db_row_fn fn, void *ud,
		   uint64_t *affected, uint64_t *insert_id)
{
	struct conn *c = side == KF_DB_REPLICA && db->has_replica ? &db->replica : &db->primary;

	if (nparams > MAX_PARAMS)
		return KF_ERR_INVAL;
	if (db->in_tx && c == &db->primary && (!c->mysql || c->gen != db->tx_gen)) {
		/* the connection the transaction ran on is gone, and with it the
		 * transaction: running this alone would be wrong */
		set_error(c, "transaction", "the connection was lost");
		return KF_ERR_STORE;
	}
	for (int attempt = 0; attempt < 2; attempt++) {
		bool was_open = c->mysql != NULL;
		unsigned err = 0;
		MYSQL_STMT *stmt;
		int rc;

		rc = conn_open(db, c);
		if (rc != 0)
			return rc;
		stmt = get_stmt(c, sql, &err);
		if (stmt) {
			rc = run_stmt(c, stmt, params, nparams, fn, ud, &err, affected,
				      insert_id);
			if (rc != -1)
				return rc;
		}
		if (err == ER_DUP_ENTRY || err == ER_DUP_ENTRY_WITH_KEY_NAME)
			return KF_ERR_EXISTS;
		if (!lost_connection(err) && err != 0 && err < CR_MIN_ERROR) {
			/* the server refused this statement: a bug or bad schema */
			kf_err("mysql %s: %s", c->name, c->error);
			return KF_ERR_STORE;
		}
		kf_warn("mysql %s: %s", c->name, c->error[0] ? c->error : "connection lost");
		conn_close(c);
		if (!was_open || (db->in_tx && c == &db->primary))
			break;
		c->next_attempt_ms = 0; /* a working connection died: retry once now */
	}
	return KF_ERR_STORE;
}

int kf_db_exec(struct kf_db *db, const char *sql, const struct kf_db_param *params,
	       size_t nparams, uint64_t *affected, uint64_t *insert_id)
{
	return do_stmt(db, KF_DB_PRIMARY, sql, params, nparams, NULL, NULL, affected, insert_id);
}

int kf_db_query(struct kf_db *db, enum kf_db_side side, const char *sql,
		const struct kf_db_param *params, size_t nparams, kf_db_row_fn fn, void *ud)
{
	return do_stmt(db, side, sql, params, nparams, fn, ud, NULL, NULL);
}

static int simple(struct kf_db *db, const char *sql)
{
	struct conn *c = &db->primary;
	int rc = conn_open(db, c);

	if (rc != 0)
		return rc;
	if (mysql_real_query(c->mysql, sql, strlen(sql)) != 0) {
		set_error(c, sql, mysql_error(c->mysql));
		kf_warn("mysql primary: %s", c->error);
		if (lost_connection(mysql_errno(c->mysql)))
			conn_close(c);
		return KF_ERR_STORE;
	}
	return 0;
}

int kf_db_begin(struct kf_db *db)
{
	int rc;

	if (db->in_tx)
		return KF_ERR_INVAL;
	rc = simple(db, "START TRANSACTION");
	if (rc != 0 && !db->primary.mysql && db->primary.backoff_ms == 0)
		rc = simple(db, "START TRANSACTION"); /* a stale connection: once more */
	if (rc == 0) {
		db->in_tx = true;
		db->tx_gen = db->primary.gen;
	}
	return rc;
}

/* True when the transaction's connection is still the open one. */
static bool tx_alive(const struct kf_db *db)
{
	return db->primary.mysql && db->primary.gen == db->tx_gen;
}

int kf_db_commit(struct kf_db *db)
{
	bool alive = db->in_tx && tx_alive(db);

	db->in_tx = false;
	if (!alive) {
		set_error(&db->primary, "commit", "no transaction, or its connection was lost");
		return KF_ERR_STORE;
	}
	return simple(db, "COMMIT");
}

int kf_db_rollback(struct kf_db *db)
{
	bool alive = db->in_tx && tx_alive(db);

	db->in_tx = false;
	if (!alive) /* the server rolled it back when the connection went */
		return 0;
	return simple(db, "ROLLBACK");
}

int kf_db_script(struct kf_db *db, const char *sql)
{
	struct conn *c = &db->primary;
	int rc = conn_open(db, c);
	int status;

	if (rc != 0)
		return rc;
	if (mysql_real_query(c->mysql, sql, strlen(sql)) != 0)
		goto out_error;
	do {
		MYSQL_RES *res = mysql_store_result(c->mysql);

		if (res)
			mysql_free_result(res);
		else if (mysql_field_count(c->mysql) != 0)
			goto out_error;
		status = mysql_next_result(c->mysql);
		if (status > 0)
			goto out_error;
	} while (status == 0);
	return 0;

out_error:
	set_error(c, "script", mysql_error(c->mysql));
	kf_err("mysql primary: %s", c->error);
	conn_close(c); /* the rest of a failed batch is unusable */
	return KF_ERR_STORE;
}

int kf_db_ping(struct kf_db *db, enum kf_db_side side)
{
	struct conn *c = side == KF_DB_REPLICA && db->has_replica ? &db->replica : &db->primary;
	int rc = conn_open(db, c);

	if (rc != 0)
		return rc;
	if (mysql_ping(c->mysql) != 0) {
		set_error(c, "ping", mysql_error(c->mysql));
		conn_close(c);
		rc = conn_open(db, c);
		if (rc != 0)
			return rc;
		if (mysql_ping(c->mysql) != 0) {
			conn_close(c);
			return KF_ERR_STORE;
		}
	}
	return 0;
}

const char *kf_db_error(struct kf_db *db, enum kf_db_side side)
{
	return side == KF_DB_REPLICA && db->has_replica ? db->replica.error : db->primary.error;
}
