/*
 * relay.h - what kefu-relay's modules share.
 *
 * One struct kf_relay per process, owned by main.c, built at start-up and
 * touched only on the event-loop thread (persist.c's writer thread has its
 * own connections and touches none of it).  One struct kf_conn per
 * WebSocket (lws per-session data: lws allocates and frees it; kefu fills
 * it at LWS_CALLBACK_ESTABLISHED and empties it at LWS_CALLBACK_CLOSED).
 *
 *   conn.c     the lws protocol callback, send queues, closing
 *   session.c  key redemption at the upgrade; each connection's arrival
 *              and departure in the shared store
 *   route.c    who is connected here; chat (seq, history, delivery here or
 *              through another node's channel); bindings and notices
 *   history.c  per-conversation delivery order: duplicates dropped, gaps
 *              and reconnects filled from the Redis history stream
 *   bus.c      the asynchronous Redis connections (commands, pub/sub),
 *              reconnecting with backoff; the node heartbeat
 *   persist.c  the MySQL writer thread (batches from PREFIX wq)
 *   timers.c   ping and chat timeouts, grace periods, dead nodes
 *   frame.c    parsing and building frames
 */
#ifndef KF_RELAY_H
#define KF_RELAY_H

#include "kf_compat.h"

#include <time.h>

#include <hiredis/async.h>
#include <libwebsockets.h>
#include <uthash.h>
#include <uv.h>

#include "kf_buf.h"
#include "kf_key.h"
#include "kf_net.h"
#include "kf_store.h"

struct kf_config;
struct kf_redis;
struct kf_persist;

enum kf_conn_kind { KF_CONN_VISITOR = 1, KF_CONN_AGENT = 2 };

/* One frame waiting to be written, with LWS_PRE bytes of headroom. */
struct kf_out {
	struct kf_out *next;
	size_t len;
	unsigned char buf[];
};

/* A chat frame held back until the frames before it have been sent. */
struct kf_held {
	struct kf_held *next;
	int64_t seq;
	bool own;           /* the client's own message: nothing to send */
	size_t len;
	char frame[];
};

/*
 * Delivery state of one conversation on one connection (history.c), in a
 * list per connection: a visitor has one, an agent one per visitor (at most
 * [Relay] MaxVisitorsPerAgent).  A list, not a hash table: uthash gives
 * every table a 512-byte bucket array, more than the rest of an idle
 * connection's own state.
 */
struct kf_track {
	struct kf_track *next;
	char key[KF_KEY_LEN + 1];  /* the visitor's key */
	int64_t delivered;         /* highest seq sent (or known) to the client */
	bool replaying;            /* a history read is in flight, or paused */
	bool initial;              /* that read is a reconnect replay */
	bool paused;               /* waiting for the send queue to drain */
	bool exhausted;            /* the stream has nothing more to give */
	size_t nheld;
	struct kf_held *held;      /* sorted by seq */
};

struct kf_conn {
	struct lws *wsi;
	enum kf_conn_kind kind;
	char key[KF_KEY_LEN + 1];     /* visitor: its ws_key */
	char def_to[KF_KEY_LEN + 1];  /* agent: default visitor for "to" */
	int64_t admin_id;             /* agent: itself; visitor: its agent (0: none) */
	int64_t gen;                  /* connection number in the store */
	uint64_t id;                  /* unique on this node, for async replies */
	char ip[KF_NET_ADDR_MAX];
	struct kf_out *head, *tail;
	size_t queued;
	struct kf_buf rx;             /* a message being reassembled */
	double tokens;                /* rate limit bucket */
	int64_t refill_ms;
	unsigned bad;                 /* bad frames in a row */
	time_t last_seen;             /* any frame from the client */
	time_t last_chat;             /* visitor: last chat either way */
	int close_code;               /* set: close once the queue is written */
	time_t close_at;              /* when the close was asked for */
	char close_reason[64];
	bool close_started;           /* lws is doing the close handshake */
	bool ended;                   /* the store is already up to date */
	bool leaving;                 /* closed for a reason that ends the chat */
	bool in_map;
	bool direct;                  /* frames may be written at once (see kf_conn_send) */
	struct kf_track *tracks;      /* list, one per visitor key */
	struct kf_conn *all_prev, *all_next; /* kf_relay.all, for the timers */
	UT_hash_handle hh;            /* kf_relay.visitors or .agents */
	UT_hash_handle hh_id;         /* kf_relay.by_id */
};

struct kf_relay {
	const struct kf_config *cfg;
	const char *prefix;
	const char *node;
	uv_loop_t *loop;
	struct lws_context *ctx;
	struct lws_vhost *vhost;
	struct kf_redis *redis;        /* synchronous: arrivals, departures */
	redisAsyncContext *cmd;        /* asynchronous: chat, history, acks */
	redisAsyncContext *sub;        /* pub/sub: PREFIX ctl and PREFIX n:NODE */
	bool cmd_ready, sub_ready;     /* connected (not just connecting) */
	char chat_sha[41], ack_sha[41]; /* EVALSHA names of the hot scripts */
	uv_timer_t cmd_connect_timer, sub_connect_timer;
	time_t healthy_since;          /* heartbeats have succeeded since then */
	bool bus_wanted;
	int cmd_backoff_ms, sub_backoff_ms;
	uv_timer_t cmd_retry, sub_retry;
	uv_timer_t tick;
	uv_timer_t drain_timer;
	uv_prepare_t chat_flush;       /* route.c: sends the turn's chats to Redis */
	uv_signal_t sigterm, sigint, sighup;
	struct kf_net_trust *trusted;
	struct kf_conn *visitors;  /* by key */
	struct kf_conn *agents;    /* by admin id */
	struct kf_conn *by_id;     /* by id */
	struct kf_conn *all;       /* every open connection (timers.c) */
	struct kf_conn *walk;      /* where the timers' next slice starts */
	uint64_t next_id;
	struct kf_persist *persist;
	size_t nconns;
	long fd_limit;             /* refuse connections from this descriptor on */
	unsigned long fd_refused;
	bool draining;
	time_t last_heartbeat, last_sweep;
	/* settings from the config */
	long cap, ping_sec, chat_sec, visitor_grace, agent_grace;
	long max_visitors, link_per_min, visitor_key_ttl;
	size_t max_msg, max_frame, queue_max;
	long max_rate, max_bad, drain_sec;
	long history_max, backlog_max, heartbeat_sec, node_ttl;
	const char *msg_no_agent, *msg_new_visitor, *msg_chat_ended;
	const char *msg_agent_joined, *msg_agent_away, *msg_agent_back;
};

/* The process's relay (main.c). */
extern struct kf_relay kf_relay;

/* conn.c */
int kf_conn_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
		     size_t len);
/* Queue a text frame for c; a full queue closes c (1008).  Returns 0 or -1. */
int kf_conn_send(struct kf_conn *c, const char *data, size_t len);
/* Build and queue a server frame. */
void kf_conn_send_frame(struct kf_conn *c, const char *type, const char *content,
			const char *from, const char *ws_key, const char *ip);
/*
 * Refuse an upgrade with an HTTP status and the JSON envelope; returns the
 * value LWS_CALLBACK_HTTP_CONFIRM_UPGRADE must return (1, or -1).
 */
int kf_conn_refuse(struct lws *wsi, unsigned status, const char *message);
/* Queue a chat frame with content (len bytes) from "from" about ws_key. */
void kf_conn_send_chat(struct kf_conn *c, const char *content, size_t len, const char *from,
		       const char *ws_key);
/* Close c with code once what is queued is written. */
void kf_conn_close(struct kf_conn *c, int code, const char *reason);

/* session.c */
/* At the upgrade: redeem the key; false when refused (HTTP reply sent). */
int kf_session_confirm(struct lws *wsi);
/* At LWS_CALLBACK_ESTABLISHED: take over what confirm redeemed. */
void kf_session_established(struct lws *wsi, struct kf_conn *c);
/* At LWS_CALLBACK_CLOSED: record the departure in the store. */
void kf_session_closed(struct kf_conn *c);
/* The connection died between confirm and established. */
void kf_session_abandoned(struct lws *wsi);
/* End visitor c's conversation now (chat timeout): both sides told. */
void kf_session_end_visitor(struct kf_conn *c);
/* A grace period ran out without the connection coming back. */
void kf_session_grace_over(const struct kf_item *g);

/* route.c */
void kf_route_add(struct kf_conn *c);
void kf_route_remove(struct kf_conn *c);
struct kf_conn *kf_route_visitor(const char *key);
struct kf_conn *kf_route_agent(int64_t admin_id);
struct kf_conn *kf_route_by_id(uint64_t id);
/* Tell both sides about new bindings, here or on their nodes. */
void kf_route_bindings(const struct kf_pairs *pairs);
/* A chat frame from c. */
void kf_route_chat(struct kf_conn *c, const char *content, size_t len, const char *to);
/* Send the chats received so far to Redis now (one script call). */
void kf_route_flush_chats(void);
/* Start and stop flushing chats at the end of every turn of the loop. */
void kf_route_start(void);
void kf_route_stop(void);
/* An ack frame from c (key: the visitor, for agents). */
void kf_route_ack(struct kf_conn *c, int64_t seq, const char *key);
/*
 * Send a notice (type, content) about visitor key to the visitor, or to
 * agent admin_id (when admin_id > 0), wherever it is connected.
 */
void kf_route_notice_visitor(const char *key, const char *type, const char *content);
void kf_route_notice_agent(int64_t admin_id, const char *type, const char *content,
			   const char *key);
/* A message on this node's channel or the control channel. */
void kf_route_message(const char *channel, const char *msg, size_t len);

/* history.c */
/* Deliver chat frame seq of conversation key to c in order, exactly once. */
void kf_history_deliver(struct kf_conn *c, const char *key, int64_t seq, const char *frame,
			size_t len);
/* c itself sent seq: count it as delivered, without sending it back. */
void kf_history_own(struct kf_conn *c, const char *key, int64_t seq);
/* Start tracking key on c at delivered; replay from Redis up to last. */
void kf_history_start(struct kf_conn *c, const char *key, int64_t delivered, int64_t last);
/* Forget key on c (the conversation ended). */
void kf_history_forget(struct kf_conn *c, const char *key);
void kf_history_release(struct kf_conn *c);
/* c's send queue has room again: resume paused replays. */
void kf_history_resume(struct kf_conn *c);

/* bus.c */
void kf_bus_start(void);
void kf_bus_stop(void);
/* Run a command on the asynchronous connection; false when it is down. */
bool kf_bus_cmdargv(redisCallbackFn *fn, void *priv, int argc, const char **argv,
		    const size_t *argvlen);
/*
 * Publish msg to node's channel / route msg to the node of visitor key or
 * agent id (kind 'v' or 'a', kf_store_route) without waiting for Redis.
 */
void kf_bus_publish(const char *node, const char *msg);
void kf_bus_route(char kind, const char *id, const char *msg);
/* Heartbeat (every HeartbeatSec). */
void kf_bus_heartbeat(void);
/* Load the chat and ack scripts into Redis (again, after a NOSCRIPT). */
void kf_bus_load_scripts(void);

/* timers.c */
void kf_timers_start(void);
void kf_timers_stop(void);
/* Every open connection is on the timers' list from ESTABLISHED to CLOSED. */
void kf_timers_add(struct kf_conn *c);
void kf_timers_remove(struct kf_conn *c);

/* persist.c */
struct kf_persist *kf_persist_start(const struct kf_config *cfg, const char *node);
/* Ask the writer to stop after its current batch and wait up to wait_ms. */
void kf_persist_stop(struct kf_persist *p, long wait_ms);

/* events.c: chat events (kf_events) and the task worker (kf_taskqueue) */
#include "kf_events.h"
/*
 * Start the event publisher for [Events] Backend and, with [Events]
 * TaskWorker, the task worker (claims named after node).  Returns 0, or
 * -1 (logged) when the configuration is refused or a thread cannot start.
 */
int kf_relay_events_start(const struct kf_config *cfg, const char *node);
/* Stop the worker (waits TaskShutdownWaitSec at most), then flush events. */
void kf_relay_events_stop(void);
/*
 * Publish one event about the conversation of visitor_key, on the loop
 * thread, never blocking; a no-op when [Events] Backend is none.  agent:
 * the agent's admin id (0: none yet); seq: the message's seq (0: none);
 * by_agent: the agent sent it (chat) or ended it (close); content
 * (content_len bytes, may be NULL): the chat text, or the reason of a
 * close.  Strings are borrowed for the call.  The event carries the
 * conversation's digest, never the ws_key, and "visitor" / "agent:ID".
 */
void kf_relay_event(enum kf_event_type type, const char *visitor_key, int64_t agent,
		    int64_t seq, bool by_agent, const char *content, size_t content_len);
/* The conversation name events carry for visitor_key (32 hex digits). */
void kf_relay_conversation(const char *visitor_key, char out[33]);

#endif
