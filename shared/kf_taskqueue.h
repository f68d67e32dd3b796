/*
 * kf_taskqueue.h - the seed's MySQL-backed delayed task queue.
 *
 * A task is a `taskqueue` row: type, param (text, usually JSON), status (0
 * waiting, 1 running), retry_times, fail_msg, create_time, begin_time (when
 * it is due; while running, when it was claimed) and claim (who runs it).
 *
 * A worker (kf_taskqueue_start) polls every [Events] TaskPollSec: in one
 * transaction it selects up to TaskBatch due rows of the types it has
 * handlers for, `FOR UPDATE SKIP LOCKED`, and marks them running under its
 * own claim token, so any number of workers, threads or processes, share
 * one table without two of them ever taking the same row.  Each claimed
 * task runs on one of TaskConcurrency runner threads; the handler
 * registered for its type gets a deadline TaskTimeoutSec away.  On success
 * the row is deleted; on failure it is put back (status 0) due
 * TaskRetryDelaySec later with retry_times + 1 and the handler's error in
 * fail_msg.  Both only when the row still carries this worker's claim, so a
 * worker that was too slow never undoes another's work.
 *
 * A row left running by a worker that died is taken again once it has been
 * running for TaskStaleSec (retry_times + 1, fail_msg saying so).  On stop
 * the worker takes no new tasks and waits up to TaskShutdownWaitSec for
 * the running ones; those still running then are put back, due at once.
 *
 * Handlers may run on several runner threads at once: they must be
 * thread-safe, honour task->deadline_ms, and not keep task's strings.
 * Every statement is prepared; the worker's thread holds its own kf_db.
 */
#ifndef KF_TASKQUEUE_H
#define KF_TASKQUEUE_H

#include "kf_compat.h"

#include <time.h>

struct kf_buf;
struct kf_config;
struct kf_db;
struct kf_taskqueue;

/* Longest task type (the column is varchar(120)); [a-z0-9_.-] only. */
#define KF_TASK_TYPE_MAX 120
/* Longest fail_msg written; a longer error is cut on a UTF-8 boundary. */
#define KF_TASK_FAIL_MAX 1000

/* One claimed task, borrowed by the handler for the call. */
struct kf_task {
	int64_t id;
	const char *type;
	const char *param;
	size_t param_len;
	unsigned retry_times; /* failures so far */
	int64_t create_time;
	int64_t deadline_ms;  /* CLOCK_MONOTONIC milliseconds: return by then */
};

/*
 * A handler: 0 when the task is done (the row is deleted), or a negative
 * kf_err with a reason appended to err (the row is retried later).
 */
typedef int (*kf_task_fn)(void *ud, const struct kf_task *task, struct kf_buf *err);

/* The [Events] Task* settings. */
struct kf_taskqueue_settings {
	bool worker;             /* TaskWorker */
	long poll_sec;           /* TaskPollSec */
	long batch;              /* TaskBatch */
	long concurrency;        /* TaskConcurrency */
	long timeout_sec;        /* TaskTimeoutSec */
	long retry_delay_sec;    /* TaskRetryDelaySec */
	long first_delay_sec;    /* TaskFirstDelaySec */
	long stale_sec;          /* TaskStaleSec */
	long shutdown_wait_sec;  /* TaskShutdownWaitSec */
};

void kf_taskqueue_settings_load(const struct kf_config *cfg, struct kf_taskqueue_settings *s);

/* When a task that failed at now is due again. */
int64_t kf_taskqueue_retry_at(const struct kf_taskqueue_settings *s, int64_t now);
/* When a new task written at now is first due. */
int64_t kf_taskqueue_first_at(const struct kf_taskqueue_settings *s, int64_t now);
/* A running task claimed at or before this (at now) is stale. */
int64_t kf_taskqueue_stale_before(const struct kf_taskqueue_settings *s, int64_t now);
/* How many tasks one poll claims with running tasks already running. */
long kf_taskqueue_claim_count(const struct kf_taskqueue_settings *s, long running);
/* True when s (n bytes) is a usable task type name. */
bool kf_taskqueue_type_valid(const char *s, size_t n);
/*
 * Append msg cut to at most max bytes on a UTF-8 boundary (invalid bytes
 * become '?'), as written to fail_msg.
 */
void kf_taskqueue_fail_text(struct kf_buf *out, const char *msg, size_t max);

/*
 * Write a task due at due (unix seconds) through db (the caller's thread's
 * connection).  fail_msg may be NULL.  *id (may be NULL) gets the row id.
 * Returns 0, KF_ERR_INVAL (bad type) or KF_ERR_STORE.
 */
int kf_taskqueue_add(struct kf_db *db, const char *type, const char *param, size_t len,
		     const char *fail_msg, int64_t due, int64_t *id);

/*
 * A task queue worker for cfg (borrowed; must outlive it); nothing runs
 * until kf_taskqueue_start.  node names this process in claim tokens
 * (borrowed; copied).  Never NULL.
 */
struct kf_taskqueue *kf_taskqueue_new(const struct kf_config *cfg, const char *node);
/* Stop (as kf_taskqueue_stop) and free.  NULL is a no-op. */
void kf_taskqueue_free(struct kf_taskqueue *tq);
/*
 * Run fn(ud, ...) for tasks of type.  Only before kf_taskqueue_start.
 * Returns 0, KF_ERR_INVAL (bad type name, or started) or KF_ERR_EXISTS.
 */
int kf_taskqueue_register(struct kf_taskqueue *tq, const char *type, kf_task_fn fn, void *ud);
/*
 * Start the poller and the runner threads.  Returns 0, KF_ERR_INVAL (no
 * handler registered, or already started) or KF_ERR_IO (no thread).
 */
int kf_taskqueue_start(struct kf_taskqueue *tq);
/* Stop polling, wait for running tasks (up to TaskShutdownWaitSec), join. */
void kf_taskqueue_stop(struct kf_taskqueue *tq);
/* Wake the poller now (e.g. after adding tasks that are due at once). */
void kf_taskqueue_kick(struct kf_taskqueue *tq);
/* The settings in force (borrowed). */
const struct kf_taskqueue_settings *kf_taskqueue_settings(const struct kf_taskqueue *tq);

struct kf_taskqueue_stats {
	uint64_t claimed;  /* tasks taken */
	uint64_t done;     /* handlers that succeeded */
	uint64_t failed;   /* handlers that failed (or timed out) */
	uint64_t stale;    /* of claimed: taken from a worker that did not finish */
	long running;      /* running now */
};
void kf_taskqueue_stats(struct kf_taskqueue *tq, struct kf_taskqueue_stats *out);

#endif
