/*
 * kf_migrate.h - schema migrations.
 *
 * The sql/NNN_*.sql files are compiled into the program (sql/embed.sh) as
 * kf_migrations[], in version order.  kf_migrate_run() applies those not yet
 * recorded in schema_migrations, one by one, under a MySQL named lock so
 * that two runs at once do not collide.  Migrations are written to be safe
 * to re-run (IF NOT EXISTS), since MySQL cannot roll back DDL.
 */
#ifndef KF_MIGRATE_H
#define KF_MIGRATE_H

#include "kf_compat.h"

#include <stdio.h>

struct kf_db;

struct kf_migration {
	unsigned version;
	const char *name;
	const char *sql;
};

extern const struct kf_migration kf_migrations[];
extern const size_t kf_migrations_count;

/*
 * Apply pending migrations, reporting each applied one on out (may be
 * NULL).  *applied (may be NULL) receives how many were applied.
 * Returns 0 or KF_ERR_STORE (logged).
 */
int kf_migrate_run(struct kf_db *db, FILE *out, unsigned *applied);

#endif
