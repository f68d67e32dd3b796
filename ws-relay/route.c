/*
 * route.c - who is connected to this node, delivery of chat frames between
 * them, announcing new bindings, and the control channel (PREFIX ctl) on
 * which kefu-api tells the relays that an agent went offline.
 */
#include "kf_compat.h"

#include <hiredis/adapters/libuv.h>
#include <stdlib.h>
#include <time.h>

#include "kf_config.h"
#include "kf_json.h"
#include "kf_log.h"
#include "relay.h"

#define SUB_BACKOFF_MIN_MS 100
#define SUB_BACKOFF_MAX_MS 5000

void kf_route_add(struct kf_conn *c)
{
	if (c->in_map)
		return;
	if (c->kind == KF_CONN_VISITOR)
		HASH_ADD_STR(kf_relay.visitors, key, c);
	else
		HASH_ADD(hh, kf_relay.agents, admin_id, sizeof(c->admin_id), c);
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

void kf_route_bindings(const struct kf_pairs *pairs)
{
	time_t now = time(NULL);

	for (size_t i = 0; i < pairs->n; i++) {
		const struct kf_pair *p = &pairs->v[i];
		struct kf_conn *v = kf_route_visitor(p->visitor);
		struct kf_conn *a = kf_route_agent(p->agent);

		if (v) {
			v->admin_id = p->agent;
			v->last_chat = now;
			kf_conn_send_frame(v, "connect", kf_relay.msg_agent_joined, NULL, v->key, NULL);
		}
		if (a)
			kf_conn_send_frame(a, "connect", kf_relay.msg_new_visitor, NULL, p->visitor,
					   p->ip);
		if (!v || !a)
			kf_debug("binding %.6s... -> %lld: one side is on another node", p->visitor,
				 (long long)p->agent);
	}
}

void kf_route_chat(struct kf_conn *c, const char *content, size_t len, const char *to)
{
	time_t now = time(NULL);

	if (c->kind == KF_CONN_VISITOR) {
		struct kf_conn *a;

		if (!c->admin_id) {
			kf_conn_send_frame(c, "system", kf_relay.msg_no_agent, NULL, c->key, NULL);
			return;
		}
		a = kf_route_agent(c->admin_id);
		if (!a) {
			kf_conn_send_frame(c, "system", kf_relay.msg_agent_away, NULL, c->key, NULL);
			return;
		}
		c->last_chat = now;
		kf_conn_send_chat(a, content, len, c->key, c->key);
		return;
	}
	{
		const char *key = to && *to ? to : c->def_to;
		struct kf_conn *v;

		if (!*key) {
			kf_conn_send_frame(c, "error", "invalid chat: missing field 'to'", NULL, NULL,
					   NULL);
			return;
		}
		v = kf_route_visitor(key);
		if (!v || v->admin_id != c->admin_id) {
			kf_conn_send_frame(c, "error", "'to' is not one of your visitors", NULL, key,
					   NULL);
			return;
		}
		v->last_chat = now;
		kf_conn_send_chat(v, content, len, "agent", key);
	}
}

/* ---- the control channel ---- */

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

static void on_ctl(redisAsyncContext *ac, void *r, void *priv)
{
	redisReply *reply = r;
	struct json_object *msg;
	const char *why, *op;

	(void)ac;
	(void)priv;
	if (!reply || reply->type != REDIS_REPLY_ARRAY || reply->elements != 3 ||
	    reply->element[0]->type != REDIS_REPLY_STRING ||
	    strcmp(reply->element[0]->str, "message") != 0 ||
	    reply->element[2]->type != REDIS_REPLY_STRING)
		return;
	msg = kf_json_parse(reply->element[2]->str, reply->element[2]->len, 0, &why);
	if (!msg) {
		kf_warn("control channel: unreadable message: %s", why ? why : "null");
		return;
	}
	op = kf_json_get_str(msg, "op", NULL);
	if (op && strcmp(op, "agent_closed") == 0)
		agent_closed(msg);
	json_object_put(msg);
}

static void schedule_resubscribe(void);

static void on_sub_connect(const redisAsyncContext *ac, int status)
{
	if (status != REDIS_OK) {
		kf_warn("control channel: unable to connect to redis: %s", ac->errstr);
		kf_relay.sub = NULL; /* hiredis frees the context */
		schedule_resubscribe();
		return;
	}
	kf_relay.sub_backoff_ms = 0;
	kf_info("control channel: subscribed");
}

static void on_sub_disconnect(const redisAsyncContext *ac, int status)
{
	(void)ac;
	kf_relay.sub = NULL;
	if (status != REDIS_OK)
		kf_warn("control channel: lost redis, reconnecting");
	schedule_resubscribe();
}

static void resubscribe_cb(uv_timer_t *t)
{
	(void)t;
	kf_route_subscribe();
}

static void schedule_resubscribe(void)
{
	if (!kf_relay.sub_wanted)
		return;
	kf_relay.sub_backoff_ms = kf_relay.sub_backoff_ms ? kf_relay.sub_backoff_ms * 2
							  : SUB_BACKOFF_MIN_MS;
	if (kf_relay.sub_backoff_ms > SUB_BACKOFF_MAX_MS)
		kf_relay.sub_backoff_ms = SUB_BACKOFF_MAX_MS;
	uv_timer_start(&kf_relay.sub_retry, resubscribe_cb, (uint64_t)kf_relay.sub_backoff_ms, 0);
}

void kf_route_subscribe(void)
{
	const struct kf_config *cfg = kf_relay.cfg;
	redisAsyncContext *ac;
	const char *pw = kf_config_str(cfg, "Redis", "Password");

	kf_relay.sub_wanted = true;
	if (kf_relay.sub)
		return;
	ac = redisAsyncConnect(kf_config_str(cfg, "Redis", "Host"),
			       (int)kf_config_int(cfg, "Redis", "Port"));
	if (!ac || ac->err) {
		kf_warn("control channel: %s", ac ? ac->errstr : "out of memory");
		if (ac)
			redisAsyncFree(ac);
		schedule_resubscribe();
		return;
	}
	redisLibuvAttach(ac, kf_relay.loop);
	redisAsyncSetConnectCallback(ac, on_sub_connect);
	redisAsyncSetDisconnectCallback(ac, on_sub_disconnect);
	if (*pw)
		redisAsyncCommand(ac, NULL, NULL, "AUTH %s", pw);
	redisAsyncCommand(ac, on_ctl, NULL, "SUBSCRIBE %sctl", kf_relay.prefix);
	kf_relay.sub = ac;
}

void kf_route_unsubscribe(void)
{
	kf_relay.sub_wanted = false;
	uv_timer_stop(&kf_relay.sub_retry);
	if (kf_relay.sub)
		redisAsyncDisconnect(kf_relay.sub);
}
