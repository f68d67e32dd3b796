#include "kf_compat.h"

#include "kf_taskqueue.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "kf_buf.h"
#include "kf_config.h"
#include "kf_db.h"
#include "kf_err.h"
#include "kf_key.h"
#include "kf_log.h"
#include "kf_mem.h"

/* Room for "NODE/PID/RANDOM" (the claim column is varchar(100)). */
#define CLAIM_MAX 100
#define RUNNER_STACK (1024 * 1024)

/* ---- pure parts ---- */

void kf_taskqueue_settings_load(const struct kf_config *cfg, struct kf_taskqueue_settings *s)
{
	s->worker = kf_config_bool(cfg, "Events", "TaskWorker");
	s->poll_sec = (long)kf_config_int(cfg, "Events", "TaskPollSec");
	s->batch = (long)kf_config_int(cfg, "Events", "TaskBatch");
	s->concurrency = (long)kf_config_int(cfg, "Events", "TaskConcurrency");
	s->timeout_sec = (long)kf_config_int(cfg, "Events", "TaskTimeoutSec");
	s->retry_delay_sec = (long)kf_config_int(cfg, "Events", "TaskRetryDelaySec");
	s->first_delay_sec = (long)kf_config_int(cfg, "Events", "TaskFirstDelaySec");
	s->stale_sec = (long)kf_config_int(cfg, "Events", "TaskStaleSec");
	s->shutdown_wait_sec = (long)kf_config_int(cfg, "Events", "TaskShutdownWaitSec");
}

int64_t kf_taskqueue_retry_at(const struct kf_taskqueue_settings *s, int64_t now)
{
	return now + s->retry_delay_sec;
}

int64_t kf_taskqueue_first_at(const struct kf_taskqueue_settings *s, int64_t now)
{
	return now + s->first_delay_sec;
}

int64_t kf_taskqueue_stale_before(const struct kf_taskqueue_settings *s, int64_t now)
{
	return now - s->stale_sec;
}

long kf_taskqueue_claim_count(const struct kf_taskqueue_settings *s, long running)
{
	long room = s->concurrency - running;

	if (room <= 0)
		return 0;
	return room < s->batch ? room : s->batch;
}

bool kf_taskqueue_type_valid(const char *s, size_t n)
{
	if (!s || n == 0 || n > KF_TASK_TYPE_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.' ||
		      c == '-'))
			return false;
	}
	return true;
}

/* Length of the valid UTF-8 sequence at s (n bytes left), or 0. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
	size_t len;
	unsigned cp;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		len = 2;
		cp = s[0] & 0x1fu;
	} else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		len = 3;
		cp = s[0] & 0x0fu;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		len = 4;
		cp = s[0] & 0x07u;
	} else {
		return 0;
	}
	if (n < len)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3fu);
	}
	if ((len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
	    (len == 4 && (cp < 0x10000 || cp > 0x10ffff)))
		return 0;
	return len;
}

void kf_taskqueue_fail_text(struct kf_buf *out, const char *msg, size_t max)
{
	const unsigned char *s = (const unsigned char *)(msg ? msg : "");
	size_t n = strlen((const char *)s), used = 0;

	for (size_t i = 0; i < n;) {
		size_t len = utf8_seq(s + i, n - i);

		if (used + (len ? len : 1) > max)
			break;
		if (len) {
			kf_buf_add(out, s + i, len);
			used += len;
			i += len;
		} else {
			kf_buf_addc(out, '?');
			used++;
			i++;
		}
	}
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int kf_taskqueue_add(struct kf_db *db, const char *type, const char *param, size_t len,
		     const char *fail_msg, int64_t due, int64_t *id)
{
	static const char sql[] =
		"INSERT INTO taskqueue (type, param, fail_msg, status, retry_times, create_time, "
		"begin_time, claim) VALUES (?, ?, ?, 0, 0, ?, ?, '')";
	struct kf_buf fail = KF_BUF_INIT;
	struct kf_db_param p[5];
	uint64_t insert_id = 0;
	int rc;

	if (!type || !kf_taskqueue_type_valid(type, strlen(type)))
		return KF_ERR_INVAL;
	kf_taskqueue_fail_text(&fail, fail_msg, KF_TASK_FAIL_MAX);
	p[0] = KF_DB_CSTR(type);
	p[1] = KF_DB_STR(param, len);
	p[2] = fail_msg ? KF_DB_STR(kf_buf_str(&fail), fail.len) : KF_DB_NULLP;
	p[3] = KF_DB_INT(time(NULL));
	p[4] = KF_DB_INT(due);
	rc = kf_db_exec(db, sql, p, KF_ARRAY_LEN(p), NULL, &insert_id);
	kf_buf_release(&fail);
	if (rc == 0 && id)
		*id = (int64_t)insert_id;
	return rc == 0 ? 0 : KF_ERR_STORE;
}

/* ---- the worker ---- */

struct handler {
	char type[KF_TASK_TYPE_MAX + 1];
	kf_task_fn fn;
	void *ud;
};

enum job_state { JOB_TODO, JOB_RUNNING, JOB_DONE };

/* One claimed task, from the claim until its row is written. */
struct job {
	struct job *next;          /* in todo or done */
	struct job *all_next;      /* in tq->all */
	enum job_state state;
	bool abandoned;            /* put back at shutdown: its result is ignored */
	int64_t id;
	char *type;
	char *param;
	size_t param_len;
	unsigned retry_times;
	int64_t create_time;
	const struct handler *h;
	int rc;                    /* the handler's result */
	struct kf_buf err;
	int64_t ran_ms;
};

struct kf_taskqueue {
	const struct kf_config *cfg;
	struct kf_taskqueue_settings s;
	char claim[CLAIM_MAX + 1];
	struct handler *handlers;
	size_t nhandlers;
	struct kf_buf types;       /* "a,b,c" for FIND_IN_SET */

	pthread_mutex_t mu;
	pthread_cond_t poller_cv;  /* results, kick, stop */
	pthread_cond_t runner_cv;  /* work, stop */
	pthread_cond_t exit_cv;    /* a runner exited */
	struct job *todo_head, *todo_tail;
	struct job *done_head, *done_tail;
	struct job *all;           /* every job not yet written back */
	long inflight;             /* TODO + RUNNING */
	long live_runners;
	bool started, stopping, runners_stop, kicked, orphaned, poller_running;
	pthread_t poller;
	struct kf_taskqueue_stats st;
};

struct kf_taskqueue *kf_taskqueue_new(const struct kf_config *cfg, const char *node)
{
	struct kf_taskqueue *tq = kf_xcalloc(1, sizeof(*tq));
	char rnd[9];

	tq->cfg = cfg;
	kf_taskqueue_settings_load(cfg, &tq->s);
	kf_key_random(rnd, 8);
	snprintf(tq->claim, sizeof(tq->claim), "%.64s/%ld/%s", node && *node ? node : "-",
		 (long)getpid(), rnd);
	kf_buf_init(&tq->types);
	pthread_mutex_init(&tq->mu, NULL);
	pthread_cond_init(&tq->poller_cv, NULL);
	pthread_cond_init(&tq->runner_cv, NULL);
	pthread_cond_init(&tq->exit_cv, NULL);
	return tq;
}

const struct kf_taskqueue_settings *kf_taskqueue_settings(const struct kf_taskqueue *tq)
{
	return &tq->s;
}

int kf_taskqueue_register(struct kf_taskqueue *tq, const char *type, kf_task_fn fn, void *ud)
{
	size_t n = type ? strlen(type) : 0;

	if (tq->started || !fn || !kf_taskqueue_type_valid(type, n))
		return KF_ERR_INVAL;
	for (size_t i = 0; i < tq->nhandlers; i++)
		if (strcmp(tq->handlers[i].type, type) == 0)
			return KF_ERR_EXISTS;
	tq->handlers = kf_xrealloc(tq->handlers, (tq->nhandlers + 1) * sizeof(*tq->handlers));
	memcpy(tq->handlers[tq->nhandlers].type, type, n + 1);
	tq->handlers[tq->nhandlers].fn = fn;
	tq->handlers[tq->nhandlers].ud = ud;
	tq->nhandlers++;
	if (tq->types.len)
		kf_buf_addc(&tq->types, ',');
	kf_buf_adds(&tq->types, type);
	return 0;
}

static const struct handler *find_handler(const struct kf_taskqueue *tq, const char *type)
{
	for (size_t i = 0; i < tq->nhandlers; i++)
		if (strcmp(tq->handlers[i].type, type) == 0)
			return &tq->handlers[i];
	return NULL;
}

static void job_free(struct job *j)
{
	if (!j)
		return;
	free(j->type);
	free(j->param);
	kf_buf_release(&j->err);
	free(j);
}

/* Unlink j from tq->all.  Under tq->mu. */
static void all_remove(struct kf_taskqueue *tq, struct job *j)
{
	for (struct job **pp = &tq->all; *pp; pp = &(*pp)->all_next) {
		if (*pp == j) {
			*pp = j->all_next;
			return;
		}
	}
}

static void free_all_jobs(struct kf_taskqueue *tq)
{
	while (tq->all) {
		struct job *j = tq->all;

		tq->all = j->all_next;
		job_free(j);
	}
}

static void tq_destroy(struct kf_taskqueue *tq)
{
	free_all_jobs(tq);
	pthread_cond_destroy(&tq->exit_cv);
	pthread_cond_destroy(&tq->runner_cv);
	pthread_cond_destroy(&tq->poller_cv);
	pthread_mutex_destroy(&tq->mu);
	kf_buf_release(&tq->types);
	free(tq->handlers);
	free(tq);
}

static void *runner_main(void *arg)
{
	struct kf_taskqueue *tq = arg;
	bool destroy;

	pthread_mutex_lock(&tq->mu);
	for (;;) {
		struct job *j;
		struct kf_task task;
		int64_t start;

		while (!tq->todo_head && !tq->runners_stop)
			pthread_cond_wait(&tq->runner_cv, &tq->mu);
		if (tq->runners_stop)
			break;
		j = tq->todo_head;
		tq->todo_head = j->next;
		if (!tq->todo_head)
			tq->todo_tail = NULL;
		j->next = NULL;
		j->state = JOB_RUNNING;
		pthread_mutex_unlock(&tq->mu);

		start = now_ms();
		task.id = j->id;
		task.type = j->type;
		task.param = j->param;
		task.param_len = j->param_len;
		task.retry_times = j->retry_times;
		task.create_time = j->create_time;
		task.deadline_ms = start + (int64_t)tq->s.timeout_sec * 1000;
		j->rc = j->h->fn(j->h->ud, &task, &j->err);
		j->ran_ms = now_ms() - start;
		if (j->rc != 0 && !j->err.len)
			kf_buf_adds(&j->err, kf_err_str(j->rc));
		if (j->rc != 0 && now_ms() > task.deadline_ms) {
			struct kf_buf why = KF_BUF_INIT;

			kf_buf_addf(&why, "timed out after %lds: %s", tq->s.timeout_sec,
				    kf_buf_str(&j->err));
			kf_buf_release(&j->err);
			j->err = why;
		}

		pthread_mutex_lock(&tq->mu);
		j->state = JOB_DONE;
		tq->inflight--;
		if (j->rc == 0)
			tq->st.done++;
		else
			tq->st.failed++;
		if (tq->done_tail)
			tq->done_tail->next = j;
		else
			tq->done_head = j;
		tq->done_tail = j;
		pthread_cond_signal(&tq->poller_cv);
	}
	tq->live_runners--;
	pthread_cond_broadcast(&tq->exit_cv);
	destroy = tq->orphaned && tq->live_runners == 0;
	pthread_mutex_unlock(&tq->mu);
	if (destroy)
		tq_destroy(tq);
	return NULL;
}

/* ---- the poller: claims and results, on its own kf_db ---- */

struct claim_ctx {
	struct kf_taskqueue *tq;
	struct job *head, *tail;
	long n;
	struct kf_buf stale_from; /* claims of stale rows, one per line */
};

static int claim_row(void *ud, const struct kf_db_row *row)
{
	struct claim_ctx *c = ud;
	struct job *j;

	if (row->ncols != 7 || !row->vals[0] || !row->vals[1] || !row->vals[2])
		return 0;
	j = kf_xcalloc(1, sizeof(*j));
	j->id = strtoll(row->vals[0], NULL, 10);
	j->state = strcmp(row->vals[1], "0") == 0 ? JOB_TODO : JOB_RUNNING; /* RUNNING: stale */
	j->type = kf_xstrdup(row->vals[2]);
	j->param = kf_xmemdup0(row->vals[3] ? row->vals[3] : "", row->vals[3] ? row->lens[3] : 0);
	j->param_len = row->vals[3] ? row->lens[3] : 0;
	j->retry_times = row->vals[4] ? (unsigned)strtoul(row->vals[4], NULL, 10) : 0;
	j->create_time = row->vals[5] ? strtoll(row->vals[5], NULL, 10) : 0;
	kf_buf_init(&j->err);
	/* the claim a stale row carried, for its fail_msg */
	if (j->state == JOB_RUNNING)
		kf_buf_addf(&c->stale_from, "%" PRId64 " %s\n", j->id,
			    row->vals[6] ? row->vals[6] : "");
	if (c->tail)
		c->tail->next = j;
	else
		c->head = j;
	c->tail = j;
	c->n++;
	return 0;
}

/* The claim a stale row j carried (from ctx->stale_from) into out. */
static void stale_claim_of(const struct claim_ctx *c, int64_t id, struct kf_buf *out)
{
	char prefix[32];
	const char *p = kf_buf_str(&c->stale_from);
	size_t plen = (size_t)snprintf(prefix, sizeof(prefix), "%" PRId64 " ", id);

	while (*p) {
		const char *nl = strchr(p, '\n');
		size_t len = nl ? (size_t)(nl - p) : strlen(p);

		if (len >= plen && memcmp(p, prefix, plen) == 0) {
			kf_buf_add(out, p + plen, len - plen);
			return;
		}
		p += len + (nl ? 1 : 0);
	}
}

/*
 * Claim up to n due tasks in one transaction.  Returns how many (their
 * jobs appended to *head and *tail), or a negative kf_err.
 */
static long claim(struct kf_taskqueue *tq, struct kf_db *db, long n, struct job **head,
		  struct job **tail)
{
	static const char select_sql[] =
		"SELECT id, status, type, param, retry_times, create_time, claim FROM taskqueue "
		"WHERE begin_time <= ? AND (status = 0 OR begin_time <= ?) "
		"AND FIND_IN_SET(type, ?) > 0 ORDER BY begin_time LIMIT ? FOR UPDATE SKIP LOCKED";
	static const char take_sql[] =
		"UPDATE taskqueue SET status = 1, begin_time = ?, claim = ? WHERE id = ?";
	static const char take_stale_sql[] =
		"UPDATE taskqueue SET status = 1, begin_time = ?, claim = ?, "
		"retry_times = retry_times + 1, fail_msg = ? WHERE id = ?";
	struct claim_ctx c = { tq, NULL, NULL, 0, KF_BUF_INIT };
	int64_t now = time(NULL);
	struct kf_db_param p[4];
	int rc;

	/* no gap locks: claims must not hold up writers of new tasks */
	rc = kf_db_exec(db, "SET TRANSACTION ISOLATION LEVEL READ COMMITTED", NULL, 0, NULL,
			NULL);
	if (rc == 0)
		rc = kf_db_begin(db);
	if (rc != 0)
		goto out;
	p[0] = KF_DB_INT(now);
	p[1] = KF_DB_INT(kf_taskqueue_stale_before(&tq->s, now));
	p[2] = KF_DB_STR(tq->types.data, tq->types.len);
	p[3] = KF_DB_INT(n);
	rc = kf_db_query(db, KF_DB_PRIMARY, select_sql, p, 4, claim_row, &c);
	for (struct job *j = c.head; rc == 0 && j; j = j->next) {
		if (j->state == JOB_RUNNING) {
			struct kf_buf old = KF_BUF_INIT, msg = KF_BUF_INIT;

			stale_claim_of(&c, j->id, &old);
			kf_buf_addf(&msg, "taken again: worker '%s' did not finish it within %lds",
				    kf_buf_str(&old), tq->s.stale_sec);
			p[0] = KF_DB_INT(now);
			p[1] = KF_DB_CSTR(tq->claim);
			p[2] = KF_DB_STR(msg.data, msg.len);
			p[3] = KF_DB_INT(j->id);
			rc = kf_db_exec(db, take_stale_sql, p, 4, NULL, NULL);
			kf_warn("task %" PRId64 " (%s): %s", j->id, j->type, kf_buf_str(&msg));
			j->retry_times++;
			kf_buf_release(&old);
			kf_buf_release(&msg);
		} else {
			p[0] = KF_DB_INT(now);
			p[1] = KF_DB_CSTR(tq->claim);
			p[2] = KF_DB_INT(j->id);
			rc = kf_db_exec(db, take_sql, p, 3, NULL, NULL);
		}
	}
	if (rc == 0)
		rc = kf_db_commit(db);
	else
		kf_db_rollback(db);
out:
	kf_buf_release(&c.stale_from);
	if (rc != 0) {
		while (c.head) {
			struct job *j = c.head;

			c.head = j->next;
			job_free(j);
		}
		return rc < 0 ? rc : KF_ERR_STORE;
	}
	{
		uint64_t stale = 0;

		for (struct job *j = c.head; j; j = j->next) {
			if (j->state == JOB_RUNNING)
				stale++;
			j->state = JOB_TODO;
			j->h = find_handler(tq, j->type);
		}
		pthread_mutex_lock(&tq->mu);
		tq->st.stale += stale;
		pthread_mutex_unlock(&tq->mu);
	}
	if (c.head) {
		if (*tail)
			(*tail)->next = c.head;
		else
			*head = c.head;
		*tail = c.tail;
	}
	return c.n;
}

/* Write j's result.  Returns 0, or KF_ERR_STORE (try again later). */
static int finish(struct kf_taskqueue *tq, struct kf_db *db, struct job *j)
{
	static const char delete_sql[] = "DELETE FROM taskqueue WHERE id = ? AND claim = ?";
	static const char retry_sql[] =
		"UPDATE taskqueue SET status = 0, begin_time = ?, retry_times = retry_times + 1, "
		"fail_msg = ?, claim = '' WHERE id = ? AND claim = ?";
	struct kf_db_param p[4];
	uint64_t affected = 0;
	int rc;

	if (j->rc == 0) {
		p[0] = KF_DB_INT(j->id);
		p[1] = KF_DB_CSTR(tq->claim);
		rc = kf_db_exec(db, delete_sql, p, 2, &affected, NULL);
		if (rc == 0)
			kf_debug("task %" PRId64 " (%s) done in %" PRId64 " ms", j->id, j->type,
				 j->ran_ms);
	} else {
		struct kf_buf msg = KF_BUF_INIT;
		int64_t at = kf_taskqueue_retry_at(&tq->s, time(NULL));

		kf_taskqueue_fail_text(&msg, kf_buf_str(&j->err), KF_TASK_FAIL_MAX);
		p[0] = KF_DB_INT(at);
		p[1] = KF_DB_STR(msg.data ? msg.data : "", msg.len);
		p[2] = KF_DB_INT(j->id);
		p[3] = KF_DB_CSTR(tq->claim);
		rc = kf_db_exec(db, retry_sql, p, 4, &affected, NULL);
		if (rc == 0)
			kf_warn("task %" PRId64 " (%s) failed (try %u), again in %lds: %s", j->id,
				j->type, j->retry_times + 1, tq->s.retry_delay_sec, kf_buf_str(&msg));
		kf_buf_release(&msg);
	}
	if (rc != 0)
		return KF_ERR_STORE;
	if (affected == 0)
		kf_warn("task %" PRId64 " (%s): no longer ours (taken again by another worker?); "
			"result not recorded", j->id, j->type);
	return 0;
}

/* Put back a task this worker will not finish, due at once. */
static int put_back(struct kf_taskqueue *tq, struct kf_db *db, const struct job *j, bool ran)
{
	static const char back_sql[] =
		"UPDATE taskqueue SET status = 0, begin_time = ?, claim = '' WHERE id = ? AND claim = ?";
	static const char back_ran_sql[] =
		"UPDATE taskqueue SET status = 0, begin_time = ?, claim = '', "
		"retry_times = retry_times + 1, fail_msg = ? WHERE id = ? AND claim = ?";
	static const char why[] = "the worker stopped while the task ran";
	struct kf_db_param p[4];
	size_t np = 0;

	p[np++] = KF_DB_INT(time(NULL));
	if (ran)
		p[np++] = KF_DB_CSTR(why);
	p[np++] = KF_DB_INT(j->id);
	p[np++] = KF_DB_CSTR(tq->claim);
	return kf_db_exec(db, ran ? back_ran_sql : back_sql, p, np, NULL, NULL) == 0 ? 0
										     : KF_ERR_STORE;
}

/* Take the done list.  Under tq->mu. */
static struct job *take_done(struct kf_taskqueue *tq)
{
	struct job *d = tq->done_head;

	tq->done_head = tq->done_tail = NULL;
	return d;
}

/*
 * Write the results in list; those that could not be written stay on
 * *pending.  Without tq->mu.
 */
static void write_results(struct kf_taskqueue *tq, struct kf_db *db, struct job *list,
			  struct job **pending)
{
	bool db_down = false;

	while (list) {
		struct job *j = list;

		list = j->next;
		j->next = NULL;
		if (!db_down && finish(tq, db, j) == 0) {
			pthread_mutex_lock(&tq->mu);
			all_remove(tq, j);
			pthread_mutex_unlock(&tq->mu);
			job_free(j);
			continue;
		}
		db_down = true;
		j->next = *pending;
		*pending = j;
	}
}

static void timespec_in(struct timespec *ts, int64_t ms)
{
	clock_gettime(CLOCK_REALTIME, ts);
	ts->tv_sec += (time_t)(ms / 1000);
	ts->tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

/* Shutdown: wait for running tasks, put back the rest. */
static void poller_shutdown(struct kf_taskqueue *tq, struct kf_db *db, struct job **pending)
{
	int64_t deadline = now_ms() + (int64_t)tq->s.shutdown_wait_sec * 1000;
	struct job *todo;
	long left = 0;

	pthread_mutex_lock(&tq->mu);
	/* tasks no runner has started go back at once */
	todo = tq->todo_head;
	tq->todo_head = tq->todo_tail = NULL;
	for (struct job *j = todo; j; j = j->next)
		tq->inflight--;
	pthread_mutex_unlock(&tq->mu);
	while (todo) {
		struct job *j = todo;

		todo = j->next;
		if (put_back(tq, db, j, false) != 0)
			kf_warn("task %" PRId64 " (%s): unable to put it back; it is taken again after %lds",
				j->id, j->type, tq->s.stale_sec);
		pthread_mutex_lock(&tq->mu);
		all_remove(tq, j);
		pthread_mutex_unlock(&tq->mu);
		job_free(j);
	}
	for (;;) {
		struct job *done;
		struct timespec ts;

		pthread_mutex_lock(&tq->mu);
		done = take_done(tq);
		left = tq->inflight;
		pthread_mutex_unlock(&tq->mu);
		write_results(tq, db, done, pending);
		if (*pending) {
			done = *pending;
			*pending = NULL;
			write_results(tq, db, done, pending);
		}
		if ((left == 0 && !*pending) || now_ms() >= deadline)
			break;
		pthread_mutex_lock(&tq->mu);
		if (!tq->done_head) {
			timespec_in(&ts, 100);
			pthread_cond_timedwait(&tq->poller_cv, &tq->mu, &ts);
		}
		pthread_mutex_unlock(&tq->mu);
	}
	if (left > 0) {
		kf_warn("%ld tasks still running after %lds; putting them back", left,
			tq->s.shutdown_wait_sec);
		pthread_mutex_lock(&tq->mu);
		for (struct job *j = tq->all; j; j = j->all_next)
			if (j->state == JOB_RUNNING)
				j->abandoned = true;
		pthread_mutex_unlock(&tq->mu);
		for (struct job *j = tq->all; j; j = j->all_next) {
			/* tq->all only shrinks on this thread: safe to walk */
			if (j->abandoned && put_back(tq, db, j, true) != 0)
				kf_warn("task %" PRId64 " (%s): unable to put it back; it is taken again after %lds",
					j->id, j->type, tq->s.stale_sec);
		}
	}
	for (struct job *j = *pending; j; j = j->next)
		kf_warn("task %" PRId64 " (%s): result not recorded (database down); it is taken again after %lds",
			j->id, j->type, tq->s.stale_sec);
}

static void *poller_main(void *arg)
{
	struct kf_taskqueue *tq = arg;
	struct kf_db *db = kf_db_new(tq->cfg);
	struct job *pending = NULL;
	int64_t next_poll = 0;
	bool more = false;

	kf_info("task worker %s: polling every %lds for %s", tq->claim, tq->s.poll_sec,
		kf_buf_str(&tq->types));
	for (;;) {
		struct job *done, *head = NULL, *tail = NULL;
		long want, got;
		bool stop;

		pthread_mutex_lock(&tq->mu);
		stop = tq->stopping;
		done = take_done(tq);
		pthread_mutex_unlock(&tq->mu);
		if (stop)
			break;
		write_results(tq, db, done, &pending);
		if (pending) {
			done = pending;
			pending = NULL;
			write_results(tq, db, done, &pending);
		}

		pthread_mutex_lock(&tq->mu);
		want = kf_taskqueue_claim_count(&tq->s, tq->inflight);
		if (tq->kicked || more)
			next_poll = 0;
		tq->kicked = false;
		pthread_mutex_unlock(&tq->mu);
		more = false;
		if (want > 0 && now_ms() >= next_poll) {
			got = claim(tq, db, want, &head, &tail);
			next_poll = now_ms() + (int64_t)tq->s.poll_sec * 1000;
			if (got > 0) {
				pthread_mutex_lock(&tq->mu);
				for (struct job *j = head; j; j = j->next) {
					j->all_next = tq->all;
					tq->all = j;
				}
				for (struct job *j = head; j;) {
					struct job *next = j->next;

					if (!j->h) { /* cannot happen: claims filter by type */
						j->rc = KF_ERR_INVAL;
						j->state = JOB_DONE;
						kf_buf_adds(&j->err, "no handler for this type");
						j->next = NULL;
						if (tq->done_tail)
							tq->done_tail->next = j;
						else
							tq->done_head = j;
						tq->done_tail = j;
					} else {
						j->next = NULL;
						tq->inflight++;
						if (tq->todo_tail)
							tq->todo_tail->next = j;
						else
							tq->todo_head = j;
						tq->todo_tail = j;
					}
					j = next;
				}
				tq->st.claimed += (uint64_t)got;
				pthread_cond_broadcast(&tq->runner_cv);
				pthread_mutex_unlock(&tq->mu);
				/* a full batch: there may be more due now */
				more = got == want;
				kf_debug("claimed %ld tasks", got);
			}
		}
		pthread_mutex_lock(&tq->mu);
		if (!tq->stopping && !tq->done_head && !tq->kicked && !more) {
			struct timespec ts;
			/* every runner busy: a result wakes the poller */
			int64_t wait = want > 0 ? next_poll - now_ms() : (int64_t)tq->s.poll_sec * 1000;

			if (pending && wait > 1000)
				wait = 1000;
			if (wait < 10)
				wait = 10;
			timespec_in(&ts, wait);
			pthread_cond_timedwait(&tq->poller_cv, &tq->mu, &ts);
		}
		pthread_mutex_unlock(&tq->mu);
	}
	poller_shutdown(tq, db, &pending);
	while (pending) {
		struct job *j = pending;

		pending = j->next;
		pthread_mutex_lock(&tq->mu);
		all_remove(tq, j);
		pthread_mutex_unlock(&tq->mu);
		job_free(j);
	}
	kf_db_free(db);
	return NULL;
}

int kf_taskqueue_start(struct kf_taskqueue *tq)
{
	pthread_attr_t attr;
	int rc = 0;

	if (tq->started || tq->nhandlers == 0)
		return KF_ERR_INVAL;
	tq->started = true;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&attr, RUNNER_STACK);
	for (long i = 0; i < tq->s.concurrency; i++) {
		pthread_t t;

		pthread_mutex_lock(&tq->mu);
		tq->live_runners++;
		pthread_mutex_unlock(&tq->mu);
		if (pthread_create(&t, &attr, runner_main, tq) != 0) {
			pthread_mutex_lock(&tq->mu);
			tq->live_runners--;
			pthread_mutex_unlock(&tq->mu);
			kf_err("task worker: unable to start runner thread %ld: %s", i + 1,
			       strerror(errno));
			rc = KF_ERR_IO;
			break;
		}
	}
	pthread_attr_destroy(&attr);
	if (rc == 0 && pthread_create(&tq->poller, NULL, poller_main, tq) != 0) {
		kf_err("task worker: unable to start the poller thread");
		rc = KF_ERR_IO;
	}
	if (rc != 0) {
		pthread_mutex_lock(&tq->mu);
		tq->runners_stop = true;
		pthread_cond_broadcast(&tq->runner_cv);
		while (tq->live_runners > 0)
			pthread_cond_wait(&tq->exit_cv, &tq->mu);
		pthread_mutex_unlock(&tq->mu);
		return rc;
	}
	tq->poller_running = true;
	return 0;
}

void kf_taskqueue_kick(struct kf_taskqueue *tq)
{
	pthread_mutex_lock(&tq->mu);
	tq->kicked = true;
	pthread_cond_signal(&tq->poller_cv);
	pthread_mutex_unlock(&tq->mu);
}

void kf_taskqueue_stop(struct kf_taskqueue *tq)
{
	struct timespec ts;

	if (!tq || !tq->poller_running)
		return;
	pthread_mutex_lock(&tq->mu);
	tq->stopping = true;
	pthread_cond_signal(&tq->poller_cv);
	pthread_mutex_unlock(&tq->mu);
	pthread_join(tq->poller, NULL);
	tq->poller_running = false;

	pthread_mutex_lock(&tq->mu);
	tq->runners_stop = true;
	pthread_cond_broadcast(&tq->runner_cv);
	timespec_in(&ts, 1000);
	while (tq->live_runners > 0)
		if (pthread_cond_timedwait(&tq->exit_cv, &tq->mu, &ts) == ETIMEDOUT)
			break;
	if (tq->live_runners > 0)
		kf_warn("task worker: %ld handlers did not return; leaving them", tq->live_runners);
	pthread_mutex_unlock(&tq->mu);
	kf_info("task worker %s stopped", tq->claim);
}

void kf_taskqueue_free(struct kf_taskqueue *tq)
{
	bool orphaned;

	if (!tq)
		return;
	kf_taskqueue_stop(tq);
	pthread_mutex_lock(&tq->mu);
	if (tq->live_runners > 0 && !tq->runners_stop) {
		/* started but never stopped cleanly: cannot happen after stop */
		tq->runners_stop = true;
		pthread_cond_broadcast(&tq->runner_cv);
	}
	orphaned = tq->live_runners > 0;
	tq->orphaned = orphaned;
	pthread_mutex_unlock(&tq->mu);
	if (orphaned)
		return; /* a handler is still running: the last runner to return frees tq */
	tq_destroy(tq);
}

void kf_taskqueue_stats(struct kf_taskqueue *tq, struct kf_taskqueue_stats *out)
{
	pthread_mutex_lock(&tq->mu);
	*out = tq->st;
	out->running = tq->inflight;
	pthread_mutex_unlock(&tq->mu);
}
