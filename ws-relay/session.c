/*
 * session.c - each connection's arrival and departure in the shared store.
 *
 * The key is redeemed while the upgrade is being confirmed (so a bad key
 * gets an HTTP 401/403 and never a WebSocket); what was redeemed rides on
 * the wsi's opaque user data until LWS_CALLBACK_ESTABLISHED.  An arrival
 * is synchronous (one round trip to Redis inside the upgrade); a departure
 * goes on the asynchronous connection and what follows from it (events,
 * notices) runs when Redis answers, so a storm of closes does not stall
 * the loop.  Each departure names the connection's generation: a late one
 * finds a newer connection of the same key in the store and does nothing.
 */
#include "kf_compat.h"

#include <errno.h>
#include <stdlib.h>
#include <time.h>

#include "kf_err.h"
#include "kf_log.h"
#include "kf_mem.h"
#include "kf_redis.h"
#include "relay.h"

/* What confirm redeemed, until the connection is established. */
struct pending {
	enum kf_conn_kind kind;
	char key[KF_KEY_LEN + 1];
	char def_to[KF_KEY_LEN + 1];
	int64_t admin_id;
	int64_t gen;
	char ip[KF_NET_ADDR_MAX];
	bool resumed;
	int64_t seq;          /* visitor: the conversation's last seq */
	int64_t ack;          /* visitor: what it acknowledged */
	int64_t last_seq;     /* visitor: ?last_seq=N, or -1 */
	char last_seqs[512];  /* agent: ?last_seq=KEY:N,KEY:N */
	char old_node[KF_NODE_MAX];
	struct kf_pairs bound;
	struct kf_pairs assigned;
};

static void pending_free(struct pending *p)
{
	if (!p)
		return;
	kf_pairs_release(&p->bound);
	kf_pairs_release(&p->assigned);
	free(p);
}

/* The client's address: the peer, or X-Forwarded-For from a trusted proxy. */
static void client_ip(struct lws *wsi, char out[KF_NET_ADDR_MAX])
{
	char peer[KF_NET_ADDR_MAX] = "";
	char xff[512];
	int n;

	lws_get_peer_simple(wsi, peer, sizeof(peer));
	if (strncmp(peer, "::ffff:", 7) == 0)
		memmove(peer, peer + 7, strlen(peer + 7) + 1);
	n = lws_hdr_copy(wsi, xff, sizeof(xff), WSI_TOKEN_X_FORWARDED_FOR);
	kf_net_client_ip(kf_relay.trusted, peer, n > 0 ? xff : NULL, out);
}

static const char *query_key(struct lws *wsi, char *buf, int size, size_t *len)
{
	const char *v = lws_get_urlarg_by_name(wsi, "ws_key=", buf, size);

	*len = v ? strlen(v) : 0;
	return v;
}

/* ?last_seq=N for visitors: N, -1 when absent, -2 when malformed. */
static int64_t query_last_seq(struct lws *wsi)
{
	char buf[64];
	const char *v = lws_get_urlarg_by_name(wsi, "last_seq=", buf, sizeof(buf));
	char *end;
	long long n;

	if (!v)
		return -1;
	errno = 0;
	n = strtoll(v, &end, 10);
	return end == v || *end || errno || n < 0 ? -2 : n;
}

/* True when v is an agent's "KEY:N,KEY:N..." list. */
static bool agent_last_seqs_ok(const char *v)
{
	while (*v) {
		const char *colon = strchr(v, ':');
		char *end;

		if (!colon || !kf_key_valid(v, (size_t)(colon - v)) || colon[1] < '0' || colon[1] > '9')
			return false;
		errno = 0;
		(void)strtoll(colon + 1, &end, 10);
		if (errno || (*end && *end != ','))
			return false;
		v = *end ? end + 1 : end;
		if (*v == '\0' && end[0] == ',')
			return false; /* a trailing comma */
	}
	return true;
}

static int refuse_store(struct lws *wsi, int rc)
{
	switch (rc) {
	case KF_ERR_NOTFOUND:
		return kf_conn_refuse(wsi, 401, "unknown, expired or already used ws_key");
	case KF_ERR_LIMIT:
	case KF_ERR_TOOBIG:
		return kf_conn_refuse(wsi, 429, "too many visitors or links, try again later");
	default:
		return kf_conn_refuse(wsi, 503, "a data store is down, try again shortly");
	}
}

static int confirm_visitor(struct lws *wsi, struct pending *p, bool seed)
{
	char buf[128];
	const char *key;
	size_t len = 0;
	struct kf_visitor_redeem r;
	time_t now = time(NULL);
	int64_t last_seq = query_last_seq(wsi);
	int rc;

	if (last_seq == -2)
		return kf_conn_refuse(wsi, 400, "last_seq must be a whole number (the last seq seen)");
	if (seed) {
		/* the seed's GET /api/link: a key is issued on the spot */
		rc = kf_store_visitor_issue(kf_relay.redis, kf_relay.prefix, p->ip,
					    kf_relay.visitor_key_ttl, kf_relay.max_visitors,
					    kf_relay.link_per_min, now, p->key);
		if (rc != 0)
			return refuse_store(wsi, rc);
		key = p->key;
		len = strlen(p->key);
	} else {
		key = query_key(wsi, buf, sizeof(buf), &len);
		if (!key || !len)
			return kf_conn_refuse(wsi, 401, "missing ws_key: get one from POST /api/link");
	}
	rc = kf_store_visitor_redeem(kf_relay.redis, kf_relay.prefix, key, len, kf_relay.node,
				     kf_relay.cap, now, &r);
	if (rc == KF_ERR_INVAL)
		return kf_conn_refuse(wsi, 403, "this ws_key belongs to an agent: use /ws/admin/link");
	if (rc != 0)
		return refuse_store(wsi, rc);
	memcpy(p->key, key, len);
	p->key[len] = '\0';
	p->kind = KF_CONN_VISITOR;
	p->gen = r.gen;
	p->admin_id = r.agent;
	p->resumed = r.resumed;
	p->seq = r.seq;
	p->ack = r.ack;
	p->last_seq = last_seq;
	memcpy(p->old_node, r.old_node, sizeof(p->old_node));
	p->assigned = r.assigned;
	if (r.ip[0]) /* the address the key was issued to */
		memcpy(p->ip, r.ip, sizeof(p->ip));
	return 0;
}

static int confirm_agent(struct lws *wsi, struct pending *p, bool seed)
{
	char buf[128];
	size_t len = 0;
	const char *key = query_key(wsi, buf, sizeof(buf), &len);
	int rc;

	p->kind = KF_CONN_AGENT;
	{
		const char *v = lws_get_urlarg_by_name(wsi, "last_seq=", p->last_seqs,
						       sizeof(p->last_seqs));

		if (v && !agent_last_seqs_ok(v))
			return kf_conn_refuse(wsi, 400, "last_seq must be KEY:N,KEY:N "
							"(a visitor ws_key and the last seq seen)");
	}
	if (seed) {
		/* the seed's GET /admin/ws/link: the session says who; the key picks a visitor */
		char cookie[1024] = "", auth[256] = "";
		const char *token;
		size_t tlen;
		struct kf_session s;

		lws_hdr_copy(wsi, cookie, sizeof(cookie), WSI_TOKEN_HTTP_COOKIE);
		lws_hdr_copy(wsi, auth, sizeof(auth), WSI_TOKEN_HTTP_AUTHORIZATION);
		token = kf_key_from_headers(auth, cookie, &tlen);
		if (!token)
			return kf_conn_refuse(wsi, 401, "not logged in: send the gid cookie or a Bearer token");
		rc = kf_store_session_get(kf_relay.redis, kf_relay.prefix, token, tlen, &s);
		if (rc == KF_ERR_NOTFOUND)
			return kf_conn_refuse(wsi, 401, "not logged in");
		if (rc != 0)
			return refuse_store(wsi, rc);
		p->admin_id = s.admin_id;
		if (key && kf_key_valid(key, len))
			memcpy(p->def_to, key, len + 1);
		rc = kf_store_agent_attach(kf_relay.redis, kf_relay.prefix, s.admin_id, kf_relay.node,
					   kf_relay.cap, &p->gen, &p->bound, &p->assigned, p->old_node);
	} else {
		if (!key || !len)
			return kf_conn_refuse(wsi, 401, "missing ws_key: get one from POST /admin/ws");
		rc = kf_store_agent_redeem(kf_relay.redis, kf_relay.prefix, key, len, kf_relay.node,
					   kf_relay.cap, &p->admin_id, &p->gen, &p->bound,
					   &p->assigned, p->old_node);
	}
	if (rc == KF_ERR_INVAL)
		return kf_conn_refuse(wsi, 403, "this ws_key belongs to a visitor: use /ws/api/link");
	if (rc == KF_ERR_AUTH)
		return kf_conn_refuse(wsi, 403, "not registered as an agent: POST /admin/ws first");
	if (rc != 0)
		return refuse_store(wsi, rc);
	return 0;
}

int kf_session_confirm(struct lws *wsi)
{
	char path[256];
	struct pending *p;
	int rc;

	if (kf_relay.draining)
		return kf_conn_refuse(wsi, 503, "this relay node is shutting down: reconnect");
	if (lws_hdr_copy(wsi, path, sizeof(path), WSI_TOKEN_GET_URI) <= 0)
		return kf_conn_refuse(wsi, 400, "missing request path");
	p = kf_xcalloc(1, sizeof(*p));
	client_ip(wsi, p->ip);
	if (strcmp(path, "/ws/api/link") == 0)
		rc = confirm_visitor(wsi, p, false);
	else if (strcmp(path, "/api/link") == 0)
		rc = confirm_visitor(wsi, p, true);
	else if (strcmp(path, "/ws/admin/link") == 0)
		rc = confirm_agent(wsi, p, false);
	else if (strcmp(path, "/admin/ws/link") == 0)
		rc = confirm_agent(wsi, p, true);
	else
		rc = kf_conn_refuse(wsi, 404, "no such WebSocket path: use /ws/api/link or /ws/admin/link");
	if (rc != 0) {
		pending_free(p);
		return rc;
	}
	lws_set_opaque_user_data(wsi, p);
	return 0;
}

static bool in_pairs(const struct kf_pairs *pairs, const char *key)
{
	for (size_t i = 0; i < pairs->n; i++)
		if (strcmp(pairs->v[i].visitor, key) == 0)
			return true;
	return false;
}

/* The agent's ?last_seq=KEY:N,KEY:N entry for key, or -1. */
static int64_t agent_last_seq(const char *list, const char *key)
{
	const char *p = strstr(list, key);

	if (!p || p[KF_KEY_LEN] != ':')
		return -1;
	return strtoll(p + KF_KEY_LEN + 1, NULL, 10);
}

/* The connection of visitor key (or agent admin_id) on node is replaced. */
static void tell_replaced(const char *node, const char *key, int64_t admin_id)
{
	char msg[160];

	if (admin_id)
		snprintf(msg, sizeof(msg), "{\"op\":\"replaced\",\"kind\":\"a\",\"admin\":%lld}",
			 (long long)admin_id);
	else
		snprintf(msg, sizeof(msg), "{\"op\":\"replaced\",\"kind\":\"v\",\"key\":\"%s\"}", key);
	kf_bus_publish(node, msg);
}

void kf_session_established(struct lws *wsi, struct kf_conn *c)
{
	struct pending *p = lws_get_opaque_user_data(wsi);
	struct kf_conn *old;

	lws_set_opaque_user_data(wsi, NULL);
	if (!p) {
		c->ended = true;
		kf_conn_close(c, LWS_CLOSE_STATUS_UNEXPECTED_CONDITION, "no session");
		return;
	}
	c->kind = p->kind;
	c->gen = p->gen;
	c->admin_id = p->admin_id;
	memcpy(c->key, p->key, sizeof(c->key));
	memcpy(c->def_to, p->def_to, sizeof(c->def_to));
	memcpy(c->ip, p->ip, sizeof(c->ip));
	old = c->kind == KF_CONN_VISITOR ? kf_route_visitor(c->key) : kf_route_agent(c->admin_id);
	if (old) { /* the same key connected again: the new connection wins */
		kf_route_remove(old);
		old->ended = true;
		kf_conn_close(old, 4001, "replaced by a newer connection");
	}
	kf_route_add(c);
	if (c->kind == KF_CONN_VISITOR) {
		kf_info("visitor %.6s... from %s connected (%s)", c->key, c->ip,
			p->resumed ? "resumed" : c->admin_id ? "bound" : "waiting");
		if (p->old_node[0] && strcmp(p->old_node, kf_relay.node) != 0)
			tell_replaced(p->old_node, c->key, 0);
		if (!p->resumed)
			kf_relay_event(KF_EVENT_CONNECT, c->key, c->admin_id, 0, false, NULL, 0);
		if (!c->admin_id && !in_pairs(&p->assigned, c->key))
			kf_conn_send_frame(c, "system", kf_relay.msg_no_agent, NULL, c->key, NULL);
		kf_history_start(c, c->key, p->last_seq >= 0 ? p->last_seq : p->ack, p->seq);
	} else {
		kf_info("agent %lld from %s connected with %zu visitors", (long long)c->admin_id,
			c->ip, p->bound.n);
		if (p->old_node[0] && strcmp(p->old_node, kf_relay.node) != 0)
			tell_replaced(p->old_node, "", c->admin_id);
		for (size_t i = 0; i < p->bound.n; i++) {
			const struct kf_pair *b = &p->bound.v[i];
			int64_t from = agent_last_seq(p->last_seqs, b->visitor);

			kf_conn_send_frame(c, "connect", kf_relay.msg_new_visitor, NULL, b->visitor, b->ip);
			kf_history_start(c, b->visitor, from > b->ack ? from : b->ack, b->seq);
			kf_route_notice_visitor(b->visitor, "system", kf_relay.msg_agent_back);
		}
	}
	kf_route_bindings(&p->assigned);
	pending_free(p);
}

/*
 * A departure on its way to the store: the call, prepared once (its
 * arguments point into this struct), and what its answer needs.
 */
struct departure {
	char kind;               /* 'l' visitor leaves, 'g' visitor's grace, 'a' agent dropped */
	char key[KF_KEY_LEN + 1];
	int64_t admin_id;
	char reason[16];         /* 'l': left, dropped, idle or gone */
	struct kf_store_cmd cmd;
};

/* What follows from a departure the store answered with reply (NULL: none). */
static void departed(struct departure *d, const redisReply *reply)
{
	struct kf_leave out = { 0 };
	struct kf_pairs visitors = { 0 };
	int rc = d->kind == 'a' ? kf_store_agent_drop_parse(reply, &visitors)
				: kf_store_visitor_leave_parse(reply, &out);

	if (rc == KF_ERR_STORE) {
		if (d->kind == 'a')
			kf_err("agent %lld: unable to record the dropped connection",
			       (long long)d->admin_id);
		else
			kf_err("visitor %.6s...: unable to record the end of the chat", d->key);
	} else if (rc == 0) { /* otherwise a newer connection owns it */
		switch (d->kind) {
		case 'l':
			kf_relay_event(KF_EVENT_CLOSE, d->key, out.agent, 0, false, d->reason,
				       strlen(d->reason));
			if (out.agent)
				kf_route_notice_agent(out.agent, "close", kf_relay.msg_chat_ended,
						      d->key);
			kf_route_bindings(&out.assigned);
			break;
		case 'g':
			kf_info("visitor %.6s... dropped; waiting %lds for it", d->key,
				kf_relay.visitor_grace);
			break;
		default:
			for (size_t i = 0; i < visitors.n; i++)
				kf_route_notice_visitor(visitors.v[i].visitor, "system",
							kf_relay.msg_agent_away);
			break;
		}
	}
	kf_pairs_release(&out.assigned);
	kf_pairs_release(&visitors);
	free(d);
}

/* The same call on the synchronous connection, then what follows. */
static void depart_sync(struct departure *d)
{
	redisReply *reply = kf_store_run(kf_relay.redis, "departure", &d->cmd);

	departed(d, reply);
	if (reply)
		freeReplyObject(reply);
}

static void on_departed(redisAsyncContext *ac, void *r, void *priv)
{
	redisReply *reply = r;

	(void)ac;
	if (!reply || kf_store_noscript(reply)) /* lost on the way, or the script was */
		depart_sync(priv);
	else
		departed(priv, reply);
}

/* Record a departure on the asynchronous connection (when it is down: now). */
static void depart(char kind, const char *key, int64_t admin_id, int64_t gen, const char *reason)
{
	struct departure *d = kf_xcalloc(1, sizeof(*d));
	time_t now = time(NULL);

	d->kind = kind;
	snprintf(d->key, sizeof(d->key), "%s", key);
	d->admin_id = admin_id;
	snprintf(d->reason, sizeof(d->reason), "%s", reason);
	if (kind == 'l')
		kf_store_visitor_leave_cmd(&d->cmd, kf_relay.prefix, d->key, gen, d->reason,
					   kf_relay.cap);
	else if (kind == 'g')
		kf_store_visitor_grace_cmd(&d->cmd, kf_relay.prefix, d->key, gen,
					   kf_relay.visitor_grace, now);
	else
		kf_store_agent_drop_cmd(&d->cmd, kf_relay.prefix, admin_id, gen,
					kf_relay.agent_grace, now);
	if (!kf_bus_cmdargv(on_departed, d, d->cmd.argc, d->cmd.argv, d->cmd.lens))
		depart_sync(d);
}

/* A visitor's conversation is over: the store unbinds it, its agent is told. */
static void visitor_gone(const char *key, int64_t gen, const char *reason)
{
	depart('l', key, 0, gen, reason);
}

static void agent_gone(int64_t admin_id, int64_t gen)
{
	depart('a', "", admin_id, gen, "");
}

void kf_session_closed(struct kf_conn *c)
{
	kf_route_remove(c);
	kf_history_release(c);
	if (c->ended)
		return;
	c->ended = true;
	if (c->kind == KF_CONN_VISITOR) {
		if (c->leaving || kf_relay.visitor_grace == 0) {
			kf_info("visitor %.6s... left", c->key);
			visitor_gone(c->key, c->gen, c->leaving ? "left" : "dropped");
			return;
		}
		depart('g', c->key, 0, c->gen, "");
		return;
	}
	kf_info("agent %lld disconnected; waiting %lds for it", (long long)c->admin_id,
		kf_relay.agent_grace);
	agent_gone(c->admin_id, c->gen);
}

void kf_session_abandoned(struct lws *wsi)
{
	struct pending *p = lws_get_opaque_user_data(wsi);

	if (!p)
		return;
	lws_set_opaque_user_data(wsi, NULL);
	if (p->kind == KF_CONN_VISITOR)
		visitor_gone(p->key, p->gen, "dropped");
	else
		agent_gone(p->admin_id, p->gen);
	pending_free(p);
}

void kf_session_end_visitor(struct kf_conn *c)
{
	c->ended = true;
	kf_conn_send_frame(c, "close", kf_relay.msg_chat_ended, NULL, c->key, NULL);
	kf_conn_close(c, LWS_CLOSE_STATUS_NORMAL, "chat ended");
	visitor_gone(c->key, c->gen, "idle");
}

void kf_session_grace_over(const struct kf_item *g)
{
	struct kf_pairs requeued = { 0 }, assigned = { 0 };
	int rc;

	if (g->kind == 'v') {
		kf_info("visitor %.6s... did not come back", g->id);
		visitor_gone(g->id, g->gen, "gone");
		return;
	}
	rc = kf_store_agent_expire(kf_relay.redis, kf_relay.prefix, strtoll(g->id, NULL, 10),
				   g->gen, kf_relay.cap, &requeued, &assigned);
	if (rc != 0)
		return;
	kf_info("agent %s did not come back; %zu visitors back in the queue", g->id, requeued.n);
	for (size_t i = 0; i < requeued.n; i++) {
		struct kf_conn *v = kf_route_visitor(requeued.v[i].visitor);

		if (v)
			v->admin_id = 0;
		if (!in_pairs(&assigned, requeued.v[i].visitor))
			kf_route_notice_visitor(requeued.v[i].visitor, "system", kf_relay.msg_no_agent);
	}
	kf_route_bindings(&assigned);
	kf_pairs_release(&requeued);
	kf_pairs_release(&assigned);
}
