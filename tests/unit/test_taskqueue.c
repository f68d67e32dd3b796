/*
 * test_taskqueue.c - kf_taskqueue's pure parts: the settings, the retry
 * and stale arithmetic, how many tasks a poll claims, type names, the
 * fail_msg text, and handler registration.  Claiming and running tasks
 * against MariaDB is covered by tests/integration/60-events.test.mjs.
 */
#include "kf_compat.h"

#include <criterion/criterion.h>

#include <stdlib.h>
#include <unistd.h>

#include "kf_buf.h"
#include "kf_config.h"
#include "kf_err.h"
#include "kf_key.h"
#include "kf_log.h"
#include "kf_taskqueue.h"

static struct kf_config *load_text(const char *text)
{
	char path[] = "/tmp/kefu-test-tq-XXXXXX";
	struct kf_buf err = KF_BUF_INIT;
	int fd = mkstemp(path);
	struct kf_config *cfg;

	cr_assert(fd >= 0);
	cr_assert_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	cfg = kf_config_load(path, &err);
	unlink(path);
	cr_assert_not_null(cfg, "%s", kf_buf_str(&err));
	kf_buf_release(&err);
	return cfg;
}

Test(taskqueue, settings_default_to_the_seed)
{
	struct kf_config *cfg = kf_config_defaults();
	struct kf_taskqueue_settings s;

	kf_taskqueue_settings_load(cfg, &s);
	cr_expect(!s.worker);
	cr_expect_eq(s.poll_sec, 3);
	cr_expect_eq(s.batch, 10);
	cr_expect_eq(s.concurrency, 100);
	cr_expect_eq(s.timeout_sec, 30);
	cr_expect_eq(s.retry_delay_sec, 180);
	cr_expect_eq(s.first_delay_sec, 30);
	cr_expect_gt(s.stale_sec, s.timeout_sec);
	cr_expect_eq(s.shutdown_wait_sec, 8);
	kf_config_free(cfg);
}

Test(taskqueue, settings_from_the_file)
{
	struct kf_config *cfg = load_text("[Events]\nTaskWorker = yes\nTaskPollSec = 1\n"
					  "TaskBatch = 50\nTaskConcurrency = 4\nTaskTimeoutSec = 5\n"
					  "TaskRetryDelaySec = 0\nTaskFirstDelaySec = 2\n"
					  "TaskStaleSec = 6\nTaskShutdownWaitSec = 0\n");
	struct kf_taskqueue_settings s;

	kf_taskqueue_settings_load(cfg, &s);
	cr_expect(s.worker);
	cr_expect_eq(s.poll_sec, 1);
	cr_expect_eq(s.batch, 50);
	cr_expect_eq(s.concurrency, 4);
	cr_expect_eq(s.timeout_sec, 5);
	cr_expect_eq(s.retry_delay_sec, 0);
	cr_expect_eq(s.first_delay_sec, 2);
	cr_expect_eq(s.stale_sec, 6);
	cr_expect_eq(s.shutdown_wait_sec, 0);
	kf_config_free(cfg);
}

Test(taskqueue, retry_and_stale_arithmetic)
{
	struct kf_taskqueue_settings s = { .retry_delay_sec = 180, .first_delay_sec = 30,
					   .stale_sec = 600 };

	cr_expect_eq(kf_taskqueue_retry_at(&s, 1000000), 1000180);
	cr_expect_eq(kf_taskqueue_first_at(&s, 1000000), 1000030);
	cr_expect_eq(kf_taskqueue_stale_before(&s, 1000000), 999400);
	s.retry_delay_sec = 0;
	cr_expect_eq(kf_taskqueue_retry_at(&s, 5), 5, "a zero delay is due at once");
}

Test(taskqueue, claims_never_exceed_batch_or_concurrency)
{
	struct kf_taskqueue_settings s = { .batch = 10, .concurrency = 100 };

	cr_expect_eq(kf_taskqueue_claim_count(&s, 0), 10);
	cr_expect_eq(kf_taskqueue_claim_count(&s, 89), 10);
	cr_expect_eq(kf_taskqueue_claim_count(&s, 95), 5);
	cr_expect_eq(kf_taskqueue_claim_count(&s, 100), 0);
	cr_expect_eq(kf_taskqueue_claim_count(&s, 150), 0);
	s.concurrency = 3;
	cr_expect_eq(kf_taskqueue_claim_count(&s, 0), 3);
	cr_expect_eq(kf_taskqueue_claim_count(&s, 2), 1);
}

Test(taskqueue, type_names)
{
	cr_expect(kf_taskqueue_type_valid("mq", 2));
	cr_expect(kf_taskqueue_type_valid("kafka", 5));
	cr_expect(kf_taskqueue_type_valid("a.b-c_9", 7));
	cr_expect(!kf_taskqueue_type_valid("", 0));
	cr_expect(!kf_taskqueue_type_valid("a,b", 3), "a comma would break FIND_IN_SET");
	cr_expect(!kf_taskqueue_type_valid("MQ", 2));
	cr_expect(!kf_taskqueue_type_valid("a b", 3));
	{
		char longname[KF_TASK_TYPE_MAX + 2];

		memset(longname, 'a', sizeof(longname) - 1);
		longname[sizeof(longname) - 1] = '\0';
		cr_expect(kf_taskqueue_type_valid(longname, KF_TASK_TYPE_MAX));
		cr_expect(!kf_taskqueue_type_valid(longname, KF_TASK_TYPE_MAX + 1));
	}
}

Test(taskqueue, fail_text_is_cut_on_a_utf8_boundary)
{
	struct kf_buf out = KF_BUF_INIT;

	kf_taskqueue_fail_text(&out, "short", 100);
	cr_expect_str_eq(kf_buf_str(&out), "short");
	kf_buf_reset(&out);
	kf_taskqueue_fail_text(&out, "abcdef", 4);
	cr_expect_str_eq(kf_buf_str(&out), "abcd");
	kf_buf_reset(&out);
	/* "é" is two bytes: a limit of 2 after "a" keeps only "a" */
	kf_taskqueue_fail_text(&out, "a\xc3\xa9", 2);
	cr_expect_str_eq(kf_buf_str(&out), "a");
	kf_buf_reset(&out);
	kf_taskqueue_fail_text(&out, "a\xc3\xa9", 3);
	cr_expect_str_eq(kf_buf_str(&out), "a\xc3\xa9");
	kf_buf_reset(&out);
	/* invalid bytes become '?' */
	kf_taskqueue_fail_text(&out, "x\xff\xc3y", 10);
	cr_expect_str_eq(kf_buf_str(&out), "x??y");
	kf_buf_reset(&out);
	kf_taskqueue_fail_text(&out, NULL, 10);
	cr_expect_eq(out.len, 0);
	kf_buf_release(&out);
}

static int nop(void *ud, const struct kf_task *task, struct kf_buf *err)
{
	(void)ud;
	(void)task;
	(void)err;
	return 0;
}

Test(taskqueue, register_rules)
{
	struct kf_config *cfg = kf_config_defaults();
	struct kf_taskqueue *tq;

	cr_assert_eq(kf_key_init(), 0);
	tq = kf_taskqueue_new(cfg, "node1");
	cr_expect_eq(kf_taskqueue_start(tq), KF_ERR_INVAL, "started without a handler");
	cr_expect_eq(kf_taskqueue_register(tq, "mq", nop, NULL), 0);
	cr_expect_eq(kf_taskqueue_register(tq, "mq", nop, NULL), KF_ERR_EXISTS);
	cr_expect_eq(kf_taskqueue_register(tq, "bad,type", nop, NULL), KF_ERR_INVAL);
	cr_expect_eq(kf_taskqueue_register(tq, "kafka", NULL, NULL), KF_ERR_INVAL);
	cr_expect_eq(kf_taskqueue_register(tq, "kafka", nop, NULL), 0);
	cr_expect_eq(kf_taskqueue_settings(tq)->batch, 10);
	kf_taskqueue_free(tq);
	kf_taskqueue_free(NULL);
	kf_config_free(cfg);
}

/* A worker whose database is unreachable starts, claims nothing, stops. */
Test(taskqueue, worker_starts_and_stops_without_a_database)
{
	struct kf_config *cfg = load_text("[Db]\nHostMaster = 127.0.0.1\nPortMaster = 1\n"
					  "ConnectTimeoutSec = 1\n[Events]\nTaskPollSec = 1\n"
					  "TaskConcurrency = 3\nTaskShutdownWaitSec = 1\n"
					  "");
	struct kf_taskqueue *tq;
	struct kf_taskqueue_stats st;

	cr_assert_eq(kf_key_init(), 0);
	/* the connect errors below are expected: keep them off the output */
	cr_assert_eq(kf_log_set_file("/dev/null"), 0);
	tq = kf_taskqueue_new(cfg, "node1");
	cr_assert_eq(kf_taskqueue_register(tq, "test", nop, NULL), 0);
	cr_assert_eq(kf_taskqueue_start(tq), 0);
	cr_expect_eq(kf_taskqueue_start(tq), KF_ERR_INVAL);
	kf_taskqueue_kick(tq);
	usleep(200 * 1000);
	kf_taskqueue_stats(tq, &st);
	cr_expect_eq(st.claimed, 0);
	cr_expect_eq(st.running, 0);
	kf_taskqueue_free(tq);
	kf_log_set_file(NULL);
	kf_config_free(cfg);
}
