/*
 * h_perf.c - GET /admin/perf/stats: the C counterpart of the seed's pprof
 * routes, for this kefu-api process: pid, uptime, resident memory, open
 * descriptors, threads, whether this worker reaches Redis and MySQL, and
 * requests with latency by route since start (stats.h).
 */
#include "kf_compat.h"

#include <unistd.h>

#include "api.h"
#include "handlers.h"
#include "kf_config.h"
#include "kf_db.h"
#include "kf_json.h"
#include "kf_redis.h"
#include "reply.h"
#include "stats.h"

static const char *updown(bool up)
{
	return up ? "ok" : "down";
}

void kf_h_perf_stats(struct kf_worker *w, struct kf_req *req, struct kf_reply *rep)
{
	struct json_object *data = json_object_new_object();
	struct json_object *stores = json_object_new_object();
	struct kf_stats_proc proc;
	redisReply *pong = kf_redis_cmd(w->redis, "PING");

	(void)req;
	kf_json_set_str(stores, "redis", updown(pong && pong->type == REDIS_REPLY_STATUS));
	if (pong)
		freeReplyObject(pong);
	kf_json_set_str(stores, "mysql", updown(kf_db_ping(w->db, KF_DB_PRIMARY) == 0));
	if (*kf_config_str(w->api->cfg, "Db", "HostSlave") ||
	    *kf_config_str(w->api->cfg, "Db", "SocketSlave"))
		kf_json_set_str(stores, "mysql_replica",
				updown(kf_db_ping(w->db, KF_DB_REPLICA) == 0));
	kf_stats_proc(&proc);
	kf_json_set_int(data, "pid", (int64_t)getpid());
	kf_json_set_int(data, "uptime_sec", proc.uptime_sec);
	kf_json_set_int(data, "rss_bytes", proc.rss_bytes);
	kf_json_set_int(data, "open_fds", proc.open_fds);
	kf_json_set_int(data, "threads", proc.threads);
	json_object_object_add(data, "stores", stores);
	json_object_object_add(data, "requests", kf_stats_requests_json());
	kf_reply_ok(rep, data);
}
