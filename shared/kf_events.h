/*
 * kf_events.h - chat events published to RabbitMQ and/or Kafka.
 *
 * The caller (the relay) describes an event with struct kf_event and hands
 * it to kf_events_publish(), which serialises it to JSON at once and puts
 * the text on a bounded in-memory queue.  One background thread owned by
 * the struct kf_events takes events off the queue and publishes them to
 * the backends of [Events] Backend:
 *
 *   mq     RabbitMQ (rabbitmq-c): the [Mq] exchange with the [Mq] routing
 *          key, persistent (delivery_mode 2), with publisher confirms; a
 *          durable queue [Mq] Queue bound by the routing key is declared at
 *          each connect (as the seed did).  Up to [Mq] Tries attempts per
 *          event, reconnecting in between; after a failed connect the
 *          broker is left alone for a backoff (100 ms doubling to
 *          [Mq] ReconnectMaxMs) during which events go straight to the
 *          task queue.
 *   kafka  Kafka (librdkafka): topic [Kafka] Topic, key = the conversation
 *          (so one conversation's events stay in one partition, in order),
 *          acks=all, enable.idempotence=true; the delivery report of every
 *          message is checked.
 *
 * An event that a backend could not take becomes a taskqueue row (type
 * "mq" or "kafka", param = {"event": ..., "dest": ...}) due [Events]
 * TaskFirstDelaySec later; kf_events_register_tasks() gives a
 * kf_taskqueue the handlers that publish such rows again.  Delivery is
 * therefore at least once: a consumer drops duplicates by the event's id.
 * Order is kept per conversation while nothing fails; a retried event
 * arrives later than the ones after it (consumers order by seq and time).
 *
 * When the in-memory queue is full ([Events] QueueMax), kf_events_publish
 * never blocks: the event is refused, counted (kf_events_stats dropped)
 * and logged with its id, type, conversation and seq.  The queue only
 * fills when both the broker(s) and MySQL are down or too slow for the
 * event rate.
 *
 * Thread safety: kf_events_publish, kf_events_stats and the task handlers
 * may be called from any thread; new and free from one owning thread.
 */
#ifndef KF_EVENTS_H
#define KF_EVENTS_H

#include "kf_compat.h"

struct kf_buf;
struct kf_config;
struct kf_events;
struct kf_taskqueue;

/* Length of an event id: random [A-Za-z0-9] characters. */
#define KF_EVENT_ID_LEN 24

enum kf_event_type {
	KF_EVENT_CONNECT = 0, /* a visitor or agent connected */
	KF_EVENT_CHAT = 1,    /* a chat message */
	KF_EVENT_CLOSE = 2,   /* a conversation ended */
	KF_EVENT_ASSIGN = 3,  /* a visitor was assigned to an agent */
};

/* Backends, as bits. */
enum {
	KF_EVENTS_MQ = 1,
	KF_EVENTS_KAFKA = 2,
};

/*
 * One event.  Every string is borrowed for the call and may be NULL
 * (serialised as "").  content is content_len bytes (which may hold any
 * valid UTF-8); when content_len is 0 and content is not NULL, strlen is
 * used.  id: when empty, kf_events_publish fills it with a fresh random id.
 */
struct kf_event {
	enum kf_event_type type;
	const char *conversation; /* the conversation's key (Kafka message key) */
	int64_t seq;              /* the message's seq in the conversation; 0: none */
	const char *from;
	const char *to;
	const char *content;
	size_t content_len;
	int64_t time;             /* unix seconds; 0: now */
	const char *node;         /* the relay node it happened on */
	char id[KF_EVENT_ID_LEN + 1];
};

/* "connect", "chat", "close", "assign"; NULL for an unknown value. */
const char *kf_event_type_name(enum kf_event_type type);
/* The type named s (n bytes); -1 when unknown. */
int kf_event_type_parse(const char *s, size_t n);
/* Fill id with a fresh random event id (kf_key_init() must have run). */
void kf_event_new_id(char id[KF_EVENT_ID_LEN + 1]);

/*
 * Append e as one compact JSON object to out:
 *   {"v":1,"id":..,"type":..,"conversation":..,"seq":..,"from":..,"to":..,
 *    "content":..,"time":..,"node":..}
 * Returns 0, or KF_ERR_INVAL (unknown type, empty id, content not valid
 * UTF-8) with out unchanged.
 */
int kf_event_to_json(const struct kf_event *e, struct kf_buf *out);

/* The backends named by [Events] Backend ("none", "mq", "kafka", "both"). */
unsigned kf_events_backends_parse(const char *s);

/*
 * A publisher for cfg's [Events] Backend, [Mq] and [Kafka] settings, its
 * thread started.  No broker is contacted yet (the first event or task
 * connects), so a broker that is down does not stop start-up.  Returns
 * NULL with a reason in err on a configuration librdkafka refuses or when
 * the thread cannot start.  cfg is borrowed and must outlive the
 * publisher.
 */
struct kf_events *kf_events_new(const struct kf_config *cfg, struct kf_buf *err);
/*
 * Stop the thread: events still queued are published (or, failing that,
 * written as tasks) for up to [Events] FlushTimeoutSec, Kafka messages in
 * flight are waited for within the same bound, and what is left after it
 * is written as tasks.  Anything that cannot be kept even so is logged one
 * line per event.  NULL is a no-op.
 */
void kf_events_free(struct kf_events *ev);

/*
 * Queue e for the configured backends.  Never blocks on a broker or the
 * database.  Fills e->id when it is empty.  Returns 0, KF_ERR_INVAL (e
 * cannot be serialised; logged), KF_ERR_LIMIT (the queue is full: counted
 * and logged) or 0 without doing anything when the backend is none.
 */
int kf_events_publish(struct kf_events *ev, struct kf_event *e);

/* True when [Events] Backend is not none. */
bool kf_events_enabled(const struct kf_events *ev);

struct kf_events_stats {
	uint64_t queued;      /* taken by kf_events_publish */
	uint64_t published;   /* confirmed by a broker (per backend) */
	uint64_t tasks;       /* written to the task queue (per backend) */
	uint64_t dropped;     /* refused: queue full, or no task could be written */
	uint64_t retried;     /* re-published from a task, confirmed */
	size_t waiting;       /* in the queue now */
};
void kf_events_stats(struct kf_events *ev, struct kf_events_stats *out);

/*
 * Register the "mq" and "kafka" task handlers on tq: each publishes the
 * event of a task again to the destination it records, through ev's
 * thread, and fails (the task is retried later) when the broker does not
 * confirm it before the task's deadline.  ev must outlive tq's worker.
 */
void kf_events_register_tasks(struct kf_events *ev, struct kf_taskqueue *tq);

/*
 * The task param for an event text json (len bytes, a JSON object) bound
 * for a backend: {"event": <json>, "dest": {"backend": "mq", "exchange":
 * .., "routing_key": ..}} or {"dest": {"backend": "kafka", "topic": ..,
 * "key": ..}}.  a and b are exchange and routing key, or topic and key.
 * Appends to out; returns 0 or KF_ERR_INVAL (json is not an object).
 */
int kf_events_task_param(struct kf_buf *out, unsigned backend, const char *json, size_t len,
			 const char *a, const char *b);

#endif
