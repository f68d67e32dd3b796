#include "kf_compat.h"

#include "kf_migrate.h"

#include <stdlib.h>

#include "kf_db.h"
#include "kf_err.h"
#include "kf_log.h"

static const char create_table[] =
	"CREATE TABLE IF NOT EXISTS `schema_migrations` ("
	" `version` int unsigned NOT NULL PRIMARY KEY,"
	" `name` varchar(200) NOT NULL,"
	" `applied_at` int unsigned NOT NULL"
	") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4";

static int row_to_long(void *ud, const struct kf_db_row *row)
{
	long *v = ud;

	*v = row->ncols > 0 && row->vals[0] ? strtol(row->vals[0], NULL, 10) : -1;
	return 0;
}

static int is_applied(struct kf_db *db, unsigned version, bool *applied)
{
	struct kf_db_param p = KF_DB_INT(version);
	long n = 0;
	int rc = kf_db_query(db, KF_DB_PRIMARY,
			     "SELECT COUNT(*) FROM `schema_migrations` WHERE `version` = ?", &p, 1,
			     row_to_long, &n);

	*applied = n > 0;
	return rc;
}

int kf_migrate_run(struct kf_db *db, FILE *out, unsigned *applied_count)
{
	struct kf_db_param lock = KF_DB_CSTR("kefu_migrate");
	long got = -1;
	unsigned count = 0;
	int rc;

	if (applied_count)
		*applied_count = 0;
	rc = kf_db_query(db, KF_DB_PRIMARY, "SELECT GET_LOCK(?, 60)", &lock, 1, row_to_long, &got);
	if (rc != 0)
		return rc;
	if (got != 1) {
		kf_err("unable to take the migration lock: another migration is running");
		return KF_ERR_STORE;
	}
	rc = kf_db_script(db, create_table);
	for (size_t i = 0; rc == 0 && i < kf_migrations_count; i++) {
		const struct kf_migration *m = &kf_migrations[i];
		struct kf_db_param p[2] = { KF_DB_INT(m->version), KF_DB_CSTR(m->name) };
		bool applied;

		rc = is_applied(db, m->version, &applied);
		if (rc != 0 || applied)
			continue;
		rc = kf_db_script(db, m->sql);
		if (rc != 0) {
			kf_err("migration %s failed: %s", m->name, kf_db_error(db, KF_DB_PRIMARY));
			break;
		}
		rc = kf_db_exec(db,
				"INSERT INTO `schema_migrations` (`version`, `name`, `applied_at`)"
				" VALUES (?, ?, UNIX_TIMESTAMP())",
				p, 2, NULL, NULL);
		if (rc == 0) {
			count++;
			if (out)
				fprintf(out, "applied %s\n", m->name);
		}
	}
	{
		long released = 0;
		int rc2 = kf_db_query(db, KF_DB_PRIMARY, "SELECT RELEASE_LOCK(?)", &lock, 1,
				      row_to_long, &released);

		if (rc == 0)
			rc = rc2;
	}
	if (applied_count)
		*applied_count = count;
	return rc;
}
