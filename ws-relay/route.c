/*
 * route.c - who is connected to this node; chat messages (seq and history
 * in one Redis script, then delivery here or through the recipient's node
 * channel); bindings and notices for clients wherever they are; and the
 * messages other nodes and kefu-api publish.
 */
#include "kf_compat.h"

#include <stdlib.h>
#include <time.h>

#include "frame.h"
#include "kf_config.h"
#include "kf_json.h"
#include "kf_log.h"
#include "kf_mem.h"
#include "kf_redis.h"
#include "relay.h"

void kf_route_add(struct kf_conn *c)
{
	if (c->in_map)
		return;
	if (c->kind == KF_CONN_VISITOR)
		HASH_ADD_STR(kf_relay.visitors, key, c);
	else
		HASH_ADD(hh, kf_relay.agents, admin_id, sizeof(c->admin_id), c);
	c->id = ++kf_relay.next_id;
	HASH_ADD(hh_id, kf_relay.by_id, id, sizeof(c->id), c);
	c->in_map = true;
}

void kf_route_remove(struct kf_conn *c)
{
	if (!c->in_map)
		return;
	if (c->kind == KF_CONN_VISITOR)
		HASH_DEL(kf_relay.visitors, c);
	else
		HASH_DEL(kf_relay.agents, c);
	HASH_DELETE(hh_id, kf_relay.by_id, c);
	c->in_map = false;
}

struct kf_conn *kf_route_visitor(const char *key)
{
	struct kf_conn *c = NULL;

	HASH_FIND_STR(kf_relay.visitors, key, c);
	return c;
}

struct kf_conn *kf_route_agent(int64_t admin_id)
{
	struct kf_conn *c = NULL;

	HASH_FIND(hh, kf_relay.agents, &admin_id, sizeof(admin_id), c);
	return c;
}

struct kf_conn *kf_route_by_id(uint64_t id)
{
	struct kf_conn *c = NULL;

	HASH_FIND(hh_id, kf_relay.by_id, &id, sizeof(id), c);
	return c;
}

/* Publish a notice to the node holding visitor key / agent id. */
static void publish_notice(char kind, const char *id, struct json_object *msg)
{
	struct kf_buf b = KF_BUF_INIT;

	kf_json_append(&b, msg);
	kf_bus_route(kind, id, b.data);
	kf_buf_release(&b);
}

void kf_route_notice_visitor(const char *key, const char *type, const char *content)
{
	struct kf_conn *v = kf_route_visitor(key);
	struct json_object *msg;

	if (v) {
		kf_conn_send_frame(v, type, content, NULL, key, NULL);
		return;
	}
	msg = json_object_new_object();
	kf_json_set_str(msg, "op", "notice");
	kf_json_set_str(msg, "kind", "v");
	kf_json_set_str(msg, "key", key);
	kf_json_set_str(msg, "type", type);
	kf_json_set_str(msg, "content", content);
	publish_notice('v', key, msg);
	json_object_put(msg);
}

void kf_route_notice_agent(int64_t admin_id, const char *type, const char *content,
			   const char *key)
{
	struct kf_conn *a = kf_route_agent(admin_id);
	struct json_object *msg;
	char id[24];

	if (a) {
		kf_conn_send_frame(a, type, content, NULL, key, NULL);
		if (strcmp(type, "close") == 0)
			kf_history_forget(a, key);
		return;
	}
	snprintf(id, sizeof(id), "%lld", (long long)admin_id);
	msg = json_object_new_object();
	kf_json_set_str(msg, "op", "notice");
	kf_json_set_str(msg, "kind", "a");
	kf_json_set_int(msg, "admin", admin_id);
	kf_json_set_str(msg, "key", key);
	kf_json_set_str(msg, "type", type);
	kf_json_set_str(msg, "content", content);
	publish_notice('a', id, msg);
	json_object_put(msg);
}

/* The local side(s) of a new binding. */
static void bound_here(const struct kf_pair *p)
{
	struct kf_conn *v = kf_route_visitor(p->visitor);
	struct kf_conn *a = kf_route_agent(p->agent);

	if (v) {
		v->admin_id = p->agent;
		v->last_chat = time(NULL);
		kf_conn_send_frame(v, "connect", kf_relay.msg_agent_joined, NULL, v->key, NULL);
	}
	if (a) {
		kf_conn_send_frame(a, "connect", kf_relay.msg_new_visitor, NULL, p->visitor, p->ip);
		/* a new agent sees what was said before it took over */
		kf_history_start(a, p->visitor, 0, p->seq);
	}
}

static void publish_bound(const char *node, const struct kf_pair *p)
{
	struct json_object *msg = json_object_new_object();
	struct kf_buf b = KF_BUF_INIT;

	kf_json_set_str(msg, "op", "bound");
	kf_json_set_str(msg, "key", p->visitor);
	kf_json_set_int(msg, "agent", p->agent);
	kf_json_set_str(msg, "ip", p->ip);
	kf_json_set_int(msg, "seq", p->seq);
	kf_json_append(&b, msg);
	json_object_put(msg);
	kf_bus_publish(node, b.data);
	kf_buf_release(&b);
}

void kf_route_bindings(const struct kf_pairs *pairs)
{
	for (size_t i = 0; i < pairs->n; i++) {
		const struct kf_pair *p = &pairs->v[i];
		const char *vn = p->visitor_node, *an = p->agent_node;

		bound_here(p);
		kf_relay_event(KF_EVENT_ASSIGN, p->visitor, p->agent, 0, false, NULL, 0);
		if (*vn && strcmp(vn, kf_relay.node) != 0)
			publish_bound(vn, p);
		if (*an && strcmp(an, kf_relay.node) != 0 && strcmp(an, vn) != 0)
			publish_bound(an, p);
	}
}

/* ---- chat ---- */

struct pending_chat {
	uint64_t conn_id;
	enum kf_conn_kind kind;  /* the sender's */
	char key[KF_KEY_LEN + 1];
	char from[KF_KEY_LEN + 1]; /* from_id: a visitor's key, an agent's id */
	char when[32];           /* send_time */
	size_t len;
	char content[];          /* for the script and the chat event */
};

/*
 * The chats received in this turn of the event loop: sent to Redis as one
 * script call (kf_route_flush_chats, just before the loop waits again, or
 * at once when CHAT_BATCH_MAX are waiting).  One call instead of one per
 * message saves Redis a script call and a reply per message under load;
 * alone, a message waits no longer than before.
 */
#define CHAT_BATCH_MAX 64
#define CHAT_FIXED_ARGS 8  /* EVALSHA sha 0 prefix cap node history_max backlog_max */
#define CHAT_MSG_ARGS 5    /* key kind from content send_time */

struct chat_batch {
	size_t n;
	struct pending_chat *pc[CHAT_BATCH_MAX];
};

static struct chat_batch *open_batch;

static void chat_error(struct kf_conn *c, const char *key, long long status)
{
	switch (status) {
	case -1:
		if (c->kind == KF_CONN_VISITOR)
			kf_conn_send_frame(c, "system", kf_relay.msg_no_agent, NULL, key, NULL);
		else
			kf_conn_send_frame(c, "error", "that visitor is waiting for an agent", NULL,
					   key, NULL);
		break;
	case -3:
		kf_conn_send_frame(c, "error", "'to' is not one of your visitors", NULL, key, NULL);
		break;
	case -4:
		kf_conn_send_frame(c, "error", "no such conversation: it has ended", NULL, key, NULL);
		break;
	case -5:
		kf_warn("chat refused: %ld messages already wait for MySQL ([Relay] BacklogMax)",
			kf_relay.backlog_max);
		kf_conn_send_frame(c, "error",
				   "message not stored: too many messages wait for the database, "
				   "try again later",
				   NULL, key, NULL);
		break;
	default:
		kf_conn_send_frame(c, "error", "message not stored: storage unavailable, try again",
				   NULL, key, NULL);
	}
}

static void send_ack(struct kf_conn *c, const char *key, int64_t seq)
{
	char buf[160], when[32];

	kf_frame_time(time(NULL), when, sizeof(when));
	snprintf(buf, sizeof(buf), "{\"type\":\"ack\",\"seq\":%lld,\"ws_key\":\"%s\",\"send_time\":\"%s\"}",
		 (long long)seq, key, when);
	kf_conn_send(c, buf, strlen(buf));
}

/* One message's answer from the chat script (NULL: none came). */
static void chat_done(const struct pending_chat *pc, const redisReply *reply)
{
	struct kf_conn *c = kf_route_by_id(pc->conn_id);
	int64_t seq, agent;
	const char *tnode;

	if (!reply || reply->type != REDIS_REPLY_ARRAY || reply->elements < 1) {
		if (c)
			chat_error(c, pc->key, 0);
		return;
	}
	seq = kf_store_elem_int(reply, 0);
	if (seq <= 0) {
		if (c)
			chat_error(c, pc->key, seq);
		return;
	}
	tnode = kf_store_elem_str(reply, 1);
	agent = kf_store_elem_int(reply, 2);
	if (c) {
		kf_history_own(c, pc->key, seq);
		send_ack(c, pc->key, seq);
	}
	kf_relay_event(KF_EVENT_CHAT, pc->key, agent, seq, pc->kind == KF_CONN_AGENT, pc->content,
		       pc->len);
	if (strcmp(tnode, kf_relay.node) == 0) {
		struct kf_conn *to = pc->kind == KF_CONN_VISITOR ? kf_route_agent(agent)
								 : kf_route_visitor(pc->key);

		if (to) {
			struct kf_buf b = KF_BUF_INIT;
			struct kf_frame_out f = {
				.type = "chat",
				.content = pc->content,
				.content_len = pc->len,
				.from = pc->kind == KF_CONN_VISITOR ? pc->key : "agent",
				.ws_key = pc->key,
				.seq = seq,
				.send_time = pc->when,
			};

			kf_frame_build(&b, &f, 0);
			kf_history_deliver(to, pc->key, seq, b.data, b.len);
			kf_buf_release(&b);
		}
	}
}

static void batch_free(struct chat_batch *b)
{
	for (size_t i = 0; i < b->n; i++)
		free(b->pc[i]);
	free(b);
}

static void on_chat_batch(redisAsyncContext *ac, void *r, void *priv)
{
	struct chat_batch *b = priv;
	redisReply *reply = r;
	bool whole = reply && reply->type == REDIS_REPLY_ARRAY && reply->elements == b->n;

	(void)ac;
	if (!whole) {
		if (reply && reply->type == REDIS_REPLY_ERROR &&
		    strncmp(reply->str, "NOSCRIPT", 8) == 0) {
			kf_warn("redis forgot the chat script: loading it again");
			kf_bus_load_scripts();
		} else if (reply && reply->type == REDIS_REPLY_ERROR) {
			kf_err("redis chat script: %s", reply->str);
		} else if (reply) {
			kf_err("redis chat script: %zu answers for %zu messages",
			       reply->type == REDIS_REPLY_ARRAY ? reply->elements : 0, b->n);
		}
	}
	for (size_t i = 0; i < b->n; i++)
		chat_done(b->pc[i], whole ? reply->element[i] : NULL);
	batch_free(b);
}

void kf_route_flush_chats(void)
{
	struct chat_batch *b = open_batch;
	const char *argv[CHAT_FIXED_ARGS + CHAT_BATCH_MAX * CHAT_MSG_ARGS];
	size_t lens[CHAT_FIXED_ARGS + CHAT_BATCH_MAX * CHAT_MSG_ARGS];
	char hmax[24], bmax[24];
	int argc = 0;

	if (!b)
		return;
	open_batch = NULL;
	snprintf(hmax, sizeof(hmax), "%ld", kf_relay.history_max);
	snprintf(bmax, sizeof(bmax), "%ld", kf_relay.backlog_max);
	argv[argc++] = "EVALSHA";
	argv[argc++] = kf_relay.chat_sha;
	argv[argc++] = "0";
	argv[argc++] = kf_relay.prefix;
	argv[argc++] = "0";
	argv[argc++] = kf_relay.node;
	argv[argc++] = hmax;
	argv[argc++] = bmax;
	for (int i = 0; i < argc; i++)
		lens[i] = strlen(argv[i]);
	for (size_t i = 0; i < b->n; i++) {
		struct pending_chat *pc = b->pc[i];

		argv[argc] = pc->key;
		lens[argc++] = strlen(pc->key);
		argv[argc] = pc->kind == KF_CONN_VISITOR ? "v" : "a";
		lens[argc++] = 1;
		argv[argc] = pc->from;
		lens[argc++] = strlen(pc->from);
		argv[argc] = pc->content;
		lens[argc++] = pc->len;
		argv[argc] = pc->when;
		lens[argc++] = strlen(pc->when);
	}
	if (!kf_bus_cmdargv(on_chat_batch, b, argc, argv, lens))
		on_chat_batch(NULL, NULL, b); /* every sender gets its error */
}

static void on_flush(uv_prepare_t *h)
{
	(void)h;
	kf_route_flush_chats();
}

void kf_route_start(void)
{
	uv_prepare_init(kf_relay.loop, &kf_relay.chat_flush);
	uv_prepare_start(&kf_relay.chat_flush, on_flush);
}

void kf_route_stop(void)
{
	kf_route_flush_chats();
	uv_prepare_stop(&kf_relay.chat_flush);
}

void kf_route_chat(struct kf_conn *c, const char *content, size_t len, const char *to)
{
	const char *key = c->kind == KF_CONN_VISITOR ? c->key : (to && *to ? to : c->def_to);
	struct pending_chat *pc;

	if (!*key) {
		kf_conn_send_frame(c, "error", "invalid chat: missing field 'to'", NULL, NULL, NULL);
		return;
	}
	if (c->kind == KF_CONN_VISITOR && !c->admin_id) {
		kf_conn_send_frame(c, "system", kf_relay.msg_no_agent, NULL, c->key, NULL);
		return;
	}
	if (!kf_relay.cmd_ready) {
		chat_error(c, key, 0); /* no Redis: say so now, not after the turn */
		return;
	}
	pc = kf_xcalloc(1, sizeof(*pc) + len + 1);
	memcpy(pc->content, content, len);
	pc->len = len;
	pc->conn_id = c->id;
	pc->kind = c->kind;
	snprintf(pc->key, sizeof(pc->key), "%s", key);
	if (c->kind == KF_CONN_VISITOR)
		snprintf(pc->from, sizeof(pc->from), "%s", c->key);
	else
		snprintf(pc->from, sizeof(pc->from), "%lld", (long long)c->admin_id);
	kf_frame_time(time(NULL), pc->when, sizeof(pc->when));
	if (!open_batch)
		open_batch = kf_xcalloc(1, sizeof(*open_batch));
	open_batch->pc[open_batch->n++] = pc;
	if (open_batch->n == CHAT_BATCH_MAX)
		kf_route_flush_chats();
	if (c->kind == KF_CONN_VISITOR)
		c->last_chat = time(NULL);
	else {
		struct kf_conn *v = kf_route_visitor(key);

		if (v)
			v->last_chat = time(NULL);
	}
}

void kf_route_ack(struct kf_conn *c, int64_t seq, const char *key)
{
	char s[24];
	const char *argv[7];
	size_t lens[7];

	if (c->kind == KF_CONN_VISITOR)
		key = c->key;
	else if (!key || !*key)
		key = c->def_to;
	if (!*key)
		return;
	snprintf(s, sizeof(s), "%lld", (long long)seq);
	argv[0] = "EVALSHA";
	argv[1] = kf_relay.ack_sha;
	argv[2] = "0";
	argv[3] = kf_relay.prefix;
	argv[4] = key;
	argv[5] = c->kind == KF_CONN_VISITOR ? "ack_v" : "ack_a";
	argv[6] = s;
	for (int i = 0; i < 7; i++)
		lens[i] = strlen(argv[i]);
	kf_bus_cmdargv(NULL, NULL, 7, argv, lens); /* best effort: acks only save replays */
}

/* ---- messages from other nodes and from kefu-api ---- */

static void agent_closed(struct json_object *msg)
{
	struct json_object *v, *list = NULL;
	int64_t admin = 0;
	struct kf_conn *a;
	size_t n = 0;

	if (json_object_object_get_ex(msg, "admin", &v) && json_object_is_type(v, json_type_int))
		admin = json_object_get_int64(v);
	if (json_object_object_get_ex(msg, "visitors", &list) &&
	    json_object_is_type(list, json_type_array))
		n = json_object_array_length(list);
	a = kf_route_agent(admin);
	for (size_t i = 0; i < n; i++) {
		const char *key = json_object_get_string(json_object_array_get_idx(list, i));
		struct kf_conn *c = key ? kf_route_visitor(key) : NULL;

		if (a && key)
			kf_conn_send_frame(a, "close", kf_relay.msg_chat_ended, NULL, key, NULL);
		if (!c)
			continue;
		kf_relay_event(KF_EVENT_CLOSE, c->key, admin, 0, true, "agent_closed", 12);
		c->ended = true;
		kf_conn_send_frame(c, "close", kf_relay.msg_chat_ended, NULL, c->key, NULL);
		kf_conn_close(c, LWS_CLOSE_STATUS_NORMAL, "chat ended");
	}
	if (a) {
		kf_info("agent %lld went offline", (long long)admin);
		a->ended = true;
		kf_conn_close(a, LWS_CLOSE_STATUS_NORMAL, "agent offline");
	}
}

static int64_t get_int(struct json_object *o, const char *name)
{
	struct json_object *v;

	return json_object_object_get_ex(o, name, &v) ? json_object_get_int64(v) : 0;
}

static void on_node_message(struct json_object *msg, const char *op)
{
	const char *key = kf_json_get_str(msg, "key", NULL);
	const char *kind = kf_json_get_str(msg, "kind", NULL);

	if (strcmp(op, "replaced") == 0 && kind && *kind == 'a') {
		struct kf_conn *a = kf_route_agent(get_int(msg, "admin"));

		if (a) { /* the agent connected to another node */
			kf_route_remove(a);
			a->ended = true;
			kf_conn_close(a, 4001, "replaced by a newer connection");
		}
		return;
	}
	if (!key || !kf_key_valid(key, strlen(key)))
		return;
	if (strcmp(op, "chat") == 0) {
		size_t len = 0;
		const char *frame = kf_json_get_str(msg, "frame", &len);
		struct kf_conn *to = kind && *kind == 'a' ? kf_route_agent(get_int(msg, "to"))
							  : kf_route_visitor(key);

		if (frame && to)
			kf_history_deliver(to, key, get_int(msg, "seq"), frame, len);
	} else if (strcmp(op, "bound") == 0) {
		const char *ip = kf_json_get_str(msg, "ip", NULL);
		struct kf_pair p;

		memset(&p, 0, sizeof(p));
		snprintf(p.visitor, sizeof(p.visitor), "%s", key);
		p.agent = get_int(msg, "agent");
		snprintf(p.ip, sizeof(p.ip), "%s", ip ? ip : "");
		p.seq = get_int(msg, "seq");
		bound_here(&p);
	} else if (strcmp(op, "replaced") == 0) {
		struct kf_conn *v = kf_route_visitor(key);

		if (v) { /* it reconnected to another node */
			kf_route_remove(v);
			v->ended = true;
			kf_conn_close(v, 4001, "replaced by a newer connection");
		}
	} else if (strcmp(op, "notice") == 0) {
		const char *type = kf_json_get_str(msg, "type", NULL);
		const char *content = kf_json_get_str(msg, "content", NULL);
		struct kf_conn *to = kind && *kind == 'a' ? kf_route_agent(get_int(msg, "admin"))
							  : kf_route_visitor(key);

		if (!to || !type)
			return;
		kf_conn_send_frame(to, type, content, NULL, key, NULL);
		if (to->kind == KF_CONN_VISITOR && strcmp(type, "system") == 0 &&
		    content && strcmp(content, kf_relay.msg_no_agent) == 0)
			to->admin_id = 0; /* back in the queue */
		if (to->kind == KF_CONN_AGENT && strcmp(type, "close") == 0)
			kf_history_forget(to, key);
		if (to->kind == KF_CONN_VISITOR && strcmp(type, "close") == 0) {
			to->ended = true;
			kf_conn_close(to, LWS_CLOSE_STATUS_NORMAL, "chat ended");
		}
	}
}

void kf_route_message(const char *channel, const char *text, size_t len)
{
	struct json_object *msg;
	const char *why, *op;

	msg = kf_json_parse(text, len, 0, &why);
	if (!msg || !json_object_is_type(msg, json_type_object)) {
		kf_warn("channel %s: unreadable message: %s", channel, why ? why : "not an object");
		json_object_put(msg);
		return;
	}
	op = kf_json_get_str(msg, "op", NULL);
	if (op && strcmp(op, "agent_closed") == 0)
		agent_closed(msg);
	else if (op)
		on_node_message(msg, op);
	json_object_put(msg);
}
