/*
 * test_events.c - kf_events: the event's JSON, the task param, the
 * [Events]/[Mq]/[Kafka] keys and their checks, and a publisher that starts
 * and stops cleanly when no broker and no database can be reached (every
 * event is then accounted for: nothing vanishes).  Publishing to real
 * brokers is covered by tests/integration/60-events.test.mjs.
 */
#include "kf_compat.h"

#include <criterion/criterion.h>

#include <ctype.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "kf_buf.h"
#include "kf_config.h"
#include "kf_err.h"
#include "kf_events.h"
#include "kf_json.h"
#include "kf_key.h"
#include "kf_log.h"

static struct kf_config *load_text(const char *text, struct kf_buf *err)
{
	char path[] = "/tmp/kefu-test-events-XXXXXX";
	int fd = mkstemp(path);
	struct kf_config *cfg;

	cr_assert(fd >= 0);
	cr_assert_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	cfg = kf_config_load(path, err);
	unlink(path);
	return cfg;
}

static void setup(void)
{
	cr_assert_eq(kf_key_init(), 0);
}

TestSuite(events, .init = setup);

static struct json_object *parse(const struct kf_buf *b)
{
	const char *why = NULL;
	struct json_object *o = kf_json_parse(b->data, b->len, 0, &why);

	cr_assert_not_null(o, "not JSON (%s): %s", why ? why : "null", kf_buf_str(b));
	return o;
}

static int64_t get_int(struct json_object *o, const char *key)
{
	struct json_object *v;

	cr_assert(json_object_object_get_ex(o, key, &v), "no '%s'", key);
	cr_assert(json_object_is_type(v, json_type_int), "'%s' is not a number", key);
	return json_object_get_int64(v);
}

static const char *get_str(struct json_object *o, const char *key)
{
	const char *s = kf_json_get_str(o, key, NULL);

	cr_assert_not_null(s, "no string '%s'", key);
	return s;
}

Test(events, type_names_round_trip)
{
	static const char *const names[] = { "connect", "chat", "close", "assign" };

	for (int i = 0; i < 4; i++) {
		cr_expect_str_eq(kf_event_type_name((enum kf_event_type)i), names[i]);
		cr_expect_eq(kf_event_type_parse(names[i], strlen(names[i])), i);
	}
	cr_expect_null(kf_event_type_name((enum kf_event_type)4));
	cr_expect_eq(kf_event_type_parse("chatx", 5), -1);
	cr_expect_eq(kf_event_type_parse("cha", 3), -1);
}

Test(events, ids_are_random_and_well_formed)
{
	char a[KF_EVENT_ID_LEN + 1], b[KF_EVENT_ID_LEN + 1];

	kf_event_new_id(a);
	kf_event_new_id(b);
	cr_expect_eq(strlen(a), KF_EVENT_ID_LEN);
	cr_expect_str_neq(a, b);
	for (size_t i = 0; i < KF_EVENT_ID_LEN; i++)
		cr_expect(isalnum((unsigned char)a[i]));
}

Test(events, serialises_every_field)
{
	struct kf_event e = {
		.type = KF_EVENT_CHAT,
		.conversation = "c-42",
		.seq = 7,
		.from = "visitorKey",
		.to = "agent:3",
		.content = "héllo \"world\" </script>",
		.time = 1700000000,
		.node = "node1",
	};
	struct kf_buf out = KF_BUF_INIT;
	struct json_object *o;

	kf_event_new_id(e.id);
	cr_assert_eq(kf_event_to_json(&e, &out), 0);
	/* compact, and no slash escaping */
	cr_expect_null(strchr(kf_buf_str(&out), '\n'));
	cr_expect_not_null(strstr(kf_buf_str(&out), "</script>"), "%s", kf_buf_str(&out));
	o = parse(&out);
	cr_expect_eq(get_int(o, "v"), 1);
	cr_expect_str_eq(get_str(o, "id"), e.id);
	cr_expect_str_eq(get_str(o, "type"), "chat");
	cr_expect_str_eq(get_str(o, "conversation"), "c-42");
	cr_expect_eq(get_int(o, "seq"), 7);
	cr_expect_str_eq(get_str(o, "from"), "visitorKey");
	cr_expect_str_eq(get_str(o, "to"), "agent:3");
	cr_expect_str_eq(get_str(o, "content"), "héllo \"world\" </script>");
	cr_expect_eq(get_int(o, "time"), 1700000000);
	cr_expect_str_eq(get_str(o, "node"), "node1");
	cr_expect_eq(json_object_object_length(o), 10);
	json_object_put(o);
	kf_buf_release(&out);
}

Test(events, absent_strings_are_empty_and_time_defaults_to_now)
{
	struct kf_event e = { .type = KF_EVENT_CLOSE, .conversation = "c1" };
	struct kf_buf out = KF_BUF_INIT;
	struct json_object *o;
	time_t before = time(NULL);

	kf_event_new_id(e.id);
	cr_assert_eq(kf_event_to_json(&e, &out), 0);
	o = parse(&out);
	cr_expect_str_eq(get_str(o, "from"), "");
	cr_expect_str_eq(get_str(o, "to"), "");
	cr_expect_str_eq(get_str(o, "content"), "");
	cr_expect_str_eq(get_str(o, "node"), "");
	cr_expect_eq(get_int(o, "seq"), 0);
	cr_expect_geq(get_int(o, "time"), before);
	cr_expect_leq(get_int(o, "time"), time(NULL));
	json_object_put(o);
	kf_buf_release(&out);
}

Test(events, content_with_nul_bytes_uses_its_length)
{
	static const char content[] = { 'a', '\0', 'b' };
	struct kf_event e = { .type = KF_EVENT_CHAT, .content = content, .content_len = 3 };
	struct kf_buf out = KF_BUF_INIT;
	struct json_object *o;
	size_t len = 0;
	const char *s;

	kf_event_new_id(e.id);
	cr_assert_eq(kf_event_to_json(&e, &out), 0);
	o = parse(&out);
	s = kf_json_get_str(o, "content", &len);
	cr_assert_not_null(s);
	cr_expect_eq(len, 3);
	cr_expect_eq(memcmp(s, content, 3), 0);
	json_object_put(o);
	kf_buf_release(&out);
}

Test(events, refuses_what_it_cannot_serialise)
{
	struct kf_event e = { .type = KF_EVENT_CHAT, .content = "\xff\xfe" };
	struct kf_buf out = KF_BUF_INIT;

	kf_event_new_id(e.id);
	cr_expect_eq(kf_event_to_json(&e, &out), KF_ERR_INVAL, "invalid UTF-8 accepted");
	e.content = "ok";
	e.type = (enum kf_event_type)9;
	cr_expect_eq(kf_event_to_json(&e, &out), KF_ERR_INVAL, "unknown type accepted");
	e.type = KF_EVENT_CHAT;
	e.id[0] = '\0';
	cr_expect_eq(kf_event_to_json(&e, &out), KF_ERR_INVAL, "empty id accepted");
	cr_expect_eq(out.len, 0, "out changed on failure: %s", kf_buf_str(&out));
	kf_buf_release(&out);
}

Test(events, backends_parse)
{
	cr_expect_eq(kf_events_backends_parse("none"), 0);
	cr_expect_eq(kf_events_backends_parse("mq"), KF_EVENTS_MQ);
	cr_expect_eq(kf_events_backends_parse("kafka"), KF_EVENTS_KAFKA);
	cr_expect_eq(kf_events_backends_parse("both"), KF_EVENTS_MQ | KF_EVENTS_KAFKA);
	cr_expect_eq(kf_events_backends_parse("BOTH"), KF_EVENTS_MQ | KF_EVENTS_KAFKA);
	cr_expect_eq(kf_events_backends_parse("rabbit"), 0);
}

Test(events, task_param_holds_event_and_destination)
{
	struct kf_event e = { .type = KF_EVENT_CONNECT, .conversation = "conv-1", .seq = 0 };
	struct kf_buf json = KF_BUF_INIT, param = KF_BUF_INIT;
	struct json_object *o, *ev, *dest;

	kf_event_new_id(e.id);
	cr_assert_eq(kf_event_to_json(&e, &json), 0);

	cr_assert_eq(kf_events_task_param(&param, KF_EVENTS_MQ, json.data, json.len, "amq.direct",
					  "kefu.events"), 0);
	o = parse(&param);
	cr_assert(json_object_object_get_ex(o, "event", &ev));
	cr_assert(json_object_object_get_ex(o, "dest", &dest));
	cr_expect_str_eq(get_str(ev, "id"), e.id);
	cr_expect_str_eq(get_str(dest, "backend"), "mq");
	cr_expect_str_eq(get_str(dest, "exchange"), "amq.direct");
	cr_expect_str_eq(get_str(dest, "routing_key"), "kefu.events");
	{
		/* the event inside serialises back to the very same text */
		struct kf_buf again = KF_BUF_INIT;

		kf_json_append(&again, ev);
		cr_expect_str_eq(kf_buf_str(&again), kf_buf_str(&json));
		kf_buf_release(&again);
	}
	json_object_put(o);

	kf_buf_reset(&param);
	cr_assert_eq(kf_events_task_param(&param, KF_EVENTS_KAFKA, json.data, json.len, "t1",
					  "conv-1"), 0);
	o = parse(&param);
	cr_assert(json_object_object_get_ex(o, "dest", &dest));
	cr_expect_str_eq(get_str(dest, "backend"), "kafka");
	cr_expect_str_eq(get_str(dest, "topic"), "t1");
	cr_expect_str_eq(get_str(dest, "key"), "conv-1");
	json_object_put(o);

	kf_buf_reset(&param);
	cr_expect_eq(kf_events_task_param(&param, KF_EVENTS_MQ, "[1]", 3, "x", "y"), KF_ERR_INVAL);
	cr_expect_eq(kf_events_task_param(&param, KF_EVENTS_MQ, "{", 1, "x", "y"), KF_ERR_INVAL);
	cr_expect_eq(param.len, 0);
	kf_buf_release(&param);
	kf_buf_release(&json);
}

Test(events, defaults_are_the_seeds)
{
	struct kf_config *cfg = kf_config_defaults();

	cr_expect_str_eq(kf_config_str(cfg, "Events", "Backend"), "none");
	cr_expect_str_eq(kf_config_str(cfg, "Mq", "Exchange"), "amq.direct");
	cr_expect_str_eq(kf_config_str(cfg, "Mq", "Vhost"), "/");
	cr_expect_eq(kf_config_int(cfg, "Mq", "Tries"), 3);
	cr_expect_eq(kf_config_int(cfg, "Kafka", "Retries"), 3);
	cr_expect_str_eq(kf_config_str(cfg, "Kafka", "SecurityProtocol"), "auto");
	cr_expect_eq(kf_config_int(cfg, "Events", "TaskPollSec"), 3);
	cr_expect_eq(kf_config_int(cfg, "Events", "TaskBatch"), 10);
	cr_expect_eq(kf_config_int(cfg, "Events", "TaskConcurrency"), 100);
	cr_expect_eq(kf_config_int(cfg, "Events", "TaskTimeoutSec"), 30);
	cr_expect_eq(kf_config_int(cfg, "Events", "TaskRetryDelaySec"), 180);
	cr_expect_eq(kf_config_int(cfg, "Events", "TaskFirstDelaySec"), 30);
	cr_expect(!kf_config_bool(cfg, "Events", "TaskWorker"));
	kf_config_free(cfg);
}

/* Assert that text is refused with a message holding needle. */
static void refused(const char *text, const char *needle)
{
	struct kf_buf err = KF_BUF_INIT;
	struct kf_config *cfg = load_text(text, &err);

	cr_expect_null(cfg, "accepted:\n%s", text);
	kf_config_free(cfg);
	cr_expect_not_null(strstr(kf_buf_str(&err), needle), "'%s' not in: %s", needle,
			   kf_buf_str(&err));
	kf_buf_release(&err);
}

Test(events, config_checks)
{
	refused("[Events]\nBackend = rabbit\n", "[Events] Backend: expected one of none|mq|kafka|both");
	refused("[Events]\nTaskTimeoutSec = 60\nTaskStaleSec = 60\n",
		"[Events] TaskStaleSec: must be longer than [Events] TaskTimeoutSec");
	refused("[Events]\nTaskPollSec = 0\n", "[Events] TaskPollSec: 0 is out of range");
	refused("[Events]\nTaskConcurrency = 5000\n", "[Events] TaskConcurrency");
	refused("[Kafka]\nUser = u\nSecurityProtocol = plaintext\n",
		"[Kafka] SecurityProtocol: User is set");
	refused("[Kafka]\nSecurityProtocol = sasl_ssl\n", "needs [Kafka] User and Pwd");
	refused("[Kafka]\nSaslMechanism = gssapi\n", "[Kafka] SaslMechanism");
	refused("[Kafka]\nTopic =\n", "[Kafka] Topic: must not be empty");
	refused("[Mq]\nExchange =\nRoutingKey =\n", "[Mq] RoutingKey");
	refused("[Mq]\nTries = 0\n", "[Mq] Tries");
}

Test(events, sasl_settings_are_accepted)
{
	struct kf_buf err = KF_BUF_INIT;
	struct kf_config *cfg = load_text("[Kafka]\nUser = u\nPwd = p\nSaslMechanism = SCRAM-SHA-512\n"
					  "SecurityProtocol = sasl_plaintext\n",
					  &err);
	struct kf_events *ev;

	cr_assert_not_null(cfg, "%s", kf_buf_str(&err));
	ev = kf_events_new(cfg, &err);
	cr_expect_not_null(ev, "librdkafka refused: %s", kf_buf_str(&err));
	kf_events_free(ev);
	kf_config_free(cfg);
	kf_buf_release(&err);
}

Test(events, none_backend_publishes_nothing)
{
	struct kf_config *cfg = kf_config_defaults();
	struct kf_buf err = KF_BUF_INIT;
	struct kf_events *ev = kf_events_new(cfg, &err);
	struct kf_event e = { .type = KF_EVENT_CHAT, .conversation = "c" };
	struct kf_events_stats st;

	cr_assert_not_null(ev, "%s", kf_buf_str(&err));
	cr_expect(!kf_events_enabled(ev));
	cr_expect_eq(kf_events_publish(ev, &e), 0);
	cr_expect_eq(strlen(e.id), KF_EVENT_ID_LEN, "the id is filled even so");
	kf_events_stats(ev, &st);
	cr_expect_eq(st.queued, 0);
	kf_events_free(ev);
	kf_events_free(NULL);
	kf_config_free(cfg);
	kf_buf_release(&err);
}

/*
 * Brokers and MySQL on a closed port: every event is tried, cannot be
 * kept anywhere, and is logged as lost at shutdown (counted as dropped);
 * a full queue refuses at once.  Nothing blocks, nothing leaks.
 */
Test(events, nothing_reachable_nothing_silently_lost)
{
	struct kf_buf err = KF_BUF_INIT;
	struct kf_config *cfg =
		load_text("[Events]\nBackend = mq\nQueueMax = 3\nFlushTimeoutSec = 0\n"
			  "[Mq]\nHost = 127.0.0.1\nPort = 1\nConnectTimeoutMs = 200\n"
			  "[Db]\nHostMaster = 127.0.0.1\nPortMaster = 1\nConnectTimeoutSec = 1\n",
			  &err);
	struct kf_events *ev;
	struct kf_events_stats st;
	int refused_n = 0;

	cr_assert_not_null(cfg, "%s", kf_buf_str(&err));
	cr_assert_eq(kf_log_set_file("/dev/null"), 0);
	ev = kf_events_new(cfg, &err);
	cr_assert_not_null(ev, "%s", kf_buf_str(&err));
	cr_expect(kf_events_enabled(ev));
	for (int i = 0; i < 50; i++) {
		struct kf_event e = { .type = KF_EVENT_CHAT, .conversation = "c", .seq = i + 1 };
		int rc = kf_events_publish(ev, &e);

		cr_expect(rc == 0 || rc == KF_ERR_LIMIT, "rc %d", rc);
		refused_n += rc == KF_ERR_LIMIT;
	}
	kf_events_stats(ev, &st);
	cr_expect_eq(st.queued + (uint64_t)refused_n, 50);
	cr_expect_eq(st.dropped, (uint64_t)refused_n);
	cr_expect_gt(refused_n, 0, "a queue of 3 took 50 events");
	kf_events_free(ev);
	kf_log_set_file(NULL);
	kf_config_free(cfg);
	kf_buf_release(&err);
}
