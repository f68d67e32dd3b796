/*
 * timers.c - every connection looked at once a second, a tenth of them
 * every 100 ms (one walk over 15,000 took ~3 ms, a stall every second):
 * close clients that stopped pinging ([Websocket] PingLastTimeSec), end
 * conversations with no chat for ChatLastTimeSec.  Once a second: settle
 * grace periods that ran out (any node settles any grace period: they live
 * in Redis, PREFIX graces), and every [Relay] HeartbeatSec renew this
 * node's heartbeat and put the clients of dead nodes into grace.
 */
#include "kf_compat.h"

#include <stdlib.h>
#include <time.h>

#include "kf_log.h"
#include "relay.h"

/* Close code for a client that went silent: it may reconnect. */
#define CLOSE_PING_TIMEOUT 4000
/* Grace periods settled per tick. */
#define GRACES_PER_TICK 100

/* A close that could not be written in this long is forced. */
#define CLOSE_WAIT_SEC 10

/* The tick: a slice of the connections each time, all of them each second. */
#define TICK_MS 100
#define TICKS_PER_SEC (1000 / TICK_MS)

void kf_timers_add(struct kf_conn *c)
{
	c->all_prev = NULL;
	c->all_next = kf_relay.all;
	if (kf_relay.all)
		kf_relay.all->all_prev = c;
	kf_relay.all = c;
}

void kf_timers_remove(struct kf_conn *c)
{
	if (kf_relay.walk == c)
		kf_relay.walk = c->all_next;
	if (c->all_prev)
		c->all_prev->all_next = c->all_next;
	else if (kf_relay.all == c)
		kf_relay.all = c->all_next;
	if (c->all_next)
		c->all_next->all_prev = c->all_prev;
	c->all_prev = c->all_next = NULL;
}

static void check_conn(struct kf_conn *c, time_t now)
{
	if (c->close_code) {
		if (now - c->close_at > CLOSE_WAIT_SEC)
			lws_set_timeout(c->wsi, PENDING_TIMEOUT_CLOSE_SEND, LWS_TO_KILL_ASYNC);
		return;
	}
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
	struct kf_items due = { 0 };

	if (kf_store_graces_due(kf_relay.redis, kf_relay.prefix, now, GRACES_PER_TICK, &due) != 0)
		return;
	for (size_t i = 0; i < due.n; i++)
		kf_session_grace_over(&due.v[i]);
	kf_items_release(&due);
}

static void sweep_dead_nodes(time_t now)
{
	struct kf_items moved = { 0 };

	if (kf_store_sweep(kf_relay.redis, kf_relay.prefix, kf_relay.node, kf_relay.visitor_grace,
			   kf_relay.agent_grace, now, &moved) != 0)
		return;
	for (size_t i = 0; i < moved.n; i++)
		if (moved.v[i].kind == 'w') /* a visitor of a moved agent */
			kf_route_notice_visitor(moved.v[i].id, "system", kf_relay.msg_agent_away);
	if (moved.n)
		kf_warn("a relay node stopped answering: its clients wait to reconnect (%zu items)",
			moved.n);
	kf_items_release(&moved);
}

/* Check the next slice of connections, from where the last one stopped. */
static void walk(time_t now)
{
	size_t n = kf_relay.nconns / TICKS_PER_SEC + 1;

	for (size_t i = 0; i < n; i++) {
		struct kf_conn *c = kf_relay.walk ? kf_relay.walk : kf_relay.all;

		if (!c)
			break;
		kf_relay.walk = c->all_next; /* NULL at the end: the head next time */
		check_conn(c, now);
	}
}

static void tick(uv_timer_t *t)
{
	static time_t last;
	time_t now = time(NULL);

	(void)t;
	walk(now);
	if (now == last || kf_relay.draining)
		return;
	last = now;
	settle_graces(now);
	if (now - kf_relay.last_heartbeat >= kf_relay.heartbeat_sec)
		kf_bus_heartbeat();
	/*
	 * Judge other nodes only after our own heartbeats have gone through
	 * for a whole NodeTtlSec: after a Redis outage every heartbeat is
	 * stale for a moment, and the others deserve the time to renew theirs.
	 */
	if (now - kf_relay.last_sweep >= kf_relay.heartbeat_sec && kf_relay.healthy_since &&
	    now - kf_relay.healthy_since >= kf_relay.node_ttl) {
		kf_relay.last_sweep = now;
		sweep_dead_nodes(now);
	}
}

void kf_timers_start(void)
{
	uv_timer_start(&kf_relay.tick, tick, TICK_MS, TICK_MS);
}

void kf_timers_stop(void)
{
	uv_timer_stop(&kf_relay.tick);
}
