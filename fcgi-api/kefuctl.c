/*
 * kefuctl - administration from the shell: schema migrations and the first
 * admin accounts, so that no one writes SQL by hand.
 *
 *   kefuctl [--config FILE] migrate
 *   kefuctl [--config FILE] admin add --username U --name N --role R [--password-stdin]
 *   kefuctl [--config FILE] admin passwd --username U [--password-stdin]
 *
 * The password is read from standard input (one line) when --password-stdin
 * is given or standard input is a pipe or a file; otherwise a random one is
 * generated and printed, alone, on standard output.
 */
#include "kf_compat.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "kf_buf.h"
#include "kf_config.h"
#include "kf_db.h"
#include "kf_err.h"
#include "kf_json.h"
#include "kf_key.h"
#include "kf_log.h"
#include "kf_migrate.h"
#include "kf_password.h"

#define DEFAULT_CONFIG "/etc/kefu/kefu.ini"
#define GENERATED_LEN 20
#define PASSWORD_MIN 8
#define USERNAME_MIN 2
#define USERNAME_MAX 60
#define NAME_MAX_CHARS 60

struct opts {
	const char *username;
	const char *name;
	const char *role;
	bool password_stdin;
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: kefuctl [--config FILE] migrate\n"
		"       kefuctl [--config FILE] admin add --username U --name N --role R [--password-stdin]\n"
		"       kefuctl [--config FILE] admin passwd --username U [--password-stdin]\n"
		"The config defaults to $KEFU_CONFIG, else " DEFAULT_CONFIG ".\n"
		"Without a password on standard input, one is generated and printed.\n");
}

static bool stdin_has_data(void)
{
	struct stat st;

	return fstat(STDIN_FILENO, &st) == 0 && (S_ISFIFO(st.st_mode) || S_ISREG(st.st_mode));
}

/*
 * The new password into pw: one line from stdin, or generated.  *generated
 * says which.  Returns 0 or -1 (message printed).
 */
static int get_password(const struct opts *o, struct kf_buf *pw, bool *generated)
{
	*generated = false;
	if (o->password_stdin || stdin_has_data()) {
		int c;

		while ((c = getchar()) != EOF && c != '\n') {
			if (pw->len >= KF_PASSWORD_MAX) {
				fprintf(stderr, "kefuctl: password longer than %d bytes\n",
					KF_PASSWORD_MAX);
				return -1;
			}
			kf_buf_addc(pw, (char)c);
		}
		if (pw->len && pw->data[pw->len - 1] == '\r')
			pw->data[--pw->len] = '\0';
		if (kf_utf8_len(pw->data, pw->len) < PASSWORD_MIN ||
		    !kf_utf8_valid(pw->data, pw->len)) {
			fprintf(stderr,
				"kefuctl: the password from standard input must be valid UTF-8 "
				"of at least %d characters\n",
				PASSWORD_MIN);
			return -1;
		}
		return 0;
	}
	kf_buf_grow(pw, GENERATED_LEN);
	kf_key_random(pw->data, GENERATED_LEN);
	pw->len = GENERATED_LEN;
	*generated = true;
	return 0;
}

static int row_count(void *ud, const struct kf_db_row *row)
{
	long *n = ud;

	*n = row->vals[0] ? strtol(row->vals[0], NULL, 10) : 0;
	return 0;
}

static int hash_password(const struct kf_config *cfg, const struct kf_buf *pw,
			 char hash[KF_PASSWORD_HASH_MAX])
{
	struct kf_password_cost cost = {
		(unsigned long long)kf_config_int(cfg, "Security", "Argon2OpsLimit"),
		(size_t)kf_config_int(cfg, "Security", "Argon2MemLimitKiB") * 1024,
	};

	if (kf_password_hash(&cost, pw->data, pw->len, hash) != 0) {
		fprintf(stderr, "kefuctl: unable to hash the password (out of memory?)\n");
		return -1;
	}
	return 0;
}

static bool text_ok(const char *what, const char *s, size_t min, size_t max)
{
	size_t n = strlen(s);
	size_t chars = kf_utf8_len(s, n);

	if (!kf_utf8_valid(s, n) || chars < min || chars > max) {
		fprintf(stderr, "kefuctl: --%s must be valid UTF-8 of %zu to %zu characters\n",
			what, min, max);
		return false;
	}
	return true;
}

static int admin_add(const struct kf_config *cfg, struct kf_db *db, const struct opts *o)
{
	struct kf_buf pw = KF_BUF_INIT;
	char hash[KF_PASSWORD_HASH_MAX];
	bool generated;
	long n = 0;
	char *end;
	long long role;
	int rc = -1;

	if (!o->username || !o->name || !o->role) {
		fprintf(stderr, "kefuctl: admin add needs --username, --name and --role\n");
		return 2;
	}
	if (!text_ok("username", o->username, USERNAME_MIN, USERNAME_MAX) ||
	    !text_ok("name", o->name, 1, NAME_MAX_CHARS))
		return 2;
	errno = 0;
	role = strtoll(o->role, &end, 10);
	if (*end || errno || role < 1 || role > UINT32_MAX) {
		fprintf(stderr, "kefuctl: --role: expected a role id, got '%s'\n", o->role);
		return 2;
	}
	{
		struct kf_db_param p = KF_DB_INT(role);

		if (kf_db_query(db, KF_DB_PRIMARY, "SELECT COUNT(*) FROM `admin_role` WHERE `id` = ?",
				&p, 1, row_count, &n) != 0)
			goto out_db;
		if (n == 0) {
			fprintf(stderr, "kefuctl: --role: no role with id %lld\n", role);
			goto out;
		}
	}
	if (get_password(o, &pw, &generated) != 0 || hash_password(cfg, &pw, hash) != 0)
		goto out;
	{
		struct kf_db_param p[4] = { KF_DB_CSTR(o->username), KF_DB_CSTR(hash),
					    KF_DB_CSTR(o->name), KF_DB_INT(role) };
		int err = kf_db_exec(db,
				     "INSERT INTO `admin` (`username`, `password`, `name`, `role`,"
				     " `create_time`) VALUES (?, ?, ?, ?, UNIX_TIMESTAMP())",
				     p, 4, NULL, NULL);

		if (err == KF_ERR_EXISTS) {
			fprintf(stderr, "kefuctl: username '%s' is taken (use 'admin passwd')\n",
				o->username);
			goto out;
		}
		if (err != 0)
			goto out_db;
	}
	if (generated)
		printf("%s\n", pw.data);
	fprintf(stderr, "kefuctl: admin '%s' added\n", o->username);
	rc = 0;
	goto out;
out_db:
	fprintf(stderr, "kefuctl: database error: %s\n", kf_db_error(db, KF_DB_PRIMARY));
out:
	if (pw.data)
		sodium_memzero(pw.data, pw.len);
	kf_buf_release(&pw);
	return rc == 0 ? 0 : 1;
}

static int admin_passwd(const struct kf_config *cfg, struct kf_db *db, const struct opts *o)
{
	struct kf_buf pw = KF_BUF_INIT;
	char hash[KF_PASSWORD_HASH_MAX];
	bool generated;
	uint64_t affected = 0;
	long n = 0;
	int rc = 1;

	if (!o->username) {
		fprintf(stderr, "kefuctl: admin passwd needs --username\n");
		return 2;
	}
	{
		struct kf_db_param p = KF_DB_CSTR(o->username);

		if (kf_db_query(db, KF_DB_PRIMARY, "SELECT COUNT(*) FROM `admin` WHERE `username` = ?",
				&p, 1, row_count, &n) != 0)
			goto out_db;
		if (n == 0) {
			fprintf(stderr, "kefuctl: no admin named '%s'\n", o->username);
			goto out;
		}
	}
	if (get_password(o, &pw, &generated) != 0 || hash_password(cfg, &pw, hash) != 0)
		goto out;
	{
		struct kf_db_param p[2] = { KF_DB_CSTR(hash), KF_DB_CSTR(o->username) };

		if (kf_db_exec(db, "UPDATE `admin` SET `password` = ? WHERE `username` = ?", p, 2,
			       &affected, NULL) != 0)
			goto out_db;
	}
	if (generated)
		printf("%s\n", pw.data);
	fprintf(stderr, "kefuctl: password of '%s' changed\n", o->username);
	rc = 0;
	goto out;
out_db:
	fprintf(stderr, "kefuctl: database error: %s\n", kf_db_error(db, KF_DB_PRIMARY));
out:
	if (pw.data)
		sodium_memzero(pw.data, pw.len);
	kf_buf_release(&pw);
	return rc;
}

static int parse_admin_opts(int argc, char **argv, int i, struct opts *o)
{
	for (; i < argc; i++) {
		const char **slot = NULL;

		if (strcmp(argv[i], "--username") == 0)
			slot = &o->username;
		else if (strcmp(argv[i], "--name") == 0)
			slot = &o->name;
		else if (strcmp(argv[i], "--role") == 0)
			slot = &o->role;
		else if (strcmp(argv[i], "--password-stdin") == 0)
			o->password_stdin = true;
		else {
			fprintf(stderr, "kefuctl: unknown argument '%s'\n", argv[i]);
			return -1;
		}
		if (slot) {
			if (i + 1 >= argc) {
				fprintf(stderr, "kefuctl: %s needs a value\n", argv[i]);
				return -1;
			}
			*slot = argv[++i];
		}
	}
	return 0;
}

int main(int argc, char **argv)
{
	const char *config_path = getenv("KEFU_CONFIG");
	struct kf_buf err = KF_BUF_INIT;
	struct kf_config *cfg = NULL;
	struct kf_db *db = NULL;
	struct opts o = { 0 };
	int i = 1;
	int status = 2;

	kf_log_set_ident("kefuctl");
	kf_log_set_level(KF_LOG_WARN);
	if (i + 1 < argc && strcmp(argv[i], "--config") == 0) {
		config_path = argv[i + 1];
		i += 2;
	}
	if (i >= argc || strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
		usage(i >= argc ? stderr : stdout);
		return i >= argc ? 2 : 0;
	}
	if (!config_path || !*config_path)
		config_path = DEFAULT_CONFIG;
	cfg = kf_config_load(config_path, &err);
	if (!cfg) {
		fprintf(stderr, "kefuctl: configuration refused:\n%s", kf_buf_str(&err));
		status = 1;
		goto out;
	}
	if (kf_key_init() != 0) {
		fprintf(stderr, "kefuctl: unable to initialise libsodium\n");
		status = 1;
		goto out;
	}
	db = kf_db_new(cfg);
	if (strcmp(argv[i], "migrate") == 0 && i + 1 == argc) {
		unsigned applied = 0;

		if (kf_migrate_run(db, stdout, &applied) != 0) {
			fprintf(stderr, "kefuctl: migration failed: %s\n",
				kf_db_error(db, KF_DB_PRIMARY));
			status = 1;
		} else {
			printf("schema up to date (%u applied)\n", applied);
			status = 0;
		}
	} else if (strcmp(argv[i], "admin") == 0 && i + 1 < argc &&
		   (strcmp(argv[i + 1], "add") == 0 || strcmp(argv[i + 1], "passwd") == 0)) {
		bool add = strcmp(argv[i + 1], "add") == 0;

		if (parse_admin_opts(argc, argv, i + 2, &o) != 0) {
			usage(stderr);
			goto out;
		}
		status = add ? admin_add(cfg, db, &o) : admin_passwd(cfg, db, &o);
	} else {
		usage(stderr);
	}
out:
	kf_db_free(db);
	kf_config_free(cfg);
	kf_buf_release(&err);
	return status;
}
