/*
 * kafka-mock - librdkafka's mock cluster as a stand-in Kafka for tests, and
 * a small consumer for it.
 *
 *   kafka-mock serve [--brokers N] [--topic T] [--partitions P]
 *       Start a mock cluster of N brokers (default 3) with topic T (default
 *       kefu.events, P partitions, default 3), print "bootstrap HOST:PORT,..."
 *       and "ready" on standard output, then read commands, one per line,
 *       answering "ok" or "error ...":
 *           down [ID]   take broker ID (1..N; default: all) down
 *           up [ID]     bring it back
 *           quit        stop (so does end of input or SIGTERM)
 *   kafka-mock consume --bootstrap B --topic T [--partitions P]
 *                      [--count N] [--idle-ms MS]
 *       Read topic T from the beginning of every partition and print one
 *       line per message: PARTITION TAB OFFSET TAB KEY TAB VALUE.  Stops
 *       after N messages, or when none came for MS milliseconds (default
 *       3000).  Exit 0.
 *
 * Brokers listen on random loopback ports; a mock hosted here serves
 * clients in other processes.
 */
#include "kf_compat.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static void usage(void)
{
	fprintf(stderr, "usage: kafka-mock serve [--brokers N] [--topic T] [--partitions P]\n"
			"       kafka-mock consume --bootstrap B --topic T [--partitions P] [--count N] [--idle-ms MS]\n");
	exit(2);
}

static long num_arg(const char *s)
{
	char *end;
	long v = strtol(s, &end, 10);

	if (*end || v < 0)
		usage();
	return v;
}

static int serve(int brokers, const char *topic, int partitions)
{
	char err[512], line[128];
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	rd_kafka_mock_cluster_t *mc;
	rd_kafka_t *rk;

	/* the mock needs a client instance to live in */
	rd_kafka_conf_set(conf, "log_level", "3", err, sizeof(err));
	rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
	if (!rk) {
		fprintf(stderr, "kafka-mock: %s\n", err);
		return 1;
	}
	mc = rd_kafka_mock_cluster_new(rk, brokers);
	if (!mc) {
		fprintf(stderr, "kafka-mock: unable to create the mock cluster\n");
		rd_kafka_destroy(rk);
		return 1;
	}
	if (rd_kafka_mock_topic_create(mc, topic, partitions, 1) != RD_KAFKA_RESP_ERR_NO_ERROR) {
		fprintf(stderr, "kafka-mock: unable to create topic '%s'\n", topic);
		rd_kafka_mock_cluster_destroy(mc);
		rd_kafka_destroy(rk);
		return 1;
	}
	printf("bootstrap %s\nready\n", rd_kafka_mock_cluster_bootstraps(mc));
	fflush(stdout);
	while (!stop && fgets(line, sizeof(line), stdin)) {
		char cmd[16] = "";
		int id = 0, n = sscanf(line, "%15s %d", cmd, &id);
		int from = 1, to = brokers, bad = 0;

		if (n < 1)
			continue;
		if (strcmp(cmd, "quit") == 0)
			break;
		if (n == 2) {
			if (id < 1 || id > brokers) {
				printf("error no broker %d\n", id);
				fflush(stdout);
				continue;
			}
			from = to = id;
		}
		for (int b = from; b <= to; b++) {
			rd_kafka_resp_err_t e;

			if (strcmp(cmd, "down") == 0)
				e = rd_kafka_mock_broker_set_down(mc, b);
			else if (strcmp(cmd, "up") == 0)
				e = rd_kafka_mock_broker_set_up(mc, b);
			else {
				bad = 1;
				break;
			}
			if (e != RD_KAFKA_RESP_ERR_NO_ERROR)
				bad = 1;
		}
		printf(bad ? "error %s\n" : "ok %s\n", cmd);
		fflush(stdout);
	}
	rd_kafka_mock_cluster_destroy(mc);
	rd_kafka_destroy(rk);
	return 0;
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int consume(const char *bootstrap, const char *topic, int partitions, long count,
		   long idle_ms)
{
	char err[512];
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	rd_kafka_topic_partition_list_t *parts;
	rd_kafka_t *rk;
	int64_t last = now_ms();
	long got = 0;

	if (rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap, err, sizeof(err)) ||
	    rd_kafka_conf_set(conf, "group.id", "kefu-test", err, sizeof(err)) ||
	    rd_kafka_conf_set(conf, "enable.auto.commit", "false", err, sizeof(err)) ||
	    rd_kafka_conf_set(conf, "log_level", "3", err, sizeof(err))) {
		fprintf(stderr, "kafka-mock: %s\n", err);
		return 1;
	}
	rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
	if (!rk) {
		fprintf(stderr, "kafka-mock: %s\n", err);
		return 1;
	}
	rd_kafka_poll_set_consumer(rk);
	parts = rd_kafka_topic_partition_list_new(partitions);
	for (int p = 0; p < partitions; p++)
		rd_kafka_topic_partition_list_add(parts, topic, p)->offset = RD_KAFKA_OFFSET_BEGINNING;
	if (rd_kafka_assign(rk, parts) != RD_KAFKA_RESP_ERR_NO_ERROR) {
		fprintf(stderr, "kafka-mock: unable to assign the partitions\n");
		rd_kafka_topic_partition_list_destroy(parts);
		rd_kafka_destroy(rk);
		return 1;
	}
	rd_kafka_topic_partition_list_destroy(parts);
	while (!stop && (count == 0 || got < count) && now_ms() - last < idle_ms) {
		rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);

		if (!m)
			continue;
		if (m->err) {
			if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
				fprintf(stderr, "kafka-mock: %s\n", rd_kafka_message_errstr(m));
			rd_kafka_message_destroy(m);
			continue;
		}
		printf("%d\t%lld\t%.*s\t%.*s\n", (int)m->partition, (long long)m->offset,
		       (int)m->key_len, m->key ? (const char *)m->key : "", (int)m->len,
		       m->payload ? (const char *)m->payload : "");
		fflush(stdout);
		got++;
		last = now_ms();
		rd_kafka_message_destroy(m);
	}
	rd_kafka_consumer_close(rk);
	rd_kafka_destroy(rk);
	fprintf(stderr, "kafka-mock: %ld messages\n", got);
	return 0;
}

int main(int argc, char **argv)
{
	const char *topic = "kefu.events", *bootstrap = NULL;
	int brokers = 3, partitions = 3;
	long count = 0, idle_ms = 3000;
	struct sigaction sa;

	if (argc < 2)
		usage();
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	for (int i = 2; i < argc; i++) {
		if (i + 1 >= argc)
			usage();
		if (strcmp(argv[i], "--brokers") == 0)
			brokers = (int)num_arg(argv[++i]);
		else if (strcmp(argv[i], "--topic") == 0)
			topic = argv[++i];
		else if (strcmp(argv[i], "--partitions") == 0)
			partitions = (int)num_arg(argv[++i]);
		else if (strcmp(argv[i], "--bootstrap") == 0)
			bootstrap = argv[++i];
		else if (strcmp(argv[i], "--count") == 0)
			count = num_arg(argv[++i]);
		else if (strcmp(argv[i], "--idle-ms") == 0)
			idle_ms = num_arg(argv[++i]);
		else
			usage();
	}
	if (brokers < 1 || partitions < 1)
		usage();
	if (strcmp(argv[1], "serve") == 0)
		return serve(brokers, topic, partitions);
	if (strcmp(argv[1], "consume") == 0 && bootstrap)
		return consume(bootstrap, topic, partitions, count, idle_ms);
	usage();
	return 2;
}
