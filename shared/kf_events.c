#include "kf_compat.h"

#include "kf_events.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>

#include <amqp.h>
#include <amqp_framing.h>
#include <amqp_tcp_socket.h>
#include <librdkafka/rdkafka.h>

#include "kf_buf.h"
#include "kf_config.h"
#include "kf_db.h"
#include "kf_err.h"
#include "kf_json.h"
#include "kf_key.h"
#include "kf_log.h"
#include "kf_mem.h"
#include "kf_taskqueue.h"

#define MQ_CHANNEL 1
#define MQ_BACKOFF_MIN_MS 100
#define PARK_RETRY_MS 1000
#define DROP_LOG_PER_SEC 10

/* ---- the event ---- */

static const char *const type_names[] = { "connect", "chat", "close", "assign" };

const char *kf_event_type_name(enum kf_event_type type)
{
	if ((unsigned)type >= KF_ARRAY_LEN(type_names))
		return NULL;
	return type_names[type];
}

int kf_event_type_parse(const char *s, size_t n)
{
	for (size_t i = 0; i < KF_ARRAY_LEN(type_names); i++)
		if (strlen(type_names[i]) == n && memcmp(type_names[i], s, n) == 0)
			return (int)i;
	return -1;
}

void kf_event_new_id(char id[KF_EVENT_ID_LEN + 1])
{
	kf_key_random(id, KF_EVENT_ID_LEN);
}

static const char *or_empty(const char *s)
{
	return s ? s : "";
}

int kf_event_to_json(const struct kf_event *e, struct kf_buf *out)
{
	const char *type = kf_event_type_name(e->type);
	const char *content = or_empty(e->content);
	size_t clen = e->content_len ? e->content_len : strlen(content);
	struct json_object *o;

	if (!type || !e->id[0] || !kf_utf8_valid(content, clen))
		return KF_ERR_INVAL;
	o = json_object_new_object();
	kf_json_set_int(o, "v", 1);
	kf_json_set_str(o, "id", e->id);
	kf_json_set_str(o, "type", type);
	kf_json_set_str(o, "conversation", or_empty(e->conversation));
	kf_json_set_int(o, "seq", e->seq);
	kf_json_set_str(o, "from", or_empty(e->from));
	kf_json_set_str(o, "to", or_empty(e->to));
	kf_json_set_strn(o, "content", content, clen);
	kf_json_set_int(o, "time", e->time ? e->time : (int64_t)time(NULL));
	kf_json_set_str(o, "node", or_empty(e->node));
	kf_json_append(out, o);
	json_object_put(o);
	return 0;
}

unsigned kf_events_backends_parse(const char *s)
{
	if (strcasecmp(s, "mq") == 0)
		return KF_EVENTS_MQ;
	if (strcasecmp(s, "kafka") == 0)
		return KF_EVENTS_KAFKA;
	if (strcasecmp(s, "both") == 0)
		return KF_EVENTS_MQ | KF_EVENTS_KAFKA;
	return 0;
}

static const char *backend_name(unsigned b)
{
	return b == KF_EVENTS_MQ ? "mq" : "kafka";
}

int kf_events_task_param(struct kf_buf *out, unsigned backend, const char *json, size_t len,
			 const char *a, const char *b)
{
	struct json_object *ev, *o, *dest;
	const char *why;

	ev = kf_json_parse(json, len, 0, &why);
	if (!ev || !json_object_is_type(ev, json_type_object)) {
		json_object_put(ev);
		return KF_ERR_INVAL;
	}
	o = json_object_new_object();
	dest = json_object_new_object();
	kf_json_set_str(dest, "backend", backend_name(backend));
	if (backend == KF_EVENTS_MQ) {
		kf_json_set_str(dest, "exchange", or_empty(a));
		kf_json_set_str(dest, "routing_key", or_empty(b));
	} else {
		kf_json_set_str(dest, "topic", or_empty(a));
		kf_json_set_str(dest, "key", or_empty(b));
	}
	json_object_object_add(o, "event", ev);
	json_object_object_add(o, "dest", dest);
	kf_json_append(out, o);
	json_object_put(o);
	return 0;
}

/* ---- the publisher ---- */

/* A task handler waiting for its event to be published again. */
struct waiter {
	int refs;
	bool done;
	int rc;
	char err[256];
};

/* One event on the queue (or parked in the thread). */
struct item {
	struct item *next;
	unsigned backends;   /* still to publish to */
	char *json;
	size_t len;
	char *key;           /* the conversation */
	char id[KF_EVENT_ID_LEN + 1];
	struct waiter *w;    /* a task's re-publish: report here, never make a task */
	char *dest_a;        /* re-publish: exchange or topic */
	char *dest_b;        /* re-publish: routing key or message key */
	char why[256];       /* parked: the last failure */
	unsigned parked_for; /* parked: the backend that still needs a task */
};

struct task_ud {
	struct kf_events *ev;
	unsigned backend;
};

struct kf_events {
	const struct kf_config *cfg;
	struct task_ud task_ud[2]; /* the "mq" and "kafka" task handlers' */
	unsigned backends;
	size_t queue_max;
	long flush_timeout_sec;
	long first_delay_sec;

	/* [Mq] */
	const char *mq_host, *mq_user, *mq_pwd, *mq_vhost, *mq_exchange, *mq_rkey, *mq_queue;
	int mq_port, mq_tries;
	long mq_connect_ms, mq_confirm_ms, mq_reconnect_max_ms;
	/* [Kafka] */
	const char *k_topic;
	rd_kafka_conf_t *k_conf; /* template, duplicated per producer */

	pthread_mutex_t mu;
	pthread_cond_t cv;      /* the thread: work or stop */
	pthread_cond_t done_cv; /* waiters: a result */
	struct item *head, *tail;
	size_t n, parked_n;
	bool stopping, closing, thread_running;
	long waiters;
	pthread_t thread;
	struct kf_events_stats st;
	time_t drop_window;
	unsigned drop_logged;
	uint64_t drop_suppressed;

	/* the thread's own */
	struct kf_db *db;
	amqp_connection_state_t amqp;
	uint64_t mq_tag;
	int64_t mq_next_try_ms;
	long mq_backoff_ms;
	rd_kafka_t *rk;
	long k_inflight;
	bool k_fatal;
	struct item *parked;
	int64_t park_retry_ms;
};

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
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

static void item_free(struct item *it)
{
	if (!it)
		return;
	free(it->json);
	free(it->key);
	free(it->dest_a);
	free(it->dest_b);
	free(it);
}

/* Drop one reference to w.  Under ev->mu. */
static void waiter_unref(struct waiter *w)
{
	if (--w->refs == 0)
		free(w);
}

/* Report a re-publish's result.  Takes ev->mu. */
static void waiter_finish(struct kf_events *ev, struct waiter *w, int rc, const char *err)
{
	pthread_mutex_lock(&ev->mu);
	if (!w->done) {
		w->done = true;
		w->rc = rc;
		snprintf(w->err, sizeof(w->err), "%s", err ? err : "");
		if (rc == 0)
			ev->st.retried++;
		pthread_cond_broadcast(&ev->done_cv);
	}
	waiter_unref(w);
	pthread_mutex_unlock(&ev->mu);
}

/* The id, type and conversation of an event text, for log lines. */
static void describe(const char *json, size_t len, struct kf_buf *out)
{
	const char *why;
	struct json_object *o = kf_json_parse(json, len, 0, &why);
	const char *id = o ? kf_json_get_str(o, "id", NULL) : NULL;
	const char *type = o ? kf_json_get_str(o, "type", NULL) : NULL;
	const char *conv = o ? kf_json_get_str(o, "conversation", NULL) : NULL;
	struct json_object *seq = NULL;

	if (o)
		json_object_object_get_ex(o, "seq", &seq);
	kf_buf_addf(out, "event %s (%s, conversation %.12s%s, seq %" PRId64 ")", or_empty(id),
		    or_empty(type), or_empty(conv), conv && strlen(conv) > 12 ? "..." : "",
		    seq ? json_object_get_int64(seq) : (int64_t)0);
	json_object_put(o);
}

/* ---- tasks ---- */

/*
 * Write the event as a task of backend's type, due FirstDelay later.
 * Returns 0 or KF_ERR_STORE.  On the thread.
 */
static int make_task(struct kf_events *ev, unsigned backend, const char *json, size_t len,
		     const char *a, const char *b, const char *why)
{
	struct kf_buf param = KF_BUF_INIT, what = KF_BUF_INIT;
	int64_t id = 0;
	int rc;

	if (kf_events_task_param(&param, backend, json, len, a, b) != 0) {
		kf_buf_release(&param);
		return KF_ERR_INVAL;
	}
	if (!ev->db)
		ev->db = kf_db_new(ev->cfg);
	rc = kf_taskqueue_add(ev->db, backend_name(backend), param.data, param.len, why,
			      (int64_t)time(NULL) + ev->first_delay_sec, &id);
	describe(json, len, &what);
	if (rc == 0) {
		kf_warn("%s: %s failed (%s); task %" PRId64 " retries it in %lds", kf_buf_str(&what),
			backend_name(backend), why, id, ev->first_delay_sec);
		pthread_mutex_lock(&ev->mu);
		ev->st.tasks++;
		pthread_mutex_unlock(&ev->mu);
	}
	kf_buf_release(&what);
	kf_buf_release(&param);
	return rc == 0 ? 0 : KF_ERR_STORE;
}

/* Keep it for another try later: neither the broker nor MySQL took it. */
static void park(struct kf_events *ev, unsigned backend, const char *json, size_t len,
		 const char *key, const char *why)
{
	struct item *it = kf_xcalloc(1, sizeof(*it));

	it->json = kf_xmemdup0(json, len);
	it->len = len;
	it->key = kf_xstrdup(or_empty(key));
	it->backends = backend;
	it->parked_for = backend;
	snprintf(it->why, sizeof(it->why), "%s", why);
	it->next = ev->parked;
	ev->parked = it;
	pthread_mutex_lock(&ev->mu);
	ev->parked_n++;
	pthread_mutex_unlock(&ev->mu);
	if (ev->park_retry_ms == 0)
		ev->park_retry_ms = now_ms() + PARK_RETRY_MS;
}

/* A publish to backend failed for good: a task, or parked. */
static void publish_failed(struct kf_events *ev, unsigned backend, const char *json,
			   size_t len, const char *key, const char *why)
{
	const char *a = backend == KF_EVENTS_MQ ? ev->mq_exchange : ev->k_topic;
	const char *b = backend == KF_EVENTS_MQ ? ev->mq_rkey : key;

	if (make_task(ev, backend, json, len, a, b, why) != 0)
		park(ev, backend, json, len, key, why);
}

/* ---- RabbitMQ ---- */

static void mq_close(struct kf_events *ev)
{
	if (!ev->amqp)
		return;
	amqp_channel_close(ev->amqp, MQ_CHANNEL, AMQP_REPLY_SUCCESS);
	amqp_connection_close(ev->amqp, AMQP_REPLY_SUCCESS);
	amqp_destroy_connection(ev->amqp);
	ev->amqp = NULL;
}

/* Drop a broken connection without talking to it. */
static void mq_drop(struct kf_events *ev)
{
	if (!ev->amqp)
		return;
	amqp_destroy_connection(ev->amqp);
	ev->amqp = NULL;
}

/* Describe a failed RPC reply into err. */
static void rpc_error(amqp_rpc_reply_t r, const char *what, char *err, size_t size)
{
	switch (r.reply_type) {
	case AMQP_RESPONSE_NORMAL:
		snprintf(err, size, "%s: ok", what);
		break;
	case AMQP_RESPONSE_NONE:
		snprintf(err, size, "%s: no reply", what);
		break;
	case AMQP_RESPONSE_LIBRARY_EXCEPTION:
		snprintf(err, size, "%s: %s", what, amqp_error_string2(r.library_error));
		break;
	case AMQP_RESPONSE_SERVER_EXCEPTION:
		if (r.reply.id == AMQP_CONNECTION_CLOSE_METHOD) {
			amqp_connection_close_t *m = r.reply.decoded;

			snprintf(err, size, "%s: connection closed by the broker: %u %.*s", what,
				 m->reply_code, (int)m->reply_text.len, (const char *)m->reply_text.bytes);
		} else if (r.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
			amqp_channel_close_t *m = r.reply.decoded;

			snprintf(err, size, "%s: channel closed by the broker: %u %.*s", what,
				 m->reply_code, (int)m->reply_text.len, (const char *)m->reply_text.bytes);
		} else {
			snprintf(err, size, "%s: broker error (method 0x%08x)", what, r.reply.id);
		}
		break;
	}
}

static struct timeval tv_ms(long ms)
{
	struct timeval tv;

	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	return tv;
}

/*
 * Connect, declare and turn on confirms.  Returns 0, or KF_ERR_STORE with
 * the reason in err (and the reconnect backoff started).
 */
static int mq_connect(struct kf_events *ev, char *err, size_t size)
{
	amqp_socket_t *sock;
	amqp_rpc_reply_t r;
	struct timeval tv = tv_ms(ev->mq_connect_ms), rpc = tv_ms(ev->mq_confirm_ms);
	amqp_confirm_select_t sel = { 0 };
	int status;

	if (ev->amqp)
		return 0;
	if (now_ms() < ev->mq_next_try_ms) {
		snprintf(err, size, "broker %s:%d unavailable (retrying in %" PRId64 " ms)",
			 ev->mq_host, ev->mq_port, ev->mq_next_try_ms - now_ms());
		return KF_ERR_STORE;
	}
	ev->amqp = amqp_new_connection();
	sock = amqp_tcp_socket_new(ev->amqp);
	if (!sock) {
		snprintf(err, size, "unable to create a socket");
		goto out_fail;
	}
	amqp_set_handshake_timeout(ev->amqp, &tv);
	amqp_set_rpc_timeout(ev->amqp, &rpc);
	status = amqp_socket_open_noblock(sock, ev->mq_host, ev->mq_port, &tv);
	if (status != AMQP_STATUS_OK) {
		snprintf(err, size, "unable to connect to %s:%d: %s", ev->mq_host, ev->mq_port,
			 amqp_error_string2(status));
		goto out_fail;
	}
	r = amqp_login(ev->amqp, ev->mq_vhost, 0, 131072, 0, AMQP_SASL_METHOD_PLAIN, ev->mq_user,
		       ev->mq_pwd);
	if (r.reply_type != AMQP_RESPONSE_NORMAL) {
		rpc_error(r, "login", err, size);
		goto out_fail;
	}
	amqp_channel_open(ev->amqp, MQ_CHANNEL);
	r = amqp_get_rpc_reply(ev->amqp);
	if (r.reply_type != AMQP_RESPONSE_NORMAL) {
		rpc_error(r, "channel.open", err, size);
		goto out_fail;
	}
	/* amq.* exchanges exist already and may not be declared */
	if (*ev->mq_exchange && strncmp(ev->mq_exchange, "amq.", 4) != 0) {
		amqp_exchange_declare(ev->amqp, MQ_CHANNEL, amqp_cstring_bytes(ev->mq_exchange),
				      amqp_cstring_bytes("direct"), 0, 1, 0, 0, amqp_empty_table);
		r = amqp_get_rpc_reply(ev->amqp);
		if (r.reply_type != AMQP_RESPONSE_NORMAL) {
			rpc_error(r, "exchange.declare", err, size);
			goto out_fail;
		}
	}
	if (*ev->mq_queue) {
		amqp_queue_declare(ev->amqp, MQ_CHANNEL, amqp_cstring_bytes(ev->mq_queue), 0, 1, 0,
				   0, amqp_empty_table);
		r = amqp_get_rpc_reply(ev->amqp);
		if (r.reply_type != AMQP_RESPONSE_NORMAL) {
			rpc_error(r, "queue.declare", err, size);
			goto out_fail;
		}
		if (*ev->mq_exchange) {
			amqp_queue_bind(ev->amqp, MQ_CHANNEL, amqp_cstring_bytes(ev->mq_queue),
					amqp_cstring_bytes(ev->mq_exchange),
					amqp_cstring_bytes(ev->mq_rkey), amqp_empty_table);
			r = amqp_get_rpc_reply(ev->amqp);
			if (r.reply_type != AMQP_RESPONSE_NORMAL) {
				rpc_error(r, "queue.bind", err, size);
				goto out_fail;
			}
		}
	}
	if (!amqp_simple_rpc_decoded(ev->amqp, MQ_CHANNEL, AMQP_CONFIRM_SELECT_METHOD,
				     AMQP_CONFIRM_SELECT_OK_METHOD, &sel)) {
		r = amqp_get_rpc_reply(ev->amqp);
		rpc_error(r, "confirm.select", err, size);
		goto out_fail;
	}
	ev->mq_tag = 0;
	if (ev->mq_backoff_ms)
		kf_info("rabbitmq %s:%d: connected again", ev->mq_host, ev->mq_port);
	else
		kf_info("rabbitmq %s:%d: connected (vhost %s)", ev->mq_host, ev->mq_port,
			ev->mq_vhost);
	ev->mq_backoff_ms = 0;
	ev->mq_next_try_ms = 0;
	return 0;

out_fail:
	if (!ev->mq_backoff_ms)
		kf_err("rabbitmq: %s", err);
	mq_drop(ev);
	ev->mq_backoff_ms = ev->mq_backoff_ms ? ev->mq_backoff_ms * 2 : MQ_BACKOFF_MIN_MS;
	if (ev->mq_backoff_ms > ev->mq_reconnect_max_ms)
		ev->mq_backoff_ms = ev->mq_reconnect_max_ms;
	ev->mq_next_try_ms = now_ms() + ev->mq_backoff_ms;
	return KF_ERR_STORE;
}

/*
 * Publish once on the open connection and wait for the broker's confirm.
 * Returns 0; or KF_ERR_STORE with err set (the connection is dropped when
 * it may be unusable).
 */
static int mq_publish_once(struct kf_events *ev, const char *exchange, const char *rkey,
			   const struct item *it, char *err, size_t size)
{
	amqp_basic_properties_t props;
	amqp_bytes_t body = { it->len, it->json };
	int64_t deadline = now_ms() + ev->mq_confirm_ms;
	bool returned = false;
	uint64_t tag;
	int status;

	memset(&props, 0, sizeof(props));
	props._flags = AMQP_BASIC_CONTENT_TYPE_FLAG | AMQP_BASIC_DELIVERY_MODE_FLAG;
	props.content_type = amqp_cstring_bytes("application/json");
	props.delivery_mode = 2; /* persistent */
	if (it->id[0]) {
		props._flags |= AMQP_BASIC_MESSAGE_ID_FLAG;
		props.message_id = amqp_cstring_bytes(it->id);
	}
	/* mandatory: a message no queue takes comes back instead of vanishing */
	status = amqp_basic_publish(ev->amqp, MQ_CHANNEL, amqp_cstring_bytes(exchange),
				    amqp_cstring_bytes(rkey), 1, 0, &props, body);
	if (status != AMQP_STATUS_OK) {
		snprintf(err, size, "publish: %s", amqp_error_string2(status));
		mq_drop(ev);
		return KF_ERR_STORE;
	}
	tag = ++ev->mq_tag;
	for (;;) {
		amqp_frame_t f;
		int64_t left = deadline - now_ms();
		struct timeval tv;

		if (left <= 0) {
			snprintf(err, size, "no confirm from the broker within %ld ms",
				 ev->mq_confirm_ms);
			mq_drop(ev); /* a late ack would confuse the next publish */
			return KF_ERR_STORE;
		}
		tv = tv_ms((long)left);
		amqp_maybe_release_buffers(ev->amqp);
		status = amqp_simple_wait_frame_noblock(ev->amqp, &f, &tv);
		if (status == AMQP_STATUS_TIMEOUT)
			continue;
		if (status != AMQP_STATUS_OK) {
			snprintf(err, size, "waiting for the confirm: %s", amqp_error_string2(status));
			mq_drop(ev);
			return KF_ERR_STORE;
		}
		if (f.frame_type != AMQP_FRAME_METHOD)
			continue;
		switch (f.payload.method.id) {
		case AMQP_BASIC_ACK_METHOD: {
			amqp_basic_ack_t *ack = f.payload.method.decoded;

			if (ack->delivery_tag < tag) /* an earlier message's */
				continue;
			if (returned) {
				snprintf(err, size, "unroutable: no queue is bound to exchange '%s' with key '%s'",
					 exchange, rkey);
				return KF_ERR_STORE;
			}
			return 0;
		}
		case AMQP_BASIC_NACK_METHOD:
			snprintf(err, size, "the broker refused the message (basic.nack)");
			return KF_ERR_STORE;
		case AMQP_BASIC_RETURN_METHOD: {
			amqp_message_t msg;
			amqp_rpc_reply_t r;

			returned = true;
			r = amqp_read_message(ev->amqp, f.channel, &msg, 0);
			if (r.reply_type != AMQP_RESPONSE_NORMAL) {
				rpc_error(r, "reading a returned message", err, size);
				mq_drop(ev);
				return KF_ERR_STORE;
			}
			amqp_destroy_message(&msg);
			continue;
		}
		case AMQP_CHANNEL_CLOSE_METHOD: {
			amqp_channel_close_t *m = f.payload.method.decoded;
			amqp_channel_close_ok_t ok = { 0 };

			snprintf(err, size, "channel closed by the broker: %u %.*s", m->reply_code,
				 (int)m->reply_text.len, (const char *)m->reply_text.bytes);
			amqp_send_method(ev->amqp, MQ_CHANNEL, AMQP_CHANNEL_CLOSE_OK_METHOD, &ok);
			mq_drop(ev);
			return KF_ERR_STORE;
		}
		case AMQP_CONNECTION_CLOSE_METHOD: {
			amqp_connection_close_t *m = f.payload.method.decoded;
			amqp_connection_close_ok_t ok = { 0 };

			snprintf(err, size, "connection closed by the broker: %u %.*s", m->reply_code,
				 (int)m->reply_text.len, (const char *)m->reply_text.bytes);
			amqp_send_method(ev->amqp, 0, AMQP_CONNECTION_CLOSE_OK_METHOD, &ok);
			mq_drop(ev);
			return KF_ERR_STORE;
		}
		default:
			continue;
		}
	}
}

/*
 * Publish it to exchange/rkey: up to [Mq] Tries attempts, each on a fresh
 * connection after a failure; a connect that fails ends the attempts.
 */
static int mq_publish(struct kf_events *ev, const char *exchange, const char *rkey,
		      const struct item *it, char *err, size_t size)
{
	for (int attempt = 1; attempt <= ev->mq_tries; attempt++) {
		if (mq_connect(ev, err, size) != 0)
			return KF_ERR_STORE;
		if (mq_publish_once(ev, exchange, rkey, it, err, size) == 0)
			return 0;
		kf_warn("rabbitmq: try %d of %d failed: %s", attempt, ev->mq_tries, err);
	}
	return KF_ERR_STORE;
}

/* ---- Kafka ---- */

static void k_log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
	(void)rk;
	/* librdkafka reports a broker it cannot reach at level 3 (it also
	 * throttles repeats): an outage kefu handles, so a warning */
	if (level <= 4)
		kf_warn("kafka %s: %s", fac, buf);
	else if (level == 5)
		kf_info("kafka %s: %s", fac, buf);
	else
		kf_debug("kafka %s: %s", fac, buf);
}

static void k_error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
	struct kf_events *ev = opaque;

	if (err == RD_KAFKA_RESP_ERR__FATAL) {
		char buf[256];

		rd_kafka_fatal_error(rk, buf, sizeof(buf));
		kf_err("kafka: fatal error: %s; the producer will be recreated", buf);
		ev->k_fatal = true; /* error_cb runs on the thread, in rd_kafka_poll */
		return;
	}
	/* brokers down are expected during outages: the delivery reports say the rest */
	if (err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN || err == RD_KAFKA_RESP_ERR__TRANSPORT)
		kf_debug("kafka: %s", reason);
	else
		kf_warn("kafka: %s: %s", rd_kafka_err2str((rd_kafka_resp_err_t)err), reason);
}

static void k_dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
	struct kf_events *ev = opaque;
	struct waiter *w = m->_private;

	(void)rk;
	ev->k_inflight--;
	if (w) {
		waiter_finish(ev, w, m->err ? KF_ERR_STORE : 0,
			      m->err ? rd_kafka_err2str(m->err) : NULL);
		return;
	}
	if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
		pthread_mutex_lock(&ev->mu);
		ev->st.published++;
		pthread_mutex_unlock(&ev->mu);
		return;
	}
	{
		char key[256];
		char why[300];
		const char *topic = rd_kafka_topic_name(m->rkt);
		size_t klen = m->key_len < sizeof(key) - 1 ? m->key_len : sizeof(key) - 1;

		memcpy(key, m->key ? m->key : "", m->key ? klen : 0);
		key[m->key ? klen : 0] = '\0';
		snprintf(why, sizeof(why), "kafka delivery: %s", rd_kafka_err2str(m->err));
		if (make_task(ev, KF_EVENTS_KAFKA, m->payload, m->len, topic, key, why) != 0)
			park(ev, KF_EVENTS_KAFKA, m->payload, m->len, key, why);
	}
}

static bool k_set(rd_kafka_conf_t *conf, const char *name, const char *value, struct kf_buf *err)
{
	char buf[512];

	if (rd_kafka_conf_set(conf, name, value, buf, sizeof(buf)) != RD_KAFKA_CONF_OK) {
		kf_buf_addf(err, "[Kafka]: librdkafka refuses %s: %s\n", name, buf);
		return false;
	}
	return true;
}

/* The producer's settings from [Kafka]; NULL with err set when refused. */
static rd_kafka_conf_t *k_conf_new(const struct kf_config *cfg, struct kf_buf *err)
{
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	const char *user = kf_config_str(cfg, "Kafka", "User");
	const char *proto = kf_config_str(cfg, "Kafka", "SecurityProtocol");
	char brokers[600], num[32];
	bool ok = true;

	if (*kf_config_str(cfg, "Kafka", "Brokers"))
		snprintf(brokers, sizeof(brokers), "%s", kf_config_str(cfg, "Kafka", "Brokers"));
	else
		snprintf(brokers, sizeof(brokers), "%s:%lld", kf_config_str(cfg, "Kafka", "Host"),
			 kf_config_int(cfg, "Kafka", "Port"));
	ok &= k_set(conf, "bootstrap.servers", brokers, err);
	ok &= k_set(conf, "client.id", "kefu", err);
	ok &= k_set(conf, "acks", "all", err);
	ok &= k_set(conf, "enable.idempotence", "true", err);
	snprintf(num, sizeof(num), "%lld", kf_config_int(cfg, "Kafka", "Retries"));
	ok &= k_set(conf, "message.send.max.retries", num, err);
	snprintf(num, sizeof(num), "%lld", kf_config_int(cfg, "Kafka", "MessageTimeoutMs"));
	ok &= k_set(conf, "message.timeout.ms", num, err);
	if (strcmp(proto, "auto") == 0)
		proto = *user ? "sasl_plaintext" : "plaintext";
	ok &= k_set(conf, "security.protocol", proto, err);
	if (*user) {
		char mech[32];
		size_t i;

		snprintf(mech, sizeof(mech), "%s", kf_config_str(cfg, "Kafka", "SaslMechanism"));
		for (i = 0; mech[i]; i++)
			if (mech[i] >= 'a' && mech[i] <= 'z')
				mech[i] = (char)(mech[i] - 'a' + 'A');
		ok &= k_set(conf, "sasl.mechanisms", mech, err);
		ok &= k_set(conf, "sasl.username", user, err);
		ok &= k_set(conf, "sasl.password", kf_config_str(cfg, "Kafka", "Pwd"), err);
	}
	if (!ok) {
		rd_kafka_conf_destroy(conf);
		return NULL;
	}
	rd_kafka_conf_set_log_cb(conf, k_log_cb);
	return conf;
}

/* The producer, created on first use.  NULL with err set on failure. */
static rd_kafka_t *k_producer(struct kf_events *ev, char *err, size_t size)
{
	rd_kafka_conf_t *conf;

	if (ev->rk)
		return ev->rk;
	conf = rd_kafka_conf_dup(ev->k_conf);
	rd_kafka_conf_set_opaque(conf, ev);
	rd_kafka_conf_set_dr_msg_cb(conf, k_dr_cb);
	rd_kafka_conf_set_error_cb(conf, k_error_cb);
	ev->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, size);
	if (!ev->rk) {
		rd_kafka_conf_destroy(conf);
		return NULL;
	}
	ev->k_fatal = false;
	return ev->rk;
}

/* Wait for (up to ms) and then purge what is in flight; reports follow. */
static void k_destroy(struct kf_events *ev, int ms)
{
	if (!ev->rk)
		return;
	rd_kafka_flush(ev->rk, ms);
	if (ev->k_inflight > 0) {
		rd_kafka_purge(ev->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
		/* the purged messages' reports make their tasks */
		for (int i = 0; i < 40 && ev->k_inflight > 0; i++)
			rd_kafka_poll(ev->rk, 50);
		if (ev->k_inflight > 0)
			kf_err("kafka: %ld events got no delivery report before the producer closed; "
			       "they may be LOST", ev->k_inflight);
	}
	rd_kafka_destroy(ev->rk);
	ev->rk = NULL;
	ev->k_inflight = 0;
}

/*
 * Hand it to librdkafka for topic with key; the delivery report finishes
 * it (k_dr_cb).  Returns 0, or KF_ERR_STORE with err set when it was not
 * even queued.
 */
static int k_produce(struct kf_events *ev, const char *topic, const char *key,
		     const struct item *it, char *err, size_t size)
{
	rd_kafka_t *rk = k_producer(ev, err, size);
	rd_kafka_resp_err_t e;

	if (!rk)
		return KF_ERR_STORE;
	if (it->w) {
		pthread_mutex_lock(&ev->mu);
		it->w->refs++;
		pthread_mutex_unlock(&ev->mu);
	}
	e = rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(key, strlen(key)),
			      RD_KAFKA_V_VALUE(it->json, it->len),
			      RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_OPAQUE(it->w),
			      RD_KAFKA_V_END);
	if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
		snprintf(err, size, "kafka produce: %s", rd_kafka_err2str(e));
		if (it->w) {
			pthread_mutex_lock(&ev->mu);
			waiter_unref(it->w);
			pthread_mutex_unlock(&ev->mu);
		}
		return KF_ERR_STORE;
	}
	ev->k_inflight++;
	return 0;
}

/* ---- the thread ---- */

static void process(struct kf_events *ev, struct item *it)
{
	char err[512];

	if (it->w) { /* a task's re-publish: one backend, its own destination */
		int rc;

		if (it->backends == KF_EVENTS_MQ) {
			rc = mq_publish(ev, it->dest_a, it->dest_b, it, err, sizeof(err));
			waiter_finish(ev, it->w, rc, rc ? err : NULL);
		} else if (k_produce(ev, it->dest_a, it->dest_b, it, err, sizeof(err)) != 0) {
			waiter_finish(ev, it->w, KF_ERR_STORE, err);
		} else {
			pthread_mutex_lock(&ev->mu);
			waiter_unref(it->w); /* the message holds its own reference */
			pthread_mutex_unlock(&ev->mu);
		}
		it->w = NULL;
		return;
	}
	if (it->backends & KF_EVENTS_MQ) {
		if (mq_publish(ev, ev->mq_exchange, ev->mq_rkey, it, err, sizeof(err)) == 0) {
			pthread_mutex_lock(&ev->mu);
			ev->st.published++;
			pthread_mutex_unlock(&ev->mu);
		} else {
			publish_failed(ev, KF_EVENTS_MQ, it->json, it->len, it->key, err);
		}
	}
	if (it->backends & KF_EVENTS_KAFKA) {
		if (k_produce(ev, ev->k_topic, it->key, it, err, sizeof(err)) != 0)
			publish_failed(ev, KF_EVENTS_KAFKA, it->json, it->len, it->key, err);
	}
}

/* Try the parked events again: the broker first, then a task. */
static void retry_parked(struct kf_events *ev)
{
	struct item *list = ev->parked;
	size_t n = 0;

	ev->parked = NULL;
	ev->park_retry_ms = 0;
	while (list) {
		struct item *it = list;

		list = it->next;
		it->next = NULL;
		n++;
		process(ev, it); /* failures park it again */
		item_free(it);
	}
	pthread_mutex_lock(&ev->mu);
	ev->parked_n -= n;
	pthread_mutex_unlock(&ev->mu);
}

/* Log one event that could be kept nowhere. */
static void lost(const struct item *it, const char *why)
{
	struct kf_buf what = KF_BUF_INIT;

	describe(it->json, it->len, &what);
	kf_err("%s: LOST for %s: %s", kf_buf_str(&what),
	       it->parked_for ? backend_name(it->parked_for) : "all backends", why);
	kf_buf_release(&what);
}

static void *thread_main(void *arg)
{
	struct kf_events *ev = arg;
	int64_t flush_deadline = 0;

	pthread_mutex_lock(&ev->mu);
	for (;;) {
		struct item *it;

		while (!ev->head && !ev->stopping) {
			struct timespec ts;
			int64_t wait = ev->k_inflight > 0 ? 50 : 1000;

			if (ev->park_retry_ms) {
				int64_t p = ev->park_retry_ms - now_ms();

				if (p < wait)
					wait = p < 1 ? 1 : p;
			}
			timespec_in(&ts, wait);
			pthread_cond_timedwait(&ev->cv, &ev->mu, &ts);
			if (!ev->head)
				break;
		}
		if (ev->stopping && !flush_deadline)
			flush_deadline = now_ms() + (int64_t)ev->flush_timeout_sec * 1000;
		it = ev->head;
		if (it) {
			ev->head = it->next;
			if (!ev->head)
				ev->tail = NULL;
			ev->n--;
		}
		pthread_mutex_unlock(&ev->mu);

		if (it) {
			if (flush_deadline && now_ms() >= flush_deadline) {
				/* out of time: straight to the task queue */
				for (unsigned b = KF_EVENTS_MQ; b <= KF_EVENTS_KAFKA; b <<= 1)
					if ((it->backends & b) && !it->w)
						publish_failed(ev, b, it->json, it->len, it->key,
							       "shutting down");
				if (it->w)
					waiter_finish(ev, it->w, KF_ERR_STORE, "shutting down");
				it->w = NULL;
			} else {
				process(ev, it);
			}
			item_free(it);
		}
		if (ev->rk) {
			rd_kafka_poll(ev->rk, 0);
			if (ev->k_fatal)
				k_destroy(ev, 0);
		}
		if (ev->park_retry_ms && now_ms() >= ev->park_retry_ms)
			retry_parked(ev);

		pthread_mutex_lock(&ev->mu);
		if (ev->stopping && !ev->head)
			break;
	}
	pthread_mutex_unlock(&ev->mu);

	/* stopping: what Kafka still holds, then what is parked */
	{
		int64_t left = flush_deadline ? flush_deadline - now_ms() : 0;

		k_destroy(ev, left > 0 ? (int)left : 0);
	}
	if (ev->parked) {
		struct item *list = ev->parked;

		ev->parked = NULL;
		while (list) {
			struct item *it = list;
			const char *a = it->parked_for == KF_EVENTS_MQ ? ev->mq_exchange : ev->k_topic;
			const char *b = it->parked_for == KF_EVENTS_MQ ? ev->mq_rkey : it->key;

			list = it->next;
			if (make_task(ev, it->parked_for, it->json, it->len, a, b, it->why) != 0) {
				lost(it, "neither the broker nor MySQL took it");
				pthread_mutex_lock(&ev->mu);
				ev->st.dropped++;
				pthread_mutex_unlock(&ev->mu);
			}
			item_free(it);
		}
	}
	mq_close(ev);
	kf_db_free(ev->db);
	ev->db = NULL;
	return NULL;
}

struct kf_events *kf_events_new(const struct kf_config *cfg, struct kf_buf *err)
{
	struct kf_events *ev = kf_xcalloc(1, sizeof(*ev));

	ev->cfg = cfg;
	ev->backends = kf_events_backends_parse(kf_config_str(cfg, "Events", "Backend"));
	ev->queue_max = (size_t)kf_config_int(cfg, "Events", "QueueMax");
	ev->flush_timeout_sec = (long)kf_config_int(cfg, "Events", "FlushTimeoutSec");
	ev->first_delay_sec = (long)kf_config_int(cfg, "Events", "TaskFirstDelaySec");
	ev->mq_host = kf_config_str(cfg, "Mq", "Host");
	ev->mq_port = (int)kf_config_int(cfg, "Mq", "Port");
	ev->mq_user = kf_config_str(cfg, "Mq", "User");
	ev->mq_pwd = kf_config_str(cfg, "Mq", "Pwd");
	ev->mq_vhost = kf_config_str(cfg, "Mq", "Vhost");
	ev->mq_exchange = kf_config_str(cfg, "Mq", "Exchange");
	ev->mq_rkey = kf_config_str(cfg, "Mq", "RoutingKey");
	ev->mq_queue = kf_config_str(cfg, "Mq", "Queue");
	ev->mq_tries = (int)kf_config_int(cfg, "Mq", "Tries");
	ev->mq_connect_ms = (long)kf_config_int(cfg, "Mq", "ConnectTimeoutMs");
	ev->mq_confirm_ms = (long)kf_config_int(cfg, "Mq", "ConfirmTimeoutMs");
	ev->mq_reconnect_max_ms = (long)kf_config_int(cfg, "Mq", "ReconnectMaxMs");
	ev->k_topic = kf_config_str(cfg, "Kafka", "Topic");
	ev->k_conf = k_conf_new(cfg, err);
	if (!ev->k_conf) {
		free(ev);
		return NULL;
	}
	pthread_mutex_init(&ev->mu, NULL);
	pthread_cond_init(&ev->cv, NULL);
	pthread_cond_init(&ev->done_cv, NULL);
	if (pthread_create(&ev->thread, NULL, thread_main, ev) != 0) {
		kf_buf_addf(err, "unable to start the event publisher thread: %s\n", strerror(errno));
		pthread_cond_destroy(&ev->done_cv);
		pthread_cond_destroy(&ev->cv);
		pthread_mutex_destroy(&ev->mu);
		rd_kafka_conf_destroy(ev->k_conf);
		free(ev);
		return NULL;
	}
	ev->thread_running = true;
	if (ev->backends)
		kf_info("events: publishing to %s", kf_config_str(cfg, "Events", "Backend"));
	return ev;
}

void kf_events_free(struct kf_events *ev)
{
	if (!ev)
		return;
	pthread_mutex_lock(&ev->mu);
	ev->stopping = true;
	pthread_cond_signal(&ev->cv);
	pthread_mutex_unlock(&ev->mu);
	if (ev->thread_running)
		pthread_join(ev->thread, NULL);
	/* task handlers still waiting give up now, and leave */
	pthread_mutex_lock(&ev->mu);
	ev->closing = true;
	pthread_cond_broadcast(&ev->done_cv);
	while (ev->waiters > 0)
		pthread_cond_wait(&ev->done_cv, &ev->mu);
	pthread_mutex_unlock(&ev->mu);
	while (ev->head) { /* only items that raced the stop */
		struct item *it = ev->head;

		ev->head = it->next;
		item_free(it);
	}
	rd_kafka_conf_destroy(ev->k_conf);
	pthread_cond_destroy(&ev->done_cv);
	pthread_cond_destroy(&ev->cv);
	pthread_mutex_destroy(&ev->mu);
	free(ev);
}

bool kf_events_enabled(const struct kf_events *ev)
{
	return ev && ev->backends != 0;
}

/* Log a refused event, at most DROP_LOG_PER_SEC lines a second.  Under mu. */
static void log_drop(struct kf_events *ev, const struct kf_event *e, const char *why)
{
	time_t now = time(NULL);

	if (now != ev->drop_window) {
		if (ev->drop_suppressed)
			kf_err("events: %" PRIu64 " more events dropped (not logged one by one)",
			       ev->drop_suppressed);
		ev->drop_window = now;
		ev->drop_logged = 0;
		ev->drop_suppressed = 0;
	}
	if (ev->drop_logged >= DROP_LOG_PER_SEC) {
		ev->drop_suppressed++;
		return;
	}
	ev->drop_logged++;
	kf_err("events: event %s (%s, conversation %.12s, seq %" PRId64 ") DROPPED: %s", e->id,
	       or_empty(kf_event_type_name(e->type)), or_empty(e->conversation), e->seq, why);
}

int kf_events_publish(struct kf_events *ev, struct kf_event *e)
{
	struct kf_buf json = KF_BUF_INIT;
	struct item *it;

	if (!e->id[0])
		kf_event_new_id(e->id);
	if (!kf_events_enabled(ev))
		return 0;
	if (kf_event_to_json(e, &json) != 0) {
		kf_err("events: event %s cannot be serialised (bad type or content); dropped", e->id);
		pthread_mutex_lock(&ev->mu);
		ev->st.dropped++;
		pthread_mutex_unlock(&ev->mu);
		return KF_ERR_INVAL;
	}
	pthread_mutex_lock(&ev->mu);
	if (ev->stopping || ev->n + ev->parked_n >= ev->queue_max) {
		ev->st.dropped++;
		log_drop(ev, e, ev->stopping ? "publisher stopping" : "queue full ([Events] QueueMax)");
		pthread_mutex_unlock(&ev->mu);
		kf_buf_release(&json);
		return KF_ERR_LIMIT;
	}
	pthread_mutex_unlock(&ev->mu);

	it = kf_xcalloc(1, sizeof(*it));
	it->backends = ev->backends;
	it->json = kf_buf_detach(&json, &it->len);
	it->key = kf_xstrdup(or_empty(e->conversation));
	memcpy(it->id, e->id, sizeof(it->id));

	pthread_mutex_lock(&ev->mu);
	if (ev->tail)
		ev->tail->next = it;
	else
		ev->head = it;
	ev->tail = it;
	ev->n++;
	ev->st.queued++;
	pthread_cond_signal(&ev->cv);
	pthread_mutex_unlock(&ev->mu);
	return 0;
}

void kf_events_stats(struct kf_events *ev, struct kf_events_stats *out)
{
	pthread_mutex_lock(&ev->mu);
	*out = ev->st;
	out->waiting = ev->n + ev->parked_n;
	pthread_mutex_unlock(&ev->mu);
}

/* ---- task handlers ---- */

/*
 * Publish a task's event again through the thread and wait for the
 * broker's answer until the task's deadline.
 */
static int republish(void *ud, const struct kf_task *task, struct kf_buf *err)
{
	const struct task_ud *tu = ud;
	struct kf_events *ev = tu->ev;
	struct json_object *o, *event, *dest;
	const char *why, *backend, *a, *b;
	struct kf_buf json = KF_BUF_INIT;
	struct waiter *w;
	struct item *it;
	int rc;

	o = kf_json_parse(task->param, task->param_len, 0, &why);
	if (!o || !json_object_object_get_ex(o, "event", &event) ||
	    !json_object_is_type(event, json_type_object) ||
	    !json_object_object_get_ex(o, "dest", &dest) ||
	    !json_object_is_type(dest, json_type_object)) {
		kf_buf_addf(err, "bad param: %s", o ? "no event or dest object" : why ? why : "null");
		json_object_put(o);
		return KF_ERR_INVAL;
	}
	backend = kf_json_get_str(dest, "backend", NULL);
	a = kf_json_get_str(dest, tu->backend == KF_EVENTS_MQ ? "exchange" : "topic", NULL);
	b = kf_json_get_str(dest, tu->backend == KF_EVENTS_MQ ? "routing_key" : "key", NULL);
	if (!backend || strcmp(backend, backend_name(tu->backend)) != 0 || !a || !b ||
	    (tu->backend == KF_EVENTS_KAFKA && !*a)) {
		kf_buf_addf(err, "bad param: dest is not a complete %s destination",
			    backend_name(tu->backend));
		json_object_put(o);
		return KF_ERR_INVAL;
	}
	kf_json_append(&json, event);

	w = kf_xcalloc(1, sizeof(*w));
	w->refs = 2; /* this handler and the item */
	it = kf_xcalloc(1, sizeof(*it));
	it->backends = tu->backend;
	it->json = kf_buf_detach(&json, &it->len);
	it->key = kf_xstrdup(b);
	it->dest_a = kf_xstrdup(a);
	it->dest_b = kf_xstrdup(b);
	it->w = w;
	{
		const char *id = kf_json_get_str(event, "id", NULL);

		snprintf(it->id, sizeof(it->id), "%s", id ? id : "");
	}
	json_object_put(o);

	pthread_mutex_lock(&ev->mu);
	if (ev->stopping || ev->closing) {
		free(w);
		pthread_mutex_unlock(&ev->mu);
		item_free(it);
		kf_buf_adds(err, "the publisher is stopping");
		return KF_ERR_STORE;
	}
	if (ev->tail)
		ev->tail->next = it;
	else
		ev->head = it;
	ev->tail = it;
	ev->n++;
	ev->waiters++;
	pthread_cond_signal(&ev->cv);
	while (!w->done && !ev->closing) {
		struct timespec ts;
		int64_t left = task->deadline_ms - now_ms();

		if (left <= 0)
			break;
		timespec_in(&ts, left);
		pthread_cond_timedwait(&ev->done_cv, &ev->mu, &ts);
	}
	if (w->done) {
		rc = w->rc;
		if (rc != 0)
			kf_buf_adds(err, w->err);
	} else {
		rc = KF_ERR_STORE;
		kf_buf_adds(err, ev->closing ? "the publisher stopped"
					     : "no answer from the broker before the task's deadline");
	}
	waiter_unref(w);
	ev->waiters--;
	if (ev->closing)
		pthread_cond_broadcast(&ev->done_cv);
	pthread_mutex_unlock(&ev->mu);
	return rc;
}

void kf_events_register_tasks(struct kf_events *ev, struct kf_taskqueue *tq)
{
	ev->task_ud[0].ev = ev;
	ev->task_ud[0].backend = KF_EVENTS_MQ;
	ev->task_ud[1].ev = ev;
	ev->task_ud[1].backend = KF_EVENTS_KAFKA;
	kf_taskqueue_register(tq, "mq", republish, &ev->task_ud[0]);
	kf_taskqueue_register(tq, "kafka", republish, &ev->task_ud[1]);
}
