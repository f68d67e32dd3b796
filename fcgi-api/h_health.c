/*
 * h_health.c - GET /healthz: are the stores reachable from this worker?
 */
#include "kf_compat.h"

#include "api.h"
#include "handlers.h"
#include "kf_db.h"
#include "kf_json.h"
#include "kf_redis.h"
#include "reply.h"

void kf_h_healthz(struct kf_worker *w, struct kf_req *req, struct kf_reply *rep)
{
	struct json_object *data = json_object_new_object();
	redisReply *pong = kf_redis_cmd(w->redis, "PING");
	bool redis_ok = pong && pong->type == REDIS_REPLY_STATUS;
	bool mysql_ok = kf_db_ping(w->db, KF_DB_PRIMARY) == 0;

	(void)req;
	if (pong)
		freeReplyObject(pong);
	kf_json_set_str(data, "redis", redis_ok ? "ok" : "down");
	kf_json_set_str(data, "mysql", mysql_ok ? "ok" : "down");
	kf_reply_set(rep, redis_ok && mysql_ok ? 200 : 503,
		     redis_ok && mysql_ok ? "ok" : "a data store is down", data);
}
