/*
 * events.c - the relay's chat events ([Events] Backend) and, when
 * [Events] TaskWorker is set, the task queue worker that publishes failed
 * events again (kf_events.h, kf_taskqueue.h).
 *
 * kf_relay_event() is called on the event-loop thread at the points where
 * a visitor connects, a message gets its seq, a visitor is assigned and a
 * conversation ends; it serialises the event and hands it to the
 * publisher's thread without waiting for any broker or database.  The
 * visitor's ws_key is a credential: it never leaves the relay; events
 * name the conversation by its digest (kf_relay_conversation) and the
 * sides as "visitor" and "agent:ID".
 */
#include "kf_compat.h"

#include <time.h>

#include "kf_buf.h"
#include "kf_config.h"
#include "kf_events.h"
#include "kf_key.h"
#include "kf_log.h"
#include "kf_taskqueue.h"
#include "relay.h"

static struct kf_events *events;
static struct kf_taskqueue *tasks;

int kf_relay_events_start(const struct kf_config *cfg, const char *node)
{
	struct kf_buf err = KF_BUF_INIT;
	struct kf_taskqueue_settings s;

	events = kf_events_new(cfg, &err);
	if (!events) {
		kf_err("events: %s", kf_buf_str(&err));
		kf_buf_release(&err);
		return -1;
	}
	kf_buf_release(&err);
	kf_taskqueue_settings_load(cfg, &s);
	if (!s.worker)
		return 0;
	tasks = kf_taskqueue_new(cfg, node);
	kf_events_register_tasks(events, tasks);
	if (kf_taskqueue_start(tasks) != 0) {
		kf_err("events: unable to start the task worker");
		kf_relay_events_stop();
		return -1;
	}
	return 0;
}

void kf_relay_events_stop(void)
{
	/* the worker first: its handlers publish through events */
	kf_taskqueue_free(tasks);
	tasks = NULL;
	kf_events_free(events);
	events = NULL;
}

void kf_relay_conversation(const char *visitor_key, char out[33])
{
	kf_key_digest(visitor_key, strlen(visitor_key), out);
}

void kf_relay_event(enum kf_event_type type, const char *visitor_key, int64_t agent,
		    int64_t seq, bool by_agent, const char *content, size_t content_len)
{
	struct kf_event e = { 0 };
	char conv[33], agent_name[32] = "";

	if (!kf_events_enabled(events) || !visitor_key)
		return;
	kf_relay_conversation(visitor_key, conv);
	if (agent > 0)
		snprintf(agent_name, sizeof(agent_name), "agent:%lld", (long long)agent);
	e.type = type;
	e.conversation = conv;
	e.seq = seq;
	if (type == KF_EVENT_ASSIGN) {
		e.to = agent_name;
	} else {
		e.from = by_agent ? agent_name : "visitor";
		e.to = by_agent ? "visitor" : agent_name;
	}
	/* content_len 0 would make kf_events take strlen: give it "" */
	e.content = content && content_len ? content : "";
	e.content_len = content && content_len ? content_len : 0;
	e.time = (int64_t)time(NULL);
	e.node = kf_relay.node;
	/* a refusal (queue full) is counted and logged by kf_events */
	(void)kf_events_publish(events, &e);
}
