/*
 * timers.c - once a second: close clients that stopped pinging
 * ([Websocket] PingLastTimeSec), end conversations with no chat for
 * ChatLastTimeSec, and settle reconnect grace periods that ran out.
 */
#include "kf_compat.h"

#include <stdlib.h>
#include <time.h>

#include "kf_log.h"
#include "kf_mem.h"
#include "relay.h"

/* Close code for a client that went silent: it may reconnect. */
#define CLOSE_PING_TIMEOUT 4000

void kf_grace_add(enum kf_conn_kind kind, const char *key, int64_t admin_id, int64_t gen,
		  long seconds)
{
	struct kf_grace *g = kf_xcalloc(1, sizeof(*g));

	g->kind = kind;
	snprintf(g->key, sizeof(g->key), "%s", key);
	g->admin_id = admin_id;
	g->gen = gen;
	g->deadline = time(NULL) + seconds;
	g->next = kf_relay.graces;
	kf_relay.graces = g;
}

static void check_conn(struct kf_conn *c, time_t now)
{
	if (c->close_code)
		return;
	if (now - c->last_seen > kf_relay.ping_sec) {
		kf_info("%s %s: no ping for %lds, closing", c->kind == KF_CONN_AGENT ? "agent" : "visitor",
			c->ip, kf_relay.ping_sec);
		kf_conn_close(c, CLOSE_PING_TIMEOUT, "ping timeout");
		return;
	}
	if (c->kind == KF_CONN_VISITOR && c->admin_id && now - c->last_chat > kf_relay.chat_sec) {
		kf_info("visitor %.6s...: no chat for %lds, ending the conversation", c->key,
			kf_relay.chat_sec);
		kf_session_end_visitor(c);
	}
}

static void settle_graces(time_t now)
{
	struct kf_grace **pp = &kf_relay.graces;

	while (*pp) {
		struct kf_grace *g = *pp;

		if (g->deadline > now) {
			pp = &g->next;
			continue;
		}
		*pp = g->next;
		kf_session_grace_over(g);
		free(g);
	}
}

static void tick(uv_timer_t *t)
{
	struct kf_conn *c, *tmp;
	time_t now = time(NULL);

	(void)t;
	HASH_ITER(hh, kf_relay.visitors, c, tmp)
		check_conn(c, now);
	HASH_ITER(hh, kf_relay.agents, c, tmp)
		check_conn(c, now);
	settle_graces(now);
}

void kf_timers_start(void)
{
	uv_timer_start(&kf_relay.tick, tick, 1000, 1000);
}

void kf_timers_stop(void)
{
	uv_timer_stop(&kf_relay.tick);
	while (kf_relay.graces) {
		struct kf_grace *g = kf_relay.graces;

		kf_relay.graces = g->next;
		free(g);
	}
}
