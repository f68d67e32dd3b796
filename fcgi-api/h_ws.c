/*
 * h_ws.c - the agent's side of live chat over REST:
 *   POST /admin/ws             go online; returns an agent ws_key and its URL
 *   POST /admin/ws/info        every visitor and agent (the seed's shape)
 *   POST /admin/ws/link_user   the calling agent's visitors
 *   POST /admin/ws/close       go offline; its visitors are told and unbound
 * All of it reads and writes the shared store, so it is right whichever
 * relay node holds the connections.
 */
#include "kf_compat.h"

#include <stdlib.h>

#include "api.h"
#include "handlers.h"
#include "kf_config.h"
#include "kf_db.h"
#include "kf_err.h"
#include "kf_json.h"
#include "kf_log.h"
#include "kf_mem.h"
#include "kf_store.h"
#include "reply.h"
#include "request.h"

static void store_down(struct kf_reply *rep)
{
	kf_reply_error(rep, 503, "service unavailable: a data store is down, try again shortly");
}

static int take_name(void *ud, const struct kf_db_row *row)
{
	char **name = ud;

	free(*name);
	*name = kf_xstrdup_or_empty(row->vals[0]);
	return 0;
}

void kf_h_ws_register(struct kf_worker *w, struct kf_req *req, struct kf_reply *rep)
{
	const struct kf_config *cfg = w->api->cfg;
	struct kf_db_param p = KF_DB_INT(req->session.admin_id);
	char ticket[KF_KEY_LEN + 1];
	char *name = NULL;
	struct json_object *data;
	struct kf_buf url = KF_BUF_INIT;
	int rc;

	rc = kf_db_query(w->db, KF_DB_REPLICA, "SELECT `name` FROM `admin` WHERE `id` = ?", &p, 1,
			 take_name, &name);
	if (rc != 0) {
		store_down(rep);
		goto out;
	}
	if (!name) {
		kf_reply_error(rep, 401, "not logged in: the account no longer exists");
		goto out;
	}
	rc = kf_store_agent_register(w->redis, w->api->prefix, req->session.admin_id, name,
				     (long)kf_config_int(cfg, "Relay", "AgentKeyTtlSec"), ticket);
	if (rc != 0) {
		store_down(rep);
		goto out;
	}
	kf_buf_addf(&url, "%s/ws/admin/link?ws_key=%s", kf_config_str(cfg, "Relay", "PublicUrl"),
		    ticket);
	data = json_object_new_object();
	kf_json_set_str(data, "ws_key", ticket);
	kf_json_set_str(data, "url", url.data);
	kf_json_set_int(data, "expires_in", kf_config_int(cfg, "Relay", "AgentKeyTtlSec"));
	kf_reply_ok(rep, data);
out:
	kf_buf_release(&url);
	free(name);
}

static struct json_object *keys_array(const redisReply *arr)
{
	struct json_object *a = json_object_new_array();

	if (arr && arr->type == REDIS_REPLY_ARRAY)
		for (size_t i = 0; i < arr->elements; i++)
			if (arr->element[i]->type == REDIS_REPLY_STRING)
				json_object_array_add(a, json_object_new_string(arr->element[i]->str));
	return a;
}

static const char *str_at(const redisReply *arr, size_t i)
{
	if (!arr || arr->type != REDIS_REPLY_ARRAY || i >= arr->elements ||
	    arr->element[i]->type != REDIS_REPLY_STRING)
		return "";
	return arr->element[i]->str;
}

static const redisReply *arr_at(const redisReply *arr, size_t i)
{
	if (!arr || arr->type != REDIS_REPLY_ARRAY || i >= arr->elements ||
	    arr->element[i]->type != REDIS_REPLY_ARRAY)
		return NULL;
	return arr->element[i];
}

void kf_h_ws_info(struct kf_worker *w, struct kf_req *req, struct kf_reply *rep)
{
	/* read with the session (router.c); again if Redis had lost the script */
	redisReply *view = req->prefetched;
	const redisReply *users, *agents;
	struct json_object *data, *uc, *sc;

	req->prefetched = NULL;
	if (!view || view->type != REDIS_REPLY_ARRAY) {
		if (view)
			freeReplyObject(view);
		view = kf_store_chat_view(w->redis, w->api->prefix, 0);
	}
	if (!view) {
		store_down(rep);
		return;
	}
	users = arr_at(view, 0);
	agents = arr_at(view, 1);
	uc = json_object_new_array();
	for (size_t i = 0; users && i < users->elements; i++) {
		const redisReply *u = users->element[i];
		struct json_object *o = json_object_new_object();
		const char *agent = str_at(u, 2);

		kf_json_set_str(o, "ws_key", str_at(u, 0));
		json_object_object_add(o, "bind_service",
				       *agent ? json_object_new_int64(strtoll(agent, NULL, 10)) : NULL);
		kf_json_set_str(o, "ip", str_at(u, 1));
		kf_json_set_str(o, "state", str_at(u, 3));
		json_object_array_add(uc, o);
	}
	sc = json_object_new_array();
	for (size_t i = 0; agents && i < agents->elements; i++) {
		const redisReply *a = agents->element[i];
		struct json_object *o = json_object_new_object();

		kf_json_set_str(o, "ws_key", str_at(a, 2));
		kf_json_set_int(o, "admin_id", strtoll(str_at(a, 0), NULL, 10));
		kf_json_set_str(o, "admin_name", str_at(a, 1));
		json_object_object_add(o, "bind_user", keys_array(arr_at(a, 4)));
		kf_json_set_str(o, "state", str_at(a, 3));
		json_object_array_add(sc, o);
	}
	data = json_object_new_object();
	kf_json_set_int(data, "user_count", (int64_t)json_object_array_length(uc));
	kf_json_set_int(data, "service_count", (int64_t)json_object_array_length(sc));
	json_object_object_add(data, "user_clients", uc);
	json_object_object_add(data, "service_clients", sc);
	kf_reply_ok(rep, data);
	freeReplyObject(view);
}

void kf_h_ws_link_user(struct kf_worker *w, struct kf_req *req, struct kf_reply *rep)
{
	redisReply *view = kf_store_chat_view(w->redis, w->api->prefix, req->session.admin_id);
	const redisReply *users;
	struct json_object *data, *list;
	char me[24];

	if (!view) {
		store_down(rep);
		return;
	}
	snprintf(me, sizeof(me), "%lld", (long long)req->session.admin_id);
	users = arr_at(view, 0);
	list = json_object_new_array();
	for (size_t i = 0; users && i < users->elements; i++) {
		const redisReply *u = users->element[i];
		struct json_object *o;

		if (strcmp(str_at(u, 2), me) != 0)
			continue;
		o = json_object_new_object();
		kf_json_set_str(o, "ip", str_at(u, 1));
		kf_json_set_str(o, "ws_key", str_at(u, 0));
		kf_json_set_str(o, "state", str_at(u, 3));
		json_object_array_add(list, o);
	}
	data = json_object_new_object();
	kf_json_set_int(data, "user_count", (int64_t)json_object_array_length(list));
	json_object_object_add(data, "user", list);
	kf_reply_ok(rep, data);
	freeReplyObject(view);
}

void kf_h_ws_close(struct kf_worker *w, struct kf_req *req, struct kf_reply *rep)
{
	struct kf_keys visitors = { 0 };
	struct json_object *data, *list;
	int rc = kf_store_agent_close(w->redis, w->api->prefix, req->session.admin_id, &visitors);

	if (rc == KF_ERR_STORE) {
		store_down(rep);
		return;
	}
	list = json_object_new_array();
	for (size_t i = 0; i < visitors.n; i++)
		json_object_array_add(list, json_object_new_string(visitors.v[i]));
	data = json_object_new_object();
	json_object_object_add(data, "closed_users", list);
	kf_json_set_int(data, "was_online", rc == 0);
	kf_reply_ok(rep, data);
	kf_keys_release(&visitors);
}
