/*
 * persist.c - the MySQL writer: a thread of its own (the event loop never
 * waits on MySQL) that takes batches from the Redis stream PREFIX wq with
 * the consumer group "writers" (one consumer per node, so nodes share the
 * work), writes them in one transaction, then deletes them.
 *
 * Nothing is lost and nothing is written twice: an entry leaves Redis only
 * after its transaction committed; message rows are unique on
 * (conversation_id, seq) and inserted with INSERT IGNORE, and the
 * conversation rows are upserts, so an entry written again changes nothing.
 * The group reads with NOACK: no pending-entries list, for which Redis
 * would write an XCLAIM to its AOF for every entry read and take an XACK
 * per batch (a quarter of the AOF's bytes per chat message and a third of
 * the writer's Redis time, tests/bench/NOTES.md).  An entry a writer took
 * and did not delete (it died first) stays in the stream behind the
 * group's cursor (its last-delivered-id): a writer that starts writes what
 * is still there up to the cursor, and every writer writes again, every
 * SWEEP_EVERY_SEC, what is there up to the cursor and older than
 * ORPHAN_AGE_MS.  Entries past the cursor (a backlog nobody read yet) are
 * left to XREADGROUP, so that writers do not all write the same backlog.
 * While MySQL is down the batch is retried with a backoff and the stream
 * grows (bounded by [Relay] BacklogMax, enforced where messages are added).
 */
#include "kf_compat.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <uthash.h>

#include "kf_config.h"
#include "kf_db.h"
#include "kf_err.h"
#include "kf_log.h"
#include "kf_mem.h"
#include "kf_redis.h"
#include "kf_store.h"
#include "relay.h"

#define GROUP "writers"
#define BLOCK_MS "100" /* also how long a stop may wait for the writer */
#define ORPHAN_AGE_MS 60000LL
#define SWEEP_EVERY_SEC 10
#define CACHE_MAX 10000
#define BACKOFF_MAX_MS 5000
/*
 * Message rows per INSERT statement (6 parameters each): 2^0 .. 2^6, so a
 * batch of n rows takes at most one statement per bit of n (seven
 * statement texts in all keep the prepared-statement cache small).
 */
#define INSERT_SIZES 7
#define ROWS_PER_INSERT (1 << (INSERT_SIZES - 1))
/*
 * After a read that did not fill a batch, wait this long before the next
 * one, so that the next transaction has more rows: fewer statements and
 * commits per message (delivery does not wait for the writer).
 */
#define GATHER_MS 20

#define INSERT_HEAD                                                                  \
	"INSERT IGNORE INTO `message` (`conversation_id`, `seq`, `sender_kind`,"     \
	" `sender_id`, `content`, `created`) VALUES "
#define INSERT_ROW "(?, ?, ?, ?, ?, ?)"

/* A message row on its way to MySQL (strings borrowed from the reply). */
struct msg_row {
	int64_t conv, seq, ts;
	const char *kind, *id, *content;
	size_t content_len;
};

struct conv_id {
	char key[KF_KEY_LEN + 1];
	int64_t id;
	UT_hash_handle hh;
};

struct kf_persist {
	pthread_t thread;
	bool thread_failed;              /* pthread_create failed: nothing to join */
	atomic_bool stop;
	struct kf_redis *redis;
	struct kf_db *db;
	char *stream;
	char *node;
	char batch[24];
	long batch_max;
	struct conv_id *cache;
	size_t ncache;
	char *insert[INSERT_SIZES];      /* INSERT of 2^i rows */
	struct msg_row rows[ROWS_PER_INSERT];
	size_t nrows;
};

/* One entry of the stream: its id and its fields. */
struct entry {
	const char *id;
	const redisReply *fields;
};

/*
 * The string value of name in a flat [name, value, ...] reply (an entry's
 * fields, a group of XINFO GROUPS), or "" when it has none.
 */
static const char *flat_get(const redisReply *f, const char *name, size_t *len)
{
	for (size_t i = 0; f && f->type == REDIS_REPLY_ARRAY && i + 1 < f->elements; i += 2) {
		if (f->element[i]->type == REDIS_REPLY_STRING && strcmp(f->element[i]->str, name) == 0 &&
		    f->element[i + 1]->type == REDIS_REPLY_STRING) {
			if (len)
				*len = f->element[i + 1]->len;
			return f->element[i + 1]->str;
		}
	}
	if (len)
		*len = 0;
	return "";
}

static const char *field(const struct entry *e, const char *name, size_t *len)
{
	return flat_get(e->fields, name, len);
}

static int64_t field_int(const struct entry *e, const char *name)
{
	return strtoll(field(e, name, NULL), NULL, 10);
}

static void cache_clear(struct kf_persist *p)
{
	struct conv_id *c, *tmp;

	HASH_ITER(hh, p->cache, c, tmp) {
		HASH_DEL(p->cache, c);
		free(c);
	}
	p->ncache = 0;
}

/* The conversation row's id for key, created when missing. */
static int conversation_id(struct kf_persist *p, const char *key, int64_t agent, int64_t ts,
			   int64_t *id)
{
	struct conv_id *c = NULL;
	struct kf_db_param prm[3] = { KF_DB_CSTR(key), KF_DB_INT(agent), KF_DB_INT(ts) };
	uint64_t got = 0;
	int rc;

	HASH_FIND_STR(p->cache, key, c);
	if (c) {
		*id = c->id;
		return 0;
	}
	rc = kf_db_exec(p->db,
			"INSERT INTO `conversation` (`ws_key`, `admin_id`, `started`) VALUES (?, ?, ?)"
			" ON DUPLICATE KEY UPDATE `id` = LAST_INSERT_ID(`id`)",
			prm, 3, NULL, &got);
	if (rc != 0)
		return rc;
	if (p->ncache >= CACHE_MAX)
		cache_clear(p);
	c = kf_xcalloc(1, sizeof(*c));
	snprintf(c->key, sizeof(c->key), "%s", key);
	c->id = (int64_t)got;
	HASH_ADD_STR(p->cache, key, c);
	p->ncache++;
	*id = c->id;
	return 0;
}

/* Insert the queued message rows, the largest statements first. */
static int flush_rows(struct kf_persist *p)
{
	struct kf_db_param prm[ROWS_PER_INSERT * 6];
	size_t n = p->nrows, done = 0;
	int rc = 0;

	p->nrows = 0;
	if (n == 0)
		return 0;
	for (size_t i = 0; i < n; i++) {
		const struct msg_row *r = &p->rows[i];

		prm[6 * i] = KF_DB_INT(r->conv);
		prm[6 * i + 1] = KF_DB_INT(r->seq);
		prm[6 * i + 2] = KF_DB_CSTR(r->kind);
		prm[6 * i + 3] = KF_DB_CSTR(r->id);
		prm[6 * i + 4] = KF_DB_STR(r->content, r->content_len);
		prm[6 * i + 5] = KF_DB_INT(r->ts);
	}
	for (int k = INSERT_SIZES - 1; rc == 0 && k >= 0; k--) {
		size_t rows = (size_t)1 << k;

		for (; rc == 0 && n - done >= rows; done += rows)
			rc = kf_db_exec(p->db, p->insert[k], prm + 6 * done, 6 * rows, NULL, NULL);
	}
	return rc;
}

static int write_entry(struct kf_persist *p, const struct entry *e)
{
	const char *t = field(e, "t", NULL);
	const char *key = field(e, "k", NULL);
	int64_t ts = field_int(e, "ts");

	if (!kf_key_valid(key, strlen(key)))
		return 0; /* not ours to write: skip it */
	if (strcmp(t, "msg") != 0) {
		int rc = flush_rows(p); /* keep the order of the stream */

		if (rc != 0)
			return rc;
	}
	if (strcmp(t, "start") == 0) {
		const char *ip = field(e, "ip", NULL);
		struct kf_db_param prm[4] = { KF_DB_CSTR(key), KF_DB_INT(field_int(e, "agent")),
					      KF_DB_CSTR(ip), KF_DB_INT(ts) };

		return kf_db_exec(p->db,
				  "INSERT INTO `conversation` (`ws_key`, `admin_id`, `visitor_ip`, `started`)"
				  " VALUES (?, ?, ?, ?) ON DUPLICATE KEY UPDATE"
				  " `admin_id` = VALUES(`admin_id`),"
				  " `visitor_ip` = IF(`visitor_ip` = '', VALUES(`visitor_ip`), `visitor_ip`),"
				  " `started` = IF(`started` = 0, VALUES(`started`), `started`)",
				  prm, 4, NULL, NULL);
	}
	if (strcmp(t, "end") == 0) {
		const char *reason = field(e, "reason", NULL);
		struct kf_db_param prm[4] = { KF_DB_CSTR(key), KF_DB_INT(ts), KF_DB_CSTR(reason),
					      KF_DB_INT(ts) };

		return kf_db_exec(p->db,
				  "INSERT INTO `conversation` (`ws_key`, `ended`, `end_reason`, `started`)"
				  " VALUES (?, ?, ?, ?) ON DUPLICATE KEY UPDATE"
				  " `ended` = VALUES(`ended`), `end_reason` = VALUES(`end_reason`)",
				  prm, 4, NULL, NULL);
	}
	if (strcmp(t, "msg") == 0) {
		struct msg_row *r = &p->rows[p->nrows];
		int rc = conversation_id(p, key, field_int(e, "agent"), ts, &r->conv);

		if (rc != 0)
			return rc;
		r->seq = field_int(e, "seq");
		r->ts = ts;
		r->kind = *field(e, "kind", NULL) == 'a' ? "agent" : "visitor";
		r->id = field(e, "id", NULL);
		r->content = field(e, "content", &r->content_len);
		p->nrows++;
		return p->nrows == ROWS_PER_INSERT ? flush_rows(p) : 0;
	}
	return 0;
}

/* Write entries in one transaction.  0, or an error (rolled back). */
static int write_batch(struct kf_persist *p, const struct entry *es, size_t n)
{
	int rc = kf_db_begin(p->db);

	p->nrows = 0;
	for (size_t i = 0; rc == 0 && i < n; i++)
		rc = write_entry(p, &es[i]);
	if (rc == 0)
		rc = flush_rows(p);
	if (rc == 0)
		rc = kf_db_commit(p->db);
	if (rc != 0) {
		kf_db_rollback(p->db);
		cache_clear(p); /* ids made in the rolled-back transaction are gone */
	}
	return rc;
}

/* Delete what was written. */
static void forget(struct kf_persist *p, const struct entry *es, size_t n)
{
	const char **argv = kf_xcalloc(n + 2, sizeof(*argv));
	size_t *lens = kf_xcalloc(n + 2, sizeof(*lens));
	redisReply *reply;

	argv[0] = "XDEL";
	argv[1] = p->stream;
	for (size_t i = 0; i < n; i++)
		argv[i + 2] = es[i].id;
	for (size_t i = 0; i < n + 2; i++)
		lens[i] = strlen(argv[i]);
	reply = kf_redis_cmdargv(p->redis, (int)(n + 2), argv, lens);
	if (reply && reply->type == REDIS_REPLY_ERROR)
		kf_warn("writer: XDEL: %s", reply->str);
	if (reply)
		freeReplyObject(reply);
	free(argv);
	free(lens);
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

/* Write a list of [id, fields] entries until it is done or we stop. */
static void handle(struct kf_persist *p, const redisReply *list)
{
	struct entry *es;
	size_t n = 0;
	long backoff = 100;
	time_t last_log = 0;

	if (!list || list->type != REDIS_REPLY_ARRAY || list->elements == 0)
		return;
	es = kf_xcalloc(list->elements, sizeof(*es));
	for (size_t i = 0; i < list->elements; i++) {
		const redisReply *e = list->element[i];

		if (e->type == REDIS_REPLY_ARRAY && e->elements == 2 &&
		    e->element[0]->type == REDIS_REPLY_STRING) {
			es[n].id = e->element[0]->str;
			es[n].fields = e->element[1];
			n++;
		}
	}
	while (n && !atomic_load(&p->stop)) {
		if (write_batch(p, es, n) == 0) {
			forget(p, es, n);
			break;
		}
		if (time(NULL) - last_log >= 10) {
			redisReply *len = kf_redis_cmd(p->redis, "XLEN %s", p->stream);

			kf_err("mysql unavailable: %lld chat writes wait in Redis (%s); retrying",
			       len && len->type == REDIS_REPLY_INTEGER ? len->integer : -1LL,
			       p->stream);
			if (len)
				freeReplyObject(len);
			last_log = time(NULL);
		}
		for (long slept = 0; slept < backoff && !atomic_load(&p->stop); slept += 100)
			sleep_ms(100);
		backoff = backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff * 2;
	}
	free(es);
}

/* The entries of an XREADGROUP reply: [[stream, [[id, fields]...]]]. */
static const redisReply *read_entries(const redisReply *r)
{
	if (!r || r->type != REDIS_REPLY_ARRAY || r->elements < 1 ||
	    r->element[0]->type != REDIS_REPLY_ARRAY || r->element[0]->elements != 2)
		return NULL;
	return r->element[0]->element[1];
}

/*
 * The writer's nice value, above the event loop's: it is background work
 * (delivery never waits for it), so on a busy core the loop goes first.
 */
#define WRITER_NICE 5

/* Redis's clock in milliseconds (stream IDs are made from it), or -1. */
static long long server_ms(struct kf_persist *p)
{
	redisReply *r = kf_redis_cmd(p->redis, "TIME");
	long long ms = -1;

	if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
	    r->element[0]->type == REDIS_REPLY_STRING && r->element[1]->type == REDIS_REPLY_STRING)
		ms = strtoll(r->element[0]->str, NULL, 10) * 1000 +
		     strtoll(r->element[1]->str, NULL, 10) / 1000;
	if (r)
		freeReplyObject(r);
	return ms;
}

/* The group's cursor, the last ID it handed out: true and *ms, *seq. */
static bool group_cursor(struct kf_persist *p, unsigned long long *ms, unsigned long long *seq)
{
	redisReply *r = kf_redis_cmd(p->redis, "XINFO GROUPS %s", p->stream);
	bool found = false;

	for (size_t g = 0; r && r->type == REDIS_REPLY_ARRAY && g < r->elements && !found; g++) {
		const redisReply *f = r->element[g];

		if (strcmp(flat_get(f, "name", NULL), GROUP) == 0)
			found = sscanf(flat_get(f, "last-delivered-id", NULL), "%llu-%llu", ms, seq) == 2;
	}
	if (r)
		freeReplyObject(r);
	return found;
}

/*
 * Write, oldest first, what the stream holds up to the ID upto (inclusive):
 * entries that a writer read and did not delete.  One pass, a batch at a
 * time; it may race the writer that holds an entry (writing it twice
 * changes nothing).
 */
static void sweep(struct kf_persist *p, const char *upto)
{
	char from[64] = "-";
	bool more = true;

	while (more && !atomic_load(&p->stop)) {
		redisReply *r = kf_redis_cmd(p->redis, "XRANGE %s %s %s COUNT %s", p->stream, from,
					     upto, p->batch);
		const redisReply *last = NULL;

		more = false;
		if (r && r->type == REDIS_REPLY_ARRAY && r->elements > 0) {
			handle(p, r);
			last = r->element[r->elements - 1];
		}
		if (last && last->type == REDIS_REPLY_ARRAY && last->elements == 2 &&
		    last->element[0]->type == REDIS_REPLY_STRING) {
			snprintf(from, sizeof(from), "(%s", last->element[0]->str);
			more = (long)r->elements == p->batch_max;
		}
		if (r)
			freeReplyObject(r);
	}
}

/*
 * Sweep up to the group's cursor, and, with max_age_ms >= 0, only what is
 * older than that by Redis's clock.
 */
static void sweep_orphans(struct kf_persist *p, long long max_age_ms)
{
	unsigned long long ms, seq;
	char upto[48];
	long long limit;

	if (!group_cursor(p, &ms, &seq) || (ms == 0 && seq == 0))
		return;
	snprintf(upto, sizeof(upto), "%llu-%llu", ms, seq);
	if (max_age_ms >= 0) {
		limit = server_ms(p) - max_age_ms;
		if (limit < 0)
			return;
		if ((unsigned long long)limit < ms)
			snprintf(upto, sizeof(upto), "%lld", limit); /* every entry of that ms */
	}
	sweep(p, upto);
}

static void *writer_main(void *arg)
{
	struct kf_persist *p = arg;
	time_t last_sweep;
	redisReply *r;

	/* Linux: a thread's nice value is set through its thread id */
	if (setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), WRITER_NICE) != 0)
		kf_debug("writer: nice %d not applied", WRITER_NICE);

	while (!atomic_load(&p->stop)) {
		r = kf_redis_cmd(p->redis, "XGROUP CREATE %s " GROUP " 0 MKSTREAM", p->stream);
		if (r) {
			freeReplyObject(r);
			break;
		}
		sleep_ms(500);
	}
	/* first what a writer took and did not write: this node before a restart */
	sweep_orphans(p, -1);
	last_sweep = time(NULL);
	while (!atomic_load(&p->stop)) {
		const redisReply *list;

		if (time(NULL) - last_sweep >= SWEEP_EVERY_SEC) {
			last_sweep = time(NULL);
			sweep_orphans(p, ORPHAN_AGE_MS);
		}
		r = kf_redis_cmd(p->redis, "XREADGROUP GROUP " GROUP " %s COUNT %s BLOCK " BLOCK_MS
					   " NOACK STREAMS %s >",
				 p->node, p->batch, p->stream);
		if (!r) {
			sleep_ms(500);
			continue;
		}
		if (r->type == REDIS_REPLY_ERROR) {
			/* NOGROUP after Redis lost its data: make the group again */
			kf_warn("writer: %s", r->str);
			freeReplyObject(r);
			r = kf_redis_cmd(p->redis, "XGROUP CREATE %s " GROUP " 0 MKSTREAM", p->stream);
			if (r)
				freeReplyObject(r);
			sleep_ms(500);
			continue;
		}
		list = read_entries(r);
		handle(p, list);
		if (list && list->elements > 0 && (long)list->elements < p->batch_max)
			sleep_ms(GATHER_MS);
		freeReplyObject(r);
	}
	return NULL;
}

struct kf_persist *kf_persist_start(const struct kf_config *cfg, const char *node)
{
	struct kf_persist *p = kf_xcalloc(1, sizeof(*p));
	struct kf_buf b = KF_BUF_INIT;

	p->redis = kf_redis_new(cfg);
	p->db = kf_db_new(cfg);
	kf_buf_addf(&b, "%swq", kf_config_str(cfg, "Redis", "KeyPrefix"));
	p->stream = kf_buf_detach(&b, NULL);
	p->node = kf_xstrdup(node);
	p->batch_max = (long)kf_config_int(cfg, "Relay", "WriterBatch");
	snprintf(p->batch, sizeof(p->batch), "%ld", p->batch_max);
	atomic_init(&p->stop, false);
	for (int k = 0; k < INSERT_SIZES; k++) {
		kf_buf_adds(&b, INSERT_HEAD);
		for (int i = 0; i < 1 << k; i++)
			kf_buf_adds(&b, i ? ", " INSERT_ROW : INSERT_ROW);
		p->insert[k] = kf_buf_detach(&b, NULL);
	}
	if (pthread_create(&p->thread, NULL, writer_main, p) != 0) {
		kf_err("unable to start the MySQL writer thread");
		p->thread_failed = true;
		kf_persist_stop(p, 0);
		return NULL;
	}
	return p;
}

void kf_persist_stop(struct kf_persist *p, long wait_ms)
{
	if (!p)
		return;
	(void)wait_ms; /* the writer notices within one BLOCK_MS read or one backoff step */
	atomic_store(&p->stop, true);
	if (!p->thread_failed)
		pthread_join(p->thread, NULL);
	cache_clear(p);
	kf_redis_free(p->redis);
	kf_db_free(p->db);
	free(p->stream);
	free(p->node);
	for (int k = 0; k < INSERT_SIZES; k++)
		free(p->insert[k]);
	free(p);
}
