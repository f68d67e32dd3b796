/*
 * events-tool - drives kf_events and kf_taskqueue directly, for the
 * integration tests (tests/integration/60-events.test.mjs).
 *
 *   events-tool --config FILE publish [--count N] [--conversations K]
 *               [--prefix P] [--type T]
 *       Publish N events (default 10) round-robin over K conversations
 *       (default 3) named P-1..P-K (P default "conv"), seq 1, 2, ... per
 *       conversation, to the backends of [Events] Backend; print
 *       "ID TAB CONVERSATION TAB SEQ" per event; stop the publisher (which
 *       flushes) and print the publisher's counters as JSON on stderr.
 *   events-tool --config FILE worker --types a,b [--mode count|hang|fail]
 *               [--log FILE] [--sleep-ms MS] [--events]
 *       Run a task worker for the types until SIGTERM/SIGINT.  count:
 *       append "ID PID\n" to FILE after MS ms (default 0) and succeed;
 *       hang: append "start ID PID\n" and sleep until killed; fail: fail
 *       with "synthetic failure".  --events also registers the "mq" and
 *       "kafka" handlers of kf_events.
 *   events-tool --config FILE enqueue --type T [--count N] [--due-in S]
 *       Write N tasks of type T (param {"n": I}) due in S seconds (0).
 *   events-tool --config FILE mq-get [--queue Q] [--idle-ms MS]
 *       Take every message from queue Q ([Mq] Queue) with basic.get and
 *       print each body on a line; stop when none came for MS ms (1000).
 */
#include "kf_compat.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <amqp.h>
#include <amqp_framing.h>
#include <amqp_tcp_socket.h>

#include "kf_buf.h"
#include "kf_config.h"
#include "kf_db.h"
#include "kf_err.h"
#include "kf_events.h"
#include "kf_key.h"
#include "kf_log.h"
#include "kf_taskqueue.h"

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static void usage(void)
{
	fprintf(stderr, "usage: events-tool --config FILE publish|worker|enqueue|mq-get [options]\n"
			"  (see the comment at the top of tests/tools/events-tool.c)\n");
	exit(2);
}

struct opts {
	long count, conversations, sleep_ms, due_in, idle_ms;
	const char *prefix, *type, *types, *mode, *log, *queue;
	bool events;
};

static int publish(const struct kf_config *cfg, const struct opts *o)
{
	struct kf_buf err = KF_BUF_INIT;
	struct kf_events *ev = kf_events_new(cfg, &err);
	struct kf_events_stats st;
	int64_t *seq;
	int type = kf_event_type_parse(o->type, strlen(o->type));
	int status = 0;

	if (!ev || type < 0) {
		fprintf(stderr, "events-tool: %s\n", ev ? "unknown event type" : kf_buf_str(&err));
		kf_events_free(ev);
		kf_buf_release(&err);
		return 1;
	}
	seq = calloc((size_t)o->conversations, sizeof(*seq));
	for (long i = 0; i < o->count; i++) {
		char conv[128], content[64];
		long k = i % o->conversations;
		struct kf_event e = { 0 };

		snprintf(conv, sizeof(conv), "%s-%ld", o->prefix, k + 1);
		snprintf(content, sizeof(content), "message %ld", i + 1);
		e.type = (enum kf_event_type)type;
		e.conversation = conv;
		e.seq = ++seq[k];
		e.from = "events-tool";
		e.to = "agent";
		e.content = content;
		e.node = "tool";
		if (kf_events_publish(ev, &e) != 0)
			status = 1;
		printf("%s\t%s\t%lld\n", e.id, conv, (long long)e.seq);
	}
	fflush(stdout);
	free(seq);
	kf_events_stats(ev, &st);
	kf_events_free(ev); /* flushes */
	fprintf(stderr, "{\"queued\":%llu,\"dropped\":%llu}\n", (unsigned long long)st.queued,
		(unsigned long long)st.dropped);
	kf_buf_release(&err);
	return status;
}

struct test_handler {
	const char *mode;
	int fd;
	long sleep_ms;
};

static int test_task(void *ud, const struct kf_task *task, struct kf_buf *err)
{
	const struct test_handler *h = ud;
	char line[96];
	int n;

	if (strcmp(h->mode, "fail") == 0) {
		kf_buf_adds(err, "synthetic failure");
		return KF_ERR_STORE;
	}
	if (strcmp(h->mode, "hang") == 0) {
		n = snprintf(line, sizeof(line), "start %lld %ld\n", (long long)task->id,
			     (long)getpid());
		if (h->fd >= 0 && write(h->fd, line, (size_t)n) != n)
			return KF_ERR_IO;
		for (;;)
			pause();
	}
	if (h->sleep_ms)
		usleep((useconds_t)h->sleep_ms * 1000);
	n = snprintf(line, sizeof(line), "%lld %ld\n", (long long)task->id, (long)getpid());
	if (h->fd >= 0 && write(h->fd, line, (size_t)n) != n) {
		kf_buf_addf(err, "write: %s", strerror(errno));
		return KF_ERR_IO;
	}
	return 0;
}

static int worker(const struct kf_config *cfg, const struct opts *o)
{
	struct test_handler h = { o->mode, -1, o->sleep_ms };
	struct kf_taskqueue *tq = kf_taskqueue_new(cfg, "events-tool");
	struct kf_events *ev = NULL;
	struct kf_buf err = KF_BUF_INIT;
	char types[512];
	int status = 1;

	if (o->log) {
		h.fd = open(o->log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
		if (h.fd < 0) {
			fprintf(stderr, "events-tool: unable to open '%s': %s\n", o->log, strerror(errno));
			goto out;
		}
	}
	snprintf(types, sizeof(types), "%s", o->types ? o->types : "");
	for (char *t = types, *comma; t && *t; t = comma ? comma + 1 : NULL) {
		comma = strchr(t, ',');
		if (comma)
			*comma = '\0';
		if (kf_taskqueue_register(tq, t, test_task, &h) != 0) {
			fprintf(stderr, "events-tool: bad type '%s'\n", t);
			goto out;
		}
	}
	if (o->events) {
		ev = kf_events_new(cfg, &err);
		if (!ev) {
			fprintf(stderr, "events-tool: %s", kf_buf_str(&err));
			goto out;
		}
		kf_events_register_tasks(ev, tq);
	}
	if (kf_taskqueue_start(tq) != 0) {
		fprintf(stderr, "events-tool: the worker did not start\n");
		goto out;
	}
	printf("ready\n");
	fflush(stdout);
	while (!stop)
		pause();
	status = 0;
out:
	kf_taskqueue_free(tq);
	kf_events_free(ev);
	if (h.fd >= 0)
		close(h.fd);
	kf_buf_release(&err);
	return status;
}

static int enqueue(const struct kf_config *cfg, const struct opts *o)
{
	struct kf_db *db = kf_db_new(cfg);
	int status = 0;

	for (long i = 0; i < o->count; i++) {
		char param[64];
		int n = snprintf(param, sizeof(param), "{\"n\":%ld}", i + 1);

		if (kf_taskqueue_add(db, o->type, param, (size_t)n, NULL,
				     (int64_t)time(NULL) + o->due_in, NULL) != 0) {
			fprintf(stderr, "events-tool: unable to add task %ld: %s\n", i + 1,
				kf_db_error(db, KF_DB_PRIMARY));
			status = 1;
			break;
		}
	}
	kf_db_free(db);
	return status;
}

static int mq_get(const struct kf_config *cfg, const struct opts *o)
{
	amqp_connection_state_t conn = amqp_new_connection();
	amqp_socket_t *sock = amqp_tcp_socket_new(conn);
	const char *queue = o->queue ? o->queue : kf_config_str(cfg, "Mq", "Queue");
	struct timeval tv = { 5, 0 };
	amqp_rpc_reply_t r;
	struct timespec last, now;
	long got = 0;

	if (!sock || amqp_socket_open_noblock(sock, kf_config_str(cfg, "Mq", "Host"),
					      (int)kf_config_int(cfg, "Mq", "Port"), &tv) != 0) {
		fprintf(stderr, "events-tool: unable to connect to rabbitmq\n");
		amqp_destroy_connection(conn);
		return 1;
	}
	r = amqp_login(conn, kf_config_str(cfg, "Mq", "Vhost"), 0, 131072, 0,
		       AMQP_SASL_METHOD_PLAIN, kf_config_str(cfg, "Mq", "User"),
		       kf_config_str(cfg, "Mq", "Pwd"));
	if (r.reply_type != AMQP_RESPONSE_NORMAL) {
		fprintf(stderr, "events-tool: login refused\n");
		amqp_destroy_connection(conn);
		return 1;
	}
	amqp_channel_open(conn, 1);
	clock_gettime(CLOCK_MONOTONIC, &last);
	for (;;) {
		amqp_message_t msg;

		amqp_maybe_release_buffers(conn);
		r = amqp_basic_get(conn, 1, amqp_cstring_bytes(queue), 1);
		if (r.reply_type != AMQP_RESPONSE_NORMAL) {
			fprintf(stderr, "events-tool: basic.get on '%s' failed\n", queue);
			break;
		}
		if (r.reply.id == AMQP_BASIC_GET_EMPTY_METHOD) {
			clock_gettime(CLOCK_MONOTONIC, &now);
			if ((now.tv_sec - last.tv_sec) * 1000 + (now.tv_nsec - last.tv_nsec) / 1000000 >=
			    o->idle_ms)
				break;
			usleep(50 * 1000);
			continue;
		}
		r = amqp_read_message(conn, 1, &msg, 0);
		if (r.reply_type != AMQP_RESPONSE_NORMAL) {
			fprintf(stderr, "events-tool: unable to read a message\n");
			break;
		}
		printf("%.*s\n", (int)msg.body.len, (const char *)msg.body.bytes);
		fflush(stdout);
		amqp_destroy_message(&msg);
		got++;
		clock_gettime(CLOCK_MONOTONIC, &last);
	}
	amqp_channel_close(conn, 1, AMQP_REPLY_SUCCESS);
	amqp_connection_close(conn, AMQP_REPLY_SUCCESS);
	amqp_destroy_connection(conn);
	fprintf(stderr, "events-tool: %ld messages\n", got);
	return 0;
}

int main(int argc, char **argv)
{
	struct opts o = { 10, 3, 0, 0, 1000, "conv", "chat", NULL, "count", NULL, NULL, false };
	const char *config = NULL, *cmd = NULL;
	struct kf_buf err = KF_BUF_INIT;
	struct kf_config *cfg;
	struct sigaction sa;
	int status;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (strcmp(a, "--events") == 0) {
			o.events = true;
			continue;
		}
		if (a[0] != '-') {
			if (cmd)
				usage();
			cmd = a;
			continue;
		}
		if (!v)
			usage();
		i++;
		if (strcmp(a, "--config") == 0)
			config = v;
		else if (strcmp(a, "--count") == 0)
			o.count = atol(v);
		else if (strcmp(a, "--conversations") == 0)
			o.conversations = atol(v);
		else if (strcmp(a, "--prefix") == 0)
			o.prefix = v;
		else if (strcmp(a, "--type") == 0)
			o.type = v;
		else if (strcmp(a, "--types") == 0)
			o.types = v;
		else if (strcmp(a, "--mode") == 0)
			o.mode = v;
		else if (strcmp(a, "--log") == 0)
			o.log = v;
		else if (strcmp(a, "--sleep-ms") == 0)
			o.sleep_ms = atol(v);
		else if (strcmp(a, "--due-in") == 0)
			o.due_in = atol(v);
		else if (strcmp(a, "--queue") == 0)
			o.queue = v;
		else if (strcmp(a, "--idle-ms") == 0)
			o.idle_ms = atol(v);
		else
			usage();
	}
	if (!config || !cmd || o.conversations < 1)
		usage();
	kf_log_set_ident("events-tool");
	if (kf_key_init() != 0)
		return 1;
	cfg = kf_config_load(config, &err);
	if (!cfg) {
		fprintf(stderr, "events-tool: configuration refused:\n%s", kf_buf_str(&err));
		kf_buf_release(&err);
		return 1;
	}
	kf_log_set_level((enum kf_log_level)kf_log_level_parse(kf_config_str(cfg, "Log", "Level")));
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	if (strcmp(cmd, "publish") == 0)
		status = publish(cfg, &o);
	else if (strcmp(cmd, "worker") == 0)
		status = worker(cfg, &o);
	else if (strcmp(cmd, "enqueue") == 0)
		status = enqueue(cfg, &o);
	else if (strcmp(cmd, "mq-get") == 0)
		status = mq_get(cfg, &o);
	else
		usage();
	kf_config_free(cfg);
	kf_buf_release(&err);
	return status;
}
